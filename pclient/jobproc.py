"""Run one job as a local process and report how it ended.

Used by the pclient agent for the jobs a controller sends, and by the sched
shell for its local jobs; it knows nothing of the wire protocol.

    spec = JobSpec("j1", ["make", "-j4"], timeout=60)
    job = await start_job(spec)          # spawned; job.pid, job.started_at
    result = await job.wait()            # JobResult: outcome, status, output...
    job.kill()                           # SIGTERM the job, SIGKILL after the grace

Each job runs in its own session, without a shell, with stdin from /dev/null, inside a Box
(pclient.containment: its own cgroup, or under a subreaper keeper) so that its kill, its timeout
or the end of its main process ends every process it started, also one that called setsid,
double-forked and cleared its environment.  Every job's environment still carries a unique
token (PCLIENT_JOB_TOKEN), the last resort where neither a cgroup nor a subreaper exists.

Everything that must happen at its moment runs in the process's watcher thread
(pclient.watcher), not on the asyncio loop: reading the output pipes, noticing the exit (so
`elapsed` is the real run time), the timeout, the SIGKILL after the grace, the sweep until
nothing of the job is left.  A loop kept busy by a long macro delays none of these; the loop
learns of the result when it is free.  Output goes, byte for byte and however large, to the
spec's `stdout_file`/`stderr_file` when set (pclient.output), and its first `output_limit`
bytes are kept in memory for the result.  A spec with `mailbox` gives the job an inbox and an
outbox file (pclient.mailbox: $PSCHED_INBOX, $PSCHED_OUTBOX); the outbox's lines come back in
the result.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, Union

from . import spawn
from .containment import TOKEN_VAR, Box, CannotJoin, CgroupBox, KeeperBox, Kind, containment, find_token_processes
from .fdlimit import note_descriptor, open_files_limit
from .mailbox import Mailbox
from .output import OutputFile, Sink
from .protocol import DEFAULT_OUTPUT_LIMIT, Outcome
from .readsize import READ_BYTES
from .watcher import Timer, watcher

if TYPE_CHECKING:
    import queue

__all__ = [
    "DEFAULT_KILL_GRACE",
    "TOKEN_VAR",
    "JobResult",
    "JobSpec",
    "OutputFile",
    "RunningJob",
    "StartFailure",
    "begin_job",
    "find_token_processes",
    "start_job",
]

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
PIPE_DRAIN_TIMEOUT = 0.5
"""After the main process exits, how long to wait for its output pipes to
close before giving up on them (a process that escaped the job holds them)."""
SWEEP_DEADLINE = 2.0
"""After SIGKILL, how long to keep killing until no process of the job is left."""
SWEEP_INTERVAL = 0.01

_LACKING = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM})
"""A start's errors that say the machine, or this process, lacks something for now
(RunningJob.lacking)."""

_TOKEN_VAR_B = TOKEN_VAR.encode()
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
    """What to run.  `env` holds variables added to the current environment.

    `stdout_file` / `stderr_file`: where the stream goes, every byte of it (see
    pclient.output); the result keeps only the first `output_limit` bytes either way."""

    job_id: str
    argv: Sequence[str]
    cwd: Union[str, None] = None
    env: Union[Mapping[str, str], None] = None
    timeout: Union[float, None] = None
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    kill_grace: float = DEFAULT_KILL_GRACE
    stdout_file: Union[OutputFile, None] = None
    stderr_file: Union[OutputFile, None] = None
    mailbox: bool = False
    """Give the job $PSCHED_INBOX (holding `inbox`) and $PSCHED_OUTBOX (pclient.mailbox)."""
    inbox: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "inbox", tuple(self.inbox))
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
    `elapsed` runs from the spawn to the exit of the main process, as seen
    at its moment; `ended_at` is that exit as wall-clock time.
    `output_errors` says why a stdout_file / stderr_file could not be written.
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
    ended_at: float = 0.0
    output_errors: tuple = ()
    outbox: tuple = ()
    """The lines the job wrote to $PSCHED_OUTBOX (a spec with `mailbox`)."""

    @property
    def ok(self) -> bool:
        """True for a clean exit with status 0."""
        return self.outcome is Outcome.EXIT and self.status == 0


class RunningJob:
    """A started job.  `await wait()` for its JobResult; `kill()` to stop it.

    After the spawn, the job's state belongs to the watcher thread (methods named _w_*);
    the loop's side only asks (`kill`) and hears (`wait`)."""

    def __init__(self, spec: JobSpec, token: str) -> None:
        self.spec = spec
        self.token = token
        """The value of TOKEN_VAR in the environment of the job's processes."""
        self.pid: Union[int, None] = None
        self.started_at = time.time()
        """Wall-clock time (time.time()) the job was started."""
        self._t0 = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._watcher = watcher()
        self._box: Union[Box, None] = None
        self._sinks: dict[int, Sink] = {}
        self._out = Sink(spec.output_limit, spec.stdout_file)
        self._err = Sink(spec.output_limit, spec.stderr_file)
        self._open_fds: set[int] = set()
        self._popen: Union[subprocess.Popen[bytes], None] = None
        self._pidfd: Union[int, None] = None
        self._returncode: Union[int, None] = None
        self._exit_time: Union[float, None] = None
        self._timer: Union[Timer, None] = None
        self._grace_timer: Union[Timer, None] = None
        self._drain_timer: Union[Timer, None] = None
        self._kill_reason: Union[Outcome, None] = None
        self._sweep_deadline: Union[float, None] = None
        self._swept = False
        self._finished = False
        self._result: Union[JobResult, None] = None
        self._future: Union[asyncio.Future[JobResult], None] = None
        self._callbacks: list[Callable[[JobResult], None]] = []
        self._mail: Union[Mailbox, None] = None
        self._starting: Union[tuple, None] = None  # what _spawn made ready for _s_start
        self._kill_early: Union[Outcome, None] = None  # a kill asked before the pid was known
        self._on_started: Union[Callable[[RunningJob], None], None] = None
        self.lacking = False
        """The start failed for want of what this machine lends for a while (a descriptor, a
        process, memory: _LACKING), not for anything of the job's: the caller may start it again
        when one of its jobs has ended."""

    def __repr__(self) -> str:
        state = "done" if self.done else ("killing" if self._kill_reason else "running")
        return f"<RunningJob {self.spec.job_id!r} pid={self.pid} {state}>"

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def containment(self) -> Union[Kind, None]:
        """How the job's processes are held together (None: it never started)."""
        return self._box.kind if self._box is not None else None

    @property
    def done(self) -> bool:
        """True once the result is known."""
        return self._result is not None

    @property
    def result(self) -> Union[JobResult, None]:
        """How the job ended, once it has."""
        return self._result

    @property
    def unwritten(self) -> tuple:
        """Why the spec's stdout_file / stderr_file could not be written (empty: both were, or
        there are none); the result's `output_errors` also hold the outbox's note."""
        return tuple(e for e in (self._out.error, self._err.error) if e)

    async def wait(self) -> JobResult:
        """The job's result, once it has ended.  Cancelling the wait does not stop the job."""
        if self._future is None:
            self._future = self._loop.create_future()
            if self._result is not None:
                self._future.set_result(self._result)
        return await asyncio.shield(self._future)

    def when_done(self, fn: Callable[[JobResult], None]) -> None:
        """Call fn(result) on the loop once the job has ended (soon, if it has already)."""
        if self._result is not None:
            self._loop.call_soon(fn, self._result)
        else:
            self._callbacks.append(fn)

    def kill(self, reason: Outcome = Outcome.KILLED) -> None:
        """Stop the job: SIGTERM to all its processes, SIGKILL after the grace.

        `reason` is the outcome to report (KILLED or TIMEOUT).  Does nothing if
        the job has already exited or is already being killed.  Carried out in the
        watcher thread at once, whatever the caller's loop does next.
        """
        if reason not in (Outcome.KILLED, Outcome.TIMEOUT):
            raise ValueError(f"kill reason must be KILLED or TIMEOUT, not {reason!r}")
        if self.done:
            return
        if self.pid is None:  # being started in the spawner thread: killed once it has its pid
            self._kill_early = self._kill_early or reason
            if self.pid is None:  # (else it got one meanwhile, maybe without seeing the ask)
                return
        self._watcher.call(lambda: self._w_kill(reason))

    # -- start (on the caller's loop) -------------------------------------------------------------

    def _spawn(self, threaded: bool) -> None:
        """Make ready what the start needs (on the caller's loop: its environment, mailbox, box
        and pipes) and start it: here, or (`threaded`) in the spawner thread (_Spawner). On a
        failure found before the start, the job is done at once."""
        spec = self.spec
        if not spec.argv:
            self._fail_start(StartFailure.NOT_FOUND, "cannot start: empty command line")
            return
        env = spawn.environ_bytes()  # bytes: spares Popen a decode and re-encode of each variable
        if spec.env:
            env.update((os.fsencode(k), os.fsencode(v)) for k, v in spec.env.items())
        env[_TOKEN_VAR_B] = self.token.encode()
        if spec.mailbox:
            try:
                self._mail = Mailbox.open(spec.job_id, spec.inbox)
            except OSError as exc:  # its messages cannot be handed to it (a full disk): not run without them
                self._start_failed(exc)
                return
            for name, value in self._mail.env.items():
                env[os.fsencode(name)] = os.fsencode(value)
        made: list[int] = []
        box: Union[Box, None] = None
        try:
            box = containment().box(self.token)
            if isinstance(box, KeeperBox):
                missing = _preflight(spec, env)  # the keeper would find out only after its own start
                if missing is not None:
                    raise missing
            made.extend(os.pipe())
            made.extend(os.pipe())
        except OSError as exc:  # (too many open files, say: nothing made for it is kept)
            for fd in made:
                os.close(fd)
            if box is not None:
                box.release()
            self._start_failed(exc)
            return
        out_r, out_w, err_r, err_w = made
        note_descriptor(err_w)  # (many jobs at once: more open files allowed before they run out)
        self._starting = (box, env, out_r, out_w, err_r, err_w)
        if threaded:
            _SPAWNER.start(self)
        else:
            self._s_start(False)

    def _s_start(self, posted: bool) -> None:
        """Start the process and hand it to the watcher. `posted`: in the spawner thread, so its
        start and any failure go to the loop through _DELIVERIES (the start before the end: the
        watcher hears of the job only after the start is posted)."""
        assert self._starting is not None
        box, env, out_r, out_w, err_r, err_w = self._starting
        self._starting = None
        try:
            pid, self._popen, box = self._start_in_box(box, env, out_w, err_w)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            box.release()
            os.close(out_r)
            os.close(err_r)
            self._start_failed(exc, posted)
            return
        finally:
            os.close(out_w)
            os.close(err_w)
        self._box = box
        box.started(pid)
        for fd, sink in ((out_r, self._out), (err_r, self._err)):
            os.set_blocking(fd, False)
            self._sinks[fd] = sink
            self._open_fds.add(fd)
        self.pid = pid
        if posted:
            _DELIVERIES.post(self._loop, _announce_start, self)
        self._begin()
        kill = self._kill_early
        if kill is not None:  # asked before the pid was known (see `kill`)
            self._watcher.call(lambda: self._w_kill(kill))
        if not posted:
            _announce_start(self)

    def _begin(self) -> None:
        """Hand the started job to the watcher thread: its pipes and its exit watched from now on
        (registered from here, no hand-off: Watcher.watch_now), its timeout armed there."""
        watcher, pid = self._watcher, self.pid
        assert pid is not None
        try:
            self._pidfd = self._box.pidfd() if self._box is not None else None
        except (AttributeError, OSError):
            self._pidfd = None
        if self.spec.timeout is not None or self._pidfd is None:
            watcher.call(self._w_begin)  # (after the watches below: the thread then sees them all)
        for fd in self._open_fds.copy():
            watcher.watch_now(fd, lambda fd=fd: self._w_readable(fd))
        if self._pidfd is not None:
            watcher.watch_now(self._pidfd, self._w_pidfd)

    def _start_in_box(self, box: Box, env: dict, out_w: int, err_w: int
                      ) -> tuple[int, Union[subprocess.Popen[bytes], None], Box]:
        """Start the job inside `box`; a cgroup that cannot be joined is given up for the next kind."""
        try:
            return (*self._start_in(box, env, out_w, err_w), box)
        except (subprocess.SubprocessError, CannotJoin) as exc:  # only joining the cgroup raises these
            if not isinstance(box, CgroupBox):
                raise
            box.release()
            containment().give_up_cgroups(str(exc))
            box = containment().box(self.token)
            return (*self._start_in(box, env, out_w, err_w), box)

    def _start_in(self, box: Box, env: dict, out_w: int, err_w: int
                  ) -> tuple[int, Union[subprocess.Popen[bytes], None]]:
        with box.spawning():
            if isinstance(box, KeeperBox):  # forked by the keeper server where there is one
                name = self.spec.argv[0]
                file = spawn.PROGRAMS.find(name, env.get(b"PATH")) if "/" not in name else None
                pid = box.start_served(self.spec.argv, env, out_w, err_w, self.spec.cwd, file)
                if pid is not None:
                    return pid, None
            return spawn.start(box.argv(self.spec.argv), env, out_w, err_w, cwd=self.spec.cwd,
                               preexec=box.preexec, pass_fds=box.pass_fds)

    def _start_failed(self, exc: Exception, posted: bool = False) -> None:
        """The start raised `exc`: the job is done with the reason a shell would give."""
        self.lacking = isinstance(exc, OSError) and exc.errno in _LACKING
        self._fail_start(*_start_failure(self.spec, exc), posted=posted)

    def _fail_start(self, status: StartFailure, reason: str, posted: bool = False) -> None:
        """The job could not be started: done, its reason in stderr (`posted`: from the spawner
        thread, so the end goes to the loop through _DELIVERIES)."""
        log.info("job %s: %s", self.job_id, reason)
        message = (reason + "\n").encode("utf-8", "replace")
        self._err.feed(message)
        result = self._start_failure_result(status, reason)
        if posted:
            _DELIVERIES.post(self._loop, self._deliver, result)
        else:
            self._deliver(result)

    def _collect_mail(self) -> tuple[tuple, Union[str, None]]:
        """The outbox's lines, and why some were lost (the mailbox is removed)."""
        if self._mail is None:
            return (), None
        return self._mail.collect()

    def _start_failure_result(self, status: StartFailure, reason: str) -> JobResult:
        outbox, note = self._collect_mail()
        errors = tuple(e for e in (self._out.finish(), self._err.finish(), note) if e)
        elapsed = time.monotonic() - self._t0
        return JobResult(
            job_id=self.job_id, outcome=Outcome.EXIT, status=int(status), signal=None,
            elapsed=elapsed, stdout=b"", stderr=self._err.head,
            stdout_bytes=0, stderr_bytes=self._err.total, stdout_truncated=False,
            stderr_truncated=self._err.truncated, reason=reason, pid=None,
            ended_at=self.started_at + elapsed, output_errors=errors, outbox=outbox,
        )

    # -- in the watcher thread ----------------------------------------------------------------------

    def _w_begin(self) -> None:
        """What `_begin` leaves to the thread: the timeout, and a waiting thread without a pidfd."""
        if self._returncode is not None:
            return  # (ended already: nothing to time, nothing to wait for)
        if self._pidfd is None:
            threading.Thread(target=self._wait_in_thread, name=f"wait-{self.pid}", daemon=True).start()
        if self.spec.timeout is not None:
            self._timer = self._watcher.at(self._t0 + self.spec.timeout, lambda: self._w_kill(Outcome.TIMEOUT))

    def _wait_in_thread(self) -> None:
        assert self.pid is not None
        box = self._box
        if isinstance(box, KeeperBox) and box.served:  # not our child: its end is the box's to tell
            box.wait_ended()
            returncode: Union[int, None] = box.exit_code()
        else:
            try:
                _, status = os.waitpid(self.pid, 0)
                returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                returncode = None
        when = time.monotonic()
        self._watcher.call(lambda: self._w_exited(returncode, when))

    def _w_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("job %s: reading its output failed: %s", self.job_id, exc)
            data = b""
        if data:
            self._sinks[fd].feed(data)
        else:
            self._w_close_pipe(fd)

    def _w_close_pipe(self, fd: int) -> None:
        self._watcher.unwatch(fd)
        os.close(fd)
        self._open_fds.discard(fd)
        if not self._open_fds and self._drain_timer is not None:
            self._drain_timer.cancel()
        self._w_maybe_finish()

    def _w_pidfd(self) -> None:
        assert self._pidfd is not None and self.pid is not None
        when = time.monotonic()
        box = self._box
        if isinstance(box, KeeperBox) and box.served:  # not our child: its end is the box's to tell
            if not box.ended():  # (an event for an earlier job's descriptor of this number)
                return
            returncode: Union[int, None] = box.exit_code()
        else:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                returncode = None
            else:
                if pid == 0:  # not ended: the event was for an earlier job's descriptor of this number
                    return
                returncode = os.waitstatus_to_exitcode(status)
        self._watcher.unwatch(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._w_exited(returncode, when)

    def _w_exited(self, returncode: Union[int, None], when: float) -> None:
        assert self.pid is not None and self._box is not None
        if returncode is None:
            log.warning("job %s: exit status lost (pid %s was reaped elsewhere)", self.job_id, self.pid)
            returncode = _LOST_STATUS
        self._returncode = returncode
        if self._popen is not None:
            self._popen.returncode = returncode  # reaped: Popen must not track it any more
        self._exit_time = when
        for timer in (self._timer, self._grace_timer):
            if timer is not None:
                timer.cancel()
        self._box.main_exited()
        if self._kill_reason is None:
            self._box.leftovers()
            if self._box.kind is Kind.GROUP:
                self._swept = True  # as ever: the group is killed, nothing more is looked for
        else:
            self._box.kill()
        if not self._swept:
            self._sweep_deadline = time.monotonic() + SWEEP_DEADLINE
            self._w_sweep()
        if self._open_fds:
            self._drain_timer = self._watcher.at(time.monotonic() + PIPE_DRAIN_TIMEOUT, self._w_abandon_pipes)
        self._w_maybe_finish()

    def _w_sweep(self) -> None:
        """Keep killing until nothing of the job is left (or the deadline passes)."""
        assert self._box is not None and self._sweep_deadline is not None
        if self._box.empty():
            self._swept = True
        elif time.monotonic() > self._sweep_deadline:
            log.warning("job %s: processes survive SIGKILL; giving up on them", self.job_id)
            self._swept = True
        else:
            self._box.kill()
            self._watcher.at(time.monotonic() + SWEEP_INTERVAL, self._w_sweep)
            return
        self._w_maybe_finish()

    def _w_abandon_pipes(self) -> None:
        log.warning("job %s: output still open %.1f s after exit (held by a process outside "
                    "the job); no longer reading it", self.job_id, PIPE_DRAIN_TIMEOUT)
        for fd in list(self._open_fds):
            self._w_close_pipe(fd)

    def _w_kill(self, reason: Outcome) -> None:
        if self._returncode is not None or self._kill_reason is not None or self.pid is None:
            return
        assert self._box is not None
        box = self._box
        if box.ended() if isinstance(box, KeeperBox) and box.served else _has_exited(self.pid):
            return  # it ended by itself; the pidfd will tell us in a moment
        log.debug("job %s: %s, sending SIGTERM", self.job_id, reason.value)
        self._kill_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        self._box.terminate()
        self._grace_timer = self._watcher.at(time.monotonic() + self.spec.kill_grace, self._w_grace_over)

    def _w_grace_over(self) -> None:
        if self._returncode is None and self._box is not None:
            log.debug("job %s: still running %g s after SIGTERM, sending SIGKILL",
                      self.job_id, self.spec.kill_grace)
            self._box.kill()

    # -- the end -------------------------------------------------------------------------------

    def _w_maybe_finish(self) -> None:
        if self._returncode is None or self._open_fds or not self._swept or self._finished:
            return
        self._finished = True
        assert self._box is not None
        start_error = self._box.start_error() if isinstance(self._box, KeeperBox) else None
        self._box.release()
        if start_error is not None and self._returncode == StartFailure.NOT_FOUND:
            self.pid = None
            status, reason = _start_failure(self.spec, OSError(start_error.errno, start_error.strerror,
                                                                self.spec.argv[0]))
            self._err.feed((reason + "\n").encode("utf-8", "replace"))
            result = self._start_failure_result(status, reason)
        else:
            result = self._make_result()
        _DELIVERIES.post(self._loop, self._deliver, result)

    def _deliver(self, result: JobResult) -> None:
        """On the loop: the job's end is known (once)."""
        if self._result is not None:
            return
        self._result = result
        if self._future is not None and not self._future.done():
            self._future.set_result(result)
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(result)

    def _make_result(self) -> JobResult:
        returncode = self._returncode
        assert returncode is not None and self._exit_time is not None
        outbox, note = self._collect_mail()
        errors = tuple(e for e in (self._out.finish(), self._err.finish(), note) if e)
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
        elapsed = self._exit_time - self._t0
        out, err = self._out, self._err
        return JobResult(
            job_id=self.job_id, outcome=outcome, status=status, signal=died_of,
            elapsed=elapsed, stdout=out.head, stderr=err.head,
            stdout_bytes=out.total, stderr_bytes=err.total,
            stdout_truncated=out.truncated, stderr_truncated=err.truncated,
            reason=reason, pid=self.pid, ended_at=self.started_at + elapsed, output_errors=errors,
            outbox=outbox,
        )


class _Deliveries:
    """Job ends handed from the watcher thread to each loop in batches: one wake-up of a loop
    for all the jobs that ended since it last heard (call_soon_threadsafe writes to the loop's
    self-pipe each time; the loop then runs one handle, not one a job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list] = {}

    def post(self, loop: asyncio.AbstractEventLoop, fn: Callable[[JobResult], None], result: JobResult) -> None:
        with self._lock:
            batch = self._pending.get(loop)
            if batch is not None:
                batch.append((fn, result))
                return
            self._pending[loop] = [(fn, result)]
        try:
            loop.call_soon_threadsafe(self._run, loop)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._lock:
                self._pending.pop(loop, None)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch = self._pending.pop(loop, [])
        for i, (fn, result) in enumerate(batch):
            try:
                fn(result)
            except Exception:
                log.exception("job %s: handing on its end failed", result.job_id)
            except BaseException:  # (Ctrl-C in a callback: the other ends are still delivered)
                for later in batch[i + 1:]:
                    loop.call_soon(*later)
                raise


_DELIVERIES = _Deliveries()


async def start_job(spec: JobSpec, on_started: Union[Callable[[RunningJob], None], None] = None) -> RunningJob:
    """Spawn the job and return it running.

    `on_started(job)` is called once the process exists (not called if the
    program could not be started: that job is already done, with outcome
    EXIT and status 127 or 126, and the reason in `stderr` and `reason`).
    """
    return begin_job(spec, on_started)


def begin_job(spec: JobSpec, on_started: Union[Callable[[RunningJob], None], None] = None,
              threaded: bool = False) -> RunningJob:
    """start_job for a caller on the running loop that is not a coroutine, and that hears of
    the end through `RunningJob.when_done` (sched's local jobs: no task and no wait a job).

    `threaded`: the process is made in the spawner thread (_Spawner) while the loop goes on;
    the job may then have no pid yet when this returns (`on_started` is called on the loop
    once it has one; a `kill` takes effect then)."""
    job = RunningJob(spec, os.urandom(16).hex())
    job._on_started = on_started
    job._spawn(threaded)
    return job


def _announce_start(job: RunningJob) -> None:
    """On the loop: the job's process exists."""
    if job._on_started is not None:
        job._on_started(job)


class _Spawner:
    """The thread that makes the jobs' processes for `begin_job(threaded=True)`, one at a time.

    A start waits until the child has exec'd (glibc's posix_spawn is clone(CLONE_VFORK) and
    exec; subprocess's vfork path waits the same), and on a busy machine the child first waits
    for a CPU: ~0.2 ms a job on an idle 2-core machine, ~0.5 ms with a few jobs running. A loop
    with more to do per job than the start itself (the agent: each job's messages) goes on
    meanwhile, with the GIL let go (pclient.libcspawn). Where the start is most of the loop's
    work a job (sched's local jobs), the thread only adds hand-offs and GIL switches: 2,000
    `true` jobs took 4-25 % longer that way (issue 13), so sched starts them on its loop.

    Starts stay one at a time: with cgroups the whole process moves into the job's cgroup for
    the start (containment.CgroupBox.spawning, under SPAWN_LOCK), and any other process this
    process starts meanwhile waits for SPAWN_LOCK (or it would be born in that cgroup)."""

    def __init__(self) -> None:
        self._queue: Union["queue.SimpleQueue[RunningJob]", None] = None
        self._lock = threading.Lock()

    def start(self, job: RunningJob) -> None:
        if self._queue is None:
            with self._lock:
                if self._queue is None:
                    import queue  # with the first threaded start only (an agent's start-up: test_startup)

                    jobs: "queue.SimpleQueue[RunningJob]" = queue.SimpleQueue()
                    threading.Thread(target=self._run, args=(jobs,), name="pclient-spawn", daemon=True).start()
                    self._queue = jobs
        self._queue.put(job)

    def _run(self, jobs: "queue.SimpleQueue[RunningJob]") -> None:
        get = jobs.get
        while True:
            job = get()
            try:
                job._s_start(True)
            except Exception as exc:  # never lose a job: a start that failed otherwise is its end
                log.exception("job %s: starting it failed", job.job_id)
                job._fail_start(StartFailure.NOT_FOUND, f"cannot start {job.spec.argv[0]!r}: {exc}", posted=True)


_SPAWNER = _Spawner()


def _preflight(spec: JobSpec, env: dict) -> Union[OSError, None]:
    """The error exec would give for the program (not found, not executable), if we can tell."""
    program = spec.argv[0]
    base = spec.cwd or "."
    if "/" in program:
        candidates = [os.path.join(base, program)]
    else:
        path = env.get(b"PATH", os.defpath.encode()).decode("utf-8", "surrogateescape")
        candidates = [os.path.join(base, d or ".", program) for d in path.split(os.pathsep)]
    denied = False
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return None
            denied = True
        elif os.path.isdir(candidate) and "/" in program:
            return OSError(errno.EISDIR, os.strerror(errno.EISDIR), program)
    if denied:
        return OSError(errno.EACCES, os.strerror(errno.EACCES), program)
    return OSError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _start_failure(spec: JobSpec, exc: Exception) -> tuple[StartFailure, str]:
    """Exit status and reason for a failed spawn, told apart as a shell would."""
    program = spec.argv[0]
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if spec.cwd is not None and exc.filename == spec.cwd and exc.filename != program:
            return StartFailure.NOT_FOUND, f"cannot start {program!r}: bad working directory {spec.cwd!r}: {detail}"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            where = ""
            if program.startswith("~"):  # (no shell expands it)
                where = " (~ is a shell's: nothing expands it here; write the path in full, or $env(HOME)/...)"
            elif "/" in program and not program.startswith("/"):  # (./x: relative to where? say it)
                where = f" in {spec.cwd or _cwd()}"
            elif " " in program.strip():  # (`command "ls -l"`: one word, as Tcl quotes make it)
                where = (f" (the command is a list of words: {program.strip().split()[0]!r} is the program, "
                         f"the rest its arguments; a shell line needs sh -c)")
            return StartFailure.NOT_FOUND, f"cannot start {program!r}: no such program{where}"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
            return StartFailure.NOT_EXECUTABLE, f"cannot start {program!r}: not executable: {detail}"
        if exc.errno == errno.EMFILE:
            return StartFailure.NOT_FOUND, (f"cannot start {program!r}: {detail} (the process that starts "
                                            f"the jobs has reached its limit of {open_files_limit()})")
        return StartFailure.NOT_FOUND, f"cannot start {program!r}: {detail}"
    return StartFailure.NOT_FOUND, f"cannot start {program!r}: {exc}"  # e.g. a NUL byte in argv


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return "the working directory (gone)"


def _has_exited(pid: int) -> bool:
    """Whether our child `pid` is already a zombie (does not reap it)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (AttributeError, ChildProcessError, OSError):
        return False
    return info is not None


def _signal_name(signum: int) -> str:
    try:
        return f"{signal.Signals(signum).name} ({signum})"
    except ValueError:
        return str(signum)
