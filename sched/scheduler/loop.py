"""The scheduler loop: turns task rules into jobs at the right moments and reacts to their ends.

    sched = scheduler_of(interp)       # one per interpreter, made on first use (psched.scheduler.attach)
    sched.define(spec)                 # from a `task` block
    sched.start() / sched.stop()       # `run` / `stop`
    sched.step()                       # one pass over the due tasks (tests drive this by hand)

Each task has at most one entry in a timer heap: the monotonic time of its next look. A look
asks the pure `timing.plan` how many jobs to make and when to look next, runs the task.exec
macro for each job, and hands the job to a backend: LocalBackend for `host LOCAL`, the sync
backend for a task's `sync NAME` (psched.scheduler.syncjobs), the remote backend (the
controller) for the rest. A job's end comes back through `job_ended`, which
records the outcome, writes the stdout/stderr destinations, runs the matching task.exit macro
and makes the task due again at once. With a real clock the heap is armed on the asyncio loop
(one `call_at` for the earliest look), so idle tasks cost nothing; with a FakeClock nothing is
armed and tests call `step()`.

Errors in macros are reported (task, job, position) and never stop the loop or other tasks.
`exit`/`quit` in a macro stops the loop and leaves sched once the macro is done (through
psched.scheduler.eventloop.leave_soon; refused with an error, like any script's, while jobs are out).

With a home (psched.scheduler.home; `scheduler_of` gives one) the scheduler is the only one on its
$SCHED_HOME, its job ids go on from the previous sched's, and each task's last launch is kept
so that `-exec` spacing holds across a restart. Ended jobs are forgotten after a retention
(psched.scheduler.retention), and their output is not kept once the exit macro has run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from ..lang.clock import Clock, SystemClock
from ..lang.commands.queues import WorkQueue
from ..lang.errors import QuitRequest, SchedError, Skip, TaskError
from .eventloop import get_loop, leave_soon
from ..lang.interp import Deferred, Frame, Lazy
from .alertqueue import queue_alert
from .jobs import Backend, Job, JobState, Outcome, WithoutController
from .home import SchedHome
from .retention import Retention
from .joblog import JobLog
from .runledger import LEDGER_NAME, RunLedger
from .roundjobs import ROUNDS_AHEAD, RoundCursor, no_lead
from pclient.seldom import Seldom
from .rounds import RoundsConfig, duration_text
from .switchboard import Switchboard
from .taskspec import DRAFT_KEY, JobDraft, OutputDest, TaskSpec
from ..lang.tcllist import join_list
from .timing import WALL_RECHECK, PlanReason, TaskTiming, TimerHandle, TimerHeap, next_change, plan

if TYPE_CHECKING:
    from .reload import TaskStaging

log = logging.getLogger(__name__)

__all__ = ["Scheduler", "TaskEntry", "Backend", "DEFAULT_OUTPUT_LIMIT", "check_definable", "deliver"]

DEFAULT_OUTPUT_LIMIT = 1 << 20
"""Bytes of each output stream kept per job (the rest is counted, and noted as cut)."""
LOOK_RETRY = 1.0
"""Seconds at least before a task whose look raised is looked at again (Scheduler._look_failed)."""
WHY_OUT_WAIT = 3.0
"""Seconds `wait`'s timeout waits for a backend to say why its jobs are out (Scheduler.why_out)."""


class Dispatcher(Protocol):
    """Hands a made job to its backend, or holds it back (the leader's gate in high availability)."""

    def dispatch(self, job: Job, backend: Backend) -> None: ...


@dataclass
class TaskEntry:
    """A task as the loop keeps it: its spec and what it has done."""

    spec: TaskSpec
    seq: int
    timing: TaskTiming = field(default_factory=TaskTiming)
    handle: TimerHandle | None = None
    deleting: bool = False
    jobs_out: set[int] = field(default_factory=set)
    done: int = 0
    failed: int = 0
    last_outcome: str = ""
    last_end: float | None = None
    last_reason: PlanReason | None = None
    resumed: bool = False  # its `made` count goes on from an earlier sched's (see runledger.py)
    first_look: float = 0.0  # no look before this monotonic time (a first run spread, psched.scheduler.reload)
    rounds: RoundCursor | None = None  # a `rounds` task: where it stands in its plan

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def finished(self) -> bool:
        """It will make no more jobs (nmax reached, or being deleted)."""
        nmax = self.spec.nmax
        return self.deleting or (nmax is not None and self.timing.made >= nmax)

    def state(self) -> str:
        if self.deleting:
            return "deleting"
        if self.finished:
            return "finished" if not self.jobs_out else "finishing"
        if not self.spec.active:
            return "paused"
        if self.last_reason is PlanReason.OUTSIDE_WINDOW:
            return "waiting"  # outside its trange window
        return "active"


MACRO_ERRORS_EVERY = 600.0
"""Seconds between two reports of the same error of a task's macro (a task.exec that fails at
every look, a task.exit that fails for every job): the log says it once, then at most this
often with how many times it came since; a different error, or one after a success, at once."""


