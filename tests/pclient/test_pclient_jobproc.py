"""jobproc: every outcome, output capture, and no process left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import stat
import sys
from pathlib import Path

import pytest

from agent_harness import alive, async_test
from pclient import jobproc, spawn
from pclient.containment import SPAWN_LOCK, Kind
from pclient.jobproc import TOKEN_VAR, JobSpec, Outcome, StartFailure, find_token_processes, start_job
from waiting import wait_until

FORKER = str(Path(__file__).with_name("pclient_forker.py"))
PY = sys.executable
HAVE_PROC = os.path.exists("/proc/self/environ")
needs_proc = pytest.mark.skipif(not HAVE_PROC, reason="needs Linux /proc")


def process_parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat.rsplit(b")", 1)[1].split()[1])


async def run(argv, **kwargs):
    job = await start_job(JobSpec("t", argv, **kwargs))
    return job, await job.wait()


@async_test
async def test_exit_zero():
    job, result = await run(["true"])
    assert result.outcome is Outcome.EXIT and result.status == 0 and result.ok
    assert result.signal is None and result.reason is None
    assert result.pid == job.pid and job.pid is not None and job.done
    assert 0 <= result.elapsed < 10


@async_test
async def test_exit_status_and_both_streams():
    _, result = await run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.outcome, result.status, result.ok) == (Outcome.EXIT, 3, False)
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")
    assert (result.stdout_bytes, result.stderr_bytes) == (4, 4)
    assert not result.stdout_truncated and not result.stderr_truncated


@async_test
async def test_missing_program_is_127():
    started = []
    job = await start_job(JobSpec("t", ["no-such-program-pclient"]), on_started=started.append)
    result = await job.wait()
    assert (result.outcome, result.status) == (Outcome.EXIT, StartFailure.NOT_FOUND) == (Outcome.EXIT, 127)
    assert "no such program" in result.reason and b"no such program" in result.stderr
    assert result.pid is None and job.pid is None and started == []


@async_test
async def test_a_relative_program_not_found_says_where_it_was_looked_for(tmp_path):
    """`./x.sh` is looked for in the job's working directory: which one is said (a controller job
    runs where its agent does, not where the script was: the first thing a newcomer meets)."""
    result = await (await start_job(JobSpec("t", ["./no-such-script.sh"]))).wait()
    assert result.reason == f"cannot start './no-such-script.sh': no such program in {os.getcwd()}"
    result = await (await start_job(JobSpec("t", ["./no-such-script.sh"], cwd=str(tmp_path)))).wait()
    assert result.reason == f"cannot start './no-such-script.sh': no such program in {tmp_path}"
    result = await (await start_job(JobSpec("t", ["no-such-program-pclient"]))).wait()
    assert result.reason == "cannot start 'no-such-program-pclient': no such program"


@async_test
async def test_not_executable_is_126(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    _, result = await run([str(script)])
    if os.geteuid() == 0 and os.access(script, os.X_OK):  # pragma: no cover - root may exec anything
        pytest.skip("root can execute the file")
    assert (result.outcome, result.status) == (Outcome.EXIT, 126)
    assert "not executable" in result.reason and result.stderr.decode().startswith("cannot start")


@async_test
async def test_bad_cwd_is_127_with_reason(tmp_path):
    missing = str(tmp_path / "nowhere")
    _, result = await run(["true"], cwd=missing)
    assert (result.outcome, result.status) == (Outcome.EXIT, 127)
    assert "bad working directory" in result.reason and missing in result.reason
    assert missing.encode() in result.stderr


@async_test
async def test_crash_by_signal():
    _, result = await run(["sh", "-c", "kill -USR1 $$"])
    assert result.outcome is Outcome.CRASH
    assert result.signal == signal.SIGUSR1 and result.status is None
    assert "SIGUSR1" in result.reason


@async_test
async def test_env_and_cwd(tmp_path):
    job, result = await run(["sh", "-c", f'echo "$FOO"; pwd; echo "${TOKEN_VAR}"; echo "$PATH"'],
                            env={"FOO": "bar baz"}, cwd=str(tmp_path))
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "bar baz"
    assert os.path.samefile(lines[1], tmp_path)
    assert lines[2] == job.token and re.fullmatch(r"[0-9a-f]{32}", job.token)
    assert lines[3] == os.environ["PATH"]  # the agent's environment is inherited


@async_test
async def test_stdin_is_empty():
    _, result = await run(["cat"])
    assert result.ok and result.stdout == b""


@async_test
async def test_big_output_on_both_streams_is_truncated_without_deadlock():
    # Interleaved writes: a runner reading one stream at a time would deadlock.
    code = "import os\nb = b'x' * 65536\nfor _ in range(160):\n    os.write(1, b)\n    os.write(2, b)\n"
    _, result = await run([PY, "-c", code])
    assert result.ok
    assert (result.stdout_bytes, result.stderr_bytes) == (10 * 2**20, 10 * 2**20)
    assert len(result.stdout) == len(result.stderr) == jobproc.DEFAULT_OUTPUT_LIMIT
    assert result.stdout_truncated and result.stderr_truncated


@async_test
async def test_output_limit_is_per_job():
    _, result = await run(["sh", "-c", "printf 0123456789; printf abc >&2"], output_limit=4)
    assert (result.stdout, result.stdout_bytes, result.stdout_truncated) == (b"0123", 10, True)
    assert (result.stderr, result.stderr_bytes, result.stderr_truncated) == (b"abc", 3, False)


@async_test
async def test_on_started_sees_the_running_job():
    seen = []
    job = await start_job(JobSpec("t", ["true"]), on_started=lambda j: seen.append((j.pid, j.done)))
    await job.wait()
    assert seen == [(job.pid, False)]


@needs_proc
@async_test
async def test_timeout_kills_group_child_and_daemonized_grandchild():
    job = await start_job(JobSpec("t", [PY, FORKER], timeout=1.5, kill_grace=0.2))
    result = await job.wait()
    assert result.outcome is Outcome.TIMEOUT and result.status is None
    assert "timed out after 1.5 s" in result.reason
    match = re.search(rb"child=(\d+) daemon=(\d+)", result.stdout)
    assert match, f"the helper did not get going before the timeout: {result!r}"
    child, daemon = int(match[1]), int(match[2])
    assert result.signal == signal.SIGKILL  # it ignores SIGTERM
    assert find_token_processes(job.token) == []
    assert not alive(child) and not alive(daemon)
    assert 1.5 <= result.elapsed < 10


@async_test
async def test_kill_sends_sigterm():
    job = await start_job(JobSpec("t", ["sleep", "30"], kill_grace=5))
    job.kill()
    result = await job.wait()
    assert (result.outcome, result.signal, result.status) == (Outcome.KILLED, signal.SIGTERM, None)
    assert result.reason == "killed on request"
    assert result.elapsed < 5  # did not need the grace


async def read_fifo_line(path: Path, timeout: float = 10) -> bytes:
    """The first line written to the FIFO at path, waiting at most `timeout`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    try:
        return await asyncio.wait_for(reader.readline(), timeout)
    finally:
        transport.close()


