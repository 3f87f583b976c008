"""The controller: the job table, dispatch, agents' reports, and events.

Everything here runs on the daemon's one event loop and mutates state synchronously, so a
command handler sees (and leaves) a consistent picture. Hosts and their connections live
in `hosts.HostTable`, which calls back here (HostListener) when a host comes up, is lost,
or an agent reports; dispatch decisions come from the indexes in `dispatch`.

Nothing is told before it is written: events, messages to agents, acks and the reply to
`job` wait in the outbox (outbox.py) until the journal has written the changes before them.
While the journal fails (full disk) new jobs are refused, a job whose submission did not
reach the disk is withdrawn (nobody was told of it), and everything else waits in the
outbox until writes work again. What hosts and agents' reports mean for jobs (held, lost,
retried, reconciled) is in reports.py.

Work per loop turn is bounded whatever the numbers of hosts and jobs, so that a `status`
is answered within milliseconds while 100,000 jobs wait and hundreds of agents report:
dispatch decisions are O(log n) (dispatch.py, whose heaps are compacted a step at a time),
a host with many free slots gets at most FILL_BATCH jobs per turn (the rest in the turns
after), the journal writes a batch per turn (journal.py), the outbox sends a batch per turn
(outbox.py), and at most TIMER_BATCH timers (pending timeouts, forgetting harvested jobs)
fire per turn. A host's IDLE/BUSY swings are not written: the journal keeps only what of a
host survives a restart (its configuration).

What operators ask of jobs and hosts (kill, delete, harvest, host delete/off/on/retry, what
`shutdown` would do), with its `-force` safety, is in operations.py.

Life of a job:   submit -> PENDING -> (slot) -> BUSY -> (agent's `ended`) -> DONE
                          PENDING -> (pending timeout) -> DONE/PENDING
                          BUSY -> (host lost, agent dead) -> DONE/DOWN, or PENDING again
                                  while -retry allows
                          BUSY -> (host lost, agent may survive) -> BUSY, unknown: waits
                                  for the host's next agent to report it (reconcile), else
                                  after the grace -> DONE/DOWN (or PENDING again)

After a restart the journal's BUSY jobs are unknown in the same way: the next agent on
their host takes over the surviving agent's jobs and reports which run and which finished
(with their real outcome); the rest end DOWN.

Finished jobs are forgotten (from memory and the journal) `retention` s after their owner
harvested them, or, with no owner, `unowned_retention` s after they ended.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pclient import protocol as agent_protocol

from .adoption import PoolAdoption
from .clockprobe import ClockProbes
from .config import ControllerConfig
from .dispatch import DispatchIndex, ForgetQueue, FreeHosts, Placement, TimerHeap
from .errors import ConflictError, NotFoundError, UnavailableError, UsageError
from .fetches import OutputFetches
from .hosts import HostOpener, HostTable, validate_host_name
from .journal import Journal, JournalFailed, host_config
from .loadwatch import LoopWatch, process_memory
from .model import DEFAULT_OUTPUT_LIMIT, Host, HostState, Job, JobState, Outcome, RetainedJob, Sharing
from .outbox import Outbox
from .operations import OperatorRequests
from .reports import AgentReports
from .secret import agent_token
from .alerts import Alerter, AlertNotice
from .syncrun import SyncRuns
from .wire import Event, EventKind, Interest, interest_of, job_interest

if TYPE_CHECKING:  # the pull hub is loaded by the daemon only when it has a pull listener
    from .pull import PullHub
    from .slurmstate import SlurmOptions  # with the first Slurm host (pcontrol.hosts, verbs)

__all__ = ["Controller", "ControllerConfig", "JobSpec", "Subscriber"]

log = logging.getLogger(__name__)


def _harvest_order(job: Job) -> float:
    """Loaded jobs' order: the harvested ones by their harvest, after the others."""
    return job.harvested if job.harvested is not None else float("-inf")


class Subscriber(Protocol):
    """A client connection that ran `subscribe`."""

    owner: str | None
    interests: frozenset[Interest] | None  #: what it asked for (`subscribe -only`); None: all
    brief: bool  #: job events carry the short record (`subscribe -brief`: Job.to_brief)

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
    retry: int = 0
    spool: bool = False
    mail: bool = False
    inbox: tuple[str, ...] = ()
    noskew: bool = False      # -noskew: never on a SKEWED host (skew.py)
    not_before: float | None = None   # -not-before: its planned start (wall clock); held until then
    id: int | None = None     # -id: chosen by a pool's scheduler, under its token (adoption.py)


