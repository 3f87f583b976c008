"""How long the scheduler remembers jobs that have ended: a count and an age.

sched runs for months; its job table must not grow with every job it ever made. A job is
remembered from the moment it ends (for a controller job: once its exit macro ran and it was
harvested) until either more than `count` newer ended jobs exist or it ended more than `age`
seconds ago. Jobs not yet ended are never forgotten. The ended jobs' output is not kept at all
(it went to the task's `stdout`/`stderr` destinations and to $stdout/$stderr of the exit
macro); `check JOB` shows its byte counts.

    ret = Retention(count=10_000, age=86_400.0)
    ret.ended(job_id, ended_at)                  # in the order jobs end
    for job_id in ret.expired(now):              # what to forget now (oldest first)
        del jobs[job_id]

Pure: it takes `now` and touches no table itself.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["Retention", "DEFAULT_KEEP_COUNT", "DEFAULT_KEEP_AGE"]

DEFAULT_KEEP_COUNT = 10_000
DEFAULT_KEEP_AGE = 86_400.0  # a day


@dataclass
class Retention:
    """The ended jobs, oldest first, and the bounds on keeping them."""

    count: int = DEFAULT_KEEP_COUNT
    age: float = DEFAULT_KEEP_AGE
    _ended: deque[tuple[int, float]] = field(default_factory=deque)

    def ended(self, job_id: int, at: float) -> None:
        self._ended.append((job_id, at))

    def expired(self, now: float) -> Iterator[int]:
        """The ids to forget now, oldest first (each given once)."""
        ended = self._ended
        while ended and (len(ended) > self.count or ended[0][1] < now - self.age):
            yield ended.popleft()[0]

    def __len__(self) -> int:
        return len(self._ended)

    def describe(self) -> str:
        return f"the newest {self.count} ended jobs, none ended more than {_duration(self.age)} ago"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
