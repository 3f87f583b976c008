"""The clock seam: where the scheduler reads the time.

Two clocks matter and must not be confused:

- **monotonic** seconds drive everything that is a duration: poll and exec periods,
  job timeouts, the timer heap the loop sleeps on. They never jump.
- **wall** seconds (the Unix epoch) are read only to decide time-of-day windows
  (`trange`) and to display times. They may jump (NTP, an operator, a VM resume).

`localtime(epoch)` turns a wall time into an aware datetime in the clock's zone (`tz`),
which `psched.scheduler.timing` uses for `trange` and daylight-saving arithmetic.

`SystemClock` reads the real clocks; `FakeClock` is moved by tests with `advance()`
(both clocks) and `jump_wall()` (the wall clock only). The fake never sleeps: a loop
under test re-reads it after each `advance`, and may register a listener to be told
when it moved.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .lazylog import lazy_logger

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["Clock", "SystemClock", "FakeClock", "local_zone", "FAKE_START_WALL"]

# 2024-01-01 00:00:00 UTC, a Monday: the default wall time of a FakeClock.
FAKE_START_WALL = 1_704_067_200.0


class Clock(ABC):
    """What the scheduler needs to know about time."""

    on_loop: bool = False
    """Its monotonic() is the time of the process's asyncio loop, so the scheduler arms its
    timers there (SystemClock; sched --simulate's virtual clock). A FakeClock is not: tests
    call `step()`."""

    @property
    @abstractmethod
    def tz(self) -> tzinfo:
        """The local zone used for time-of-day windows and display."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; for periods, timeouts and timers."""

    @abstractmethod
    def wall(self) -> float:
        """Seconds since the Unix epoch; only for `trange` windows and display."""

    def localtime(self, epoch: float) -> datetime:
        """The aware local datetime (in `tz`) of an epoch time, `fold` set in a repeated hour."""
        return datetime.fromtimestamp(epoch, self.tz)

    def now_local(self) -> datetime:
        """The current local datetime; `localtime(wall())`."""
        return self.localtime(self.wall())


class SystemClock(Clock):
    """The real clocks of this machine; `tz` defaults to the machine's local zone."""

    on_loop = True

    def __init__(self, tz: tzinfo | None = None) -> None:
        self._tz = tz if tz is not None else local_zone()

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class FakeClock(Clock):
    """A clock that moves only when a test moves it.

    `advance(s)` moves monotonic and wall time together (time passing);
    `jump_wall(s)` moves only the wall clock (someone set the clock), as does `set_wall`.
    Listeners added with `add_listener` are called, without arguments, after every move,
    so a loop under test can wake up and re-read the clock.
    """

    def __init__(
        self,
        start_mono: float = 0.0,
        start_wall: float = FAKE_START_WALL,
        tz: tzinfo | None = None,
    ) -> None:
        self._mono = float(start_mono)
        self._wall = float(start_wall)
        self._tz = tz if tz is not None else timezone.utc
        self._listeners: list[Callable[[], None]] = []

    @property
    def tz(self) -> tzinfo:
        return self._tz

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> float:
        """Let `seconds` (>= 0) pass on both clocks; returns the new monotonic time."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        self._mono += seconds
        self._wall += seconds
        self._notify()
        return self._mono

    def jump_wall(self, seconds: float) -> float:
        """Move the wall clock by `seconds` (either sign) without moving monotonic time."""
        if seconds != seconds:
            raise ValueError("jump_wall(nan)")
        self._wall += seconds
        self._notify()
        return self._wall

    def set_wall(self, epoch: float) -> None:
        """Set the wall clock to `epoch` without moving monotonic time."""
        self.jump_wall(epoch - self._wall)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every move of this clock."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling `callback`; a callback never added is ignored."""
        try:
            self._listeners.remove(callback)
        except ValueError:
            pass

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()


def local_zone() -> tzinfo:
    """This machine's local zone, as a zoneinfo zone when it can be found.

    Tries `$TZ`, then the `/etc/localtime` link name, then the file itself. As a last
    resort it returns the current fixed UTC offset, which is right until the next
    daylight-saving change, and logs a warning.
    """
    key = os.environ.get("TZ", "").lstrip(":")
    if key:
        zone = _zone_from_key_or_file(key)
        if zone is not None:
            return zone
        log.warning("TZ=%r is not a known time zone; trying /etc/localtime", key)
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        target = ""
    marker = "zoneinfo/"
    if marker in target:
        zone = _zone_from_key_or_file(target.split(marker, 1)[1])
        if zone is not None:
            return zone
    zone = _zone_from_key_or_file("/etc/localtime")
    if zone is not None:
        return zone
    offset = time.localtime().tm_gmtoff
    log.warning("no local time zone database entry found; using a fixed UTC offset of %+d s", offset)
    return timezone(timedelta(seconds=offset))


def _zone_from_key_or_file(key: str) -> tzinfo | None:
    try:
        if os.path.isabs(key):
            with open(key, "rb") as handle:
                return ZoneInfo.from_file(handle, key=key)
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
