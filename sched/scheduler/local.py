"""The backend that runs the scheduler's `host LOCAL` jobs on this machine.

LocalBackend runs `host LOCAL` jobs through pclient.jobproc, the same runner the host agent
uses: each job in its own session and its own cgroup (or under a subreaper keeper), argv
without a shell, the timeout and `kill` escalating SIGTERM -> SIGKILL over every process of the
job, carried out by jobproc's own thread even while a macro holds the loop. A task's
`stdout PATH` / `stderr PATH` files are streamed by jobproc, every byte; only the first
`output_limit` bytes come back here for $stdout / $stderr. A program that does not exist ends
as exit status 127 with the reason in stderr.

The other jobs go to the controller (psched.scheduler.remote).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pclient.output import as_text
from pcontrol.outcome import exited, from_agent

from .eventloop import get_loop
from .jobs import Job, JobSink, Outcome

if TYPE_CHECKING:
    from pclient.jobproc import JobResult, JobSpec, RunningJob

log = logging.getLogger(__name__)


def output_text(data: bytes, total: int, truncated: bool) -> str:
    """Captured bytes as text, with a note when the stream was cut at its bound."""
    text = as_text(data)
    if truncated:
        text += f"\n[sched: output cut: kept {len(data)} of {total} bytes]\n"
    return text


KILL_WAIT = 10.0
"""Seconds sched, leaving, waits for the local jobs it killed to end."""


_MACHINERY: tuple[Callable[..., JobSpec], Callable[..., RunningJob], Callable[[], None]] | None = None
"""pclient.jobproc's JobSpec and begin_job and localguard's ensure_guard, once imported."""


def _machinery() -> tuple[Callable[..., JobSpec], Callable[..., RunningJob], Callable[[], None]]:
    """What starts a local job, imported with the first one (a script of controller tasks never
    needs pclient.jobproc: ~57M instructions on the way to its first job; start-up, issue 13)
    and kept (an import statement costs the import machinery's look-ups each job)."""
    global _MACHINERY
    if _MACHINERY is None:
        from pclient.jobproc import JobSpec, begin_job

        from .localguard import ensure_guard

        _MACHINERY = (JobSpec, begin_job, ensure_guard)
    return _MACHINERY


class LocalBackend:
    """Runs jobs as child processes of sched (a Backend; it reports to a JobSink)."""

    home: Path | None = None  # local jobs are not counted across restarts

    def __init__(self, sched: JobSink):
        self.sched = sched
        self.running: dict[int, RunningJob] = {}
        self._kill_asked: set[int] = set()
        self._held: deque[Job] = deque()
        """Jobs whose start found this machine short (of descriptors, processes: see
        RunningJob.lacking) while others of ours ran: each starts again when one of those ends."""

    def submit(self, job: Job) -> None:
        get_loop().call_soon(self._start, job)

    def _start(self, job: Job, again: bool = False) -> None:
        """Start the job (no task, no coroutine a job: its end comes to `_done`); `again`: one
        that was held (`_hold`)."""
        JobSpec, begin_job, ensure_guard = _MACHINERY or _machinery()
        ensure_guard()   # the jobs die with sched, even a sched killed -9
        sched = self.sched
        spec = JobSpec(str(job.id), job.argv, timeout=job.timeout, output_limit=sched.output_limit,
                       stdout_file=job.outputs.get("stdout"), stderr_file=job.outputs.get("stderr"),
                       env=job.env, mailbox=True, inbox=job.inbox, cwd=job.cwd)
        try:
            running = begin_job(spec, on_started=lambda rj: sched.job_started(job, "local", rj.pid))
        except Exception as exc:  # never lose a job: a failure to start is its outcome
            log.exception("job %s could not be started", job.id)
            sched.job_ended(job, Outcome.EXIT, status=127, stderr=f"could not start: {exc}\n", reason=str(exc), ran_on="local")
            return
        if running.lacking and self.running:  # (not the job's fault: it waits for one of ours to end)
            self._hold(job, running, again)
            return
        if again and not self._held:
            self.sched.report("local jobs start again")
        self.running[job.id] = running
        if job.id in self._kill_asked:
            running.kill()
        running.when_done(lambda result: self._done(job, result, spec))

    def _done(self, job: Job, result: JobResult, spec: JobSpec) -> None:
        self.running.pop(job.id, None)
        self._kill_asked.discard(job.id)
        self._ended(job, result, spec)
        if self._held:
            self._start(self._held.popleft(), again=True)

    def _hold(self, job: Job, running: RunningJob, again: bool) -> None:
        """`job` could not start for want of what the machine lends (its reason says what):
        it starts again when one of the jobs running ends, in its turn (said once, until none
        waits)."""
        if job.id in self._kill_asked:
            self._kill_asked.discard(job.id)
            self._never_started(job, "killed before it could start")
            return
        if not self._held and not again:
            reason = running.result.reason if running.result is not None else "short of resources"
            self.sched.report(f"local jobs wait: {reason}; they start as the {len(self.running)} running end")
        if again:
            self._held.appendleft(job)
        else:
            self._held.append(job)

    def _never_started(self, job: Job, reason: str) -> None:
        """A held job ends KILLED without having run."""
        self.sched.job_ended(job, Outcome.KILLED, reason=reason, ran_on="local")

    def _ended(self, job: Job, result: JobResult, spec: JobSpec) -> None:
        for error in result.output_errors:
            self.sched.report(f"task {job.task} job {job.id}: {error}")
        if spec.stdout_file is None and spec.stderr_file is None:
            written: tuple[str, ...] = ()
        else:
            written = tuple(stream for stream, dest in (("stdout", spec.stdout_file), ("stderr", spec.stderr_file))
                            if dest is not None)
        reason = result.reason or (exited(result.status) if result.status is not None else "")
        self.sched.job_ended(
            job, from_agent(result.outcome), status=result.status, signal=result.signal,
            stdout=output_text(result.stdout, result.stdout_bytes, result.stdout_truncated),
            stderr=output_text(result.stderr, result.stderr_bytes, result.stderr_truncated),
            stdout_bytes=result.stdout_bytes, stderr_bytes=result.stderr_bytes,
            elapsed=result.elapsed, reason=reason, ran_on="local",
            ended=result.ended_at or None, written=written, outbox=result.outbox,
        )

    def kill(self, job: Job) -> bool:
        running = self.running.get(job.id)
        if running is not None:
            running.kill()
            return True
        if job in self._held:  # (never started: ended now)
            self._held.remove(job)
            self._never_started(job, "killed before it could start")
            return True
        if not job.done:  # submitted, not started yet: kill it as soon as it starts
            self._kill_asked.add(job.id)
            return True
        return False

    submit_keys_held = None  # local jobs do not outlive sched: no run ledger

    def submit_key(self, job: Job) -> str | None:
        return None

    def orphans_note(self) -> str | None:
        return None

    def task_defined(self, task: str) -> None:
        """Nothing to take back: local jobs do not outlive their sched."""

    def lead(self, host: str) -> float:
        return 0.0

    async def connect(self) -> None:
        """Always ready."""

    async def why_out(self) -> str | None:
        if self._held:
            return f"{len(self._held)} local job(s) wait for one of the {len(self.running)} running to end (see above)"
        return None

    def jobs_out(self) -> int:
        return len(self.running) + len(self._held)

    async def aclose(self) -> None:
        """Kill the jobs still running and wait (up to KILL_WAIT s) for them to end."""
        while self._held:
            self._never_started(self._held.popleft(), "sched left before it could start it")
        running = list(self.running.values())
        if not running:
            return
        for job in running:
            job.kill()
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in running), return_exceptions=True), KILL_WAIT)
        except asyncio.TimeoutError:
            self.sched.report(f"some local jobs did not end within {KILL_WAIT:g} s of being killed")
