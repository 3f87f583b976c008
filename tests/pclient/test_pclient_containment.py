"""No process escapes a job: setsid, a double fork and a cleared environment included.

Each test runs once per containment kind this machine gives (a cgroup v2 directory per job,
a subreaper keeper per job); the kind is forced with PCLIENT_CONTAINMENT as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from agent_harness import alive, async_test
from pclient.containment import Kind, containment, own_cgroup
from pclient.keeper import SERVER_VAR
from pclient.jobproc import JobSpec, Outcome, start_job
from waiting import wait_until, wait_until_sync

PY = sys.executable
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux containment")

ESCAPE = "env -i setsid sh -c 'sleep 1000 & echo $! > {pidfile}'"
"""A new session, an empty environment, and the shell that started sleep gone at once."""
DOUBLE_FORK = ("import os, sys\n"
               "if os.fork() == 0:\n"
               "    os.setsid()\n"
               "    if os.fork() == 0:\n"
               "        os.execve('/bin/sleep', ['sleep', '1000'], {})\n"
               "    os._exit(0)\n"
               "os.wait()\n")


CHILD_JOINS = "cgroup-child-joins"
"""The cgroup kind with the job's first process joining its cgroup itself (PCLIENT_CGROUP_JOIN=child)."""
KEEPER_ALONE = "subreaper-alone"
"""The subreaper kind with a keeper started alone per job, no keeper server (PCLIENT_KEEPER_SERVER=no)."""


def kinds() -> list[str]:
    found = [Kind.SUBREAPER.value, KEEPER_ALONE]
    before = os.environ.get("PCLIENT_CONTAINMENT")
    os.environ["PCLIENT_CONTAINMENT"] = "cgroup"
    containment().reset()
    try:
        if containment().kind is Kind.CGROUP:
            found[:0] = [Kind.CGROUP.value, CHILD_JOINS]
    finally:
        if before is None:  # (as it was: a run of the suite may force a kind for every test)
            del os.environ["PCLIENT_CONTAINMENT"]
        else:
            os.environ["PCLIENT_CONTAINMENT"] = before
        containment().reset()
    return found


@pytest.fixture(params=kinds())
def kind(request, monkeypatch):
    if request.param == CHILD_JOINS:
        monkeypatch.setenv("PCLIENT_CGROUP_JOIN", "child")
    if request.param == KEEPER_ALONE:
        monkeypatch.setenv(SERVER_VAR, "no")
    monkeypatch.setenv("PCLIENT_CONTAINMENT", {CHILD_JOINS: Kind.CGROUP.value, KEEPER_ALONE: Kind.SUBREAPER.value}
                       .get(request.param, request.param))
    containment().reset()
    yield {CHILD_JOINS: Kind.CGROUP, KEEPER_ALONE: Kind.SUBREAPER}.get(request.param) or Kind(request.param)
    monkeypatch.undo()
    containment().reset()


async def pids_of(*files: Path) -> list[int]:
    await wait_until(lambda: all(f.exists() and f.read_text().strip() for f in files), "the job wrote its pids")
    return [int(f.read_text()) for f in files]


@async_test
async def test_timeout_kills_what_escaped_with_setsid_and_a_cleared_environment(kind, tmp_path):
    pidfile = tmp_path / "escaped.pid"
    job = await start_job(JobSpec("t", ["sh", "-c", ESCAPE.format(pidfile=pidfile) + "; sleep 1000"], timeout=1))
    assert job.containment is kind
    (escaped,) = await pids_of(pidfile)
    assert alive(escaped)
    result = await job.wait()
    assert result.outcome is Outcome.TIMEOUT
    assert not alive(escaped)


