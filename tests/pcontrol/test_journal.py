"""The journal: a restart keeps hosts, pending and finished jobs; running ones become DOWN."""

from __future__ import annotations

import asyncio

import pytest

from pcontrol.controller import Controller, JobSpec
from pcontrol.errors import CommandFailed
from pcontrol.journal import Journal
from pcontrol.model import Job, JobState, Outcome
from pcontrol_harness import WAIT, controller_running, kill_group, make_config, poll, run


def test_restart_keeps_hosts_and_jobs(home: str) -> None:
    async def first_life() -> dict:
        async with controller_running(home, stop_kill=False) as h:
            await h.add_local("node1")
            await h.cmd("host", "add", "node2", "-slots", "3", "-connect", "unused")
            await h.cmd("host", "off", "node2")
            finished = await h.submit("-host", "node1", "--", "sh", "-c", "echo kept; exit 4")
            await h.wait_job(finished)
            harvested = await h.submit("-host", "node1", "-owner", "s1", "--", "true")
            await h.wait_job(harvested)
            await h.cmd("harvest", harvested)
            running = await h.submit("-host", "node1", "-owner", "s1", "-task", "t",
                                     "--", "sleep", "30")
            started = await h.wait_started(running)
            pending = await h.submit("-host", "node2", "-required", "-pending", "600",
                                     "-priority", "3", "--", "true")
            return dict(finished=finished, harvested=harvested, running=running,
                        pending=pending, pid=started["pid"])

    async def second_life(ids: dict) -> None:
        async with controller_running(home) as h:
            hosts = {r["name"]: r for r in await h.cmd("hosts")}
            assert set(hosts) == {"node1", "node2"}
            assert hosts["node2"]["state"] == "OFF" and hosts["node2"]["slots"] == 3
            assert hosts["node2"]["connect"] == "unused"
            await h.wait_host("node1", "IDLE")
            finished = await h.cmd("check", "job", ids["finished"], "-output")
            assert (finished["outcome"], finished["status"]) == ("EXIT", 4)
            assert finished["stdout"] == "kept\n"
            assert (await h.cmd("check", "job", ids["harvested"]))["harvested"] is not None
            # The job that ran through the restart was taken over by the new agent.
            running = await h.cmd("check", "job", ids["running"])
            assert (running["state"], running["unknown"], running["pid"]) == \
                ("BUSY", False, ids["pid"])
            assert (running["owner"], running["task"]) == ("s1", "t")
            assert (await h.cmd("check", "host", "node1"))["running"] == [ids["running"]]
            await h.cmd("kill", ids["running"], "-force")
            assert (await h.wait_job(ids["running"]))["outcome"] == "KILLED"
            pending = await h.cmd("check", "job", ids["pending"])
            assert pending["state"] == "PENDING"
            assert (pending["pending"], pending["priority"]) == (600, 3)
            new = await h.submit("--", "true")
            assert new > max(ids["finished"], ids["harvested"], ids["running"],
                             ids["pending"])
            await h.cmd("host", "on", "node2")       # its agent command is "unused"
            down = await h.wait_host("node2", "DOWN")
            assert "not found" in down["reason"]

    ids = run(first_life())
    try:
        run(second_life(ids))
    finally:
        kill_group(ids["pid"])


def test_job_ids_are_never_reused_after_deletion(home: str) -> None:
    async def life() -> int:
        async with controller_running(home) as h:
            job_id = await h.submit("-host", "ghost", "-required", "--", "true")
            await h.cmd("delete", job_id)
            return job_id

    first = run(life())
    assert run(life()) == first + 1


def test_a_burst_of_changes_is_one_commit(home: str) -> None:
    async def body() -> None:
        journal = Journal(f"{home}/j.db")
        controller = Controller(journal, make_config())
        await controller.start()
        await asyncio.sleep(0)                    # let the start's writes go
        before = journal.commits
        for i in range(200):
            controller.submit(JobSpec(argv=["echo", str(i)]))
        assert journal.dirty
        await asyncio.sleep(0)                    # one loop turn: one flush
        assert journal.commits == before + 1 and not journal.dirty
        await controller.stop()
        journal.close()
        reopened = Journal(f"{home}/j.db").load()
        assert len(reopened.jobs) == 200 and reopened.next_job_id == 201
        assert all(job.state is JobState.PENDING for job in reopened.jobs)
    run(body())


