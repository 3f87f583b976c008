"""The keeper server (pclient.keeper): one per process, forking each job's keeper.

The guarantees of the keeper itself (setsid, double forks and cleared environments held; the
kill and the timeout reaching everything) are tried for served keepers and lone ones alike in
test_pclient_containment; here: what the server adds (one server for many jobs, a server that
dies, statuses told through the status pipe, nothing left behind).
"""

from __future__ import annotations

import asyncio
import marshal
import os
import select
import signal
import socket
import sys
from pathlib import Path

import pytest

from agent_harness import alive, async_test
from pclient.containment import Kind, containment, find_token_processes
from pclient.jobproc import JobSpec, Outcome, start_job
from pclient.keeper import SERVER_VAR, keeper_server, parse_status
from waiting import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"),
                                reason="Linux keepers with pidfds")


@pytest.fixture
def served(monkeypatch):
    monkeypatch.setenv("PCLIENT_CONTAINMENT", Kind.SUBREAPER.value)
    monkeypatch.delenv(SERVER_VAR, raising=False)
    containment().reset()
    server = keeper_server()
    if not server.usable():
        pytest.skip("no keeper server here")
    yield server
    monkeypatch.undo()
    containment().reset()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])


async def released_by_fifo(fifo: Path) -> None:
    """Open `fifo` for writing (once the job reads it) and say go."""
    fd = await asyncio.to_thread(os.open, fifo, os.O_WRONLY)
    try:
        os.write(fd, b"go\n")
    finally:
        os.close(fd)


def test_the_status_record_is_read_as_written():
    assert [parse_status(r) for r in (b"X0\n", b"X255\n", b"K9\n", b"E2\n", b"S1\n", b"", b"Xa\n", b"Q1\n")] == \
        [("X", 0), ("X", 255), ("K", 9), ("E", 2), ("S", 1), None, None, None]


@async_test
async def test_one_server_forks_the_keepers_of_many_jobs(served):
    starts = served.starts
    jobs = [await start_job(JobSpec(str(i), ["sh", "-c", "echo $PPID; exit 3"])) for i in range(20)]
    results = [await job.wait() for job in jobs]
    assert served.starts == starts + 1
    for job, result in zip(jobs, results):
        assert job.containment is Kind.SUBREAPER
        assert (result.outcome, result.status, result.pid) == (Outcome.EXIT, 3, job.pid)
        assert int(result.stdout) == job.pid  # the program is its keeper's child
    running = await start_job(JobSpec("s", ["sleep", "1000"]))
    try:
        assert parent_of(running.pid) == served.pid  # ... and the keeper the server's
        assert running._box.served
    finally:
        running.kill()
    assert (await running.wait()).outcome is Outcome.KILLED
    assert served.starts == starts + 1


@async_test
async def test_exit_statuses_and_deaths_by_signal_are_told_right(served):
    cases = [
        (["true"], (Outcome.EXIT, 0, None)),
        (["sh", "-c", "exit 255"], (Outcome.EXIT, 255, None)),
        (["sh", "-c", "kill -SEGV $$"], (Outcome.CRASH, None, signal.SIGSEGV)),
        (["sh", "-c", "kill -KILL $$"], (Outcome.CRASH, None, signal.SIGKILL)),
        (["sh", "-c", "kill -TERM $$"], (Outcome.CRASH, None, signal.SIGTERM)),
    ]
    for argv, expected in cases:
        result = await (await start_job(JobSpec("t", argv))).wait()
        assert (result.outcome, result.status, result.signal) == expected, argv
    job = await start_job(JobSpec("t", ["sh", "-c", "trap '' TERM; sleep 1000 & wait"], kill_grace=0.2))
    job.kill()
    result = await job.wait()
    assert (result.outcome, result.signal) == (Outcome.KILLED, signal.SIGKILL)


@async_test
async def test_a_program_the_keeper_cannot_start_is_reported_as_before(served, tmp_path):
    script = tmp_path / "no-interpreter"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)  # passes jobproc's look before the start: only the keeper's exec fails
    started = []
    result = await (await start_job(JobSpec("t", [str(script)]), on_started=started.append)).wait()
    assert (result.outcome, result.status, result.pid) == (Outcome.EXIT, 127, None)
    assert b"no such program" in result.stderr
    assert len(started) == 1  # (the keeper had started: its pid was announced)
    bad_cwd = await (await start_job(JobSpec("t", ["true"], cwd=str(tmp_path / "gone")))).wait()
    assert (bad_cwd.outcome, bad_cwd.status) == (Outcome.EXIT, 127)
    assert "bad working directory" in bad_cwd.reason


@async_test
async def test_the_program_is_found_along_the_path_of_its_own_environment(served, tmp_path):
    program = tmp_path / "pclient-only-here"
    program.write_text("#!/bin/sh\necho found $PWD\n")
    program.chmod(0o755)
    result = await (await start_job(JobSpec("t", ["pclient-only-here"], cwd="/",
                                            env={"PATH": f"{tmp_path}:/usr/bin:/bin"}))).wait()
    assert (result.outcome, result.status, result.stdout) == (Outcome.EXIT, 0, b"found /\n")
    again = await (await start_job(JobSpec("t", ["sh", "-c", "pwd"]))).wait()
    assert again.stdout.decode().strip() == os.getcwd()  # (the server's last chdir is not ours)


