"""Run one job as a local process, on asyncio, and report how it ended.

Used by the pclient agent for the jobs a controller sends, and by the sched
shell for its local jobs; it knows nothing of the wire protocol.

    spec = JobSpec("j1", ["make", "-j4"], timeout=60)
    job = await start_job(spec)          # spawned; job.pid, job.started_at
    result = await job.wait()            # JobResult: outcome, status, output...
    job.kill()                           # SIGTERM the job, SIGKILL after the grace

Each job runs in its own session (hence its own process group), without a
shell, with stdin from /dev/null and stdout/stderr captured concurrently; the
first `output_limit` bytes of each stream are kept and the full size counted.
Every job's environment carries a unique token (PCLIENT_JOB_TOKEN), so on
kill or timeout the job's processes are found and killed even when they
left the group (double fork + setsid): the group is signalled with killpg
and /proc is swept for processes whose environment carries the token.
When a job's main process exits by itself, whatever is left in its process
group is killed too: a job leaves nothing behind in its group.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import math
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

from .protocol import DEFAULT_OUTPUT_LIMIT, Outcome

__all__ = [
    "DEFAULT_KILL_GRACE",
    "TOKEN_VAR",
    "JobResult",
    "JobSpec",
    "RunningJob",
    "StartFailure",
    "find_token_processes",
    "start_job",
]

log = logging.getLogger(__name__)

TOKEN_VAR = "PCLIENT_JOB_TOKEN"
"""Environment variable that marks every process of a job."""
DEFAULT_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
PIPE_DRAIN_TIMEOUT = 0.5
"""After the main process exits, how long to wait for its output pipes to
close before giving up on them (a process that escaped the group holds them)."""
SWEEP_DEADLINE = 2.0
"""After SIGKILL, how long to keep sweeping until no process of the job is left."""
SWEEP_INTERVAL = 0.01

_PROC = "/proc"
_TOKEN_VAR_B = TOKEN_VAR.encode()
_READ_CHUNK = 65536
_LOST_STATUS = 255
"""Reported when a job's exit status was taken by someone else's waitpid (e.g. a
SIGCHLD handler reaping every child)."""


class StartFailure(enum.IntEnum):
    """Exit status reported for a program that could not be started (as a shell does)."""

    NOT_EXECUTABLE = 126
    NOT_FOUND = 127
    """Also used for a bad working directory and other start failures."""


@dataclass(frozen=True)
class JobSpec:
    """What to run.  `env` holds variables added to the current environment."""

    job_id: str
    argv: Sequence[str]
    cwd: Union[str, None] = None
    env: Union[Mapping[str, str], None] = None
    timeout: Union[float, None] = None
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    kill_grace: float = DEFAULT_KILL_GRACE

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        if self.timeout is not None and not (self.timeout >= 0 and math.isfinite(self.timeout)):
            raise ValueError(f"job {self.job_id}: timeout must be a finite number >= 0, got {self.timeout!r}")
        if self.output_limit < 0:
            raise ValueError(f"job {self.job_id}: output_limit must be >= 0, got {self.output_limit!r}")
        if not (self.kill_grace >= 0 and math.isfinite(self.kill_grace)):
            raise ValueError(f"job {self.job_id}: kill_grace must be a finite number >= 0, got {self.kill_grace!r}")


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    `status` is the exit status, set only for Outcome.EXIT; `signal` is the
    signal that ended the main process (for CRASH, and informationally for
    TIMEOUT / KILLED); `stdout` / `stderr` are cut to the spec's output_limit
    and `*_bytes` are the full sizes produced.  `reason` explains anything
    but a plain exit.  `pid` is None if the program could not be started.
    """

    job_id: str
    outcome: Outcome
    status: Union[int, None]
    signal: Union[int, None]
    elapsed: float
    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)
    stdout_bytes: int
    stderr_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    reason: Union[str, None]
    pid: Union[int, None]

    @property
    def ok(self) -> bool:
        """True for a clean exit with status 0."""
        return self.outcome is Outcome.EXIT and self.status == 0


