"""Missed check-ins of a pull probe: pure bookkeeping, given the time (no clock, no I/O).

    book = CheckIns(threshold=3, grace=90, interval=60)
    book.told(next_run)            # at a check-in: the probe was told to come back at next_run
    book.tick(now)                 # -> Verdict.ALERT once `threshold` run times went by unreported
    book.checked_in(now)           # -> Verdict.RECOVERED if it had been alerted about

A run time is the moment the controller told the probe to come back (its next run, or its
next check-in when it has nothing to run). Not reported by that time plus `grace` (the task's
timeout, or the controller's default) is a miss; the next run time after a miss is `interval`
later (the probe would have been told to come back then). `threshold` misses in a row start an
episode (ALERT, once); the next check-in ends it (RECOVERED, once).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CheckIns", "Verdict"]


class Verdict(str, enum.Enum):
    NONE = "none"
    """Nothing to say."""
    MISSED = "missed"
    """One more run time went by (below the threshold, or the episode is already open)."""
    ALERT = "alert"
    """The threshold was reached: an episode starts."""
    RECOVERED = "recovered"
    """The probe reported after an alert: the episode ends."""


@dataclass
class CheckIns:
    threshold: int = 3
    grace: float = 60.0
    interval: float = 60.0
    due: float | None = None
    misses: int = 0
    alerted: bool = False
    last: float | None = None

    def told(self, next_run: float) -> None:
        self.due = next_run

    def checked_in(self, now: float) -> Verdict:
        self.last = now
        self.misses = 0
        if self.alerted:
            self.alerted = False
            return Verdict.RECOVERED
        return Verdict.NONE

    def tick(self, now: float) -> Verdict:
        verdict = Verdict.NONE
        while self.due is not None and now >= self.due + self.grace:
            self.misses += 1
            self.due += max(self.interval, 1e-3)
            if verdict is not Verdict.ALERT:
                verdict = Verdict.MISSED
            if self.misses >= self.threshold and not self.alerted:
                self.alerted = True
                verdict = Verdict.ALERT
        return verdict

    def next_deadline(self) -> float | None:
        """When `tick` may next have something to say."""
        return None if self.due is None else self.due + self.grace