class Scheduler:
    """The task table, the job table and the loop that connects them (the JobSink of its backends).

    Its backends are handed in: made with it (tests' fakes), or, as they report to the
    scheduler, set just after it is made (psched.scheduler.attach, the one place that builds a real one).
    """

    def __init__(self, interp: Any, clock: Clock | None = None, local: Backend | None = None,
                 remote: Backend | None = None, home: SchedHome | None = None,
                 syncs: Backend | None = None):
        self.interp = interp
        self.home = home  # None: no files of its own (tests' schedulers), ids from 1
        self.clock = clock or SystemClock()
        if interp.clock is None:  # the language's `clock` reads the scheduler's time
            interp.clock = self.clock
        self.real_time = self.clock.on_loop  # its timers are armed on the loop
        self.tasks: dict[str, TaskEntry] = {}
        self.jobs: dict[int, Job] = {}
        self.heap: TimerHeap[str] = TimerHeap()
        self.running = False
        self.ever_ran = False  # `run` was called once (a later `wait` after `stop` returns, not fails)
        self.output_limit = DEFAULT_OUTPUT_LIMIT
        self.local: Backend = local or _Unattached("local")
        self.remote: Backend = remote or _Unattached("remote")
        self.syncs: Backend = syncs or _Unattached("sync")
        self.on_message: Callable[[str], None] | None = None  # the shell prints these
        self.job_listeners: list[Callable[[Job], None]] = [JobLog(self)]  # told of every job start and end
        self.deliver: Callable[[Any, OutputDest, str], None] = deliver
        """Puts a job's stdout/stderr where its task's `stdout`/`stderr` says (sched --simulate
        hands in one that writes no file)."""
        self.verbose = False
        self._seq = 0
        self._next_job = 1
        self._timer: asyncio.TimerHandle | None = None  # wakes the loop for a later look
        self._timer_when: float | None = None
        self._soon: asyncio.Handle | None = None  # a look due now: on the loop's next turn
        self._look_failures: dict[str, str] = {}  # task -> the last failure of its look said (_look_failed)
        self._waiters: list[tuple[list[str] | None, asyncio.Future]] = []
        self._wait_order: list[TaskEntry] = []  # the tasks `finished(None)` goes round (see there)
        self._wait_at = 0
        self.totals = {"made": 0, "done": 0, "failed": 0}
        self.ledger: RunLedger | None = None  # counts of controller tasks, for the next sched
        self._resume: dict[str, int] | None = None  # counts an earlier sched left (None: not read yet)
        self.retention = Retention()
        self.forgotten = 0  # ended jobs dropped from the table by the retention
        self.quit_request: QuitRequest | None = None  # `exit` in a macro: leaving
        self.pending_scripts = 0  # `after MS SCRIPT` not run yet (psched.scheduler.commands.after): something may change
        self.staging: TaskStaging | None = None  # a reload reading its files: task blocks and `run` go there
        self.dispatcher: Dispatcher | None = None  # between a made job and its backend (psched.scheduler.ha)
        self.switchboard = Switchboard(home.switchboard_path if home is not None else None)  # messages between jobs
        self.running_code: tuple[str, float] | None = None  # (what, since): see `busy_with`
        self._macro_errors = Seldom(MACRO_ERRORS_EVERY)  # a macro failing alike again and again: said seldom

    def busy_with(self, what: str) -> "_Running":
        """`with sched.busy_with("task t job 3: task.exit 0"):` around interpreted code that a
        callback of the loop runs (a macro, an `after` script, a reload's files): while it runs
        the loop does nothing else, and `running_code` says what and since when (time.monotonic)
        to the shell, which warns when it runs long and lets SIGINT and SIGTERM interrupt it
        (psched.shell.longcode). The outermost one counts."""
        return _Running(self, what)

    # --- the task table -----------------------------------------------------------------------

    def define(self, spec: TaskSpec, look: bool = True) -> TaskEntry:
        """Add a task or replace the definition of an existing one; it is looked at at once
        (with `look` false the caller schedules it: a reload keeps a task's phase)."""
        check_definable(spec)
        entry = self.tasks.get(spec.name)
        if entry is None:
            self._seq += 1
            entry = self.tasks[spec.name] = TaskEntry(spec, self._seq)
        else:
            if spec.source is not None and repr(spec.source) == repr(entry.spec.source):
                spec.source = entry.spec.source  # the same sequence (a reload changed the task's macros): its progress stays
            entry.spec = spec
        entry.rounds = RoundCursor(RoundsConfig(spec.rounds, spec.hosts), spec.rounds_seed) if spec.rounds else None
        if self._resume and spec.name in self._resume and spec.host != "LOCAL":
            self._resume_task(entry, self._resume.pop(spec.name))
        self._restore_launch(entry)
        if look:
            self.look_soon(entry)
        self.remote.task_defined(spec.name)
        self._check_waiters()
        return entry

    def adopt(self, record: dict) -> Job | None:
        """Take back a controller job of ours that an earlier run of sched submitted.

        None when its task is not defined here. The job counts as made by, and outstanding for,
        its task, so `npending` and `nmax` hold across the restart (as made only when the
        task's count did not come from the run ledger, which counted it already).
        """
        entry = self.tasks.get(record.get("task") or "")
        if entry is None:
            return None
        job = Job(self._new_job_id(), entry.name, list(record.get("argv") or []), record.get("host") or "NONE",
                  bool(record.get("required")), timeout=record.get("timeout"), pending=record.get("pending"),
                  noskew=bool(record.get("noskew")), not_before=record.get("not_before"), cwd=record.get("cwd"))
        job.created = record.get("submitted") or job.created
        if entry.spec.source is not None:
            entry.spec.source.adopted(job, record.get("env") or {})
        job.outputs = entry.spec.output_files()
        job.joblog = entry.spec.joblog
        self.jobs[job.id] = job
        entry.jobs_out.add(job.id)
        if not entry.resumed:
            entry.timing.made += 1
            self._record_made(entry)
        entry.timing.outstanding += 1
        self.totals["made"] += 1
        return job

    # --- going on with an earlier sched's run --------------------------------------------------

    def resume_run(self) -> None:
        """Read the run ledger an earlier sched on this home left (once): its tasks' counts.

        Called at the first look of a controller task (and before a job that task.exec sent to
        the controller), so that `nmax` holds across a restart. A sched that ends with nothing left at the controller removes the
        ledger (`end_run`), so the next one starts afresh.
        """
        if self._resume is not None:
            return
        self._resume = {}
        if self.home is not None:
            self.ledger = RunLedger(self.home.ledger_path)
        else:
            home = self.remote.home
            if home is None:  # a backend without a home (tests' fakes): nothing to go on from
                return
            self.ledger = RunLedger(home / LEDGER_NAME)
        self.ledger.load()
        held = self.remote.submit_keys_held  # None: not connected yet, keep the counts
        if held is not None:
            self.ledger.forget_unsent(held)  # made by the earlier sched, killed before sending them
        counts = {task: made for task, made in self.ledger.counts().items() if made > 0}
        for name in list(counts):
            entry = self.tasks.get(name)
            if entry is not None and entry.spec.host != "LOCAL":  # local tasks start over
                self._resume_task(entry, counts.pop(name))
        self._resume = counts  # for tasks defined later
        for entry in self.tasks.values():  # jobs adopted before the ledger was read
            if entry.spec.host != "LOCAL":
                self._record_made(entry)
        self._check_waiters()

    def _resume_task(self, entry: TaskEntry, made: int) -> None:
        entry.resumed = True
        if entry.spec.source is not None and self.ledger is not None:
            entry.spec.source.resume(self.ledger.items(entry.name))  # which jobs, not only how many
        if made <= entry.timing.made:
            return
        entry.timing.made = made
        nmax = entry.spec.nmax
        of = f" of nmax {nmax}" if nmax is not None else ""
        self.report(f"task {entry.name}: going on with the run of an earlier sched on this home, which had made "
                    f"{made} job(s){of} (remove {self.ledger.path if self.ledger else LEDGER_NAME} "
                    f"before `run` to start over)")

    def _record_made(self, entry: TaskEntry, job: Job | None = None, item: str | None = None) -> None:
        if self.ledger is not None:
            unsent = self.remote.submit_key(job) if job is not None else None
            self.ledger.record(entry.name, entry.timing.made, unsent=unsent, item=item)

    def job_sent(self, job: Job) -> None:
        """The controller has the job (or it ended before reaching it): see runledger.py."""
        key = self.remote.submit_key(job)
        if self.ledger is not None and key is not None:
            self.ledger.sent(key)

    def flush_records(self) -> None:
        """Write the run ledger's lines held this turn: the link is about to write to the
        controller (a job they count, a harvest after which the controller may forget one)."""
        if self.ledger is not None:
            self.ledger.flush()

    # --- the home: one sched on it, ids and launches that outlive this process ---------------

    def claim_home(self) -> None:
        """Be the only sched on this home (and name); HomeBusy (a TaskError) if another is."""
        if self.home is not None:
            self.home.acquire()

    def release_home(self) -> None:
        if self.home is not None:
            self.home.release()

    def _new_job_id(self) -> int:
        if self.home is not None and self.home.held:
            number = max(self.home.job_ids.next(), self._next_job)
        else:
            number = self._next_job
        self._next_job = number + 1
        return number

    def _restore_launch(self, entry: TaskEntry) -> None:
        """A task with `-exec` spacing goes on from its last launch by an earlier sched."""
        if (self.home is None or entry.spec.periods.exec <= 0 or entry.timing.last_launch_mono is not None
                or not self.real_time):
            return
        last = self.home.marks.last(entry.name)
        if last is None:
            return
        ago = max(0.0, self.clock.wall() - last)
        if ago < entry.spec.periods.exec:
            entry.timing.last_launch_mono = self.clock.monotonic() - ago

    def end_run(self) -> None:
        """Nothing of ours is left out at the controller: the next sched on this home starts
        afresh (but for tasks of the earlier run that were never defined here: their counts stay)."""
        if self.ledger is None:
            return
        kept = {task: (made, self.ledger.items(task)) for task, made in (self._resume or {}).items()}
        self.ledger.clear()
        for task, (made, items) in kept.items():
            self.ledger.record(task, made)
            for item in items:
                self.ledger.record(task, made, item=item)
        self.ledger.close()

    def task(self, name: str) -> TaskEntry:
        entry = self.tasks.get(name)
        if entry is None:
            raise TaskError(f'no task "{name}"' + _known(self.tasks))
        return entry

    def set_active(self, name: str, active: bool) -> None:
        staged = self.staging.specs.get(name) if self.staging is not None else None
        if staged is not None:  # `pause t` after `task t ... end` in files being (re)loaded:
            staged.active = active  # part of the definition they stage (psched.scheduler.reload)
            return
        entry = self.task(name)
        entry.spec.active = active
        if not active:
            self._withdraw_ahead(entry, "its task was paused")
        self.look_soon(entry)

    def delete_task(self, name: str) -> str:
        """The task makes no new jobs and is removed once its jobs have ended."""
        if self.staging is not None and self.staging.specs.pop(name, None) is not None:
            if name not in self.tasks:  # files being (re)loaded no longer define it: the apply
                return ""               # step deletes it if an earlier load did
        entry = self.task(name)
        entry.deleting = True
        self._unschedule(entry)
        self._withdraw_ahead(entry, "its task was deleted")
        if not entry.jobs_out:
            del self.tasks[name]
            self._check_waiters()
            return f"task {name} deleted"
        return f"task {name} makes no more jobs; it is removed when its {len(entry.jobs_out)} job(s) have ended"

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """`run`: look at every task now, and keep looking."""
        self.claim_home()
        self.running = self.ever_ran = True
        for entry in self.tasks.values():
            self.look_soon(entry)
        self._arm()
        self._check_waiters()

    def stop(self) -> None:
        """`stop`: make no more jobs; running ones finish and their exit macros still run."""
        self.running = False
        self._disarm()
        self._check_waiters()  # `wait` ends once the jobs out have ended

    def look_soon(self, entry: TaskEntry) -> None:
        self._schedule(entry, max(self.clock.monotonic(), entry.first_look))

    def reschedule(self, entry: TaskEntry, due: float) -> None:
        """Move the task's next look to `due`, later or earlier than it was."""
        self._unschedule(entry)
        self._schedule(entry, due)

    def _schedule(self, entry: TaskEntry, due: float) -> None:
        """Keep one heap entry per task: the earliest asked for."""
        if entry.deleting or due == math.inf:
            return
        handle = entry.handle
        if handle is not None and handle.live:
            if handle.due <= due:
                return
            self.heap.cancel(handle)
        entry.handle = self.heap.push(due, entry.name)
        self._arm()

    def _unschedule(self, entry: TaskEntry) -> None:
        if entry.handle is not None:
            self.heap.cancel(entry.handle)
            entry.handle = None

    def step(self) -> float | None:
        """Look at every task that is due; return when the next look is due."""
        if not self.running:
            return self.heap.peek()
        now = self.clock.monotonic()
        due: list[tuple[TaskEntry, float]] = []
        for name in self.heap.pop_due(now):
            entry = self.tasks.get(name)
            if entry is not None and entry.handle is not None:
                due.append((entry, entry.handle.due))
                entry.handle = None
        due.sort(key=lambda pair: (-pair[0].spec.priority, pair[0].seq))
        for entry, look_due in due:
            try:
                self.look(entry, look_due)
            except Exception as exc:  # (a bug) the task is looked at again, not dropped in silence
                self._look_failed(entry, exc, now)
        return self.heap.peek()

    def _look_failed(self, entry: TaskEntry, exc: Exception, now: float) -> None:
        """A look that raised (a bug, or a module gone from under a running sched) has left the
        task without a next look: without one it would make no job again and `wait` would never
        end. It is looked at again after its poll period (at least LOOK_RETRY s); the user is told
        once a task and a kind of failure, the log has each traceback."""
        log.exception("task %s: looking at it failed", entry.name)
        said = f"{type(exc).__name__}: {exc}"
        if self._look_failures.get(entry.name) != said:
            self._look_failures[entry.name] = said
            self.report(f"task {entry.name}: looking at it failed ({said}): looked at again every "
                        f"{max(entry.spec.periods.poll, LOOK_RETRY):g} s; details in the log")
        self._schedule(entry, now + max(entry.spec.periods.poll, LOOK_RETRY))  # (an earlier look asked stays)

    def look(self, entry: TaskEntry, look_due: float | None = None) -> int:
        """Make the jobs the task should make now; schedule its next look. Returns jobs made."""
        if entry.deleting or not self.running:
            return 0
        spec = entry.spec
        if spec.host != "LOCAL" and spec.sync is None:
            self.resume_run()  # before the plan counts what the task has made
        clock = self.clock
        now = clock.monotonic()
        if entry.rounds is not None:
            return self._look_rounds(entry, entry.rounds)
        decision = plan(spec.periods, spec.limits, spec.active, spec.ranges, entry.timing, now, clock.wall(),
                        clock.tz, look_due=look_due)
        entry.last_reason = decision.reason
        made = 0
        for _ in range(decision.make):
            for host in spec.hosts or (None,):  # `host -each`: a job per host at each launch
                if entry.deleting or entry.finished or self.tasks.get(spec.name) is not entry:
                    break
                if self._make_job(entry, host):
                    made += 1
        if not decision.make and decision.reason in (PlanReason.EXEC_PERIOD, PlanReason.OUTSIDE_WINDOW):
            made += self._make_ahead(entry, now, decision.reason)
        self._schedule(entry, decision.next_look)
        if entry.finished or decision.reason is PlanReason.PAUSED:
            self._check_waiters()  # e.g. the run ledger said nmax was reached already
        return made

    def _make_ahead(self, entry: TaskEntry, now: float, reason: PlanReason) -> int:
        """A task whose hosts are all pull probes (backend `lead`), waiting for its -exec period
        or its trange window: the jobs it would make when that wait ends, made now with that
        moment as their planned start (not-before), when it is within the lead; their launch
        counts from that moment, so -exec spacing holds. Not for a task that takes its jobs from
        a source (a sequence: its items are handed out as they run)."""
        spec = entry.spec
        if spec.host == "LOCAL" or spec.sync is not None or spec.source is not None:
            return 0
        hosts = spec.hosts or (spec.host,)
        if "NONE" in hosts:
            return 0
        clock = self.clock
        wall = clock.wall()
        if reason is PlanReason.EXEC_PERIOD and entry.timing.last_launch_mono is not None:
            at = entry.timing.last_launch_mono + spec.periods.exec
        else:
            opens = next_change(spec.ranges, wall, clock.tz) if spec.ranges else None
            if opens is None:
                return 0
            at = now + (opens - wall)
        if at <= now or min(self.remote.lead(h) for h in hosts) < at - now:
            return 0
        start_wall = wall + (at - now)
        then = plan(spec.periods, spec.limits, spec.active, spec.ranges, entry.timing, at, start_wall, clock.tz)
        next_look = at
        made = 0
        for _ in range(then.make):
            for host in spec.hosts or (None,):
                if entry.deleting or entry.finished or self.tasks.get(spec.name) is not entry:
                    break
                if self._make_job(entry, host, not_before=start_wall, launch_mono=next_look):
                    made += 1
        return made

    def _look_rounds(self, entry: TaskEntry, cursor: RoundCursor) -> int:
        """A rounds task: a job for each planned run now due (a controller host's ahead of its
        start, roundjobs.py); look again at the next run."""
        clock = self.clock
        wall = clock.wall()
        going = entry.spec.active and not entry.finished
        due, late, next_wall = cursor.due(wall, clock.tz, _rounds_lead if going else no_lead)
        if late and going:
            gone = duration_text(round(wall - max(run.start for run in late)))
            self.report(f"task {entry.name}: {len(late)} planned run(s) skipped: their start had gone by "
                        f"{gone} or more (the clock set forward, the machine suspended, or sched held up; "
                        f"a run is made at most {duration_text(cursor.late_limit)} late)")
        made = 0
        for run in due:
            if entry.finished or not entry.spec.active or self.tasks.get(entry.name) is not entry:
                entry.last_reason = PlanReason.FINISHED if entry.finished else PlanReason.PAUSED
                break  # a paused task lets its runs go by
            if self._make_job(entry, run.host, not_before=run.start):
                made += 1
        if not entry.finished:
            # (at least every WALL_RECHECK: the wall clock can jump while the loop sleeps on monotonic time)
            self._schedule(entry, clock.monotonic() + min(max(0.0, next_wall - wall), WALL_RECHECK))
        self._check_waiters()
        return made

    # --- making jobs --------------------------------------------------------------------------

    def _withdraw_ahead(self, entry: TaskEntry, why: str) -> None:
        """Kill the task's jobs made ahead of a planned start still to come: they are not runs
        (job_ended forgets them quietly, and their runs are made again if the task runs then)."""
        wall = self.clock.wall()
        for job_id in sorted(entry.jobs_out):
            job = self.jobs.get(job_id)
            if job is None or job.done or job.not_before is None or job.not_before <= wall or job.withdrawn:
                continue
            job.withdrawn = True
            log.info("task %s: job %s withdrawn before its planned start: %s", entry.name, job.id, why)
            if not self._backend(job).kill(job):
                job.withdrawn = False
                log.warning("task %s: job %s could not be withdrawn (not at the controller yet)", entry.name, job.id)

    def _make_job(self, entry: TaskEntry, host: str | None = None, not_before: float | None = None,
                  launch_mono: float | None = None) -> Job | None:
        spec = entry.spec
        inbox = self.switchboard.take(spec.name)  # the switchboard's messages go to this job
        inbox_lines = tuple([m.line for m in inbox]) if inbox else ()
        self.interp.queues["inbox"] = WorkQueue(inbox_lines)
        draft = self._draft(entry, host)
        if draft is not None and not draft.argv and spec.sync is None:
            self.report(f"task {spec.name}: no command to run (give it `command` in the task or in task.exec)")
            draft = None
        if draft is None:
            self.switchboard.put_back(inbox)  # for the next job that is made
            return None
        job = Job(self._new_job_id(), spec.name, list(draft.argv), draft.host, draft.host_required,
                  timeout=spec.periods.timeout, pending=spec.periods.pending, retry=spec.retry,
                  sync=spec.sync, env=dict(draft.env), inbox=inbox_lines, vars=dict(draft.vars),
                  noskew=draft.noskew, not_before=not_before, cwd=spec.cwd)
        item = spec.source.made(job) if spec.source is not None else None
        job.outputs = spec.output_files()
        job.joblog = spec.joblog
        self.jobs[job.id] = job
        entry.jobs_out.add(job.id)
        entry.timing.launched(self.clock.monotonic() if launch_mono is None else launch_mono)
        if self.home is not None and spec.periods.exec > 0 and self.real_time:
            self.home.marks.launched(spec.name, self.clock.wall() if not_before is None else not_before)
        if not job.local and job.sync is None:
            self.resume_run()
            self._record_made(entry, job, item)
        self.totals["made"] += 1
        if self.verbose:
            self.report(f"job {job.id} ({spec.name}) made for {job.host}: {' '.join(job.argv)}")
        if self.dispatcher is not None:
            self.dispatcher.dispatch(job, self._backend(job))
        else:
            self._backend(job).submit(job)
        return job

    def _backend(self, job: Job) -> Backend:
        if job.sync is not None:
            return self.syncs
        return self.local if job.local else self.remote

    def _draft(self, entry: TaskEntry, host: str | None = None) -> JobDraft | None:
        """The job to make, after the task.exec macro (None: skipped, or the macro failed)."""
        spec = entry.spec
        draft = JobDraft(list(spec.argv), host or spec.host, spec.host_required or host is not None,
                         noskew=spec.noskew)
        if spec.source is not None and not spec.source.fill(draft):
            return None  # nothing to run now (a sequence: every host with jobs left has one out)
        if spec.exec_macro is None:
            return draft
        interp = self.interp
        frame = Frame(f"task.exec of {spec.name}", transparent=True)
        frame.vars.update({"task": spec.name, "job_count": str(entry.timing.made)})
        frame.declared.update(frame.vars)
        saved = interp.extensions.get(DRAFT_KEY)
        interp.extensions[DRAFT_KEY] = draft
        try:
            with self.busy_with(f"task {spec.name}: task.exec"):
                interp.run_in_frame(frame, spec.exec_macro)
        except Skip:
            return None
        except SchedError as err:
            text = err.render()
            again = self._macro_error_note(spec.name, text, "{} more time(s)")
            if again is not None:
                self.report(f"task {spec.name}: error in task.exec (no job made this time; {again}):\n{text}")
            return None
        except QuitRequest as request:
            self.leave(request)
            return None
        finally:
            interp.extensions[DRAFT_KEY] = saved
        if self.quit_request is not None:
            return None
        self._macro_errors.forget(spec.name)
        return draft

    # --- jobs' lives --------------------------------------------------------------------------

    def job_started(self, job: Job, ran_on: str = "", pid: int | None = None, controller_id: str | None = None) -> None:
        if job.done:
            return
        job.state = JobState.RUNNING
        job.started = self.clock.wall()
        job.ran_on = ran_on or job.ran_on
        job.pid = pid if pid is not None else job.pid
        if self.verbose:
            self.report(f"job {job.id} ({job.task}) started on {job.ran_on or job.host}")
        self._tell(job)

    def job_ended(self, job: Job, outcome: Outcome, status: int | None = None, signal: int | None = None,
                  stdout: str = "", stderr: str = "", stdout_bytes: int = 0, stderr_bytes: int = 0,
                  elapsed: float | None = None, reason: str = "", ran_on: str = "", quiet: bool = False,
                  ended: float | None = None, written: tuple[str, ...] = (), outbox: tuple[str, ...] = (),
                  deferred: dict[str, Deferred] | None = None) -> None:
        """Record how a job ended, deliver its output and run its exit macro. Once per job.

        `quiet`: the job's exit macro already ran (before a restart): record the end only.
        `ended`: when it really ended (wall clock), if the backend knows better than now.
        `written`: the streams ("stdout", "stderr") the backend already wrote to their files.
        `outbox`: the lines the job wrote to $PSCHED_OUTBOX, for the switchboard.
        `deferred`: streams whose text the backend makes only when asked (a controller job's
        long output, fetched only if a destination or the exit macro reads it).
        """
        if job.done:
            log.warning("job %s reported ended twice; ignoring the second (%s)", job.id, outcome)
            return
        job.state = JobState.DONE
        job.outcome, job.status, job.signal = outcome, status, signal
        job.stdout, job.stderr = stdout, stderr
        job.stdout_bytes, job.stderr_bytes = stdout_bytes or len(stdout), stderr_bytes or len(stderr)
        job.ended = ended if ended is not None else self.clock.wall()
        job.elapsed = elapsed if elapsed is not None else (job.ended - job.started if job.started else 0.0)
        job.reason = reason
        job.ran_on = ran_on or job.ran_on
        entry = self.tasks.get(job.task)
        if job.withdrawn:  # killed before its planned start: not a run (_withdraw_ahead)
            quiet = True
            job.reason = "withdrawn before its planned start" + (f" ({reason})" if reason else "")
        if outbox and not quiet:  # before its exit macro, which may `send` too
            self.switchboard.post_lines(job.task, outbox)
        failed = job.failed
        self.totals["done"] += 1
        if failed and not job.withdrawn:
            self.totals["failed"] += 1
        if entry is not None and job.withdrawn:
            entry.jobs_out.discard(job.id)
            entry.timing.ended()
            entry.timing.made -= 1  # not made after all: nmax counts runs
            self._record_made(entry)
            if entry.rounds is not None and job.not_before is not None:
                entry.rounds.put_back(job.not_before, job.host, self.clock.wall())
            if entry.deleting and not entry.jobs_out and self.tasks.get(job.task) is entry:
                del self.tasks[job.task]
            elif self.running:
                self.look_soon(entry)
        elif entry is not None:
            if entry.spec.source is not None:
                entry.spec.source.ended(job)
            entry.jobs_out.discard(job.id)
            entry.timing.ended()
            entry.done += 1
            entry.failed += failed
            entry.last_outcome = job.outcome_text()
            entry.last_end = job.ended
            if not quiet:
                self._deliver_output(entry.spec, job, written, deferred or {})
                self._run_exit_macro(entry.spec, job, deferred or {})
            if entry.deleting and not entry.jobs_out and self.tasks.get(job.task) is entry:
                del self.tasks[job.task]
            elif self.running:
                self.look_soon(entry)
        if self.verbose or job.macro_error:
            self.report(f"job {job.id} ({job.task}) ended: {job.outcome_text()}" + (f" ({reason})" if reason and self.verbose else ""))
        self._tell(job)
        job.stdout = job.stderr = ""  # delivered (and told); sched keeps no ended job's output
        self.retention.ended(job.id, job.ended)
        self.forget_expired()
        self._check_waiters()

    def end_is_plain(self, job: Job, outcome: Outcome, status: int | None) -> bool:
        """Ending `job` so (job_ended, not quiet) would run no exit macro and write nothing of
        its own (no output destination, no joblog): the job's end shows only in this
        process, so ending it again after a crash would not show either. (A backend then need
        not keep, before the end, that it began: remote.HarvestLog.ended_plainly.)"""
        if job.joblog:
            return False
        entry = self.tasks.get(job.task)
        if entry is None or job.withdrawn:
            return True  # job_ended records the end only
        spec = entry.spec
        if spec.stdout is not None or spec.stderr is not None:
            return False
        if not spec.exit_macros:
            return True
        selector = str(status) if outcome is Outcome.EXIT else outcome.selector
        return spec.exit_macro_for(selector)[1] is None

    def forget_expired(self) -> None:
        """Drop ended jobs past the retention from the table."""
        for job_id in self.retention.expired(self.clock.wall()):
            if self.jobs.pop(job_id, None) is not None:
                self.forgotten += 1

    def _tell(self, job: Job) -> None:
        for listener in list(self.job_listeners):
            try:
                listener(job)
            except Exception:  # a listener's bug must not lose the job's end
                log.exception("job listener failed")

    def _deliver_output(self, spec: TaskSpec, job: Job, written: tuple[str, ...] = (),
                        deferred: dict[str, Deferred] | None = None) -> None:
        if spec.stdout is None and spec.stderr is None:
            return
        for dest, text, stream in ((spec.stdout, job.stdout, "stdout"), (spec.stderr, job.stderr, "stderr")):
            if dest is None or stream in written:
                continue
            try:
                if deferred and stream in deferred:
                    text = deferred[stream].value()
                self.deliver(self.interp, dest, text)
            except (OSError, SchedError) as err:
                why = getattr(err, 'strerror', None) or err  # (worded as jobproc says it of a local job's file)
                self.report(f"task {spec.name} job {job.id}: cannot write {dest}: {why}")

    def _run_exit_macro(self, spec: TaskSpec, job: Job, deferred: dict[str, Deferred] | None = None) -> None:
        if not spec.exit_macros:
            job.macro = ""
            return
        selector = str(job.status) if job.outcome is Outcome.EXIT else job.outcome.selector
        which, body = spec.exit_macro_for(selector)
        job.macro = which
        if body is None:
            return
        interp = self.interp
        frame = Frame(f"task.exit {which} of {spec.name}", transparent=True)
        frame.vars.update({
            "exit_status": "" if job.status is None else str(job.status),
            "stdout": job.stdout, "stderr": job.stderr, "job_id": str(job.id),
            "job_host": job.ran_on or job.host, "job_state": job.outcome.value,
            "job_elapsed": f"{job.elapsed or 0.0:.3f}", "task": spec.name,
            "job_signal": "" if job.signal is None else str(job.signal), "job_reason": job.reason,
            "job_command": join_list(job.argv), "job_rerun": "0",
        })
        for stream, source in (deferred or {}).items():
            frame.vars[stream] = Lazy(source)  # made on its first read
        frame.vars.update(job.vars)
        frame.declared.update(frame.vars)
        for stream in ("stdout", "stderr"):
            source = (deferred or {}).get(stream)
            if source is None:
                set_queue(interp, stream, job.stdout if stream == "stdout" else job.stderr)
            else:  # a queue's first use (get_queue) takes its lines from the source
                interp.queues[stream] = _DeferredLines(source)
        interp.queues["inbox"] = WorkQueue(job.inbox)  # what the switchboard gave this job
        try:
            with self.busy_with(f"task {spec.name} job {job.id}: task.exit {which}"):
                interp.run_in_frame(frame, body)
        except Skip:
            job.macro_error = "`skip` is for task.exec, not task.exit"
            self.report(f"task {spec.name} job {job.id}: {job.macro_error}")
        except SchedError as err:
            job.macro_error = text = err.render()  # (each job keeps its error: `check JOB`)
            again = self._macro_error_note((spec.name, which), text, "for {} more job(s)")
            if again is not None:
                self.report(f"task {spec.name} job {job.id}: error in task.exit {which} ({again}):\n{text}")
        except QuitRequest as request:
            self.leave(request)
        else:
            self._macro_errors.forget((spec.name, which))

    def _macro_error_note(self, key: Any, text: str, counted: str) -> str | None:
        """How to say a macro's error `text` now, or None: not now (the same error as the last
        said of `key`, less than MACRO_ERRORS_EVERY ago; counted). `counted` words how many
        times it came since it was said ("{} more time(s)")."""
        told = self._macro_errors.due(key, self.clock.monotonic(), text)
        if told is None:
            return None
        if told[0]:
            return f"again, and {counted.format(told[1])} since it was said"
        return f"said again at most every {MACRO_ERRORS_EVERY / 60:g} min while it fails so"

    def leave(self, request: QuitRequest) -> None:
        """`exit` in a macro: make no more jobs, and leave sched once the macro is done (the
        shell raises the request out of the wait under way; leaving runs the exit hooks)."""
        self.quit_request = request
        self.stop()
        if get_loop().is_running():
            leave_soon(request)
        else:  # called outside the loop (tests drive `step` by hand): leave from here
            raise request

    # --- commands from the prompt -------------------------------------------------------------

    def job(self, job_id: str | int) -> Job:
        try:
            number = int(job_id)
        except (TypeError, ValueError):
            raise TaskError(f'"{job_id}" is not a job id (job ids are numbers)') from None
        job = self.jobs.get(number)
        if job is None:
            raise TaskError(f"no job {number}" + (" (forgotten after the retention (see `help jobs`), deleted, "
                                                  "or never made)" if number < self._next_job else ""))
        return job

    def kill(self, job_id: str | int) -> str:
        job = self.job(job_id)
        if job.done:
            raise TaskError(f"job {job.id} has already ended ({job.outcome_text()})")
        backend = self._backend(job)
        if not backend.kill(job):
            raise TaskError(f"job {job.id} could not be killed: its backend does not know it")
        return f"job {job.id} is being killed"

    def delete_job(self, job_id: str | int) -> str:
        job = self.job(job_id)
        if not job.done:
            raise TaskError(f"job {job.id} is {job.state.value.lower()}: kill it first, then delete it")
        del self.jobs[job.id]
        return f"job {job.id} deleted"

    def outstanding(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.done]

    # --- waiting ------------------------------------------------------------------------------

    def finished(self, names: list[str] | None) -> bool:
        """Nothing `wait` (on these tasks, or on everything) waits for remains (checked at every
        job's end: no phrase is made).

        For everything, the tasks are gone round from the one that held `wait` the last time,
        not from the first: tasks mostly end in the order they were made, and a scan from the
        first at each job's end took time quadratic in their number (10,000 one-job tasks: half
        of sched's time). Only a whole round that finds none (then nothing beyond the tasks)
        says done: the round's list is made again whenever a task of it is gone or the count
        differs, so a whole round has seen every task."""
        if names:
            return not any(self._keeps_waiting(entry) for entry in self._waited(names))
        order, tasks = self._wait_order, self.tasks
        if len(order) != len(tasks):
            order = self._wait_order = list(tasks.values())
        count = len(order)
        start = self._wait_at if self._wait_at < count else 0
        for i in itertools.chain(range(start, count), range(start)):
            entry = order[i]
            if tasks.get(entry.name) is not entry:  # (one deleted, another made meanwhile: a new round)
                self._wait_order = []
                return self.finished(None)
            if self._keeps_waiting(entry):
                self._wait_at = i
                return False
        return next(self._beyond_tasks(), None) is None

    async def why_out(self) -> list[str]:
        """What the backends with jobs out say of them (`wait`'s timeout adds it to its message):
        a controller's pending jobs and why they wait, say. Each asked for WHY_OUT_WAIT s at most."""
        notes = []
        for backend in (self.local, self.remote):
            if backend.jobs_out():
                try:
                    note = await asyncio.wait_for(backend.why_out(), WHY_OUT_WAIT)
                except asyncio.TimeoutError:
                    note = f"no word from the backend within {WHY_OUT_WAIT:g} s"
                if note:
                    notes.append(note)
        return notes

    def _keeps_waiting(self, entry: TaskEntry) -> bool:
        """`wait` waits for this task: it has jobs out, or it is to make more (not paused)."""
        return bool(entry.jobs_out) or (not entry.finished and self.running and entry.spec.active)

    def still_waiting(self, names: list[str] | None) -> list[str]:
        """What `wait` still waits for, one phrase each (empty: done).

        A task is waited for while it has jobs out, and, while the scheduler runs, until it
        has made its `nmax` jobs: a standing task (no nmax) until `stop`. With no names, also
        the jobs of deleted tasks and `after` scripts not run yet; a paused task only while
        something else goes on that could resume it.
        """
        going = [say() for say in self._going(names)]
        if going:
            going += [say() for say in self._paused(names)]
        return going

    def _waited(self, names: list[str] | None) -> list[TaskEntry]:
        return [self.tasks[n] for n in names if n in self.tasks] if names else list(self.tasks.values())

    def _going(self, names: list[str] | None) -> Iterator[Callable[[], str]]:
        """What `wait` waits for but a paused task, each as the maker of its phrase."""
        for e in self._waited(names):  # (each phrase made only when asked: `finished` asks none, at each job's end)
            if not self._keeps_waiting(e):
                continue
            if e.jobs_out:
                more = ", standing: makes jobs until `stop`" if e.spec.nmax is None and self.running else ""
                yield lambda e=e, more=more: f"{e.name} ({e.timing.made}{_of_nmax(e)} made, {len(e.jobs_out)} out{more})"
            elif e.spec.nmax is None:
                yield lambda e=e: f"{e.name} (standing: makes jobs until `stop`; {e.timing.made} made)"
            else:
                yield lambda e=e: f"{e.name} ({e.timing.made}{_of_nmax(e)} made, {e.state()})"
        if names is None:
            yield from self._beyond_tasks()

    def _beyond_tasks(self) -> Iterator[Callable[[], str]]:
        """What `wait` for everything waits for besides the tasks: jobs of deleted tasks, and
        `after` scripts not run yet."""
        out = self.totals["made"] - self.totals["done"]
        if out > sum(len(e.jobs_out) for e in self.tasks.values()):  # else no scan of the job table
            gone_jobs = [j for j in self.outstanding() if j.task not in self.tasks]
            if gone_jobs:
                gone = ", ".join(sorted({j.task for j in gone_jobs}))
                yield lambda: f"{len(gone_jobs)} job(s) of deleted task(s) {gone}"
        if self.pending_scripts and self.running:
            yield lambda: f"{self.pending_scripts} `after` script(s) not run yet"

    def _paused(self, names: list[str] | None) -> Iterator[Callable[[], str]]:
        for e in self._waited(names):
            if not e.jobs_out and not e.finished and self.running and not e.spec.active:
                yield lambda e=e: f"{e.name} (paused, {e.timing.made}{_of_nmax(e)} made)"

    def waiter(self, names: list[str] | None) -> asyncio.Future:
        fut = get_loop().create_future()
        self._waiters.append((names, fut))
        self._check_waiters()
        return fut

    def check_waiters(self) -> None:
        """Something `wait` may be waiting on changed (an `after` script ran or was cancelled)."""
        self._check_waiters()

    def _check_waiters(self) -> None:
        if not self._waiters:
            return
        keep = []
        for names, fut in self._waiters:
            if fut.done():
                continue
            if self.finished(names):
                fut.set_result(None)
            else:
                keep.append((names, fut))
        self._waiters = keep

    # --- the real-time driver -----------------------------------------------------------------

    def _arm(self) -> None:
        """Wake the loop for the earliest look (real clock only).

        A look already due runs on the loop's next turn (call_soon, as each job's end makes its
        task due: no timer a job). A timer wakes the loop for a later look; one armed for an
        earlier time is kept (it wakes the loop early, `step` finds nothing due and arms again),
        so a task looked at once per job end does not make and cancel a timer at each look."""
        if not self.running or not self.real_time:
            return
        nxt = self.heap.peek()
        if nxt is None:
            self._disarm()
            return
        loop = get_loop()
        if nxt <= loop.time():
            if self._soon is None:
                self._soon = loop.call_soon(self._on_soon)
            return
        if self._timer is not None:
            if self._timer_when is not None and self._timer_when <= nxt:
                return
            self._timer.cancel()
        self._timer_when = nxt
        self._timer = loop.call_at(nxt, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_when = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    def _on_timer(self) -> None:
        self._timer = self._timer_when = None
        self._wake()

    def _on_soon(self) -> None:
        self._soon = None
        self._wake()

    def _wake(self) -> None:
        try:
            self.step()
        except Exception:  # a bug here must not kill the loop: log it and carry on
            log.exception("scheduler step failed")
        self._arm()

    # --- messages -----------------------------------------------------------------------------

    def controller_alert(self, record: dict[str, Any]) -> None:
        """An alert event from pcontrol: into the script's `alerts` queue (alertqueue.py)."""
        queue_alert(self.interp, record)

    def report(self, text: str) -> None:
        """A message for the user (printed above the prompt by the shell)."""
        if self.on_message is not None:
            self.on_message(text)
        else:
            log.warning("%s", text)


class _Running:
    """Scheduler.busy_with's context (a class: cheaper than a generator's at each macro)."""

    __slots__ = ("sched", "what", "outer")

    def __init__(self, sched: Scheduler, what: str) -> None:
        self.sched = sched
        self.what = what

    def __enter__(self) -> None:
        self.outer = self.sched.running_code
        if self.outer is None:
            self.sched.running_code = (self.what, time.monotonic())

    def __exit__(self, *exc: object) -> None:
        self.sched.running_code = self.outer
        if self.outer is None:  # (a SIGINT for this code that came as it ended is not the next one's)
            self.sched.interp.interrupted = False


def _of_nmax(entry: TaskEntry) -> str:
    """`/NMAX` after a count of jobs made, or nothing for a task without one."""
    nmax = entry.spec.nmax
    return "" if nmax is None else f"/{nmax}"


def _rounds_lead(host: str) -> float:
    """How long before its start a rounds run is made (its hosts are controller hosts, `host
    -each`): the job goes ahead to the controller, which holds it until then and tells a pull
    probe its run time."""
    return ROUNDS_AHEAD


def check_definable(spec: TaskSpec) -> None:
    """TaskError unless the scheduler can take the task: it needs something to run."""
    if not spec.argv and spec.exec_macro is None and spec.sync is None:
        raise TaskError(f"task {spec.name} has no `command` or `sync` (and no task.exec macro to give one)",
                        pos=spec.defined_at)


def deliver(interp: Any, dest: OutputDest, text: str) -> None:
    if dest.var is not None:
        interp.set_var("::" + dest.var, text)  # a global, whichever frame is running now
        return
    path = os.path.expanduser(dest.path or "")
    with open(path, "a" if dest.append else "w", encoding="utf-8") as fh:
        fh.write(text)


class _DeferredLines:
    """The lines of a deferred stream, for its queue: get_queue adopts any iterable as a
    WorkQueue on the queue's first use, and only then is the text made."""

    __slots__ = ("source",)

    def __init__(self, source: Deferred):
        self.source = source

    def __iter__(self):
        return iter(self.source.value().splitlines())


def set_queue(interp: Any, name: str, text: str) -> None:
    """Fill queue `name` with the lines of `text` (the stdout/stderr queues of task.exit)."""
    interp.queues[name] = WorkQueue(text.splitlines())


def _known(tasks: dict) -> str:
    if not tasks:
        return " (no tasks are defined)"
    names = sorted(tasks)
    return " (tasks: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") + ")"


class _Unattached(WithoutController):
    """The backend a Scheduler has until its real one is handed in: it takes no job."""

    def __init__(self, which: str):
        self.which = which

    def submit(self, job: Job) -> None:
        raise TaskError(f"job {job.id}: this scheduler has no {self.which} backend")

    def kill(self, job: Job) -> bool:
        return False

    def jobs_out(self) -> int:
        return 0