class _Capture:
    """One output stream: keeps the first `limit` bytes, counts them all."""

    __slots__ = ("limit", "chunks", "kept", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self.kept
        if room > 0:
            piece = data if len(data) <= room else data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    def value(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept


class RunningJob:
    """A started job.  `await wait()` for its JobResult; `kill()` to stop it."""

    def __init__(self, spec: JobSpec, token: str) -> None:
        self.spec = spec
        self.token = token
        """The value of TOKEN_VAR in the environment of the job's processes."""
        self.pid: Union[int, None] = None
        self.started_at = time.time()
        """Wall-clock time (time.time()) the job was started."""
        self._t0 = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._captures: dict[int, _Capture] = {}
        self._open_fds: set[int] = set()
        self._out_fd = self._err_fd = -1
        self._popen: Union[subprocess.Popen[bytes], None] = None
        self._pidfd: Union[int, None] = None
        self._returncode: Union[int, None] = None
        self._exit_time: Union[float, None] = None
        self._exited: asyncio.Future[None] = self._loop.create_future()
        self._timer: Union[asyncio.TimerHandle, None] = None
        self._drain_timer: Union[asyncio.TimerHandle, None] = None
        self._kill_reason: Union[Outcome, None] = None
        self._escalation: Union[asyncio.Task[None], None] = None
        self._result: asyncio.Future[JobResult] = self._loop.create_future()

    def __repr__(self) -> str:
        state = "done" if self.done else ("killing" if self._kill_reason else "running")
        return f"<RunningJob {self.spec.job_id!r} pid={self.pid} {state}>"

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def done(self) -> bool:
        """True once the result is known."""
        return self._result.done()

    async def wait(self) -> JobResult:
        """The job's result, once it has ended.  Cancelling the wait does not stop the job."""
        return await asyncio.shield(self._result)

    def kill(self, reason: Outcome = Outcome.KILLED) -> None:
        """Stop the job: SIGTERM to all its processes, SIGKILL after the grace.

        `reason` is the outcome to report (KILLED or TIMEOUT).  Does nothing if
        the job has already exited or is already being killed.
        """
        if reason not in (Outcome.KILLED, Outcome.TIMEOUT):
            raise ValueError(f"kill reason must be KILLED or TIMEOUT, not {reason!r}")
        if self._returncode is not None or self._kill_reason is not None or self.pid is None:
            return
        if _has_exited(self.pid):  # it ended by itself; we just have not heard yet
            return
        log.debug("job %s: %s, sending SIGTERM", self.job_id, reason.value)
        self._kill_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        self._escalation = self._loop.create_task(self._escalate())
        self._escalation.add_done_callback(self._escalation_done)

    # -- start ----------------------------------------------------------------

    def _spawn(self) -> None:
        """Start the process and watch it; on failure, the job is done at once."""
        spec = self.spec
        if not spec.argv:
            self._fail_start(StartFailure.NOT_FOUND, "cannot start: empty command line")
            return
        env = dict(os.environb)  # bytes: spares Popen a decode and re-encode of each variable
        if spec.env:
            env.update((os.fsencode(k), os.fsencode(v)) for k, v in spec.env.items())
        env[_TOKEN_VAR_B] = self.token.encode()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self._popen = subprocess.Popen(
                spec.argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                cwd=spec.cwd, env=env, start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            os.close(out_r)
            os.close(err_r)
            status, reason = _start_failure(spec, exc)
            self._fail_start(status, reason)
            return
        finally:
            os.close(out_w)
            os.close(err_w)
        self.pid = self._popen.pid
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
            self._captures[fd] = _Capture(spec.output_limit)
            self._open_fds.add(fd)
            self._loop.add_reader(fd, self._on_readable, fd)
        self._out_fd, self._err_fd = out_r, err_r
        self._watch_exit()
        if spec.timeout is not None:
            self._timer = self._loop.call_later(spec.timeout, self.kill, Outcome.TIMEOUT)

    def _watch_exit(self) -> None:
        """Learn of the exit through a pidfd (Linux), else through a waiting thread."""
        assert self.pid is not None
        try:
            self._pidfd = os.pidfd_open(self.pid)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_in_thread, name=f"wait-{self.pid}", daemon=True).start()
            return
        self._loop.add_reader(self._pidfd, self._on_pidfd)

    def _wait_in_thread(self) -> None:
        assert self.pid is not None
        try:
            _, status = os.waitpid(self.pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            returncode = None
        try:
            self._loop.call_soon_threadsafe(self._on_exit, returncode)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _fail_start(self, status: StartFailure, reason: str) -> None:
        log.info("job %s: %s", self.job_id, reason)
        message = (reason + "\n").encode("utf-8", "replace")
        self._result.set_result(JobResult(
            job_id=self.job_id, outcome=Outcome.EXIT, status=int(status), signal=None,
            elapsed=time.monotonic() - self._t0, stdout=b"", stderr=message,
            stdout_bytes=0, stderr_bytes=len(message), stdout_truncated=False,
            stderr_truncated=False, reason=reason, pid=None,
        ))

    # -- while it runs ------------------------------------------------------------

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("job %s: reading its output failed: %s", self.job_id, exc)
            data = b""
        if data:
            self._captures[fd].feed(data)
        else:
            self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        os.close(fd)
        self._open_fds.discard(fd)
        if not self._open_fds and self._drain_timer is not None:
            self._drain_timer.cancel()
        self._maybe_finish()

    def _on_pidfd(self) -> None:
        assert self._pidfd is not None and self.pid is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        try:
            _, status = os.waitpid(self.pid, os.WNOHANG)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            returncode = None
        self._on_exit(returncode)

    def _on_exit(self, returncode: Union[int, None]) -> None:
        assert self.pid is not None and self._popen is not None
        if returncode is None:
            log.warning("job %s: exit status lost (pid %s was reaped elsewhere)", self.job_id, self.pid)
            returncode = _LOST_STATUS
        self._returncode = returncode
        self._popen.returncode = returncode  # reaped: Popen must not track it any more
        self._exit_time = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
        if self._kill_reason is None:
            _signal_group(self.pid, signal.SIGKILL)  # leftovers of the job's group
        self._exited.set_result(None)
        if self._open_fds:
            self._drain_timer = self._loop.call_later(PIPE_DRAIN_TIMEOUT, self._abandon_pipes)
        self._maybe_finish()

    def _abandon_pipes(self) -> None:
        log.warning("job %s: output still open %.1f s after exit (held by a process outside "
                    "the job's group); no longer reading it", self.job_id, PIPE_DRAIN_TIMEOUT)
        for fd in list(self._open_fds):
            self._close_pipe(fd)

    # -- the end --------------------------------------------------------------------

    def _maybe_finish(self) -> None:
        if (self._returncode is None or self._open_fds or self._result.done()
                or (self._escalation is not None and not self._escalation.done())):
            return
        self._result.set_result(self._make_result())

    def _make_result(self) -> JobResult:
        returncode = self._returncode
        assert returncode is not None
        died_of = -returncode if returncode < 0 else None
        status: Union[int, None] = None
        if self._kill_reason is Outcome.TIMEOUT:
            outcome, reason = Outcome.TIMEOUT, f"timed out after {self.spec.timeout:g} s"
        elif self._kill_reason is Outcome.KILLED:
            outcome, reason = Outcome.KILLED, "killed on request"
        elif died_of is not None:
            outcome, reason = Outcome.CRASH, f"terminated by signal {_signal_name(died_of)}"
        else:
            outcome, reason, status = Outcome.EXIT, None, returncode
        out, err = self._captures[self._out_fd], self._captures[self._err_fd]
        assert self._exit_time is not None
        return JobResult(
            job_id=self.job_id, outcome=outcome, status=status, signal=died_of,
            elapsed=self._exit_time - self._t0, stdout=out.value(), stderr=err.value(),
            stdout_bytes=out.total, stderr_bytes=err.total,
            stdout_truncated=out.truncated, stderr_truncated=err.truncated,
            reason=reason, pid=self.pid,
        )

    # -- killing ------------------------------------------------------------------

    async def _escalate(self) -> None:
        """SIGTERM everything of the job, wait for the grace, SIGKILL what is left."""
        await self._signal_all(signal.SIGTERM)
        if not self._exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), self.spec.kill_grace)
            except asyncio.TimeoutError:
                log.debug("job %s: still running %g s after SIGTERM, sending SIGKILL",
                          self.job_id, self.spec.kill_grace)
        await self._signal_all(signal.SIGKILL)
        await self._sweep_until_gone()

    def _escalation_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s: killing failed", self.job_id, exc_info=task.exception())
        self._maybe_finish()

    async def _signal_all(self, sig: signal.Signals) -> None:
        assert self.pid is not None
        _signal_group(self.pid, sig)
        for pid in await self._loop.run_in_executor(None, find_token_processes, self.token):
            _signal_pid(pid, sig)

    async def _sweep_until_gone(self) -> None:
        """Keep killing until /proc shows no live process with the job's token."""
        deadline = time.monotonic() + SWEEP_DEADLINE
        while True:
            left = await self._loop.run_in_executor(None, find_token_processes, self.token)
            if not left:
                return
            if time.monotonic() > deadline:
                log.warning("job %s: processes %s survive SIGKILL", self.job_id, left)
                return
            for pid in left:
                _signal_pid(pid, signal.SIGKILL)
            await asyncio.sleep(SWEEP_INTERVAL)


async def start_job(spec: JobSpec, on_started: Union[Callable[[RunningJob], None], None] = None) -> RunningJob:
    """Spawn the job and return it running.

    `on_started(job)` is called once the process exists (not called if the
    program could not be started: that job is already done, with outcome
    EXIT and status 127 or 126, and the reason in `stderr` and `reason`).
    """
    job = RunningJob(spec, uuid.uuid4().hex)
    job._spawn()
    if on_started is not None and job.pid is not None:
        on_started(job)
    return job


def _start_failure(spec: JobSpec, exc: Exception) -> tuple[StartFailure, str]:
    """Exit status and reason for a failed spawn, told apart as a shell would."""
    program = spec.argv[0]
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if spec.cwd is not None and exc.filename == spec.cwd and exc.filename != program:
            return StartFailure.NOT_FOUND, f"cannot start {program!r}: bad working directory {spec.cwd!r}: {detail}"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return StartFailure.NOT_FOUND, f"cannot start {program!r}: no such program"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
            return StartFailure.NOT_EXECUTABLE, f"cannot start {program!r}: not executable: {detail}"
        return StartFailure.NOT_FOUND, f"cannot start {program!r}: {detail}"
    return StartFailure.NOT_FOUND, f"cannot start {program!r}: {exc}"  # e.g. a NUL byte in argv


def _has_exited(pid: int) -> bool:
    """Whether our child `pid` is already a zombie (does not reap it)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (AttributeError, ChildProcessError, OSError):
        return False
    return info is not None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} ({signum})"
    except ValueError:
        return str(signum)


def find_token_processes(token: str) -> list[int]:
    """Pids of live processes whose environment carries TOKEN_VAR=token.

    Linux only (reads /proc/<pid>/environ of our own processes); elsewhere
    it finds nothing.  Zombies have no environment and are not reported.
    Blocking but cheap: call it through run_in_executor from a loop.
    """
    needle = f"{TOKEN_VAR}={token}\0".encode()
    me = os.getpid()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or not ours
            continue
        if needle in environ:
            found.append(int(name))
    return found
