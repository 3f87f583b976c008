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


def outcome_key(record: dict[str, Any]) -> str | None:
    """OK for an exit status 0, else the outcome (None while the job has not finished)."""
    return "OK" if is_ok(record) else record.get("outcome")


#: The fields the mirror indexes, and how each is read from a record.
INDEXED = {
    "task": lambda r: r.get("task"),
    "host": lambda r: r.get("ran_on") or r.get("host"),
    "state": lambda r: r.get("state"),
    "outcome": outcome_key,
}


class JobMirror:
    """Jobs by id (newest first on the page) and hosts by name.

    Each filterable field has an index (value -> set of ids), so a filtered page costs the
    size of its answer, not of the table; counts and the per-minute tally of finished jobs
    are kept as jobs change, so the overview and the plot cost nothing per job.
    """

    def __init__(self, listener: MirrorListener | None = None, *, keep: int = DEFAULT_KEEP,
                 keep_age: float = DEFAULT_KEEP_AGE):
        self.listener = listener
        self.keep = keep
        self.keep_age = keep_age
        self.jobs: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []                      # sorted
        self._finished: collections.deque[int] = collections.deque()   # in the order they ended
        self._index: dict[str, dict[Any, set[int]]] = {name: {} for name in INDEXED}
        self._per_minute: dict[int, collections.Counter[str]] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.version = 0                               # bumped on every change

    # -- taking changes in ------------------------------------------------------------------

    def take_job(self, record: dict[str, Any], now: float) -> dict[str, Any] | None:
        """A job record from pcontrol (a page of `jobs`, or an event); the record it replaced."""
        job_id = int(record["id"])
        before = self.jobs.get(job_id)
        if before is not None and "stdout" in before and "stdout" not in record:
            record = dict(record, stdout=before["stdout"], stderr=before.get("stderr", ""))
        if before is not None:
            self._unindex(job_id, before)
        self.jobs[job_id] = record
        self._reindex(job_id, record)
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

    def _reindex(self, job_id: int, record: dict[str, Any]) -> None:
        for name, read in INDEXED.items():
            self._index[name].setdefault(read(record), set()).add(job_id)
        minute = self._minute_of(record)
        if minute is not None:
            self._per_minute.setdefault(minute, collections.Counter())[outcome_key(record) or "?"] += 1

    def _unindex(self, job_id: int, record: dict[str, Any]) -> None:
        for name, read in INDEXED.items():
            index = self._index[name]
            key = read(record)
            ids = index.get(key)
            if ids is not None:
                ids.discard(job_id)
                if not ids:
                    del index[key]
        minute = self._minute_of(record)
        if minute is not None:
            tally = self._per_minute[minute]
            tally[outcome_key(record) or "?"] -= 1
            if not +tally:
                del self._per_minute[minute]

    @staticmethod
    def _minute_of(record: dict[str, Any]) -> int | None:
        ended = record.get("ended")
        if record.get("state") != "DONE" or ended is None:
            return None
        return int(ended // 60)

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
                self._unindex(job_id, oldest)
                del self.jobs[job_id]
                index = bisect.bisect_left(self._ids, job_id)
                if index < len(self._ids) and self._ids[index] == job_id:
                    del self._ids[index]

    # -- reading ----------------------------------------------------------------------------

    def _matching(self, where: JobFilter) -> list[int] | None:
        """The ids that match, newest first; None for "every job" (no filter)."""
        chosen: list[set[int]] = []
        for name in ("task", "host", "state"):
            value = getattr(where, name)
            if value is not None:
                chosen.append(self._index[name].get(value, set()))
        if where.outcome == "FAILED":
            failed: set[int] = set()
            for key, ids in self._index["outcome"].items():
                if key not in (None, "OK"):
                    failed |= ids
            chosen.append(failed)
        elif where.outcome == "EXIT":
            chosen.append(self._index["outcome"].get("EXIT", set())
                          | self._index["outcome"].get("OK", set()))
        elif where.outcome is not None:
            chosen.append(self._index["outcome"].get(where.outcome, set()))
        if not chosen:
            return None
        chosen.sort(key=len)
        ids = set(chosen[0]).intersection(*chosen[1:]) if len(chosen) > 1 else chosen[0]
        return sorted(ids, reverse=True)

    def page(self, where: JobFilter, offset: int = 0, limit: int = 50) -> Page:
        """The jobs that match, newest first, `limit` of them from `offset`."""
        limit = max(1, min(limit, MAX_PAGE))
        offset = max(0, offset)
        matching = self._matching(where)
        if matching is None:
            total = len(self._ids)
            end = total - offset
            chosen = reversed(self._ids[max(0, end - limit):max(0, end)])
        else:
            total = len(matching)
            chosen = iter(matching[offset:offset + limit])
        return Page([row(self.jobs[i]) for i in chosen], total, offset, limit)

    def counts(self) -> dict[str, Any]:
        """Jobs by state and finished jobs by outcome (OK apart from EXIT), the tasks and
        hosts seen: what the page's filters offer."""
        def sizes(name: str) -> dict[str, int]:
            return {key: len(ids) for key, ids in self._index[name].items() if key is not None}
        return {"states": sizes("state"), "outcomes": sizes("outcome"),
                "tasks": sorted(k for k in self._index["task"] if k is not None),
                "total": len(self.jobs)}

    def finished_per_minute(self, now: float, hours: float) -> dict[str, Any]:
        """Jobs finished per minute by outcome over the last `hours` (OK apart from EXIT)."""
        minutes = max(1, int(hours * 60))
        first = int(now // 60) - minutes + 1
        series: dict[str, list[int]] = {}
        for minute, tally in self._per_minute.items():
            if first <= minute < first + minutes:
                for key, count in tally.items():
                    if count:
                        series.setdefault(key, [0] * minutes)[minute - first] += count
        return {"start": first * 60, "step": 60, "minutes": minutes, "series": series}

    def run_times(self, task: str, limit: int = 500) -> list[dict[str, Any]]:
        """A task's finished jobs (the newest `limit`): when each ended, how long it ran."""
        ids = self._index["task"].get(task, set()) & self._index["state"].get("DONE", set())
        points = []
        for job_id in sorted(ids, reverse=True)[:limit]:
            r = self.jobs[job_id]
            if r.get("elapsed") is not None:
                points.append({"id": job_id, "ended": r.get("ended"), "elapsed": r["elapsed"],
                               "ok": is_ok(r)})
        points.reverse()
        return points