@needs_proc
@async_test
async def test_kill_escalates_to_sigkill_after_the_grace(tmp_path):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    job = await start_job(JobSpec("t", [PY, FORKER, str(fifo)], kill_grace=0.2))
    ready = await read_fifo_line(fifo)
    child, daemon = map(int, re.fullmatch(rb"child=(\d+) daemon=(\d+)\n", ready).groups())
    job.kill()
    job.kill()  # idempotent
    result = await job.wait()
    assert (result.outcome, result.signal) == (Outcome.KILLED, signal.SIGKILL)
    assert 0.2 <= result.elapsed < 10
    assert find_token_processes(job.token) == []
    assert not alive(child) and not alive(daemon)


@async_test
async def test_kill_after_exit_changes_nothing():
    job, result = await run(["true"])
    job.kill()
    assert (await job.wait()) == result and result.outcome is Outcome.EXIT


@async_test
async def test_kill_reason_must_be_a_kill_outcome():
    job = await start_job(JobSpec("t", ["true"]))
    with pytest.raises(ValueError, match="KILLED or TIMEOUT"):
        job.kill(Outcome.CRASH)
    assert (await job.wait()).ok


@async_test
async def test_cancelling_a_wait_does_not_stop_the_job():
    job = await start_job(JobSpec("t", ["sh", "-c", "sleep 0.2; echo done"]))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(job.wait(), 0.01)
    result = await job.wait()
    assert result.ok and result.stdout == b"done\n"