@async_test
async def test_kill_kills_a_double_forked_daemon_with_an_empty_environment(kind, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    code = DOUBLE_FORK.replace("os.execve('/bin/sleep', ['sleep', '1000'], {})",
                               f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                               "os.execve('/bin/sleep', ['sleep', '1000'], {})")
    job = await start_job(JobSpec("t", ["sh", "-c", f"{PY} -c \"$CODE\"; sleep 1000"], env={"CODE": code}))
    (daemon,) = await pids_of(pidfile)
    await wait_until(lambda: Path(f"/proc/{daemon}/environ").read_bytes() == b"", "the daemon exec'd with no environment")
    assert alive(daemon)
    job.kill()
    result = await job.wait()
    assert result.outcome is Outcome.KILLED
    assert not alive(daemon)


@async_test
async def test_what_a_job_leaves_behind_dies_when_it_exits(kind, tmp_path):
    pidfile = tmp_path / "escaped.pid"
    result = await (await start_job(JobSpec("t", ["sh", "-c", ESCAPE.format(pidfile=pidfile) + "; sleep 0.3"]))).wait()
    assert result.ok
    (escaped,) = await pids_of(pidfile)
    assert not alive(escaped)


@async_test
async def test_a_job_that_is_gone_at_once_leaves_nothing(kind, tmp_path):
    """`setsid -f` forks and its first process exits at once: the job's main is gone before the
    shell it started has even run; that shell and its sleep must not outlive the job."""
    marker = tmp_path / "ran"
    result = await (await start_job(JobSpec(
        "t", ["env", "-i", "setsid", "-f", "sh", "-c", f"sleep 0.5; touch {marker}; sleep 1000"]))).wait()
    assert result.ok
    await asyncio.sleep(1.0)  # the shell would have touched the marker by now, had it lived
    assert not marker.exists()


def block_in_a_call(seconds: float) -> None:
    time.sleep(seconds)  # as an `exec sleep 3` in a macro would


def block_computing(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # as a loop at the prompt would: pure Python, holding the GIL
        sum(range(1000))


@pytest.mark.parametrize("block", [block_in_a_call, block_computing], ids=["exec", "computing"])
@async_test
async def test_the_timeout_fires_on_time_while_the_loop_is_blocked(kind, tmp_path, block):
    """The loop is stuck for 3 s (as under a long macro): the job is still killed at
    ~1 s (seen from another thread), and its reported run time is ~1 s."""
    pidfile = tmp_path / "escaped.pid"
    job = await start_job(JobSpec("t", ["sh", "-c", ESCAPE.format(pidfile=pidfile) + "; sleep 1000"], timeout=1.0))
    (escaped,) = await pids_of(pidfile)
    gone_at: list[float] = []

    def look() -> None:
        wait_until_sync(lambda: not alive(escaped) and not alive(job.pid), "the job was killed", timeout=10)
        gone_at.append(time.monotonic())

    watcher = threading.Thread(target=look)
    watcher.start()
    t0 = job._t0
    block(3.0)
    watcher.join()
    result = await job.wait()
    assert result.outcome is Outcome.TIMEOUT
    assert gone_at[0] - t0 < 1.8, f"killed {gone_at[0] - t0:.2f} s after the start"
    assert 0.9 <= result.elapsed < 1.8, result.elapsed


@async_test
async def test_no_cgroup_is_left_behind(tmp_path):
    os.environ["PCLIENT_CONTAINMENT"] = "cgroup"
    containment().reset()
    try:
        if containment().kind is not Kind.CGROUP:
            pytest.skip("no cgroup v2 directory can be made here")
        job = await start_job(JobSpec("t", ["sh", "-c", "sleep 1000 & sleep 1000"], timeout=0.3))
        box = job._box
        assert Path(box.path).is_dir()
        await job.wait()
        # emptied, and kept for the next job (containment.SpareCgroups) ...
        assert "populated 0" in (Path(box.path) / "cgroup.events").read_text()
        again = await start_job(JobSpec("u", ["true"]))
        assert again._box.path == box.path
        await again.wait()
        # ... until the process lets its spares go (at exit, or here)
        containment().reset()
        assert not Path(box.path).exists()
    finally:
        del os.environ["PCLIENT_CONTAINMENT"]
        containment().reset()


@async_test
async def test_the_keeper_reports_a_program_it_cannot_start(monkeypatch):
    monkeypatch.setenv("PCLIENT_CONTAINMENT", "subreaper")
    containment().reset()
    try:
        started = []
        job = await start_job(JobSpec("t", ["no-such-program-pclient"]), on_started=started.append)
        result = await job.wait()
        assert (result.outcome, result.status, result.pid, started) == (Outcome.EXIT, 127, None, [])
        assert b"no such program" in result.stderr
        _, crashed = None, await (await start_job(JobSpec("t", ["sh", "-c", "kill -SEGV $$"]))).wait()
        assert (crashed.outcome, crashed.signal) == (Outcome.CRASH, 11)
        exited = await (await start_job(JobSpec("t", ["sh", "-c", "echo hi; exit 7"]))).wait()
        assert (exited.outcome, exited.status, exited.stdout) == (Outcome.EXIT, 7, b"hi\n")
    finally:
        monkeypatch.delenv("PCLIENT_CONTAINMENT")
        containment().reset()


@async_test
async def test_the_job_is_born_in_its_cgroup_and_we_stay_in_ours(kind):
    """The cgroup kind moves this process into the job's cgroup to start it, and back out."""
    if kind is not Kind.CGROUP:
        pytest.skip("cgroups only")
    ours = own_cgroup()
    job = await start_job(JobSpec("t", ["sleep", "1000"]))
    try:
        assert own_cgroup() == ours
        joins_itself = os.environ.get("PCLIENT_CGROUP_JOIN") == "child"
        assert (job._box.preexec is not None) is joins_itself  # otherwise: vfork, no preexec_fn
        assert job._box.pids() == [job.pid]
        assert os.getpid() not in job._box.pids()
        missing = await (await start_job(JobSpec("t", ["no-such-program-pclient"]))).wait()
        assert (missing.outcome, missing.status) == (Outcome.EXIT, 127)
        assert own_cgroup() == ours
    finally:
        job.kill()
        await job.wait()
    assert own_cgroup() == ours
