"""The status page's copy of the controller: its jobs and hosts, kept in this process.

pcontrol's records arrive here once, through its socket (a page of `jobs` at a time, then its
events), and every HTTP request is answered from this copy: filtering and paging 10,000 jobs is
a few milliseconds of this process's loop and none of pcontrol's. Finished jobs stay here after
pcontrol forgets them (harvested, deleted), for the "recently finished" rows and the plots, up to
`keep` of them and none older than `keep_age` seconds.

The mirror is pure data: it takes `now` where time matters, knows nothing of sockets or HTTP,
and tells a `MirrorListener` (the metrics, the live-update fan-out) what changed.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["JobFilter", "JobMirror", "MirrorListener", "Page", "DEFAULT_KEEP", "DEFAULT_KEEP_AGE"]

#: Finished jobs the mirror remembers at most, and for how long after they ended.
DEFAULT_KEEP = 20000
DEFAULT_KEEP_AGE = 6 * 3600.0
#: The longest page a request may ask for.
MAX_PAGE = 500

#: The columns of a job row on the page (the record without env, attempts and output).
ROW_FIELDS = ("id", "argv", "state", "outcome", "status", "signal", "host", "ran_on", "owner",
              "task", "submitted", "started", "ended", "elapsed", "reason", "priority")


class MirrorListener(Protocol):
    """Told of every change the mirror takes in."""

    def job_seen(self, record: dict[str, Any], before: dict[str, Any] | None) -> None: ...

    def hosts_seen(self, records: Sequence[dict[str, Any]]) -> None: ...


@dataclass(frozen=True)
class JobFilter:
    """What the jobs table shows: each field None for "any"."""

    task: str | None = None
    host: str | None = None        # where it ran, or else the host it asked for
    outcome: str | None = None     # an Outcome value, or OK / FAILED (EXIT 0 / anything else)
    state: str | None = None       # PENDING, BUSY, DONE

    def matches(self, r: dict[str, Any]) -> bool:
        if self.task is not None and r.get("task") != self.task:
            return False
        if self.host is not None and (r.get("ran_on") or r.get("host")) != self.host:
            return False
        if self.state is not None and r.get("state") != self.state:
            return False
        if self.outcome is not None:
            outcome = r.get("outcome")
            ok = outcome == "EXIT" and r.get("status") == 0
            if self.outcome == "OK":
                return ok
            if self.outcome == "FAILED":
                return outcome is not None and not ok
            return outcome == self.outcome
        return True


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int          # jobs that match the filter
    offset: int
    limit: int


def row(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in ROW_FIELDS}


def is_ok(record: dict[str, Any]) -> bool:
    return record.get("outcome") == "EXIT" and record.get("status") == 0


class JobMirror:
    """Jobs by id (newest first on the page) and hosts by name."""

    def __init__(self, listener: MirrorListener | None = None, *, keep: int = DEFAULT_KEEP,
                 keep_age: float = DEFAULT_KEEP_AGE):
        self.listener = listener
        self.keep = keep
        self.keep_age = keep_age
        self.jobs: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []                      # sorted
        self._finished: collections.deque[int] = collections.deque()   # in the order they ended
        self.hosts: dict[str, dict[str, Any]] = {}
        self.version = 0                               # bumped on every change

    # -- taking changes in ------------------------------------------------------------------

    def take_job(self, record: dict[str, Any], now: float) -> dict[str, Any] | None:
        """A job record from pcontrol (a page of `jobs`, or an event); the record it replaced."""
        job_id = int(record["id"])
        before = self.jobs.get(job_id)
        if before is not None and "stdout" in before and "stdout" not in record:
            record = dict(record, stdout=before["stdout"], stderr=before.get("stderr", ""))
        self.jobs[job_id] = record
        if before is None:
            if not self._ids or job_id > self._ids[-1]:
                self._ids.append(job_id)
            else:
                bisect.insort(self._ids, job_id)
        if record.get("state") == "DONE" and (before is None or before.get("state") != "DONE"):
            self._finished.append(job_id)
            self._expire(now)
        self.version += 1
        if self.listener is not None:
            self.listener.job_seen(record, before)
        return before

    def take_hosts(self, records: Iterable[dict[str, Any]]) -> None:
        """The whole host list (`hosts -json`)."""
        self.hosts = {r["name"]: r for r in records}
        self.version += 1
        if self.listener is not None:
            self.listener.hosts_seen(list(self.hosts.values()))

    def take_host(self, record: dict[str, Any]) -> None:
        """One host's record (a host event)."""
        self.hosts[record["name"]] = record
        self.version += 1

    def _expire(self, now: float) -> None:
        while self._finished:
            oldest = self.jobs.get(self._finished[0])
            ended = (oldest or {}).get("ended") or 0.0
            if oldest is not None and len(self._finished) <= self.keep \
                    and now - ended <= self.keep_age:
                return
            job_id = self._finished.popleft()
            if oldest is not None and oldest.get("state") == "DONE":
                del self.jobs[job_id]
                index = bisect.bisect_left(self._ids, job_id)
                if index < len(self._ids) and self._ids[index] == job_id:
                    del self._ids[index]

    # -- reading ----------------------------------------------------------------------------

    def page(self, where: JobFilter, offset: int = 0, limit: int = 50) -> Page:
        """The jobs that match, newest first, `limit` of them from `offset`."""
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        rows: list[dict[str, Any]] = []
        total = 0
        jobs = self.jobs
        everything = where == JobFilter()
        if everything:
            total = len(self._ids)
            end = len(self._ids) - offset
            chosen = self._ids[max(0, end - limit):max(0, end)]
            rows = [row(jobs[i]) for i in reversed(chosen)]
            return Page(rows, total, offset, limit)
        for job_id in reversed(self._ids):
            record = jobs[job_id]
            if where.matches(record):
                if offset <= total < offset + limit:
                    rows.append(row(record))
                total += 1
        return Page(rows, total, offset, limit)

    def counts(self) -> dict[str, Any]:
        """Jobs by state and finished jobs by outcome (with OK / FAILED), tasks and hosts seen:
        what the page's filters offer."""
        states: collections.Counter[str] = collections.Counter()
        outcomes: collections.Counter[str] = collections.Counter()
        tasks: set[str] = set()
        for r in self.jobs.values():
            states[r.get("state") or "?"] += 1
            if r.get("outcome"):
                outcomes[r["outcome"]] += 1
            if r.get("task"):
                tasks.add(r["task"])
        return {"states": dict(states), "outcomes": dict(outcomes), "tasks": sorted(tasks),
                "total": len(self.jobs)}

    def finished_per_minute(self, now: float, hours: float) -> dict[str, Any]:
        """Jobs finished per minute by outcome over the last `hours` (OK apart from EXIT)."""
        minutes = max(1, int(hours * 60))
        start = (int(now // 60) - minutes + 1) * 60
        series: dict[str, list[int]] = {}
        for r in self.jobs.values():
            ended = r.get("ended")
            if r.get("state") != "DONE" or ended is None or ended < start:
                continue
            slot = min(minutes - 1, int((ended - start) // 60))
            key = "OK" if is_ok(r) else (r.get("outcome") or "?")
            series.setdefault(key, [0] * minutes)[slot] += 1
        return {"start": start, "step": 60, "minutes": minutes, "series": series}

    def run_times(self, task: str, limit: int = 500) -> list[dict[str, Any]]:
        """A task's finished jobs (the newest `limit`): when each ended, how long it ran."""
        points = []
        for job_id in reversed(self._ids):
            r = self.jobs[job_id]
            if r.get("task") == task and r.get("state") == "DONE" and r.get("elapsed") is not None:
                points.append({"id": job_id, "ended": r.get("ended"), "elapsed": r["elapsed"],
                               "ok": is_ok(r)})
                if len(points) >= limit:
                    break
        points.reverse()
        return points
