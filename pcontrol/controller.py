"""The controller: the job table, dispatch, agents' reports, and events.

Everything here runs on the daemon's one event loop and mutates state synchronously, so a
command handler sees (and leaves) a consistent picture. Hosts and their connections live
in `hosts.HostTable`, which calls back here (HostListener) when a host comes up, is lost,
or an agent reports; dispatch decisions come from the indexes in `dispatch`; every change
is marked in the journal (flushed once per loop turn) and sent to subscribers as an event.

Life of a job:   submit -> PENDING -> (slot) -> BUSY -> (agent's `ended`) -> DONE
                          PENDING -> (pending timeout) -> DONE/PENDING
                          BUSY -> (host lost) -> DONE/DOWN
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pclient import protocol as agent_protocol

from .config import ControllerConfig
from .dispatch import DispatchIndex, FreeHosts, Placement, TimerHeap
from .errors import ConflictError, NotFoundError, UsageError
from .hosts import HostTable, validate_host_name
from .journal import Journal
from .model import DEFAULT_OUTPUT_LIMIT, Host, HostState, Job, JobState, Outcome
from .wire import Event, EventKind

__all__ = ["Controller", "ControllerConfig", "JobSpec", "Subscriber"]

log = logging.getLogger(__name__)

_AGENT_OUTCOMES = {
    agent_protocol.Outcome.EXIT: Outcome.EXIT,
    agent_protocol.Outcome.CRASH: Outcome.CRASH,
    agent_protocol.Outcome.TIMEOUT: Outcome.TIMEOUT,
    agent_protocol.Outcome.KILLED: Outcome.KILLED,
}


class Subscriber(Protocol):
    """A client connection that ran `subscribe`."""

    owner: str | None

    def send_event(self, event: Event) -> None: ...


@dataclass
class JobSpec:
    """What `job` asks for; validated by `Controller.submit`."""

    argv: list[str]
    host: str | None = None
    required: bool = False
    timeout: float | None = None
    pending: float | None = None
    priority: int = 0
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    task: str | None = None
    output_limit: int = DEFAULT_OUTPUT_LIMIT


class Controller:
    """Jobs and dispatch over a HostTable; implements HostListener for it."""

    def __init__(self, journal: Journal | None = None, config: ControllerConfig | None = None,
                 *, clock: Callable[[], float] = time.time):
        self.config = config or ControllerConfig()
        self.journal = journal
        self.clock = clock
        self.host_table = HostTable(self.config, self, clock)
        self.jobs: dict[int, Job] = {}
        self._index = DispatchIndex()
        self._free = FreeHosts()
        self._timers = TimerHeap()
        self._timer_handle: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._by_owner: dict[str, set[int]] = collections.defaultdict(set)
        self._job_counts: collections.Counter[JobState] = collections.Counter()
        self._outcome_counts: collections.Counter[Outcome] = collections.Counter()
        self._subscribers: set[Subscriber] = set()
        self._event_seq = 0
        self._next_id = 1
        self._stopping = False
        self.started_at = self.clock()
        self.stopped = asyncio.Event()

    @property
    def hosts(self) -> dict[str, Host]:
        return self.host_table.hosts

    # == life of the controller =============================================================

    async def start(self) -> None:
        """Load the journal, start the heartbeat, connect the enabled hosts."""
        if self.journal is not None:
            self._load()
        self.host_table.start()

    def _load(self) -> None:
        assert self.journal is not None
        loaded = self.journal.load()
        self._next_id = loaded.next_job_id
        self.host_table.load(loaded.hosts)
        now = self.clock()
        for job in loaded.jobs:
            if job.state is JobState.BUSY:
                job.state, job.outcome, job.ended = JobState.DONE, Outcome.DOWN, now
                job.reason = f"pcontrol stopped while it ran on {job.ran_on}"
                self.journal.job_changed(job)
            self._register(job)
            if job.state is JobState.PENDING:
                self._enqueue(job, now)
            elif job.harvested is not None:
                self._push_timer(job.harvested + self.config.retention - now, ("forget", job.id))
        log.info("journal: %d hosts, %d jobs (%d pending)", len(self.hosts), len(self.jobs),
                 len(self._index))

    async def stop(self) -> None:
        """Stop: end every agent (their running jobs stay BUSY in the journal and are
        reported DOWN by the next start), flush the journal."""
        if self._stopping:
            await self.stopped.wait()
            return
        self._stopping = True
        log.info("stopping")
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        await self.host_table.stop()
        if self.journal is not None:
            self.journal.flush()
        self.stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # == subscribers and events =============================================================

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _emit(self, kind: EventKind, data: dict[str, Any], owner: str | None = None) -> None:
        if not self._subscribers:
            return
        self._event_seq += 1
        event = Event(kind, data, self._event_seq)
        for subscriber in list(self._subscribers):
            if kind is EventKind.JOB and subscriber.owner is not None \
                    and subscriber.owner != owner:
                continue
            try:
                subscriber.send_event(event)
            except Exception:
                log.exception("dropping a subscriber whose send failed")
                self._subscribers.discard(subscriber)

    def _job_changed(self, job: Job) -> None:
        if self.journal is not None:
            self.journal.job_changed(job)
        if self._subscribers:
            self._emit(EventKind.JOB, job.to_record(), job.owner)

    def host_changed(self, host: Host) -> None:
        """HostListener: a host record changed."""
        if self.journal is not None:
            self.journal.host_changed(host)
        if self._subscribers:
            self._emit(EventKind.HOST, host.to_record())

    # == timers =============================================================================

    def _push_timer(self, delay: float, key: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, delay)
        self._timers.push(due, key)
        if self._timer_due is None or due < self._timer_due:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        due = self._timers.next_due()
        self._timer_due = due
        if due is not None and not self._stopping:
            self._timer_handle = asyncio.get_running_loop().call_at(due, self._timers_fired)

    def _timers_fired(self) -> None:
        self._timer_handle = None
        for kind, job_id in self._timers.pop_due(asyncio.get_running_loop().time()):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if kind == "pending" and job.state is JobState.PENDING:
                self._index.remove(job.id)
                self._finish(job, Outcome.PENDING, reason=self._pending_reason(job))
            elif kind == "forget" and job.harvested is not None:
                self._forget(job)
        self._arm_timer()

    def _pending_reason(self, job: Job) -> str:
        reason = f"not started within its pending time of {job.pending_timeout:g} s"
        if job.host is not None and job.required:
            host = self.hosts.get(job.host)
            state = host.state.value if host else "not defined"
            reason += f" (required host {job.host} is {state})"
        return reason

    # == jobs ===============================================================================

    def _register(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._job_counts[job.state] += 1
        if job.outcome is not None:
            self._outcome_counts[job.outcome] += 1
        if job.owner is not None:
            self._by_owner[job.owner].add(job.id)

    def _set_state(self, job: Job, state: JobState) -> None:
        self._job_counts[job.state] -= 1
        job.state = state
        self._job_counts[state] += 1

    def _enqueue(self, job: Job, now: float) -> None:
        self._index.add(Placement(job.id, job.priority, job.host, job.required))
        deadline = job.pending_deadline
        if deadline is not None:
            self._push_timer(deadline - now, ("pending", job.id))

    def submit(self, spec: JobSpec) -> Job:
        """Accept a job; start it at once when a slot it may use is free."""
        if self.journal is not None and self.journal.failure:
            raise ConflictError(f"not accepting jobs: {self.journal.failure}")
        if self._stopping:
            raise ConflictError("not accepting jobs: pcontrol is stopping")
        if not spec.argv:
            raise UsageError("a job needs a command (ARGV)")
        if spec.output_limit < 0:
            raise UsageError("-output-limit must be >= 0")
        if spec.required and spec.host is None:
            raise UsageError("-required needs -host H")
        if spec.host is not None:
            validate_host_name(spec.host)
        self._check_encodable(spec)
        now = self.clock()
        job = Job(id=self._next_id, argv=list(spec.argv), submitted=now, host=spec.host,
                  required=spec.required, timeout=spec.timeout, pending_timeout=spec.pending,
                  priority=spec.priority, cwd=spec.cwd, env=dict(spec.env), owner=spec.owner,
                  task=spec.task, output_limit=spec.output_limit)
        self._next_id += 1
        if self.journal is not None:
            self.journal.next_job_id_changed(self._next_id)
        self._register(job)
        if job.required and job.host not in self.hosts:
            self._finish(job, Outcome.DOWN, reason=f"required host {job.host} is not defined")
            return job
        placement = Placement(job.id, job.priority, job.host, job.required)
        name = self._free.pick(placement)
        if name is not None:
            self._start(job, self.hosts[name])
        else:
            self._enqueue(job, now)
            self._job_changed(job)
        return job

    @staticmethod
    def _check_encodable(spec: JobSpec) -> None:
        """Refuse a job whose `run` line the agent would refuse as too long."""
        size = sum(map(len, spec.argv)) + len(spec.cwd or "") \
            + sum(len(k) + len(v) for k, v in spec.env.items())
        if size * 12 + 4096 < agent_protocol.MAX_LINE:   # \uXXXX escapes at worst
            return                                       # surely fits: skip the encode
        try:
            agent_protocol.encode(agent_protocol.Run(
                job="0", argv=tuple(spec.argv), cwd=spec.cwd, env=spec.env,
                timeout=spec.timeout, output_limit=spec.output_limit))
        except (ValueError, agent_protocol.ProtocolError) as exc:
            raise UsageError(f"job cannot be sent to an agent: {exc}") from None

    def _start(self, job: Job, host: Host) -> None:
        assert host.free_slots > 0
        self._index.remove(job.id)
        self._timers.cancel(("pending", job.id))
        self._set_state(job, JobState.BUSY)
        job.ran_on = host.name
        host.running.add(job.id)
        self.host_table.send(host, agent_protocol.Run(
            job=str(job.id), argv=tuple(job.argv), cwd=job.cwd, env=job.env,
            timeout=job.timeout, output_limit=job.output_limit))
        self._update_load(host)
        self._free.rotate(host.name)
        self._job_changed(job)

    def _finish(self, job: Job, outcome: Outcome, *, reason: str = "",
                status: int | None = None, signal: int | None = None) -> None:
        self._set_state(job, JobState.DONE)
        job.outcome = outcome
        self._outcome_counts[outcome] += 1
        job.status, job.signal, job.reason = status, signal, reason
        job.ended = self.clock()
        self._timers.cancel(("pending", job.id))
        self._job_changed(job)

    def _forget(self, job: Job) -> None:
        del self.jobs[job.id]
        self._job_counts[job.state] -= 1
        if job.outcome is not None:
            self._outcome_counts[job.outcome] -= 1
        if job.owner is not None:
            owned = self._by_owner.get(job.owner)
            if owned is not None:
                owned.discard(job.id)
                if not owned:
                    del self._by_owner[job.owner]
        self._timers.cancel(("pending", job.id))
        self._timers.cancel(("forget", job.id))
        if self.journal is not None:
            self.journal.job_forgotten(job.id)

    def job(self, job_id: int | str) -> Job:
        try:
            number = int(job_id)
        except (TypeError, ValueError):
            raise UsageError(f'expected a job id but got "{job_id}"') from None
        job = self.jobs.get(number)
        if job is None:
            raise NotFoundError(f"no job {number}")
        return job

    def jobs_where(self, *, state: JobState | None = None, owner: str | None = None,
                   host: str | None = None) -> list[Job]:
        ids: Iterable[int] = (sorted(self._by_owner.get(owner, ())) if owner is not None
                              else self.jobs)
        found = []
        for job_id in ids:
            job = self.jobs[job_id]
            if state is not None and job.state is not state:
                continue
            if host is not None and job.ran_on != host and job.host != host:
                continue
            found.append(job)
        return found

    @staticmethod
    def _check_owner(job: Job, action: str, force: bool, owner: str | None) -> None:
        if job.owner is None or force or owner == job.owner:
            return
        task = f'task "{job.task}"' if job.task else "a task"
        raise ConflictError(f'job {job.id} belongs to {task} of scheduler "{job.owner}"; '
                            f"{action} it from there, or use -force")

    def kill(self, job_id: int | str, *, force: bool = False, owner: str | None = None) -> str:
        job = self.job(job_id)
        self._check_owner(job, "kill", force, owner)
        if job.state is JobState.DONE:
            raise ConflictError(f"job {job.id} has already ended ({job.outcome.value})")
        if job.state is JobState.PENDING:
            self._index.remove(job.id)
            job.kill_requested = True
            self._finish(job, Outcome.KILLED, reason="killed while pending")
            return f"job {job.id} killed (it was pending)"
        if job.kill_requested:
            return f"job {job.id} is already being killed"
        job.kill_requested = True
        host = self.hosts.get(job.ran_on or "")
        if host is not None:
            self.host_table.send(host, agent_protocol.Kill(job=str(job.id)))
        self._job_changed(job)
        return f"job {job.id} is being killed on {job.ran_on}"

    def delete(self, job_id: int | str, *, force: bool = False,
               owner: str | None = None) -> str:
        job = self.job(job_id)
        self._check_owner(job, "delete", force, owner)
        if job.state is not JobState.DONE:
            raise ConflictError(f"job {job.id} is {job.state.value}; kill it first "
                                "(delete only removes finished jobs)")
        self._forget(job)
        return f"job {job.id} deleted"

    def harvest(self, job_ids: list[str], *, owner: str | None = None) -> list[dict[str, Any]]:
        """The owner has collected these finished jobs; keep them `retention` s, then forget.

        Idempotent: a job already harvested, or already forgotten after its harvest, is fine.
        All ids are checked before any is marked, so a refusal changes nothing.
        """
        results: list[dict[str, Any]] = []
        marks: list[Job] = []
        for word in job_ids:
            try:
                number = int(word)
            except ValueError:
                raise UsageError(f'expected a job id but got "{word}"') from None
            job = self.jobs.get(number)
            if job is None:
                if 0 < number < self._next_id:
                    results.append({"id": number, "harvested": True, "known": False})
                    continue
                raise NotFoundError(f"no job {number}")
            if owner is not None and job.owner is not None and job.owner != owner:
                raise ConflictError(f'job {job.id} belongs to scheduler "{job.owner}", '
                                    f'not "{owner}"')
            if job.state is not JobState.DONE:
                raise ConflictError(f"job {job.id} is {job.state.value}; only finished jobs "
                                    "can be harvested")
            results.append({"id": job.id, "harvested": True, "known": True})
            if job.harvested is None:
                marks.append(job)
        now = self.clock()
        for job in marks:
            job.harvested = now
            self._job_changed(job)
            self._push_timer(self.config.retention, ("forget", job.id))
        return results

    # == HostListener: what hosts mean for jobs ==============================================

    def agent_message(self, host: Host, message: agent_protocol.Message) -> None:
        if isinstance(message, agent_protocol.Started):
            job = self._running_job(host, message.job)
            if job is not None:
                job.pid, job.started = message.pid, self.clock()
                self._job_changed(job)
        elif isinstance(message, agent_protocol.Ended):
            self._on_ended(host, message)
        elif isinstance(message, agent_protocol.Error):
            self._on_agent_error(host, message)
        else:
            log.warning("%s: unexpected %s message from the agent", host.name, message.TYPE)

    def host_connected(self, host: Host) -> None:
        self._update_load(host)
        self._fill(host)

    def host_lost(self, host: Host, reason: str) -> None:
        """Its running jobs end DOWN; it takes no more jobs."""
        self._end_running(host, Outcome.DOWN, f"host {host.name} went down: {reason}")

    def _end_running(self, host: Host, outcome: Outcome, reason: str) -> None:
        for job_id in sorted(host.running):
            job = self.jobs.get(job_id)
            if job is not None and job.state is JobState.BUSY:
                self._finish(job, outcome, reason=reason)
        host.running.clear()
        self._free.discard(host.name)

    def _running_job(self, host: Host, job_word: str) -> Job | None:
        try:
            job_id = int(job_word)
        except ValueError:
            job_id = -1
        if job_id not in host.running:
            log.warning("%s: the agent reports job %r, which it does not run for us",
                        host.name, job_word)
            return None
        return self.jobs.get(job_id)

    def _on_ended(self, host: Host, message: agent_protocol.Ended) -> None:
        job = self._running_job(host, message.job)
        if job is None:
            return
        host.running.discard(job.id)
        outcome = _AGENT_OUTCOMES[message.outcome]
        reason = message.reason or self._default_reason(job, outcome, message)
        job.elapsed = message.elapsed
        job.stdout, job.stderr = message.stdout, message.stderr
        job.stdout_bytes, job.stderr_bytes = message.stdout_bytes, message.stderr_bytes
        job.stdout_truncated = message.stdout_truncated
        job.stderr_truncated = message.stderr_truncated
        self._finish(job, outcome, reason=reason, status=message.status, signal=message.signal)
        self._slot_freed(host)

    @staticmethod
    def _default_reason(job: Job, outcome: Outcome, message: agent_protocol.Ended) -> str:
        if outcome is Outcome.EXIT:
            return f"exited with status {message.status}"
        if outcome is Outcome.CRASH:
            return f"ended by signal {message.signal}"
        if outcome is Outcome.TIMEOUT:
            return f"ran longer than its timeout of {job.timeout:g} s"
        return "killed on request" if job.kill_requested else "killed by the agent"

    def _on_agent_error(self, host: Host, message: agent_protocol.Error) -> None:
        log.warning("%s: the agent reports an error: %s (job %s) %s", host.name,
                    message.reason, message.job, message.excerpt)
        if message.job is None:
            return
        job = self._running_job(host, message.job)
        if job is not None and job.started is None:
            host.running.discard(job.id)
            self._finish(job, Outcome.DOWN, reason=f"the agent refused it: {message.reason}")
            self._slot_freed(host)

    # == hosts: dispatch ====================================================================

    def _update_load(self, host: Host) -> None:
        """Keep the free-host set and IDLE/BUSY in step with the host's running jobs."""
        if host.state not in (HostState.IDLE, HostState.BUSY):
            self._free.discard(host.name)
            return
        if host.free_slots > 0:
            if host.name not in self._free:
                self._free.add(host.name)
            self.host_table.set_state(host, HostState.IDLE)
        else:
            self._free.discard(host.name)
            self.host_table.set_state(host, HostState.BUSY)

    def _slot_freed(self, host: Host) -> None:
        self._update_load(host)
        self._fill(host)

    def _fill(self, host: Host) -> None:
        """Give each free slot of `host` the best pending job it may run."""
        while host.free_slots > 0:
            job_id = self._index.pop_best_for(host.name)
            if job_id is None:
                return
            self._start(self.jobs[job_id], host)

    # == hosts: commands that touch jobs ====================================================

    def host(self, name: str) -> Host:
        return self.host_table.get(name)

    def agent_argv(self, host: Host) -> list[str]:
        return self.host_table.agent_argv(host)

    def heartbeat_tick(self) -> None:
        self.host_table.heartbeat_tick()

    def add_host(self, name: str, *, slots: int | None = None,
                 connect: str | None = None) -> Host:
        return self.host_table.add(name, slots=slots, connect=connect)

    def _refuse_if_running(self, host: Host, action: str, force: bool) -> None:
        if host.running and not force:
            ids = ", ".join(str(i) for i in sorted(host.running))
            raise ConflictError(f'host "{host.name}" is running jobs {ids}; '
                                f"{action} would kill them; use -force to do it anyway")

    def delete_host(self, name: str, *, force: bool = False) -> str:
        host = self.host(name)
        self._refuse_if_running(host, "deleting it", force)
        self._end_running(host, Outcome.KILLED, f"host {name} was deleted")
        self.host_table.remove(host)
        for job_id in self._index.required_on(name):
            self._index.remove(job_id)
            self._finish(self.jobs[job_id], Outcome.DOWN,
                         reason=f"required host {name} was deleted")
        if self.journal is not None:
            self.journal.host_forgotten(name)
        record = host.to_record()
        record["deleted"] = True
        self._emit(EventKind.HOST, record)
        return f"host {name} deleted"

    def host_off(self, name: str, *, force: bool = False) -> str:
        host = self.host(name)
        if not host.enabled:
            return f"host {name} is already off"
        self._refuse_if_running(host, "switching it off", force)
        self._end_running(host, Outcome.KILLED, f"host {name} was switched off")
        self.host_table.switch_off(host)
        return f"host {name} is off"

    def host_on(self, name: str) -> str:
        host = self.host(name)
        if host.enabled:
            return f"host {name} is already on ({host.state.value})"
        self.host_table.switch_on(host)
        return f"host {name} is on; connecting"

    def host_retry(self, name: str) -> str:
        host = self.host(name)
        if not host.enabled:
            raise ConflictError(f'host "{name}" is OFF; use "host on {name}"')
        if host.state is not HostState.DOWN:
            return f"host {name} is {host.state.value}; nothing to retry"
        self.host_table.retry(host)
        return f"host {name}: connecting"

    # == status =============================================================================

    def status(self) -> dict[str, Any]:
        host_counts = collections.Counter(h.state.value for h in self.hosts.values())
        connected = [h for h in self.hosts.values()
                     if h.state in (HostState.IDLE, HostState.BUSY)]
        return {
            "pid": os.getpid(),
            "uptime": round(self.clock() - self.started_at, 3),
            "hosts": {state.value: host_counts.get(state.value, 0) for state in HostState},
            "jobs": {state.value: self._job_counts.get(state, 0) for state in JobState},
            "outcomes": {o.value: self._outcome_counts.get(o, 0) for o in Outcome},
            "slots": {"total": sum(h.agent_slots for h in connected),
                      "busy": sum(len(h.running) for h in connected)},
            "subscribers": len(self._subscribers),
            "journal": {"path": str(self.journal.path) if self.journal else None,
                        "failure": self.journal.failure if self.journal else None},
        }