@async_test
async def test_a_server_killed_between_jobs_is_started_again_and_running_jobs_go_on(served, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    running = await start_job(JobSpec("r", ["sh", "-c", 'read x < "$FIFO"; echo got $x; exit 5'],
                                      env={"FIFO": str(fifo)}))
    first = served.pid
    os.kill(first, signal.SIGKILL)
    await wait_until(lambda: not alive(first), "the server is dead")
    after = await (await start_job(JobSpec("a", ["sh", "-c", "exit 4"]))).wait()
    assert (after.outcome, after.status) == (Outcome.EXIT, 4)
    assert served.pid != first
    assert alive(running.pid)  # its keeper carries on without the server that forked it
    await released_by_fifo(fifo)
    result = await running.wait()
    assert (result.outcome, result.status, result.stdout) == (Outcome.EXIT, 5, b"got go\n")
    timed = await start_job(JobSpec("t", ["sleep", "1000"], timeout=0.2))
    os.kill(served.pid, signal.SIGKILL)  # a kill still reaches a keeper whose server is gone
    assert (await timed.wait()).outcome is Outcome.TIMEOUT


@async_test
async def test_a_keeper_killed_with_sigkill_is_reported_so(served):
    job = await start_job(JobSpec("t", ["sleep", "1000"]))
    await wait_until(lambda: find_token_processes(job.token), "the program runs")
    (program,) = find_token_processes(job.token)
    os.kill(job.pid, signal.SIGKILL)  # (by hand, or the OOM killer): it tells nothing
    result = await job.wait()
    assert (result.outcome, result.signal) == (Outcome.CRASH, signal.SIGKILL)
    os.kill(program, signal.SIGKILL)  # orphaned to init, as with a keeper started alone


@async_test
async def test_nothing_is_left_running(served, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    jobs = [await start_job(JobSpec("d", ["sh", "-c", f"env -i setsid sh -c 'sleep 1000 & echo $! > {pidfile}'"])),
            await start_job(JobSpec("t", ["sleep", "1000"], timeout=0.2)),
            await start_job(JobSpec("e", ["true"]))]
    results = [await job.wait() for job in jobs]
    assert [r.outcome for r in results] == [Outcome.EXIT, Outcome.TIMEOUT, Outcome.EXIT]
    daemon = int(pidfile.read_text())
    assert not alive(daemon)
    assert not any(alive(job.pid) for job in jobs)
    assert all(find_token_processes(job.token) == [] for job in jobs)
    server = served.pid
    containment().reset()  # lets the server go: it exits at the end of its socket
    assert served.pid is None
    assert not alive(server)


def test_a_keeper_whose_requester_never_had_its_pid_starts_nothing(served, tmp_path):
    """The go pipe: a reply lost with its server (or never read) leaves a keeper that exits
    without starting the job, so a request made again to a new server runs the job once."""
    marker = tmp_path / "ran"
    argv, env = ["touch", str(marker)], {k.encode(): v.encode() for k, v in os.environ.items()}
    payload = marshal.dumps((tuple(argv), env, os.getcwd(), None))  # (argv, env, cwd, file)
    out_r, out_w = os.pipe()
    status_r, status_w = os.pipe()
    go_r, go_w = os.pipe()
    sock = served._connected(socket)
    reply, pidfd = served._ask(socket, sock, len(payload).to_bytes(4, "little") + payload,
                               (out_w, out_w, status_w, go_r))
    for fd in (out_w, status_w, go_r):
        os.close(fd)
    try:
        assert pidfd is not None and int.from_bytes(reply[:4], sys.byteorder) > 0
        os.close(go_w)  # as when the reply never came: no go
        poll = select.poll()
        poll.register(pidfd, select.POLLIN)
        assert poll.poll(10_000), "the keeper has ended"
        assert os.read(status_r, 64) == b""  # it told nothing: it started nothing
        assert os.read(out_r, 64) == b""
        assert not marker.exists()
    finally:
        for fd in (pidfd, status_r, out_r):
            if fd is not None:
                os.close(fd)


@async_test
async def test_without_pidfds_each_keeper_starts_alone(served, monkeypatch):
    """An old kernel (no pidfd_open): no server; each job's keeper is our own child, as before."""
    monkeypatch.delattr(os, "pidfd_open")
    containment().reset()
    starts = served.starts
    job = await start_job(JobSpec("t", ["sleep", "1000"], timeout=0.2))
    assert not job._box.served and parent_of(job.pid) == os.getpid()
    assert (await job.wait()).outcome is Outcome.TIMEOUT
    result = await (await start_job(JobSpec("t", ["sh", "-c", "exit 6"]))).wait()
    assert (result.outcome, result.status) == (Outcome.EXIT, 6)
    assert served.starts == starts and served.pid is None