#: A job's end event carries its stdout and stderr when together they are at most this many
#: characters (most short jobs); a longer output is fetched by whoever wants it.
END_OUTPUT_INLINE = 8192
#: At most this many pending jobs that avoid a host are passed over per fill of that host.
AVOID_SCAN = 32
#: At most this many timers fire per loop turn (the rest fire in the turns after); a
#: pending timeout ending a job costs ~30 us.
TIMER_BATCH = 128
#: At most this many jobs start on one host per loop turn (the rest in the turns after).
FILL_BATCH = 64


class Controller(AgentReports, OperatorRequests, PoolAdoption):
    """Jobs and dispatch over a HostTable; implements HostListener for it.

    `secret` (see pcontrol.secret) lets the agents of a later pcontrol with the same secret
    take over this one's running jobs; without it the agents cannot survive a restart.
    `clock` is the wall clock, for the times shown in records; periods use the loop's.
    `opener` (hosts.HostOpener): what starts hosts' runners (None: real agents; `sched
    --simulate`: simulated ones).
    """

    def __init__(self, journal: Journal | None = None, config: ControllerConfig | None = None,
                 *, clock: Callable[[], float] = time.time, secret: bytes | None = None,
                 opener: HostOpener | None = None):
        self.config = config or ControllerConfig()
        self.journal = journal
        self.clock = clock
        self.host_table = HostTable(self.config, self, clock,
                                    token=agent_token(secret) if secret else None, opener=opener)
        self.jobs: dict[int, Job | RetainedJob] = {}
        """Every job, a harvested one in its compact form (model.RetainedJob, read-only)."""
        self._sharing = Sharing()          # what retained jobs share (RetainedJob.of)
        self.fetches = OutputFetches()
        self._index = DispatchIndex()
        self._free = FreeHosts()
        self._skewed: set[str] = set()     # SKEWED hosts (skew.py): no -noskew job goes there
        self._later: set[int] = set()      # PENDING jobs held until their planned start (_hold_until_planned)
        self._planned: dict[str, set[int]] = collections.defaultdict(set)  # host -> its -not-before jobs
        self._timers = TimerHeap()
        self._forgets = ForgetQueue()      # harvested jobs, by the end of their retention
        self._timer_handle: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._by_owner: dict[str, set[int]] = collections.defaultdict(set)
        self._job_counts: collections.Counter[JobState] = collections.Counter()
        self._outcome_counts: collections.Counter[Outcome] = collections.Counter()
        self._subscribers: set[Subscriber] = set()
        self._event_seq = 0
        self._next_id = 1
        self._stopping = False
        self.loop_watch = LoopWatch()
        self.kill_on_stop = False
        self.alerter = Alerter(None)
        """Alerts (alerts.py): the daemon's, with its mail settings; tests' log only."""
        self.alerter.on_alert.append(self.alerted)
        self.pull: PullHub | None = None
        """The pull probes' hub (pull.py), when the daemon has a pull listener."""
        """`shutdown -kill`: stop() ends every job instead of leaving them to the agents."""
        self.started_at = self.clock()
        self._started_mono = time.monotonic()
        self.output_requests = 0  # requests for a finished job's output (check job -output, stdout, stderr, output)
        self.stopped = asyncio.Event()
        self._connected: set[str] = set()
        self._refill: set[str] = set()         # hosts whose fill goes on next turn
        self._host_configs: dict[str, dict[str, Any]] = {}    # as last journaled
        self._outbox = Outbox(lambda: self.journal, self._send_event, self._send_agent)
        self.clocks = ClockProbes(self.host_table.send, clock)
        """Clock offsets of the agents, measured over their links (clockprobe.py)."""
        self.syncs = SyncRuns(lambda: self.hosts, self.add_host, self.host_table.send, self.clocks,
                              connect_timeout=self.config.connect_timeout, clock=clock)
        """Synchronized runs under way (syncrun.py); not journaled."""
        if journal is not None:
            journal.on_written.append(self._outbox.written)

    @property
    def hosts(self) -> dict[str, Host]:
        return self.host_table.hosts

    # == life of the controller =============================================================

    async def start(self, *, watch_loop: bool = True) -> None:
        """Load the journal, start the heartbeat, connect the enabled hosts, and (unless
        `watch_loop` is false: on sched --simulate's virtual time it would mean nothing)
        measure the loop's responsiveness."""
        if self.journal is not None:
            self._load()
        self.host_table.start()
        if watch_loop:
            self.loop_watch.start()

    def _load(self) -> None:
        assert self.journal is not None
        loaded = self.journal.load()
        self._next_id = loaded.next_job_id
        self.host_table.load(loaded.hosts)
        now = self.clock()
        unknown = []
        loaded.jobs.sort(key=_harvest_order)    # so that their forgets are queued in order
        for job in loaded.jobs:
            if self.in_pool and job.state is not JobState.DONE:
                self._left_to_pool(job)  # adoption.py: the pool's leader adopts it, if it still runs
                continue
            if RetainedJob.keeps(job):
                job = RetainedJob.of(job, self._sharing)
            self._register(job)
            if job.state is JobState.PENDING:
                if not self._hold_until_planned(job, now):
                    self._enqueue(job, now)
            elif job.state is JobState.BUSY:
                unknown.append(job)
            elif job.delete_requested:
                self._forget(job)
            else:
                self._keep_finished(job, now)
        for job in unknown:
            host = self.hosts.get(job.ran_on or "")
            if host is None or not host.enabled:
                where = f"host {job.ran_on} is " + ("no longer defined" if host is None else "off")
                self._job_lost(job, f"pcontrol restarted while it ran; {where}")
            else:
                self._hold(host, job, job.unknown_since or now)
        log.info("journal: %d hosts, %d jobs (%d pending, %d awaiting their agent's report)",
                 len(self.hosts), len(self.jobs), len(self._index),
                 sum(len(h.held) for h in self.hosts.values()))

    async def stop(self, *, kill: bool | None = None) -> None:
        """Stop, flushing the journal last.

        By default (kill False) the agents are hung up on and keep their jobs for their
        lease; the jobs stay BUSY in the journal and the next start reconciles them with
        what its agents report. kill=True (`shutdown -kill`, or `kill_on_stop`) ends every
        job: pending ones at once, running ones through `bye` (agents kill and report
        them); all end KILLED.
        """
        if self._stopping:
            await self.stopped.wait()
            return
        kill = self.kill_on_stop if kill is None else kill
        self._stopping = True
        log.info("stopping%s", " and killing every job" if kill else "; jobs are left to "
                 "their agents' lease")
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        self.loop_watch.stop()
        self.clocks.cancel()
        if kill:
            for job_id in list(self._index_ids()):
                self._index.remove(job_id)
                self._finish(self.jobs[job_id], Outcome.KILLED, reason="pcontrol stop -kill")
        self._drain()           # runs and acks decided so far go out before we hang up
        await self.host_table.stop(kill=kill)
        if kill:
            for job in self.jobs_where(state=JobState.BUSY):
                self._finish(job, Outcome.KILLED,
                             reason=f"pcontrol stop -kill (no report from {job.ran_on})")
            for host in self.hosts.values():
                host.running.clear()
                host.held.clear()
        self._drain()
        self.stopped.set()

    def _drain(self) -> None:
        """Write everything now (however many batches) and send what that covers."""
        if self.journal is not None:
            self.journal.flush()
        self._outbox.release()

    def _index_ids(self) -> list[int]:
        return [job.id for job in self.jobs.values() if job.state is JobState.PENDING]

    @property
    def stopping(self) -> bool:
        return self._stopping

    # == subscribers and events =============================================================

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def _emit(self, kind: EventKind, data: dict[str, Any] | None, owner: str | None = None,
              brief: dict[str, Any] | None = None) -> None:
        if self._subscribers:
            self._outbox.event(kind, data, owner, brief)

    def alerted(self, notice: AlertNotice) -> None:
        """Alerter listener: an episode's alert or recovery goes to the subscribers (not a
        one-off, which a script sent: a script reacting to alerts would hear its own)."""
        if notice.condition:
            self._emit(EventKind.ALERT, notice.to_record())

    def _send_event(self, kind: EventKind, data: dict[str, Any] | None, owner: str | None,
                    brief: dict[str, Any] | None = None) -> None:
        """Fan an event out. A job's change comes in the forms its subscribers asked for when
        it was made (`data`, the whole record; `brief`, the short one); a subscriber that came
        since gets the form there is."""
        self._event_seq += 1
        whole = Event(kind, data, self._event_seq) if data is not None else None
        short = Event(kind, brief, self._event_seq) if brief is not None else whole
        whole = whole or short
        assert whole is not None and short is not None
        interest = interest_of(kind, whole.data)
        for subscriber in list(self._subscribers):
            if kind is EventKind.JOB and subscriber.owner is not None \
                    and subscriber.owner != owner:
                continue
            if subscriber.interests is not None and interest not in subscriber.interests:
                continue
            try:
                subscriber.send_event(short if subscriber.brief else whole)
            except Exception:
                log.exception("dropping a subscriber whose send failed")
                self._subscribers.discard(subscriber)

    # == the outbox: written first, told after ===============================================

    def _send_agent(self, name: str, message: agent_protocol.Message) -> None:
        host = self.hosts.get(name)
        if host is not None and not self.host_table.send(host, message) \
                and isinstance(message, agent_protocol.Drop):
            host.undropped.add(message.job)   # else its spool files would stay for good

    def _to_agent(self, host: Host, message: agent_protocol.Message) -> None:
        self._outbox.agent(host.name, message)

    def _ack(self, host: Host, job_word: str) -> None:
        self._outbox.ack(host.name, job_word)

    async def durable(self) -> None:
        """Return once every change made so far is in the journal (and told)."""
        if self.journal is None and self._outbox.empty:
            return
        await self._outbox.durable()

    def _job_changed(self, job: Job, *, lazy: bool = False) -> None:
        """`lazy`: nobody waits for the journal to have this change (Journal.job_changed)."""
        if self.journal is not None:
            self.journal.job_changed(job, lazy=lazy)
        if self._subscribers:
            whole, brief = self._forms_wanted(job)
            if whole or brief:
                # A job's end carries its output when it is short, so that its owner need not
                # ask for it (`check job -output`): a record holding "stdout" holds all of it.
                inline = job.state is JobState.DONE and job.harvested is None \
                    and len(job.stdout) + len(job.stderr) <= END_OUTPUT_INLINE
                self._emit(EventKind.JOB, job.to_record(output=inline) if whole else None, job.owner,
                           job.to_brief(output=inline) if brief else None)

    def _forms_wanted(self, job: Job) -> tuple[bool, bool]:
        """Which records of this change of the job the subscribers take (as _send_event will
        judge it): the whole one, the short one (`subscribe -brief`). A scheduler subscribes to
        starts and ends only, briefly: the record of each of the other changes (~4 a job) is
        not made at all, and the whole one never."""
        interest = job_interest(job.state._value_, job.harvested, job.pid, job.kill_requested,
                                job.unknown_since)
        whole = brief = False
        for s in self._subscribers:
            if (s.owner is None or s.owner == job.owner) and (s.interests is None or interest in s.interests):
                if s.brief:
                    brief = True
                else:
                    whole = True
        return whole, brief

    def host_changed(self, host: Host) -> None:
        """HostListener: a host record changed."""
        self.syncs.host_changed(host)
        self._skew_changed(host)
        if host.state in (HostState.IDLE, HostState.BUSY):
            self._connected.add(host.name)
        else:
            self._connected.discard(host.name)
        if self.journal is not None:
            config = host_config(host)
            if self._host_configs.get(host.name) != config:
                self._host_configs[host.name] = config
                self.journal.host_changed(host)
        if self._subscribers and self._host_wanted(host):
            self._emit(EventKind.HOST, host.to_record())

    def _host_wanted(self, host: Host) -> bool:
        """Whether a subscriber takes this change of the host (as _send_event will judge it):
        a scheduler does not take a host filling and freeing slots (IDLE and BUSY, twice a
        job), whose record is then not made at all."""
        interest = interest_of(EventKind.HOST, {"state": host.state._value_})
        return any(s.interests is None or interest in s.interests for s in self._subscribers)

    def _skew_changed(self, host: Host) -> None:
        """Keep the SKEWED set in step; a host back in line takes the -noskew jobs waiting."""
        if host.agent.get("skewed"):
            self._skewed.add(host.name)
        elif host.name in self._skewed:
            self._skewed.discard(host.name)
            if host.name in self._free:
                self._fill_later(host)

    # == timers =============================================================================

    def _push_timer(self, delay: float, key: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, delay)
        self._timers.push(due, key)
        if self._timer_due is None or due < self._timer_due:
            self._arm_timer()

    def _push_forget(self, delay: float, job: Job | RetainedJob) -> None:
        """Forget a harvested job `delay` s from now (the retention: ForgetQueue)."""
        assert job.harvested is not None
        due = asyncio.get_running_loop().time() + max(0.0, delay)
        self._forgets.push(due, job.id, job.harvested)
        if self._timer_due is None or due < self._timer_due:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        due = min((d for d in (self._timers.next_due(), self._forgets.next_due()) if d is not None),
                  default=None)
        self._timer_due = due
        if due is not None and not self._stopping:
            self._timer_handle = asyncio.get_running_loop().call_at(due, self._timers_fired)

    def _timers_fired(self) -> None:
        self._timer_handle = None
        now = asyncio.get_running_loop().time()
        fired = self._timers.pop_due(now, limit=TIMER_BATCH)
        for job_id, stamp in self._forgets.pop_due(now, limit=TIMER_BATCH - len(fired)):
            job = self.jobs.get(job_id)
            if job is not None and job.harvested == stamp:   # not deleted (nor its id used again) since
                self._forget(job, lazy=True)
        for kind, job_id in fired:
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if kind == "pending" and job.state is JobState.PENDING:
                self._index.remove(job.id)
                self._finish(job, Outcome.PENDING, reason=self._pending_reason(job))
            elif kind == "expire" and job.state is JobState.DONE and job.owner is None:
                self._forget(job, lazy=True)
            elif kind == "release" and job.state is JobState.PENDING and job.id in self._later:
                self._later.discard(job.id)
                if job.required and job.host not in self.hosts:
                    self._finish(job, Outcome.DOWN, reason=f"required host {job.host} is not defined")
                else:
                    self._place(job, self.clock())
            elif kind == "held" and job.unknown_since is not None:
                host = self.hosts.get(job.ran_on or "")
                if host is not None:
                    host.held.discard(job.id)
                self._job_lost(job, f"no agent on {job.ran_on} reported it within "
                                    f"{self.config.grace:g} s of losing contact")
        self._arm_timer()

    def _pending_reason(self, job: Job) -> str:
        reason = f"not started within its pending time of {job.pending_timeout:g} s"
        if job.host is not None and job.required:
            host = self.hosts.get(job.host)
            state = host.state.value if host else "not defined"
            reason += f" (required host {job.host} is {state})"
        return reason

    # == jobs ===============================================================================

    def _register(self, job: Job | RetainedJob) -> None:
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

    @staticmethod
    def _placement(job: Job) -> Placement:
        host = job.host
        if host is not None and host == job.avoid and not job.required:
            host = None         # a retry does not prefer the host its last attempt lost
        return Placement(job.id, job.priority, host, job.required, job.noskew)

    def _enqueue(self, job: Job, now: float) -> None:
        self._index.add(self._placement(job))
        deadline = job.pending_deadline
        if deadline is not None:
            self._push_timer(deadline - now, ("pending", job.id))

    def _hold_until_planned(self, job: Job, now: float) -> bool:
        """Keep a job whose planned start (-not-before) is still ahead out of dispatch until
        then; True if held. A pull probe's job is released `pull.lead` earlier: the probe
        hears of it at a check-in before its run time, and is told that time."""
        if job.not_before is None:
            return False
        if job.host is not None:
            self._planned[job.host].add(job.id)
        release = job.not_before - self._lead(job)
        if release <= now:
            return False
        self._later.add(job.id)
        self._push_timer(release - now, ("release", job.id))
        return True

    def _unplan(self, job: Job) -> None:
        """The job no longer waits for its planned start (started, ended, forgotten)."""
        self._later.discard(job.id)
        planned = self._planned.get(job.host or "")
        if planned is not None:
            planned.discard(job.id)
            if not planned:
                del self._planned[job.host or ""]

    def _lead(self, job: Job) -> float:
        host = self.hosts.get(job.host or "")
        if host is not None and host.pull and self.pull is not None:
            return self.pull.lead
        return 0.0

    def _required_on(self, host: str) -> list[int]:
        """The PENDING jobs that require `host`, queued or held (for `host delete`)."""
        held = {i for i in self._planned.get(host, ()) if i in self._later and self.jobs[i].required}
        return sorted(held.union(self._index.required_on(host)))

    def planned_for(self, host: str) -> float | None:
        """The earliest planned start (-not-before) of the jobs still PENDING for `host`, held
        or queued: when a pull probe with nothing to run now should check in again."""
        ids = self._planned.get(host)
        if not ids:
            return None
        earliest = None
        for job_id in list(ids):
            job = self.jobs.get(job_id)
            if job is None or job.state is not JobState.PENDING or job.not_before is None:
                ids.discard(job_id)
            elif earliest is None or job.not_before < earliest:
                earliest = job.not_before
        if not ids:
            del self._planned[host]
        return earliest

    def submit(self, spec: JobSpec) -> Job:
        """Accept a job; start it at once when a slot it may use is free."""
        if self.journal is not None and self.journal.failure:
            raise UnavailableError(f"not accepting jobs: {self.journal.failure}")
        if self._stopping:
            raise UnavailableError("not accepting jobs: pcontrol is stopping")
        if not spec.argv:
            raise UsageError("a job needs a command (ARGV)")
        if spec.output_limit < 0:
            raise UsageError("-output-limit must be >= 0")
        if spec.required and spec.host is None:
            raise UsageError("-required needs -host H")
        if spec.retry < 0:
            raise UsageError(f"-retry must be at least 0, got {spec.retry}")
        if spec.host is not None:
            validate_host_name(spec.host)
        self._check_encodable(spec)
        if spec.id is not None and (spec.id < 1 or spec.id in self.jobs):
            raise ConflictError(f"job id {spec.id} is in use" if spec.id in self.jobs else "-id must be at least 1")
        now = self.clock()
        job = Job(id=self._next_id if spec.id is None else spec.id, argv=tuple(spec.argv), submitted=now, host=spec.host,
                  required=spec.required, timeout=spec.timeout, pending_timeout=spec.pending,
                  priority=spec.priority, cwd=spec.cwd, env=dict(spec.env), owner=spec.owner,
                  task=spec.task, output_limit=spec.output_limit, retry=spec.retry,
                  retries_left=spec.retry, spool=spec.spool, mail=spec.mail, inbox=tuple(spec.inbox),
                  noskew=spec.noskew, not_before=spec.not_before)
        if spec.id is None:
            self._next_id += 1
            if self.journal is not None:
                self.journal.next_job_id_changed(self._next_id)
        self._register(job)
        if job.required and job.host not in self.hosts:
            self._finish(job, Outcome.DOWN, reason=f"required host {job.host} is not defined")
            return job
        self._place(job, now)
        return job

    async def submit_durable(self, spec: JobSpec) -> Job:
        """Accept a job and return once it is in the journal (the reply to `job`).

        If the journal fails before it has the job, the job is withdrawn -- nobody was
        told of it, no agent was sent it -- and the refusal says why."""
        job = self.submit(spec)
        seq = self.journal.first_unwritten("job", job.id) if self.journal is not None else None
        try:
            await self._outbox.durable(seq)
        except JournalFailed as exc:
            self._withdraw(job)
            raise UnavailableError(f"not accepting jobs: {exc}; job {job.id} was not kept",
                                   data={"journal_failure": str(exc)}) from None
        return job

    async def durable_submits(self, jobs: list[Job]) -> list[ConflictError | None]:
        """`submit_durable` for a batch's jobs, all submitted already: one wait for the journal
        to have the last of them, not a wait each. What the journal failed to write before
        failing (a batch's later jobs, as rows are written in order) is withdrawn, its
        refusal in its place; None for each job kept."""
        journal = self.journal
        seqs = [journal.first_unwritten("job", job.id) if journal is not None else None
                for job in jobs]
        try:
            await self._outbox.durable(max((s for s in seqs if s is not None), default=None))
        except JournalFailed as exc:
            assert journal is not None
            durable = journal.durable_seq
            refusals: list[ConflictError | None] = []
            for job, seq in zip(jobs, seqs):
                if seq is None or seq <= durable:
                    refusals.append(None)
                    continue
                self._withdraw(job)
                refusals.append(UnavailableError(f"not accepting jobs: {exc}; job {job.id} was not kept",
                                                 data={"journal_failure": str(exc)}))
            return refusals
        return [None] * len(jobs)

    def _withdraw(self, job: Job) -> None:
        """Undo a submission that never reached the journal."""
        log.warning("job %d withdrawn: the journal could not write it", job.id)
        self._outbox.drop_job(job.id)
        if job.state is JobState.PENDING:
            self._index.remove(job.id)
        elif job.state is JobState.BUSY:
            host = self.hosts.get(job.ran_on or "")
            if host is not None:
                running = job.id in host.running
                host.running.discard(job.id)
                host.held.discard(job.id)
                if running:
                    self._slot_freed(host)
        if job.id in self.jobs:
            self._forget(job)

    def _place(self, job: Job, now: float) -> None:
        """Start a PENDING job on a free host it may use, else queue it (a job whose planned
        start is still ahead is held until then: _hold_until_planned)."""
        if self._hold_until_planned(job, now):
            self._job_changed(job)
            return
        name = self._free.pick(self._placement(job), avoid=job.avoid, skewed=self._skewed)
        if name is not None:
            self._start(job, self.hosts[name])
        else:
            self._enqueue(job, now)
            self._job_changed(job)

    @staticmethod
    def _check_encodable(spec: JobSpec) -> None:
        """Refuse a job whose `run` line the agent would refuse as too long."""
        size = sum(map(len, spec.argv)) + len(spec.cwd or "") \
            + sum(len(k) + len(v) for k, v in spec.env.items()) + sum(map(len, spec.inbox))
        if size * 12 + 4096 < agent_protocol.MAX_LINE:   # \uXXXX escapes at worst
            return                                       # surely fits: skip the encode
        try:
            agent_protocol.encode(agent_protocol.Run(
                job="0", argv=tuple(spec.argv), cwd=spec.cwd, env=spec.env,
                timeout=spec.timeout, output_limit=spec.output_limit, inbox=tuple(spec.inbox)))
        except (ValueError, agent_protocol.ProtocolError) as exc:
            raise UsageError(f"job cannot be sent to an agent: {exc}") from None

    def _start(self, job: Job, host: Host) -> None:
        assert host.free_slots > 0
        self._unplan(job)
        self._index.remove(job.id)
        self._timers.cancel(("pending", job.id))
        self._set_state(job, JobState.BUSY)
        job.ran_on = host.name
        host.running.add(job.id)
        self._update_load(host)
        self._free.rotate(host.name)
        self._job_changed(job)
        # After the change: the outbox holds the `run` until the journal has the job BUSY
        # (queued before it, it went out with a new job not yet written at all).
        deadline = job.pending_deadline
        self._to_agent(host, agent_protocol.Run(
            job=job.agent_word, argv=job.argv, cwd=job.cwd, env=job.env,
            timeout=job.timeout, output_limit=job.output_limit, spool=job.spool,
            mailbox=job.mail, inbox=job.inbox, not_before=job.not_before,
            pending=None if deadline is None else max(0.0, deadline - self.clock())))

    def _finish(self, job: Job, outcome: Outcome, *, reason: str = "",
                status: int | None = None, signal: int | None = None) -> None:
        """The job is DONE (callers hold the job: it may be forgotten on the way out)."""
        self._set_state(job, JobState.DONE)
        job.outcome = outcome
        self._outcome_counts[outcome] += 1
        job.status, job.signal, job.reason = status, signal, reason
        job.ended = self.clock()
        job.unknown_since = None
        self._timers.cancel(("pending", job.id))
        self._timers.cancel(("held", job.id))
        self._timers.cancel(("release", job.id))
        self._unplan(job)
        self._job_changed(job)
        if job.delete_requested:
            self._forget(job)         # `delete -force`: its end is told, then it is gone
        else:
            self._keep_finished(job, job.ended)

    def _keep_finished(self, job: Job, now: float) -> None:
        """Arm the timer that forgets a finished job: `retention` after its harvest, or
        `unowned_retention` after its end when it has no owner."""
        if self._stopping:
            return
        if job.harvested is not None:   # (a harvest dated ahead of now, by a clock since put back, as now)
            self._push_forget(min(job.harvested - now, 0.0) + self.config.retention, job)
        elif job.owner is None and self.config.unowned_retention is not None:
            ended = job.ended if job.ended is not None else now
            self._push_timer(ended + self.config.unowned_retention - now, ("expire", job.id))

    def _retain(self, job: Job) -> None:
        """Put a job just harvested in the table in its compact form (model.RetainedJob: a
        quarter of the memory, for the jobs of the retention)."""
        if RetainedJob.keeps(job):
            self.jobs[job.id] = RetainedJob.of(job, self._sharing)

    def _forget(self, job: Job | RetainedJob, *, lazy: bool = False) -> None:
        """Drop the job from memory and the journal (`lazy`: nobody waits for the deletion:
        Journal.job_forgotten)."""
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
        if type(job) is Job:
            self._unplan(job)
            for kind in ("pending", "expire", "held", "release"):
                self._timers.cancel((kind, job.id))
        elif job.owner is None:   # a retained job has no other timer (_finish cancelled them)
            self._timers.cancel(("expire", job.id))
        if self.journal is not None:
            self.journal.job_forgotten(job.id, lazy=lazy)
        host = self.hosts.get(job.ran_on or "") if job.spooled else None
        if host is not None:  # the agent may remove the job's spooled output once its row is gone
            self._to_agent(host, agent_protocol.Drop(job=job.agent_word))

    def job(self, job_id: int | str) -> Job | RetainedJob:
        try:
            number = int(job_id)
        except (TypeError, ValueError):
            raise UsageError(f'expected a job id but got "{job_id}"') from None
        job = self.jobs.get(number)
        if job is None:
            raise NotFoundError(f"no job {number}")
        return job

    def jobs_where(self, *, state: JobState | None = None, owner: str | None = None,
                   host: str | None = None) -> list[Job | RetainedJob]:
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
        """Give each free slot of `host` the best pending job it may run: FILL_BATCH now,
        and the next FILL_BATCH in the next loop turn while slots and jobs remain.

        A retried job passes over the host its last attempt was lost on while another
        connected host may run it (a bounded number of such jobs per fill)."""
        passed: list[Job] = []
        started = 0
        while host.free_slots > 0:
            if started >= FILL_BATCH:
                self._fill_later(host)
                break
            job_id = self._index.pop_best_for(host.name, skewed=host.name in self._skewed)
            if job_id is None:
                break
            job = self.jobs[job_id]
            if job.avoid == host.name and len(passed) < AVOID_SCAN \
                    and len(self._connected - {host.name}) > 0:
                passed.append(job)
                continue
            self._start(job, host)
            started += 1
        for job in passed:
            self._index.add(self._placement(job))

    def _fill_later(self, host: Host) -> None:
        if host.name not in self._refill:
            self._refill.add(host.name)
            asyncio.get_running_loop().call_soon(self._fill_again, host)

    def _fill_again(self, host: Host) -> None:
        self._refill.discard(host.name)
        if self.hosts.get(host.name) is host and not self._stopping:
            self._fill(host)

    # == hosts: commands that touch jobs ====================================================

    def host(self, name: str) -> Host:
        return self.host_table.get(name)

    def agent_argv(self, host: Host) -> list[str]:
        return self.host_table.agent_argv(host)

    def heartbeat_tick(self) -> None:
        self.host_table.heartbeat_tick()

    def add_host(self, name: str, *, slots: int | None = None,
                 connect: str | None = None, slurm: SlurmOptions | None = None,
                 pull: bool = False, address: str | None = None, port: int | None = None) -> Host:
        return self.host_table.add(name, slots=slots, connect=connect, slurm=slurm, pull=pull,
                                   address=address, port=port)

    # == status =============================================================================

    def status(self) -> dict[str, Any]:
        host_counts = collections.Counter(h.state.value for h in self.hosts.values())
        connected = [h for h in self.hosts.values()
                     if h.state in (HostState.IDLE, HostState.BUSY)]
        return {
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - self._started_mono, 3),
            "unknown": sum(len(h.held) for h in self.hosts.values()),
            "hosts": {state.value: host_counts.get(state.value, 0) for state in HostState},
            "jobs": {state.value: self._job_counts.get(state, 0) for state in JobState},
            "outcomes": {o.value: self._outcome_counts.get(o, 0) for o in Outcome},
            "slots": {"total": sum(h.agent_slots for h in connected),
                      "busy": sum(len(h.running) for h in connected)},
            "subscribers": len(self._subscribers),
            "output_requests": self.output_requests,
            "totals": {"hosts": len(self.hosts), "connected": len(self._connected),
                       "jobs": len(self.jobs)},
            "memory": process_memory(),
            "loop": self.loop_watch.summary(),
            "journal": self._journal_status(),
        }

    def _journal_status(self) -> dict[str, Any]:
        journal = self.journal
        if journal is None:
            return {"path": None, "failure": None, "size": 0, "backlog": 0,
                    "held": len(self._outbox)}
        failing_for = None
        if journal.failure is not None and journal.failed_since is not None:
            failing_for = round(asyncio.get_running_loop().time() - journal.failed_since, 3)
        return {"path": str(journal.path), "failure": journal.failure,
                "failing_for": failing_for, "size": journal.size(),
                "backlog": journal.backlog, "held": len(self._outbox),
                "write_seconds": journal.write_times.summary()}