@needs_proc
@async_test
async def test_leftovers_in_the_group_die_when_the_job_exits():
    _, result = await run(["sh", "-c", "sleep 30 & echo $!"])
    assert result.ok
    assert not alive(int(result.stdout))


@needs_proc
@async_test
async def test_escaped_process_holding_the_output_does_not_hang_the_job(monkeypatch):
    monkeypatch.setattr(jobproc, "PIPE_DRAIN_TIMEOUT", 0.1)
    _, result = await run([PY, "-c", "import os, subprocess, sys\n"
                           "p = subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
                           "print(p.pid, flush=True)\n"])
    pid = int(result.stdout)
    try:
        assert result.ok
    finally:
        with contextlib.suppress(ProcessLookupError):  # a cgroup or a keeper has killed it already
            os.kill(pid, signal.SIGKILL)


@needs_proc
@async_test
async def test_find_token_processes_sees_the_job():
    job = await start_job(JobSpec("t", ["sleep", "30"]))
    try:
        # posix_spawn returns once the child's new memory is in place (the vfork parent is woken
        # there), a moment before exec has laid out its environment: /proc/PID/environ is empty
        # until then (seen once in ~20 runs)
        await wait_until(lambda: find_token_processes(job.token), "the job's environment is readable")
        if job.containment is Kind.SUBREAPER:  # the program is the keeper's child (job.pid is the keeper's)
            found = await wait_until(lambda: [pid for pid in find_token_processes(job.token)
                                              if pid != job.pid and process_parent(pid) == job.pid],
                                     "the keeper's program's environment is readable")
            assert all(pid == job.pid or process_parent(pid) == job.pid for pid in find_token_processes(job.token))
            assert len(found) == 1
        else:
            assert find_token_processes(job.token) == [job.pid]
        assert find_token_processes("0" * 32) == []
    finally:
        job.kill()
    await job.wait()


@async_test
async def test_many_short_jobs_at_once():
    jobs = [await start_job(JobSpec(str(i), ["sh", "-c", f"echo {i}"])) for i in range(40)]
    results = await asyncio.gather(*(job.wait() for job in jobs))
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(40)]
    assert [r.job_id for r in results] == [str(i) for i in range(40)]


@pytest.mark.parametrize("kwargs, words", [
    ({"timeout": -1}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"output_limit": -5}, "output_limit"),
    ({"kill_grace": float("nan")}, "kill_grace"),
])
def test_bad_spec_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        JobSpec("t", ["true"], **kwargs)


@async_test
async def test_empty_argv_is_a_start_failure():
    _, result = await run([])
    assert (result.outcome, result.status) == (Outcome.EXIT, 127)
    assert "empty command line" in result.reason


@async_test
async def test_without_pidfd_a_thread_waits_for_the_exit(monkeypatch):
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    _, result = await run(["sh", "-c", "echo hi; exit 4"])
    assert (result.outcome, result.status, result.stdout) == (Outcome.EXIT, 4, b"hi\n")
    job = await start_job(JobSpec("t", ["sleep", "30"], timeout=0.05))
    assert (await job.wait()).outcome is Outcome.TIMEOUT


@pytest.fixture(params=["libc", "os"])
def spawn_call(request, monkeypatch):
    """Each of pclient.spawn's posix_spawnp calls: through libc (pclient.libcspawn) and os's."""
    monkeypatch.setattr(spawn, "_SPAWNER", [])
    monkeypatch.setattr(spawn, "_STARTS", [spawn.LIBC_AFTER])  # (past the first starts, made with os's)
    if request.param == "os":
        monkeypatch.setenv(spawn.LIBC_VAR, "no")
    else:
        monkeypatch.delenv(spawn.LIBC_VAR, raising=False)
    yield request.param
    spawn._SPAWNER.clear()