def test_a_harvest_goes_with_the_next_write_or_soon_after(home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody waits for a harvest (sched keeps its harvest log for HARVEST_DURABLE s): it takes
    no commit of its own while other writes follow, and is on disk within LAZY_WRITE anyway,
    or at once when someone waits for the journal."""
    from pcontrol import journal as journal_module
    monkeypatch.setattr(journal_module, "LAZY_WRITE", 0.05)

    async def body() -> None:
        journal = Journal(f"{home}/j.db")
        controller = Controller(journal, make_config())
        await controller.start()
        jobs = [controller.submit(JobSpec(argv=["true"], owner="me")) for _ in range(3)]
        for job in jobs:                          # no host: they end PENDING
            controller._index.remove(job.id)
            controller._finish(job, Outcome.PENDING, reason="test")
        await asyncio.sleep(0)
        commits = journal.commits
        assert not journal.dirty

        controller.harvest([str(jobs[0].id)], owner="me")
        assert journal.dirty and not journal.write_due
        for _ in range(3):
            await asyncio.sleep(0)
        assert journal.commits == commits and journal.dirty   # no write of its own...
        controller.submit(JobSpec(argv=["true"]))
        await asyncio.sleep(0)
        assert journal.commits == commits + 1 and not journal.dirty   # ...it went with this one

        controller.harvest([str(jobs[1].id)], owner="me")
        await controller.durable()                # someone waits: written now
        assert journal.commits == commits + 2 and not journal.dirty

        controller.harvest([str(jobs[2].id)], owner="me")
        await poll(lambda: not journal.dirty, "the lone harvest was written")
        assert journal.commits == commits + 3
        await controller.stop()
        journal.close()
        reopened = {job.id: job for job in Journal(f"{home}/j.db").load().jobs}
        assert all(reopened[job.id].harvested is not None for job in jobs)
    run(body())


def test_a_forgotten_job_goes_with_the_next_write(home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody waits for the deletion of a job forgotten after its retention: like a harvest,
    it takes no commit of its own."""
    from pcontrol import journal as journal_module
    monkeypatch.setattr(journal_module, "LAZY_WRITE", WAIT)

    async def body() -> None:
        journal = Journal(f"{home}/j.db")
        controller = Controller(journal, make_config(retention=0.01))
        await controller.start()
        job = controller.submit(JobSpec(argv=["true"], owner="me"))
        controller._index.remove(job.id)
        controller._finish(job, Outcome.PENDING, reason="test")
        controller.harvest([str(job.id)], owner="me")
        await controller.durable()
        commits = journal.commits
        await poll(lambda: job.id not in controller.jobs, "the job was forgotten")
        assert journal.dirty and journal.commits == commits
        await controller.durable()                # someone waits: written now
        assert journal.commits == commits + 1 and journal.row_count() == 0
        await controller.stop()
        journal.close()
    run(body())


def test_a_failing_journal_refuses_new_jobs(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            accepted = await h.submit("--", "true")
            h.controller.journal._db.close()       # every write fails from now on
            h.controller.submit(JobSpec(argv=["true"]))
            h.controller.journal.flush()
            with pytest.raises(CommandFailed, match="not accepting jobs: journal write failed"):
                await h.cmd("job", "--", "true")
            assert (await h.cmd("status"))["journal"]["failure"].startswith("journal write")
            assert (await h.cmd("check", "job", accepted))["state"] == "PENDING"
            h.controller.journal = None           # let the harness stop cleanly
    run(body())


def test_a_value_sqlite_cannot_hold_fails_the_write_cleanly(home: str) -> None:
    """A number past SQLite's 64 bits (commands refuse them: -id, sizes; this is the journal's
    own guard) fails that write like a disk error: rolled back and said, not left as an open
    transaction that made every later write fail ("cannot start a transaction within a
    transaction") and the submit that caused it wait for ever."""
    journal = Journal(f"{home}/j.db")
    journal.load()
    job = Job(id=2**64, argv=["true"], submitted=0.0)
    journal.job_changed(job)
    assert journal.write_batch() is False
    assert journal.failure is not None and "too large" in journal.failure
    assert not journal._db.in_transaction
    assert journal.write_batch() is False and "too large" in journal.failure   # not "within a transaction"
    assert not journal._db.in_transaction
    journal._dirty.clear()
    journal.close()


def test_schema_version_is_checked(home: str) -> None:
    journal = Journal(f"{home}/j.db")
    journal._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    journal.close()
    with pytest.raises(Exception, match="schema 99"):
        Journal(f"{home}/j.db")


def _varied_jobs(count: int):
    """Jobs with each field at its default or not, in many combinations."""
    import random

    from pcontrol.model import Job, Outcome

    choices = {
        "host": [None, "h"], "required": [False, True], "timeout": [None, 0.0, 3.5],
        "pending_timeout": [None, 0.0, 2.0], "priority": [0, -1, 3], "cwd": [None, "/x"],
        "env": [{}, {"A": "1"}], "owner": [None, "o"], "task": [None, "t"], "output_limit": [1024 * 1024, 0, 5],
        "spool": [False, True], "spooled": [False, True], "mail": [False, True], "inbox": [(), ("x",)],
        "outbox": [(), ("y",)], "state": list(JobState), "outcome": [None, *Outcome], "status": [None, 0, 2],
        "signal": [None, 9], "ran_on": [None, "h"], "pid": [None, 0, 5], "started": [None, 0.0, 1.0],
        "ended": [None, 2.0], "elapsed": [None, 0.0, 1.0], "reason": ["", "why"], "stdout": ["", "out"],
        "stdout_bytes": [0, 3], "stderr_bytes": [0, 4], "stdout_truncated": [False, True],
        "stderr_truncated": [False, True], "harvested": [None, 0.0, 5.0], "kill_requested": [False, True],
        "retry": [0, 2], "retries_left": [0, 1], "attempts": [(), ({"host": "h"},)], "avoid": [None, "h"],
        "queued": [None, 3.0], "unknown_since": [None, 0.0, 4.0], "delete_requested": [False, True],
        "batch_id": [None, "b1"], "noskew": [False, True], "not_before": [None, 0.0, 9.0],
    }
    rng = random.Random(13)
    for number in range(1, count + 1):
        job = Job(id=number, argv=("a", "b"), submitted=rng.random())
        for name, values in choices.items():
            setattr(job, name, rng.choice(values))
        if not job.mail:
            job.inbox = job.outbox = ()
        yield job


def test_a_row_leaves_out_the_defaults_and_reads_back_as_the_whole_record(tmp_path) -> None:
    """The journal writes Job.to_row (issue 13: a third of the bytes of to_record, three or
    four times a job); a restart reads it as it read the whole record, and rows written by an
    older pcontrol (whole records) still read."""
    import json

    from pcontrol.model import Job

    for job in _varied_jobs(3000):
        assert Job.from_record(json.loads(json.dumps(job.to_row()))) == \
            Job.from_record(json.loads(json.dumps(job.to_record())))
    fresh = Job(id=5, argv=("true",), submitted=1.5, owner="o", task="t")
    assert fresh.to_row() == {"id": 5, "argv": ["true"], "submitted": 1.5, "owner": "o", "task": "t"}
    journal = Journal(tmp_path / "j.db")
    jobs = list(_varied_jobs(300))
    for job in jobs:
        journal.job_changed(job)
    journal.flush()
    journal._db.execute("UPDATE jobs SET record = ? WHERE id = 1", (json.dumps(jobs[0].to_record()),))
    journal.close()
    loaded = Journal(tmp_path / "j.db").load().jobs
    assert [(j.id, j.state, j.outcome, j.env, j.attempts, j.stdout) for j in loaded] == \
        [(j.id, j.state, j.outcome, j.env, j.attempts, j.stdout) for j in jobs]
    assert loaded == [Job.from_record(dict(j.to_record(), stdout=j.stdout, stderr=j.stderr)) for j in jobs]


def test_job_ids_are_never_reused_when_a_later_life_deletes_the_highest(home: str) -> None:
    # The next id is written only beside a job row's deletion: a life that submits nothing and
    # deletes the job of the highest id still keeps that id from the next life.
    async def submit_two() -> int:
        async with controller_running(home) as h:
            await h.submit("-host", "ghost", "-required", "--", "true")
            return await h.submit("-host", "ghost", "-required", "--", "true")

    async def delete(job_id: int) -> None:
        async with controller_running(home) as h:
            await h.cmd("delete", job_id)

    async def submit_one() -> int:
        async with controller_running(home) as h:
            return await h.submit("-host", "ghost", "-required", "--", "true")

    highest = run(submit_two())
    run(delete(highest))
    assert run(submit_one()) == highest + 1
