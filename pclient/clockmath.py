"""NTP's clock arithmetic: a peer's clock offset and the round trip, from four timestamps.

    t0  we send a probe (our clock)          t1  the peer receives it (its clock)
    t3  we receive the answer (our clock)    t2  the peer answers (its clock)

    offset = ((t1 - t0) + (t2 - t3)) / 2     the peer's clock minus ours
    delay  = (t3 - t0) - (t2 - t1)           the round trip, less the peer's own time

The offset is exact when the two directions take equally long; otherwise it is off by at
most half the delay, so of several probes the one with the shortest delay is the best
estimate (NTP's clock filter). `best_sample` picks it, and `correction` is what to correct
a clock by: the offset, or 0 if the offset is within its own error. Pure functions of their arguments,
standard library only: the agent (pclient) and the controller both use them, and the later
pull probes will too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

__all__ = ["ClockSample", "best_sample", "sample"]


@dataclass(frozen=True)
class ClockSample:
    """One probe's result, in seconds: the peer's clock minus ours, and the round trip."""

    offset: float
    delay: float

    @property
    def error(self) -> float:
        """The most the offset can be wrong by: half the round trip."""
        return self.delay / 2

    @property
    def correction(self) -> float:
        """The offset to correct by: 0 when it is within its own error (|offset| <= delay/2),
        where it cannot be told from zero. The true offset is then within the error of 0 as
        much as of the measured value, so the worst case is no worse, and clocks that agree
        (one machine, or hosts synchronized by NTP) are not put apart by a noisy probe."""
        return 0.0 if abs(self.offset) <= self.error else self.offset


def sample(t0: float, t1: float, t2: float, t3: float) -> ClockSample:
    """The offset and round trip of one probe (see the module docstring for t0..t3).

    A negative delay (clocks stepped during the probe) is reported as 0."""
    offset = ((t1 - t0) + (t2 - t3)) / 2
    delay = max(0.0, (t3 - t0) - (t2 - t1))
    return ClockSample(offset, delay)


def best_sample(samples: Iterable[ClockSample]) -> Union[ClockSample, None]:
    """The sample with the shortest round trip (None for no samples)."""
    best = None
    for item in samples:
        if best is None or item.delay < best.delay:
            best = item
    return best
