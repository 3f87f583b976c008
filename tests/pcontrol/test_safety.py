"""A failing journal refuses new jobs and loses no accepted one; commands that would end
work refuse with the consequence in words unless -force (and the prompt asks instead)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pcontrol.journal import Journal
from pcontrol.paths import Paths
from pcontrol.repl import Prompt
from pcontrol.wire import EventKind
from pcontrol_harness import controller_running, kill_group, poll, run

# -- a journal that fails on demand --------------------------------------------------------


class FailingDB:
    """A stand-in for the journal's sqlite3 connection: while `failure` is set, COMMIT
    raises it (the transaction is open and rolled back, as when a disk fills up)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self.failure: str | None = None

    def execute(self, sql: str, *args: Any) -> Any:
        if self.failure is not None and sql == "COMMIT":
            raise sqlite3.OperationalError(self.failure)
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def fail_writes(journal: Journal, how: str) -> FailingDB | None:
    """Make every journal write fail: `full` (COMMIT raises "database or disk is full") or
    `read-only` (SQLite's own refusal: PRAGMA query_only)."""
    journal.retry_min = 0.05          # the tests wait for the recovery, not for backoff
    if how == "full":
        wrapper = journal._db if isinstance(journal._db, FailingDB) else FailingDB(journal._db)
        wrapper.failure = "database or disk is full"
        journal._db = wrapper           # type: ignore[assignment]
        return wrapper
    journal._db.execute("PRAGMA query_only=1")
    return None


def heal(journal: Journal, how: str) -> None:
    if how == "full":
        journal._db.failure = None      # type: ignore[attr-defined]
    else:
        journal._db.execute("PRAGMA query_only=0")


REASONS = {"full": "database or disk is full", "read-only": "readonly database"}


