"""A Slurm cluster as one of pcontrol's hosts: SlurmLink is that host's job runner.

It stands where an AgentLink stands (hosts.HostLink): it takes the agent protocol's
messages from the controller (`auth`, `run`, `kill`, `ping`, `ack`, `bye`) and answers with
the same messages an agent would (`hello`, `resumed`, `started`, `ended`, `lost`, `pong`,
`error`), so everything the controller does for agents -- slots, held jobs after a lost
connection, reconciling after a restart, -retry -- holds for a cluster too. Nothing runs
on pcontrol's machine but Slurm's commands, each an asyncio subprocess:

    run    -> sbatch --parsable (a batch script: env, cd, exec argv) -> started(batch_id)
    poll   -> ONE `squeue -j <all our job ids>` per poll interval, then per job:
              ended in Slurm -> its output files read -> ended (or lost), see slurmstate
              pending past its -pending -> scancel -> PENDING
              running past its -timeout (from its script's start) -> scancel -> TIMEOUT
    kill   -> scancel -> KILLED          ack -> the output files are removed
    auth   -> `squeue --me`: our jobs (by name) -> resumed(running, finished) + their ends
    bye    -> scancel every job of ours, report them, end

A Slurm command that cannot reach the cluster (slurmctld down, munge broken) ends the link
with Slurm's own message: the host goes DOWN, its jobs are held (they live on in Slurm),
and the next link reports them. Our timeouts are enforced here, at the exact deadline;
Slurm's --time is only a ceiling, in whole minutes, rounded up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pclient import protocol as agent_protocol
from pclient.output import as_text

from .agentlink import ConnectFailure, ConnectOutcome
from .slurmstate import (SQUEUE_FORMAT, Cancel, Limits, SlurmJob, SlurmOptions,
                         batch_script, job_name, parse_sbatch, parse_squeue,
                         pending_expired, sbatch_argv, start_time, timeout_due, verdict,
                         word_of)

log = logging.getLogger(__name__)

#: Slots a Slurm host offers when `host add` gives no -slots (jobs of ours in the cluster).
DEFAULT_SLOTS = 256
#: sbatch calls in flight at once (slurmctld serves them in parallel).
SUBMIT_PARALLEL = 4
#: Seconds a Slurm command may take before the cluster counts as unreachable.
COMMAND_TIMEOUT = 60.0


class SlurmUnreachable(Exception):
    """A Slurm command failed in a way that says the cluster cannot be reached."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    def message(self) -> str:
        """Slurm's own words for a failure."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " ".join(text[-3:]) if text else f"exit status {self.returncode}"


class Commands(Protocol):
    """Runs a Slurm command (argv, optional stdin) without blocking the loop."""

    async def __call__(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult: ...


async def run_command(argv: Sequence[str], stdin: str | None = None) -> CommandResult:
    """The real Commands: an asyncio subprocess; a program that is missing or hangs is a
    failed command, not an exception."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else
            asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return CommandResult(127, "", f"cannot run {argv[0]}: {exc}")
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), COMMAND_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return CommandResult(124, "", f"{argv[0]} did not answer within {COMMAND_TIMEOUT:g} s")
    except asyncio.CancelledError:
        if proc.returncode is None and argv[0] != "sbatch":
            proc.kill()      # a squeue nobody waits for; an sbatch may have submitted: let be
        raise
    return CommandResult(proc.returncode or 0, out.decode("utf-8", "replace"),
                         err.decode("utf-8", "replace"))


@dataclass
class _Tracked:
    """One job of ours in the cluster, from its sbatch until the controller acks its end."""

    word: str
    name: str
    limits: Limits
    job_id: str | None = None          # None while sbatch runs
    cancel: Cancel | None = None       # why we cancelled it (or will, once it has an id)
    ended: bool = False                # its end was reported; awaiting the ack
    timer: asyncio.TimerHandle | None = None
    timeout_armed: bool = False
    started: float | None = None       # wall clock, once seen running (see start_time)