@async_test
async def test_a_job_gets_no_descriptor_of_ours_and_the_path_of_its_own_environment(tmp_path, spawn_call):
    """What Popen(close_fds=True, env=...) gives, whichever call starts the job (pclient.spawn)."""
    r, w = os.pipe()
    os.set_inheritable(w, True)  # as a descriptor inherited from whoever started us would be
    try:
        _, result = await run(["sh", "-c", f"echo leak >&{w} && echo open"])
        assert result.stdout == b"" and result.status != 0, "the job could write to our descriptor"
        _, result = await run(["sh", "-c", "ls /proc/$$/fd"])
        assert result.stdout.split() == [b"0", b"1", b"2"]
    finally:
        os.close(r)
        os.close(w)
    mine = tmp_path / "only-here-pclient"
    mine.write_text("#!/bin/sh\necho found\n")
    mine.chmod(0o755)
    _, result = await run(["only-here-pclient"], env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert (result.status, result.stdout) == (0, b"found\n")
    _, result = await run(["only-here-pclient"])
    assert result.status == StartFailure.NOT_FOUND


@async_test
async def test_begin_job_tells_its_end_through_when_done():
    """begin_job (sched's local jobs: no task a job) starts at once; when_done hears the end,
    also of a job that could not start."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future = loop.create_future()
    started = []
    job = jobproc.begin_job(JobSpec("b1", ["sh", "-c", "echo hi; exit 3"]), on_started=started.append)
    assert started == [job] and job.pid is not None
    job.when_done(ended.set_result)
    result = await ended
    assert (result.outcome, result.status, result.stdout) == (Outcome.EXIT, 3, b"hi\n")
    missing: asyncio.Future = loop.create_future()
    jobproc.begin_job(JobSpec("b2", ["no-such-program-pclient"])).when_done(missing.set_result)
    result = await missing
    assert (result.outcome, result.status, result.pid) == (Outcome.EXIT, StartFailure.NOT_FOUND, None)


@async_test
async def test_a_threaded_start_tells_its_start_before_its_end_and_its_failure_as_an_end():
    """begin_job(threaded=True) (the agent's jobs): the process is made in the spawner thread;
    on_started, then the end, come on the loop, in that order, also for many jobs at once; a
    program that does not exist is an end with no start."""
    loop = asyncio.get_running_loop()
    heard: list = []
    ends = []
    for n in range(40):
        ended: asyncio.Future = loop.create_future()
        job = jobproc.begin_job(JobSpec(f"t{n}", ["true"]), threaded=True,
                                on_started=lambda j: heard.append(("started", j.job_id, j.pid)))
        job.when_done(lambda r, ended=ended: (heard.append(("ended", r.job_id, r.pid)), ended.set_result(r)))
        ends.append(ended)
    results = await asyncio.gather(*ends)
    assert all(r.ok for r in results)
    for n, result in enumerate(results):
        mine = [event for event in heard if event[1] == f"t{n}"]
        assert mine == [("started", f"t{n}", result.pid), ("ended", f"t{n}", result.pid)]
    started = []
    job = jobproc.begin_job(JobSpec("gone", ["no-such-program-pclient"]), threaded=True, on_started=started.append)
    result = await job.wait()
    assert (result.outcome, result.status, result.pid, started) == (Outcome.EXIT, StartFailure.NOT_FOUND, None, [])
    assert b"no such program" in result.stderr


@async_test
async def test_a_kill_asked_before_the_spawner_thread_made_the_process_kills_it():
    """A kill that comes while the job waits for the spawner thread (no pid yet) is not lost:
    the job is killed as soon as it has one (the agent's Kill right after its Run)."""
    with SPAWN_LOCK:  # (every start takes it: the spawner thread waits until the kills are asked)
        jobs = [jobproc.begin_job(JobSpec(f"k{n}", ["sleep", "30"], kill_grace=5), threaded=True) for n in range(8)]
        assert all(job.pid is None for job in jobs)
        for job in jobs:
            job.kill()
    results = await asyncio.wait_for(asyncio.gather(*(job.wait() for job in jobs)), 20)
    assert [(r.outcome, r.signal) for r in results] == [(Outcome.KILLED, signal.SIGTERM)] * 8
    assert all(r.pid is not None and not alive(r.pid) for r in results)
