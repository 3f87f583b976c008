"""What a simulation saw: its timeline, and a summary per task and per host.

    timeline = Timeline(clock, duration)
    sched.job_listeners.append(timeline.job_changed)    # jobs started and ended (sched's view)
    controller.subscribe(timeline)                      # hosts' states, jobs queued and requeued
    timeline.note("fault", host="h2", detail="...")     # anything else (faults, exec, output)
    print(timeline.text()) / for line in timeline.json_lines(): ...

An entry is (virtual seconds since the start, task, job, host, event, outcome, detail). Job
ids are the scheduler's (a controller job's is mapped back through the submit key the link
gives it). Events: `start`, `end` (outcome EXIT 0, TIMEOUT, DOWN...), `queued` (the
controller has no free slot for it), `requeued` (its host was lost and -retry runs it again),
`host` (a host's state: CONNECTING, UP, DOWN with its reason, OFF), `fault`, `exec`,
`output` (what would have been written), `message` (what sched reported), `running`
(still out when the simulation ended).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pcontrol.wire import Event, EventKind, Interest

from ..lang.clock import Clock
from .jobs import Job, JobState

__all__ = ["Entry", "Timeline"]

SUBMIT_KEY = "PSCHED_SUBMIT"  # (psched.scheduler.remote.SUBMIT_KEY: `session:job id`)


@dataclass(frozen=True)
class Entry:
    t: float
    task: str = ""
    job: int | None = None
    host: str = ""
    event: str = ""
    outcome: str = ""
    detail: str = ""


@dataclass
class _HostStats:
    started: int = 0
    busy: float = 0.0
    downs: int = 0
    down_for: float = 0.0
    down_since: float | None = None
    state: str = ""


@dataclass
class _TaskStats:
    made: int = 0
    started: int = 0
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    requeued: int = 0
    out_at_end: int = 0
    first_start: float | None = None
    last_start: float | None = None


class Timeline:
    """The simulation's record (a job listener of the scheduler, a Subscriber of the controller)."""

    owner = None
    interests = frozenset({Interest.HOST, Interest.LOAD, Interest.QUEUED})
    brief = False

    def __init__(self, clock: Clock, duration: float):
        self.clock = clock
        self.duration = duration
        self.entries: list[Entry] = []
        self.over = False
        self.tasks: dict[str, _TaskStats] = collections.defaultdict(_TaskStats)
        self.hosts: dict[str, _HostStats] = collections.defaultdict(_HostStats)
        self._attempts: dict[int, int] = {}
        self._seen: set[int] = set()
        self.ended_at: float | None = None

    def _now(self) -> float:
        return self.clock.monotonic()

    def note(self, event: str, *, task: str = "", job: int | None = None, host: str = "", outcome: str = "",
             detail: str = "") -> None:
        if not self.over:
            self.entries.append(Entry(self._now(), task, job, host, event, outcome, detail))

    def message(self, text: str) -> None:
        self.note("message", detail=text)

    # -- the scheduler's jobs --------------------------------------------------------------

    def job_changed(self, job: Job) -> None:
        if self.over:
            return
        stats = self.tasks[job.task]
        if job.id not in self._seen:
            self._seen.add(job.id)
            stats.made += 1
        now = self._now()
        if job.state is JobState.RUNNING:
            stats.started += 1
            stats.first_start = now if stats.first_start is None else stats.first_start
            stats.last_start = now
            host = job.ran_on or job.host
            self.hosts[host].started += 1
            self.note("start", task=job.task, job=job.id, host=host)
        elif job.done:
            outcome = job.outcome_text()
            stats.outcomes[outcome] += 1
            host = job.ran_on or ("" if job.host in ("NONE",) else job.host)
            if host and job.elapsed:
                self.hosts[host].busy += job.elapsed
            detail = job.reason if job.failed else ""
            if job.macro_error:
                detail = (detail + "; " if detail else "") + "exit macro error"
            self.note("end", task=job.task, job=job.id, host=host, outcome=outcome, detail=detail)

    # -- the controller's events (controller.Subscriber) -----------------------------------

    def send_event(self, event: Event) -> None:
        if self.over:
            return
        data = event.data
        if event.kind is EventKind.HOST:
            self._host_event(data)
        elif data.get("state") == "PENDING":
            self._queued(data)

    def _host_event(self, data: dict[str, Any]) -> None:
        name = data.get("name") or ""
        state = data.get("state") or ""
        shown = "UP" if state in ("IDLE", "BUSY") else state
        stats = self.hosts[name]
        if shown == stats.state:
            return
        now = self._now()
        if shown == "DOWN" and stats.down_since is None:
            stats.downs += 1        # retries that fail while it is down are not new downs
            stats.down_since = now
        elif shown == "UP" and stats.down_since is not None:
            stats.down_for += now - stats.down_since
            stats.down_since = None
        stats.state = shown
        self.note("host", host=name, outcome=shown, detail=(data.get("reason") or "") if shown == "DOWN" else "")

    def _queued(self, data: dict[str, Any]) -> None:
        key = (data.get("env") or {}).get(SUBMIT_KEY, "")
        _, _, number = key.partition(":")
        job = int(number) if number.isdigit() else None
        task = data.get("task") or ""
        attempts = data.get("attempts") or []
        if attempts:
            cid = int(data.get("id", -1))
            if self._attempts.get(cid) == len(attempts):
                return
            self._attempts[cid] = len(attempts)
            self.tasks[task].requeued += 1
            self.note("requeued", task=task, job=job, host=attempts[-1].get("host") or "",
                      detail=data.get("reason") or "")
        else:
            self.note("queued", task=task, job=job, detail="no free slot it may use")

    # -- the end ---------------------------------------------------------------------------

    def at_end(self, sched: Any) -> None:
        """The simulated time is over: what is still out (recorded before anything more happens)."""
        now = self._now()
        self.ended_at = now
        for job in sched.outstanding():
            self.tasks[job.task].out_at_end += 1
            self.entries.append(Entry(now, job.task, job.id, job.ran_on or "", "running",
                                      job.state.value, "still out when the simulation ended"))
        for stats in self.hosts.values():
            if stats.down_since is not None:
                stats.down_for += now - stats.down_since
                stats.down_since = None

    def finish(self, sched: Any) -> None:
        """The script ended (or was ended): the tasks the scheduler knows but made nothing."""
        if self.ended_at is None:
            self.at_end(sched)
        for name in sched.tasks:
            self.tasks[name]  # every defined task has a summary line  # noqa: B018

    # -- output ----------------------------------------------------------------------------

    def _stamp(self, t: float) -> str:
        when = self.clock.localtime(round(self._wall(t), 3))
        day = when.strftime("%Y-%m-%d ") if self.duration > 86400 or t == 0 else ""
        return f"{day}{when:%H:%M:%S}.{round(when.microsecond / 1000) % 1000:03d}"

    def _wall(self, t: float) -> float:
        return self.clock.wall() - self.clock.monotonic() + t

    def text(self) -> str:
        lines = [f"{'TIME':<23} {'+SECONDS':>10}  {'TASK':<16} {'JOB':>6}  {'HOST':<12} {'EVENT':<9} "
                 f"{'OUTCOME':<12} DETAIL"]
        for e in self.entries:
            lines.append(f"{self._stamp(e.t):<23} {e.t:>10.3f}  {e.task:<16} {'' if e.job is None else e.job:>6}  "
                         f"{e.host:<12} {e.event:<9} {e.outcome:<12} {e.detail}".rstrip())
        lines.append("")
        lines.append(f"{'TASK':<16} {'MADE':>6} {'STARTED':>7} {'REQUEUED':>8} {'OUT':>5}  OUTCOMES")
        for name in sorted(self.tasks):
            s = self.tasks[name]
            outcomes = ", ".join(f"{k} x{v}" for k, v in sorted(s.outcomes.items()))
            lines.append(f"{name:<16} {s.made:>6} {s.started:>7} {s.requeued:>8} {s.out_at_end:>5}  {outcomes}")
        lines.append("")
        lines.append(f"{'HOST':<16} {'JOBS':>6} {'BUSY S':>10} {'DOWNS':>5} {'DOWN S':>10}")
        for name in sorted(self.hosts):
            h = self.hosts[name]
            lines.append(f"{name:<16} {h.started:>6} {h.busy:>10.1f} {h.downs:>5} {h.down_for:>10.1f}")
        return "\n".join(lines)

    def json_lines(self) -> list[str]:
        out = []
        for e in self.entries:
            out.append(json.dumps({"type": "event", "t": round(e.t, 6), "time": self._iso(e.t), "task": e.task,
                                   "job": e.job, "host": e.host, "event": e.event, "outcome": e.outcome,
                                   "detail": e.detail}))
        for name in sorted(self.tasks):
            s = self.tasks[name]
            out.append(json.dumps({"type": "task", "task": name, "made": s.made, "started": s.started,
                                   "requeued": s.requeued, "out_at_end": s.out_at_end,
                                   "outcomes": dict(sorted(s.outcomes.items())),
                                   "first_start": s.first_start, "last_start": s.last_start}))
        for name in sorted(self.hosts):
            h = self.hosts[name]
            out.append(json.dumps({"type": "host", "host": name, "jobs": h.started, "busy": round(h.busy, 6),
                                   "downs": h.downs, "down_for": round(h.down_for, 6)}))
        return out

    def _iso(self, t: float) -> str:
        return datetime.fromtimestamp(self._wall(t), self.clock.tz).isoformat(timespec="milliseconds")