@dataclass
class SlurmLink:
    """A connected Slurm host (see the module docstring); made by `connect_slurm`."""

    name: str
    hello: agent_protocol.Hello
    options: SlurmOptions
    tag: str
    output_dir: Path
    poll: float
    on_message: Callable[["SlurmLink", agent_protocol.Message], None]
    on_lost: Callable[["SlurmLink", str], None]
    commands: Commands = run_command
    clock: Callable[[], float] = time.time
    authed: bool = False
    """We sent `auth`: jobs in Slurm outlive this link (they always do)."""
    _jobs: dict[str, _Tracked] = field(default_factory=dict)
    _by_id: dict[str, _Tracked] = field(default_factory=dict)
    _lost_reason: str | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _poller: asyncio.Task | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _gone: asyncio.Event = field(default_factory=asyncio.Event)
    _submits: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SUBMIT_PARALLEL))
    _bye: bool = False

    # -- what hosts.HostTable uses of a link --------------------------------------------------

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def agent_is_child(self) -> bool:
        return False            # no agent process: nothing to reap, nothing dies with us

    @property
    def is_open(self) -> bool:
        return self._lost_reason is None

    def send(self, message: agent_protocol.Message) -> bool:
        if not self.is_open:
            return False
        if isinstance(message, agent_protocol.Run):
            self._on_run(message)
        elif isinstance(message, agent_protocol.Kill):
            self._on_kill(message.job)
        elif isinstance(message, agent_protocol.Ping):
            self._deliver(agent_protocol.Pong(seq=message.seq, clock=self.clock(),
                                              running=self._in_cluster()))
        elif isinstance(message, agent_protocol.Ack):
            for word in message.jobs:
                self._forget(word)
        elif isinstance(message, agent_protocol.Auth):
            self._spawn(self._resume(), "resume")
        elif isinstance(message, agent_protocol.Bye):
            self._bye = True
            out = [t for t in self._jobs.values() if not t.ended]
            for tracked in out:
                self._cancel(tracked, Cancel.KILL)
            if not out:
                self._gone.set()
            self._start_polling()
            self._wake.set()
        else:
            log.warning("%s: a Slurm host has no use for %s", self.name, message.TYPE)
        return True

    def write_buffer_size(self) -> int:
        return 0

    async def close(self, *, reason: str, grace: float = 3.0, polite: bool = True) -> None:
        """polite: `bye` (cancel our jobs in Slurm, report them, then end); otherwise end now
        and leave the jobs to Slurm (the next link reports them)."""
        if polite and self.is_open:
            self.send(agent_protocol.Bye())
            try:
                await asyncio.wait_for(self._gone.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("%s: Slurm jobs not all reported %.1f s after bye", self.name, grace)
        self.lost(reason)

    def hang_up(self, reason: str) -> None:
        self.lost(reason)

    async def wait_gone(self, timeout: float | None) -> bool:
        return True

    def lost(self, reason: str) -> None:
        """End the link (once): stop polling and timers; jobs stay in Slurm."""
        if self._lost_reason is not None:
            return
        self._lost_reason = reason
        self._gone.set()
        for tracked in self._jobs.values():
            if tracked.timer is not None:
                tracked.timer.cancel()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        try:
            self.on_lost(self, reason)
        except Exception:
            log.exception("%s: on_lost handler failed", self.name)

    # -- internals ------------------------------------------------------------------------------

    def _deliver(self, message: agent_protocol.Message) -> None:
        """Answer as an agent would: later, never inside the controller's own call."""
        def deliver() -> None:
            if self.is_open or self._bye:
                try:
                    self.on_message(self, message)
                except Exception:
                    log.exception("%s: handling %s failed", self.name, type(message).__name__)
        asyncio.get_running_loop().call_soon(deliver)

    def _spawn(self, coro, what: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"slurm {self.name}: {what}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, SlurmUnreachable):
            self.lost(str(exc))
        elif exc is not None:
            log.error("%s: %s failed", self.name, task.get_name(), exc_info=exc)
            self.lost(f"pcontrol's Slurm driver failed: {exc}")

    def _in_cluster(self) -> int:
        return sum(1 for t in self._jobs.values() if not t.ended)

    def _output_base(self, name: str) -> Path:
        return self.output_dir / name

    async def _squeue(self, job_ids: Sequence[str] | None) -> list[SlurmJob]:
        """One squeue call: these jobs, or (None) every job of our user. Raises
        SlurmUnreachable with Slurm's message when it fails."""
        argv = ["squeue", "-h", "-t", "all", "-O", SQUEUE_FORMAT]
        argv += ["-j", ",".join(job_ids)] if job_ids is not None else ["--me"]
        result = await self.commands(argv)
        if result.returncode != 0:
            if job_ids is not None and "Invalid job id" in result.message():
                return []       # the one job asked for is gone (several: squeue says nothing)
            raise SlurmUnreachable(f"squeue failed: {result.message()}")
        return parse_squeue(result.stdout)

    # -- resume: what Slurm holds of ours ---------------------------------------------------------

    async def _resume(self) -> None:
        ours = []
        for row in await self._squeue(None):
            word = word_of(self.tag, row.name)
            if word is not None and word not in self._jobs:
                ours.append((word, row))
        unacked = await asyncio.to_thread(self._unacked, [row for _, row in ours])
        running, finished = [], []
        ended_rows = []
        for word, row in ours:
            if not row.active and row.job_id not in unacked:
                continue        # its end was acked (its .out file is gone)
            tracked = _Tracked(word=word, name=row.name, limits=Limits.from_comment(row.comment),
                               job_id=row.job_id)
            self._track(tracked)
            if row.active:
                running.append(word)
                self._arm_pending(tracked)
            else:
                finished.append(word)
                ended_rows.append((tracked, row))
        log.info("%s: Slurm holds %d job(s) of ours running or pending, %d ended", self.name,
                 len(running), len(finished))
        self._deliver(agent_protocol.Resumed(running=tuple(running), finished=tuple(finished)))
        for tracked, row in ended_rows:
            await self._report_end(tracked, row)
        self._start_polling()

    def _unacked(self, rows: list[SlurmJob]) -> set[str]:
        """The ended jobs among `rows` whose end no controller has acked yet: those whose
        .out file still exists (made before sbatch, removed at the ack). In a thread."""
        return {row.job_id for row in rows if not row.active
                and os.path.exists(f"{self._output_base(row.name)}.out")}

    def _track(self, tracked: _Tracked) -> None:
        self._jobs[tracked.word] = tracked
        if tracked.job_id is not None:
            self._by_id[tracked.job_id] = tracked

    # -- run and kill -------------------------------------------------------------------------

    def _on_run(self, run: agent_protocol.Run) -> None:
        if run.job in self._jobs:
            log.warning("%s: job %s is already in Slurm; not submitted again", self.name, run.job)
            return
        pending_until = self.clock() + run.pending if run.pending is not None else None
        tracked = _Tracked(word=run.job, name=job_name(self.tag, run.job),
                           limits=Limits(timeout=run.timeout, pending_until=pending_until,
                                         output_limit=run.output_limit))
        self._track(tracked)
        self._spawn(self._submit(tracked, run), f"sbatch {run.job}")
        self._start_polling()

    async def _submit(self, tracked: _Tracked, run: agent_protocol.Run) -> None:
        try:
            start_file = f"{self._output_base(tracked.name)}.start" if run.timeout else None
            script = batch_script(run, self.name, start_file)
            argv = sbatch_argv(self.options, run, name=tracked.name,
                               output=str(self._output_base(tracked.name)), limits=tracked.limits)
        except ValueError as exc:
            self._refused(tracked, f"cannot submit it to Slurm: {exc}")
            return
        async with self._submits:
            # the .out file exists from now until the end is acked (see _unacked)
            await asyncio.to_thread(_create, Path(f"{self._output_base(tracked.name)}.out"))
            result = await self.commands(argv, script)
        if result.returncode != 0:
            await self._squeue(None)        # raises SlurmUnreachable if the cluster is gone
            self._refused(tracked, f"sbatch refused it: {result.message()}")
            return
        try:
            tracked.job_id = parse_sbatch(result.stdout)
        except ValueError as exc:
            self._refused(tracked, str(exc))
            return
        self._by_id[tracked.job_id] = tracked
        self._deliver(agent_protocol.Started(job=tracked.word, pid=None, clock=self.clock(),
                                             batch_id=tracked.job_id))
        self._arm_pending(tracked)
        if tracked.cancel is not None:
            self._scancel(tracked)

    def _refused(self, tracked: _Tracked, reason: str) -> None:
        self._forget(tracked.word)
        self._deliver(agent_protocol.Error(reason=reason, job=tracked.word))

    def _on_kill(self, word: str) -> None:
        tracked = self._jobs.get(word)
        if tracked is None or tracked.ended:
            return
        self._cancel(tracked, Cancel.KILL)

    def _cancel(self, tracked: _Tracked, cause: Cancel) -> None:
        if tracked.cancel is not None:
            return
        tracked.cancel = cause
        if tracked.job_id is not None:
            self._scancel(tracked)

    def _scancel(self, tracked: _Tracked) -> None:
        async def scancel() -> None:
            result = await self.commands(["scancel", str(tracked.job_id)])
            if result.returncode != 0:
                log.warning("%s: scancel %s: %s", self.name, tracked.job_id, result.message())
            self._wake.set()
        self._spawn(scancel(), f"scancel {tracked.job_id}")

    # -- timers: the pending time and the timeout, to the second ----------------------------

    def _arm(self, tracked: _Tracked, wall_due: float) -> None:
        if tracked.timer is not None:
            tracked.timer.cancel()
        delay = max(0.0, wall_due - self.clock())
        tracked.timer = asyncio.get_running_loop().call_later(delay, self._wake.set)

    def _arm_pending(self, tracked: _Tracked) -> None:
        if tracked.limits.pending_until is not None:
            self._arm(tracked, tracked.limits.pending_until)

    # -- polling ------------------------------------------------------------------------------

    def _start_polling(self) -> None:
        if self._poller is None and self.is_open:
            self._poller = self._spawn(self._poll_loop(), "poll")

    async def _poll_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.poll_once()
            if self._bye and not any(not t.ended for t in self._jobs.values()):
                self._gone.set()
                return

    async def poll_once(self) -> None:
        """One squeue for every job of ours with a Slurm id (or, with none, one that shows
        the cluster still answers); then what each job's state calls for."""
        ids = [t.job_id for t in self._jobs.values() if t.job_id is not None and not t.ended]
        rows = await self._squeue(ids or None)
        if not ids:
            return
        seen = {row.job_id: row for row in rows}
        await self._note_starts(seen)
        now = self.clock()
        for job_id in ids:
            tracked = self._by_id.get(job_id)
            if tracked is None or tracked.ended:
                continue
            row = seen.get(job_id)
            if row is None:
                self._lose(tracked, f"Slurm no longer knows job {job_id} (it ended more than "
                                    "MinJobAge ago, or was purged)")
            elif not row.active:
                await self._report_end(tracked, row)
            else:
                self._check_limits(tracked, row, now)

    async def _note_starts(self, rows: dict[str, SlurmJob]) -> None:
        """The exact start of each newly running job with a timeout (its .start file, read
        in one thread for all of them)."""
        starting = [(tracked, row) for job_id, row in rows.items()
                    if (tracked := self._by_id.get(job_id)) is not None and row.active
                    and row.running and tracked.limits.timeout is not None
                    and tracked.started is None]
        if not starting:
            return
        recorded = await asyncio.to_thread(
            lambda: [_read_text(Path(f"{self._output_base(t.name)}.start")) for t, _ in starting])
        for (tracked, row), text in zip(starting, recorded):
            tracked.started = start_time(row, text)

    def _check_limits(self, tracked: _Tracked, row: SlurmJob, now: float) -> None:
        if tracked.cancel is not None:
            return
        if pending_expired(row, tracked.limits, now):
            log.info("%s: job %s still pending in Slurm (%s); cancelling it", self.name,
                     tracked.word, row.reason)
            self._cancel(tracked, Cancel.PENDING)
            return
        due = timeout_due(row, tracked.limits, tracked.started)
        if due is None:
            return
        if now >= due:
            self._cancel(tracked, Cancel.TIMEOUT)
        elif not tracked.timeout_armed:
            tracked.timeout_armed = True
            self._arm(tracked, due)

    def _lose(self, tracked: _Tracked, reason: str) -> None:
        tracked.ended = True
        self._forget(tracked.word)
        self._deliver(agent_protocol.Lost(jobs=(tracked.word,), reason=reason))

    async def _report_end(self, tracked: _Tracked, row: SlurmJob) -> None:
        tracked.ended = True
        if tracked.timer is not None:
            tracked.timer.cancel()
        result = verdict(row, tracked.cancel, tracked.limits)
        if result.outcome is None:
            self._lose(tracked, result.reason)
            return
        base = self._output_base(tracked.name)
        limit = tracked.limits.output_limit
        (out, out_size), (err, err_size) = await asyncio.gather(
            asyncio.to_thread(_read_head, Path(f"{base}.out"), limit),
            asyncio.to_thread(_read_head, Path(f"{base}.err"), limit))
        elapsed = (row.end - row.start) if row.start is not None and row.end is not None else 0.0
        self._deliver(agent_protocol.Ended(
            job=tracked.word, outcome=result.outcome, status=result.status,
            signal=result.signal, elapsed=max(0.0, elapsed),
            stdout=as_text(out), stderr=as_text(err),
            stdout_bytes=out_size, stderr_bytes=err_size,
            stdout_truncated=out_size > len(out), stderr_truncated=err_size > len(err),
            reason=result.reason))

    def _forget(self, word: str) -> None:
        tracked = self._jobs.pop(word, None)
        if tracked is None:
            return
        if tracked.job_id is not None:
            self._by_id.pop(tracked.job_id, None)
        if tracked.timer is not None:
            tracked.timer.cancel()
        base = self._output_base(tracked.name)
        for suffix in (".out", ".err", ".start"):
            try:
                os.unlink(f"{base}{suffix}")
            except OSError:
                pass


def _create(path: Path) -> None:
    path.touch()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")[:64]
    except OSError:
        return None


def _read_head(path: Path, limit: int) -> tuple[bytes, int]:
    """The first `limit` bytes of a file and its size ((b"", 0) when there is none)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return f.read(limit), size
    except OSError:
        return b"", 0


async def connect_slurm(name: str, options: SlurmOptions, *, slots: int | None, tag: str,
                        output_dir: Path, poll: float,
                        on_message: Callable[[SlurmLink, agent_protocol.Message], None],
                        on_lost: Callable[[SlurmLink, str], None],
                        commands: Commands = run_command) -> SlurmLink:
    """Check that the cluster answers (one squeue) and that the output directory exists;
    the link's hello offers `slots`. Raises ConnectFailure (UNREACHABLE) with Slurm's own
    message when it does not answer."""
    try:
        options.extra()
    except ValueError as exc:
        raise ConnectFailure(ConnectOutcome.UNREACHABLE, f"bad -sbatch options: {exc}") from None
    probe = await commands(["squeue", "-h", "--me", "-t", "all", "-O", "JobID"])
    if probe.returncode != 0:
        raise ConnectFailure(ConnectOutcome.UNREACHABLE, f"squeue failed: {probe.message()}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConnectFailure(ConnectOutcome.UNREACHABLE,
                             f"cannot make the output directory {output_dir}: {exc}") from None
    version = await commands(["sbatch", "--version"])
    hello = agent_protocol.Hello(
        version=agent_protocol.PROTOCOL_VERSION, host=name, pid=os.getpid(), clock=time.time(),
        slots=slots or DEFAULT_SLOTS,
        agent=f"pcontrol's Slurm driver ({version.stdout.strip() or 'sbatch'}"
              f"{', ' + shlex.join(options.extra()) if options.sbatch else ''})")
    return SlurmLink(name=name, hello=hello, options=options, tag=tag, output_dir=output_dir,
                     poll=poll, on_message=on_message, on_lost=on_lost, commands=commands)