def gated(home: str, name: str) -> tuple[Path, list[str]]:
    gate = Path(home) / name
    return gate, ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.01; done"]


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_a_failing_journal_refuses_new_jobs_and_keeps_accepted_ones(home: str, how: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            journal = h.controller.journal
            assert journal is not None
            await h.add_local("node1")
            gate, argv = gated(home, "gate")
            running = await h.submit("--", *argv)
            pid = (await h.wait_started(running))["pid"]
            queued = await h.submit("--", "true")            # the slot is taken: PENDING
            try:
                fail_writes(journal, how)
                # The write of this job is the first to fail: it is withdrawn, not kept.
                first = await h.reply("job", "--", "true")
                assert not first.ok and first.data == {
                    "journal_failure": f"journal write failed: {_message(journal)}"}
                assert first.text.startswith("not accepting jobs: journal write failed: ")
                assert first.error is not None and first.error.code == "unavailable"  # for now
                assert REASONS[how] in first.text and "was not kept" in first.text
                withdrawn = queued + 1
                assert not (await h.reply("check", "job", withdrawn)).ok
                # Now the failure is known: refused at once, with the reason.
                second = await h.reply("job", "--", "true")
                assert not second.ok and REASONS[how] in second.text
                assert second.error is not None and second.error.code == "unavailable"
                status = await h.cmd("status")
                assert REASONS[how] in status["journal"]["failure"]
                # The accepted job ends meanwhile: its end is kept, but told to nobody
                # (and not acked to the agent) before it is written.
                gate.touch()
                await poll(lambda: h.controller.jobs[running].state.value == "DONE",
                           "the running job ended (in memory)")
                assert "DONE" not in h.log.job_states(running)
                assert "JOURNAL FAILING" in (await h.reply("status")).text
            finally:
                heal(journal, how)
            # Writes work again (the retry timer): everything held goes out, in order.
            ended = await h.wait_job(running)
            assert (ended["outcome"], ended["status"]) == ("EXIT", 0)
            assert (await h.wait_job(queued))["outcome"] == "EXIT"
            assert (await h.cmd("status"))["journal"]["failure"] is None
            later = await h.submit("--", "true")
            assert later == withdrawn + 1            # ids are never reused
            assert (await h.wait_job(later))["outcome"] == "EXIT"
            assert not any(e.data.get("id") == withdrawn for e in h.log.events
                           if e.kind is EventKind.JOB)
            kill_group(pid)
        reopened = Journal(Paths.for_home(home).journal)
        try:
            jobs = {job.id: job for job in reopened.load().jobs}
        finally:
            reopened.close()
        assert jobs[running].outcome.value == "EXIT" and withdrawn not in jobs
    run(body())


def test_a_batch_whose_writes_fail_is_withdrawn_job_by_job(home: str) -> None:
    """A batch's jobs wait once for the journal together (answer.answer_batch): those the
    failing journal did not write are withdrawn, each refused as a lone `job` would be,
    and nobody hears of them; the batch's usage errors are refused as ever."""
    async def body() -> None:
        async with controller_running(home) as h:
            journal = h.controller.journal
            assert journal is not None
            kept = await h.submit("-owner", "o", "--", "true")
            fail_writes(journal, "full")
            try:
                replies = await h.client.request_batch([
                    ["job", "-owner", "o", "--", "true"], ["job", "-timeout", "x", "--", "true"],
                    ["job", "-owner", "o", "--", "false"]])
                assert replies is not None and [r.ok for r in replies] == [False, False, False]
                assert replies[1].error.code == "usage"
                for reply in (replies[0], replies[2]):
                    assert reply.data == {"journal_failure": f"journal write failed: {_message(journal)}"}
                    assert "was not kept" in reply.text
                assert sorted(h.controller.jobs) == [kept]
            finally:
                heal(journal, "full")
            await poll(lambda: journal.failure is None, "the journal's writes work again")
            later = await h.submit("-owner", "o", "--", "true")
            assert later == kept + 3                  # ids are never reused
            assert [j["id"] for j in await h.cmd("jobs", "-owner", "o")] == [kept, later]
            assert not any(e.data.get("id") in (kept + 1, kept + 2) for e in h.log.events
                           if e.kind is EventKind.JOB)
    run(body())


def _message(journal: Journal) -> str:
    assert journal.failure is not None
    return journal.failure.removeprefix("journal write failed: ")


# -- operator safety -----------------------------------------------------------------------


def test_delete_of_a_live_job_states_the_consequence_and_force_does_it(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("node1")
            _, argv = gated(home, "never")
            running = await h.submit("--", *argv)
            pid = (await h.wait_started(running))["pid"]
            pending = await h.submit("--", "true")
            try:
                refused = await h.reply("delete", running)
                assert not refused.ok and refused.data == {"needs_force": True}
                assert refused.text == (
                    f"job {running} is running on node1 (pid {pid}); deleting it kills it and "
                    "its outcome is lost; use -force to kill it and delete it once it has "
                    "ended")
                refused = await h.reply("delete", pending)
                assert refused.text == (f"job {pending} is PENDING; deleting it cancels it "
                                        "(it never runs); use -force to cancel and delete it")
                assert (await h.reply("delete", pending, "-force")).ok
                assert not (await h.reply("check", "job", pending)).ok
                said = await h.reply("delete", running, "-force")
                assert said.ok and said.text.endswith("it will be deleted once it has ended")
                assert said.data == {"id": running, "deleted": False}
                killed = await h.wait_job(running)           # its end is still told
                assert killed["outcome"] == "KILLED"
                missing = await h.reply("check", "job", running)
                assert not missing.ok and missing.error.code == "not_found"
            finally:
                kill_group(pid)
    run(body())


def test_host_delete_of_a_busy_host_and_shutdown_with_jobs_out(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            await h.add_local("node1")
            _, argv = gated(home, "never")
            running = await h.submit("--", *argv)
            pid = (await h.wait_started(running))["pid"]
            pending = await h.submit("-host", "node1", "-required", "--", "true")
            try:
                refused = await h.reply("host", "delete", "node1")
                assert not refused.ok and refused.data == {"needs_force": True}
                assert refused.text == (
                    f"host node1 runs 1 job ({running}); deleting it ends that job KILLED, "
                    f"and 1 pending job that requires it ({pending}) ends DOWN; use -force "
                    "to do it anyway")
                refused = await h.reply("shutdown")
                assert not refused.ok and refused.data == {"needs_force": True}
                assert refused.text.startswith("pcontrol has 1 job running and 1 job "
                                               "pending; if it stops, the running ones go on "
                                               "under their agents, which kill them if no "
                                               "pcontrol takes them over within 20 s")
                refused = await h.reply("shutdown", "-kill")
                assert "stopping with -kill ends both KILLED" in refused.text
                assert not h.server.shutting_down
                await h.cmd("host", "delete", "node1", "-force")
                assert (await h.wait_job(running))["outcome"] == "KILLED"
                assert (await h.wait_job(pending))["outcome"] == "DOWN"
                assert (await h.cmd("shutdown", "-kill", "-force"))["stopping"] is True
                await asyncio.wait_for(h.server.shutdown_requested.wait(), 5)
            finally:
                kill_group(pid)
    run(body())


def test_shutdown_without_jobs_out_needs_no_force(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            assert (await h.cmd("shutdown"))["stopping"] is True
    run(body())


def test_the_prompt_asks_before_forcing(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    answers: list[bool] = []
    questions: list[str] = []
    ids: list[int] = []

    async def ask(question: str) -> bool:
        questions.append(question)
        return answers.pop(0)

    async def body() -> None:
        async with controller_running(home) as h:
            pending = await h.submit("-host", "ghost", "--", "true")   # no such host: PENDING
            ids.append(pending)
            prompt = Prompt(Paths.for_home(home), ask=ask)
            answers.append(False)
            assert await prompt.run_line(f"delete {pending}")
            assert (await h.cmd("check", "job", pending))["state"] == "PENDING"
            answers.append(True)
            assert await prompt.run_line(f"delete {pending}")
            assert not (await h.reply("check", "job", pending)).ok
            assert prompt.client is not None
            await prompt.client.close()

    run(body())
    assert questions == [f"delete {ids[0]} anyway?"] * 2
    err = capsys.readouterr().err
    assert "deleting it cancels it" in err and "not done" in err


def test_pcontrol_stop_with_jobs_out_needs_force(home: str) -> None:
    def pcontrol(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pcontrol", "--home", home, *args],
                              capture_output=True, text=True, timeout=60)

    assert pcontrol("start").returncode == 0
    try:
        assert pcontrol("job", "-host", "ghost", "--", "true").stdout.strip() == "1"
        refused = pcontrol("stop")
        assert refused.returncode == 1
        assert "pcontrol refused to stop: pcontrol has 1 job pending" in refused.stderr
        assert "use -force to stop anyway" in refused.stderr
        assert "usage" in pcontrol("stop", "-now").stderr
        stopped = pcontrol("stop", "-kill", "-force")
        assert stopped.returncode == 0 and "every job killed" in stopped.stdout
    finally:
        pcontrol("stop", "-kill", "-force")
