"""The scheduling maths: pure functions of the time they are given.

The scheduler loop asks this module three kinds of question, always passing `now`:

- *When may a task run?* `trange` directives become `TimeRange`s (`parse_trange`);
  `allowed(ranges, local_dt)` says whether a local time is inside the window and
  `next_change(ranges, now_epoch, tz)` when that answer may next change, so a task
  outside its window sleeps until the window opens instead of polling.
- *How often?* `periods` directives become `Periods` (`parse_periods`).
- *What now?* `plan(...)` decides how many jobs a task makes at this look and when
  the loop should look at it next. `TimerHeap` is the loop's queue of next looks, so
  ten thousand idle tasks cost one sleep, not a scan per tick.

No I/O, no asyncio, no clock reads here: see `psched.lang.clock` for the clock seam.

Time-of-day windows
-------------------
A range is [start, end) in local wall-clock time, to the minute. When end <= start it
crosses midnight and its day list applies to the day on which it *started*
(`22:00 02:00 -days Fri` includes Saturday 01:00). start == end means the whole day
(00:00 to 24:00 of each listed day). 24:00 is valid only as an end.

Daylight saving: boundaries are wall-clock times. One that falls in a skipped hour
happens at the first instant after the gap (the transition itself); one that falls in a
repeated hour happens at its first occurrence, and the second pass through a repeated
hour fires no boundary again: the window keeps the state it had at the end of the first
pass. `allowed` and `next_change` agree on this, so `allowed` is constant between now
and `next_change`.

Errors
------
Bad directive words raise `TimingError` (a `ValueError`) carrying the index of the word
at fault (`word_index`, or None when a word is missing) and a message saying what would
be valid; the caller maps the index to a file position.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import Enum
from typing import Generic, TypeVar

__all__ = [
    "TimingError",
    "parse_hhmm",
    "parse_days",
    "format_days",
    "TimeRange",
    "parse_trange",
    "allowed",
    "allowed_at",
    "next_change",
    "Periods",
    "parse_periods",
    "Limits",
    "TaskTiming",
    "PlanReason",
    "Plan",
    "plan",
    "due_key",
    "TimerHandle",
    "TimerHeap",
    "SEARCH_DAYS",
    "WALL_RECHECK",
    "wall_to_epoch",
]

MINUTES_PER_DAY = 24 * 60
# How far ahead next_change looks for a change of the window.
SEARCH_DAYS = 8
# A task outside its window looks again at least this often (in seconds, or its poll period
# if longer), so that a wall clock jump is noticed even though the loop sleeps on monotonic time.
WALL_RECHECK = 60.0

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_ABBREVS = tuple(name[:3].capitalize() for name in DAY_NAMES)
ALL_DAYS = frozenset(range(7))
_DAY_LOOKUP = {name: i for i, name in enumerate(DAY_NAMES)} | {
    name[:3]: i for i, name in enumerate(DAY_NAMES)
}
_DAYS_HELP = "expected Mon..Sun (or Monday..Sunday, a range like Mon-Fri, a list like Sat,Sun, or all)"


class TimingError(ValueError):
    """A malformed `trange` or `periods` word, or an invalid timing value.

    `word_index` is the index, in the argument list given to the parser, of the word at
    fault; None when the error concerns a missing word or the whole directive.
    """

    def __init__(self, message: str, word_index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.word_index = word_index

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------- trange words

_HHMM = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)


def parse_hhmm(text: str, *, allow_end_of_day: bool = False) -> int:
    """Minutes since midnight of 'H:MM' or 'HH:MM' (00:00..23:59; 24:00 too if allowed)."""
    match = _HHMM.fullmatch(text)
    if match is not None:
        hours, minutes = int(match[1]), int(match[2])
        if hours < 24 and minutes < 60:
            return hours * 60 + minutes
        if hours == 24 and minutes == 0:
            if allow_end_of_day:
                return MINUTES_PER_DAY
            raise TimingError(f"24:00 is only valid as an end time, got '{text}' as a start")
    raise TimingError(f"expected HH:MM, got '{text}'")


def parse_days(text: str) -> frozenset[int]:
    """The weekdays (Monday=0 .. Sunday=6) named by a day list.

    Forms: `Mon`, `Monday`, `Mon-Fri`, `Fri-Mon` (wraps past Sunday), `Sat,Sun`,
    `Mon,Wed-Fri`, `all` or `*`; case-insensitive.
    """
    spec = text.strip()
    if spec.lower() in ("all", "*"):
        return ALL_DAYS
    if not spec:
        raise TimingError(f"empty day list, {_DAYS_HELP}")
    days: set[int] = set()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise TimingError(f"empty item in day list '{text}', {_DAYS_HELP}")
        ends = item.split("-")
        if len(ends) == 1:
            days.add(_day_number(item))
        elif len(ends) == 2 and ends[0].strip() and ends[1].strip():
            first, last = _day_number(ends[0].strip()), _day_number(ends[1].strip())
            span = (last - first) % 7
            days.update((first + k) % 7 for k in range(span + 1))
        else:
            raise TimingError(f"bad day range '{item}', expected two days like Mon-Fri")
    return frozenset(days)


def _day_number(name: str) -> int:
    try:
        return _DAY_LOOKUP[name.lower()]
    except KeyError:
        raise TimingError(f"unknown day '{name}', {_DAYS_HELP}") from None


def format_days(days: Iterable[int]) -> str:
    """The shortest plain day list for a set of weekdays: 'all', 'Mon-Fri', 'Mon,Wed-Fri'."""
    wanted = sorted(set(days))
    if set(wanted) == ALL_DAYS:
        return "all"
    runs: list[list[int]] = []
    for day in wanted:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        if len(run) == 1:
            parts.append(DAY_ABBREVS[run[0]])
        elif len(run) == 2:
            parts.append(f"{DAY_ABBREVS[run[0]]},{DAY_ABBREVS[run[1]]}")
        else:
            parts.append(f"{DAY_ABBREVS[run[0]]}-{DAY_ABBREVS[run[-1]]}")
    return ",".join(parts)


def _format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class TimeRange:
    """One `trange`: [start, end) minutes of local wall time, on some days (None = every day).

    end <= start crosses midnight (days then name the day the range starts on);
    start == end is the whole of each listed day. `exclude` makes it an exclusion.
    """

    start_min: int
    end_min: int
    exclude: bool = False
    days: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.start_min, int) and 0 <= self.start_min < MINUTES_PER_DAY):
            raise TimingError(f"start minute must be 0..1439, got {self.start_min!r}")
        if not (isinstance(self.end_min, int) and 0 <= self.end_min <= MINUTES_PER_DAY):
            raise TimingError(f"end minute must be 0..1440, got {self.end_min!r}")
        if self.days is not None:
            days = frozenset(self.days)
            if not days or not days <= ALL_DAYS:
                raise TimingError(f"days must be a non-empty set of 0..6, got {sorted(days)}")
            object.__setattr__(self, "days", days)

    @property
    def whole_day(self) -> bool:
        """True when the range covers whole days (start == end, or 00:00 to 24:00)."""
        return self.start_min == self.end_min or (self.start_min == 0 and self.end_min == MINUTES_PER_DAY)

    @property
    def crosses_midnight(self) -> bool:
        return not self.whole_day and self.end_min <= self.start_min

    def on_day(self, weekday: int) -> bool:
        return self.days is None or weekday in self.days

    def contains(self, weekday: int, minute: int) -> bool:
        """Whether wall time `minute` (0..1439) of a day with this `weekday` is inside."""
        if self.whole_day:
            return self.on_day(weekday)
        if self.crosses_midnight:
            if minute >= self.start_min:
                return self.on_day(weekday)
            return minute < self.end_min and self.on_day((weekday - 1) % 7)
        return self.start_min <= minute < self.end_min and self.on_day(weekday)

    def boundaries_on(self, weekday: int) -> list[int]:
        """Minutes (0..1439) of a day with this weekday at which this range may begin or end."""
        yesterday = (weekday - 1) % 7
        if self.whole_day:
            return [0] if self.on_day(weekday) or self.on_day(yesterday) else []
        found = []
        if self.on_day(weekday):
            found.append(self.start_min)
        if self.crosses_midnight:
            if self.on_day(yesterday):
                found.append(self.end_min)
        elif self.end_min == MINUTES_PER_DAY:
            if self.on_day(yesterday):
                found.append(0)
        elif self.on_day(weekday):
            found.append(self.end_min)
        return found

    def __str__(self) -> str:
        """The directive words that define this range, e.g. '-exclude 22:00 02:00 -days Fri'."""
        words = ["-exclude"] if self.exclude else []
        words += [_format_hhmm(self.start_min), _format_hhmm(self.end_min)]
        if self.days is not None:
            words += ["-days", format_days(self.days)]
        return " ".join(words)


_TRANGE_OPTIONS = "-exclude or -days"


def parse_trange(args: Sequence[str]) -> TimeRange:
    """A TimeRange from the words after `trange`: ?-exclude? HH:MM HH:MM ?-days DAYS?.

    Options may come before or after the two times.
    """
    exclude = False
    days: frozenset[int] | None = None
    times: list[tuple[int, str]] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "-exclude":
            exclude = True
        elif word == "-days":
            if i + 1 >= len(args):
                raise TimingError("missing day list after -days, e.g. -days Mon-Fri", i)
            i += 1
            try:
                days = parse_days(args[i])
            except TimingError as err:
                raise TimingError(err.message, i) from None
        elif word.startswith("-"):
            raise TimingError(f"unknown option '{word}', expected {_TRANGE_OPTIONS}", i)
        elif len(times) < 2:
            times.append((i, word))
        else:
            raise TimingError(f"unexpected word '{word}', usage: trange ?-exclude? HH:MM HH:MM ?-days DAYS?", i)
        i += 1
    if len(times) < 2:
        joined = [(i, w) for i, w in times if "-" in w]
        if len(times) == 1 and joined:  # (`trange 09:00-17:00`: say how it is written)
            start_text, _, end_text = joined[0][1].partition("-")
            raise TimingError(f"trange takes the start and the end as two words: trange {start_text} {end_text}",
                              joined[0][0])
        raise TimingError("trange expects a start and an end time: ?-exclude? HH:MM HH:MM ?-days DAYS?")
    (start_index, start_text), (end_index, end_text) = times
    try:
        start = parse_hhmm(start_text)
    except TimingError as err:
        raise TimingError(err.message, start_index) from None
    try:
        end = parse_hhmm(end_text, allow_end_of_day=True)
    except TimingError as err:
        raise TimingError(err.message, end_index) from None
    return TimeRange(start, end, exclude, days)


# --------------------------------------------------------------------------- windows

def allowed(ranges: Sequence[TimeRange], local_dt: datetime) -> bool:
    """Whether a local time is inside the window the ranges define.

    Inside any allow range (when there are allow ranges; none means always) and outside
    every exclude range. `local_dt` is aware (its `fold` matters in a repeated hour) or
    naive local wall time.
    """
    if not ranges:
        return True
    wall = _effective_wall(local_dt)
    return _allowed_wall(ranges, wall.weekday(), wall.hour * 60 + wall.minute)


def allowed_at(ranges: Sequence[TimeRange], epoch: float, tz: tzinfo) -> bool:
    """`allowed` at an epoch time in zone `tz`."""
    return not ranges or allowed(ranges, datetime.fromtimestamp(epoch, tz))


def _allowed_wall(ranges: Sequence[TimeRange], weekday: int, minute: int) -> bool:
    some_allow = False
    inside_allow = False
    for r in ranges:
        if r.exclude:
            if r.contains(weekday, minute):
                return False
        else:
            some_allow = True
            inside_allow = inside_allow or r.contains(weekday, minute)
    return inside_allow or not some_allow


def next_change(ranges: Sequence[TimeRange], now_epoch: float, tz: tzinfo) -> float | None:
    """The first epoch time after `now_epoch` at which `allowed` changes, within 8 days.

    None when there are no ranges, or when the answer does not change in the next
    `SEARCH_DAYS` days (the ranges cover every moment, or none). Only real changes are
    returned: a boundary where another range keeps the window open is skipped.
    """
    if not ranges:
        return None
    current = allowed_at(ranges, now_epoch, tz)
    horizon = now_epoch + SEARCH_DAYS * 86400
    today = datetime.fromtimestamp(now_epoch, tz).date()
    for offset in range(SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        for epoch in _boundary_epochs(ranges, day, tz):
            if epoch <= now_epoch:
                continue
            if epoch > horizon:
                return None
            if allowed_at(ranges, epoch, tz) != current:
                return epoch
    return None


def _boundary_epochs(ranges: Sequence[TimeRange], day: date, tz: tzinfo) -> list[float]:
    """Epoch times of the range boundaries whose wall time falls on `day`, sorted."""
    weekday = day.weekday()
    minutes = sorted({m for r in ranges for m in r.boundaries_on(weekday)})
    midnight = datetime(day.year, day.month, day.day)
    # Wall-to-epoch is non-decreasing, so sorted minutes give sorted epochs.
    return [_wall_to_epoch(midnight + timedelta(minutes=m), tz) for m in minutes]


def _wall_to_epoch(wall: datetime, tz: tzinfo) -> float:
    """The epoch time at which naive local `wall` time happens in `tz`.

    A repeated wall time happens at its first occurrence; a skipped one at the first
    instant after the gap, which is the transition.
    """
    first = wall.replace(tzinfo=tz, fold=0)
    epoch = first.timestamp()
    if datetime.fromtimestamp(epoch, tz).replace(tzinfo=None) == wall:
        return epoch
    # In a gap: fold=0 reads the wall time with the offset before the transition (an
    # instant after it), fold=1 with the offset after (an instant before it).
    other = wall.replace(tzinfo=tz, fold=1).timestamp()
    low, high = min(epoch, other), max(epoch, other)
    return _first_instant_with_offset(tz, low, high)


wall_to_epoch = _wall_to_epoch
"""The epoch at which a naive local wall time happens in a zone (public: the round planner uses it)."""


def _first_instant_with_offset(tz: tzinfo, low: float, high: float) -> float:
    """The first whole second in (low, high] having the UTC offset `high` has.

    Requires one offset transition in (low, high]; zone transitions fall on whole seconds.
    """
    target = _offset(tz, high)
    lo, hi = math.floor(low), math.ceil(high)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == target:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _offset(tz: tzinfo, epoch: float) -> timedelta | None:
    return datetime.fromtimestamp(epoch, tz).utcoffset()


def _effective_wall(local_dt: datetime) -> datetime:
    """The naive wall time by which `local_dt` is judged against ranges.

    During the second pass through a repeated hour (fold=1) no boundary fires again, so
    the time is judged as the last moment of the first pass.
    """
    wall = local_dt.replace(tzinfo=None, fold=0)
    if local_dt.tzinfo is None or local_dt.fold == 0:
        return wall
    after = local_dt.utcoffset()
    before = local_dt.replace(fold=0).utcoffset()
    if after is None or before is None or before <= after:
        return wall  # not a repeated time (unambiguous, or in a gap)
    epoch = local_dt.timestamp()
    repeat = (before - after).total_seconds()
    transition = _first_instant_with_offset(local_dt.tzinfo, epoch - repeat, epoch)
    end_of_first_pass = datetime.fromtimestamp(transition, timezone(before)).replace(tzinfo=None)
    return end_of_first_pass - timedelta(microseconds=1)


# --------------------------------------------------------------------------- periods

_PERIOD_OPTIONS = ("-poll", "-exec", "-timeout", "-pending")
_PERIOD_HELP = ", ".join(_PERIOD_OPTIONS)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([hms]?)", re.ASCII | re.IGNORECASE)
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float | None:
    """Seconds from a duration as scripts write them: `90`, `0.5`, `90s`, `5m`, `1.5h`, `1h30m`;
    None when `text` is not one. A number alone is seconds; in a compound each part has its
    unit (`5m30` is not a duration). The one reading of durations (periods, rounds, sync)."""
    word = text.strip()
    total, pos, parts = 0.0, 0, 0
    while pos < len(word):
        match = _DURATION_PART.match(word, pos)
        if match is None or (not match.group(2) and (parts or match.end() < len(word))):
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos, parts = match.end(), parts + 1
    return total if parts else None


_NO_LIMIT_WORDS = ("none", "0")


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    text = repr(float(seconds))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Periods:
    """A task's periods, in seconds.

    poll: how often the loop looks at the task (> 0).
    exec: the least time between two job launches (0 = no spacing).
    timeout: a running job older than this is killed (None = never).
    pending: a controller job not started within this is withdrawn (None = never).
    """

    poll: float = 1.0
    exec: float = 0.0
    timeout: float | None = None
    pending: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.poll) and self.poll > 0):
            raise TimingError(f"poll period must be a finite number of seconds > 0, got {self.poll!r}")
        if not (math.isfinite(self.exec) and self.exec >= 0):
            raise TimingError(f"exec period must be a finite number of seconds >= 0, got {self.exec!r}")
        for name in ("timeout", "pending"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise TimingError(f"{name} must be a finite number of seconds > 0 or None, got {value!r}")

    def __str__(self) -> str:
        """The directive words, e.g. '-poll 1 -exec 0 -timeout none -pending none'."""
        return (
            f"-poll {_format_seconds(self.poll)} -exec {_format_seconds(self.exec)} "
            f"-timeout {_format_seconds(self.timeout)} -pending {_format_seconds(self.pending)}"
        )


def parse_periods(args: Sequence[str], base: Periods = Periods()) -> Periods:
    """`base` changed by the words after `periods`: ?-poll S? ?-exec S? ?-timeout S? ?-pending S?.

    Seconds are decimals (`2`, `0.5`, `.25`) or durations (`5m`, `1h30m`: duration_seconds).
    -poll must be > 0; -exec may be 0;
    -timeout and -pending accept `0` or `none` for no limit. Options not given keep
    their value from `base`; an option given twice takes the last value.
    """
    values: dict[str, float | None] = {}
    i = 0
    while i < len(args):
        option = args[i]
        if option not in _PERIOD_OPTIONS:
            if option.startswith("-"):
                raise TimingError(f"unknown option '{option}', expected one of {_PERIOD_HELP}", i)
            raise TimingError(f"expected an option ({_PERIOD_HELP}), got '{option}'", i)
        if i + 1 >= len(args):
            raise TimingError(f"missing seconds after {option}", i)
        values[option[1:]] = _parse_seconds(option, args[i + 1], i + 1)
        i += 2
    return Periods(
        poll=values.get("poll", base.poll),  # type: ignore[arg-type]
        exec=values.get("exec", base.exec),  # type: ignore[arg-type]
        timeout=values.get("timeout", base.timeout),
        pending=values.get("pending", base.pending),
    )


def _parse_seconds(option: str, text: str, index: int) -> float | None:
    no_limit = option in ("-timeout", "-pending")
    expected = "seconds > 0" if option == "-poll" else "seconds >= 0"
    expected += " or a duration (90, 0.5, 5m, 1h30m)"
    if no_limit:
        expected += "; 0 or none for no limit"
    if no_limit and text.lower() in _NO_LIMIT_WORDS:
        return None
    if text.startswith("-") and duration_seconds(text[1:]) is not None:
        raise TimingError(f"{option} must not be negative, got '{text}'", index)
    seconds = duration_seconds(text)
    if seconds is None:
        raise TimingError(f"{option} expects {expected}, got '{text}'", index)
    if not math.isfinite(seconds):
        raise TimingError(f"{option} value is too large, got '{text}'", index)
    if option == "-poll" and seconds <= 0:
        raise TimingError(f"{option} must be more than 0 seconds, got '{text}'", index)
    if no_limit and seconds == 0:
        return None
    return seconds


# --------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class Limits:
    """How many jobs a task may make: `nmax` ever (None = no limit), `npending` at once."""

    nmax: int | None = None
    npending: int = 1

    def __post_init__(self) -> None:
        if self.nmax is not None and not (_is_int(self.nmax) and self.nmax >= 0):
            raise TimingError(f"nmax must be a whole number >= 0, got {self.nmax!r}")
        if not (_is_int(self.npending) and self.npending >= 0):
            raise TimingError(f"npending must be a whole number >= 0, got {self.npending!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class TaskTiming:
    """What the timing of a task remembers between looks (owned and updated by the loop)."""

    last_launch_mono: float | None = None
    made: int = 0
    outstanding: int = 0

    def launched(self, now_mono: float, count: int = 1) -> None:
        """Record that `count` jobs were made at `now_mono`."""
        self.made += count
        self.outstanding += count
        self.last_launch_mono = now_mono

    def ended(self, count: int = 1) -> None:
        """Record that `count` jobs ended (any outcome)."""
        self.outstanding = max(0, self.outstanding - count)


class PlanReason(str, Enum):
    """Why a plan makes the jobs it makes, or none."""

    MAKE = "make"
    """Jobs are made now (`make` > 0)."""
    FINISHED = "finished"
    """`nmax` jobs have been made; the task makes no more."""
    PAUSED = "paused"
    """The task is not active."""
    OUTSIDE_WINDOW = "outside-window"
    """The local time is outside the task's `trange` window."""
    PENDING_FULL = "npending-full"
    """`npending` jobs are already outstanding."""
    EXEC_PERIOD = "exec-period"
    """The exec period since the last launch has not passed yet."""


@dataclass(frozen=True)
class Plan:
    """The decision of one look: make `make` jobs now; look again at monotonic `next_look`."""

    make: int
    next_look: float
    reason: PlanReason


def plan(
    periods: Periods,
    limits: Limits,
    active: bool,
    ranges: Sequence[TimeRange],
    state: TaskTiming,
    now_mono: float,
    now_wall: float,
    tz: tzinfo,
    *,
    look_due: float | None = None,
) -> Plan:
    """How many jobs a task makes at this look, and when to look at it next.

    `next_look` is monotonic time:
    - finished (made >= nmax) or paused: math.inf; the loop must look again when
      something changes the task (resume, a directive), not on a timer;
    - outside the window: when it next opens (wall converted to monotonic through
      now_wall - now_mono), but no later than now + max(poll, WALL_RECHECK), so that a
      wall clock jump is noticed;
    - blocked only by the exec period: the end of that period if before the next poll;
    - otherwise the next poll. That is now + poll, or, when `look_due` (the time this
      look was scheduled for) is given, the next point of the grid look_due + k*poll
      after now, so a timer-driven task does not drift.
    The loop should also look again at once when one of the task's jobs ends.
    """
    if limits.nmax is not None and state.made >= limits.nmax:
        return Plan(0, math.inf, PlanReason.FINISHED)
    if not active:
        return Plan(0, math.inf, PlanReason.PAUSED)
    poll_at = _next_poll(periods.poll, now_mono, look_due)
    if ranges and not allowed_at(ranges, now_wall, tz):
        latest = now_mono + max(periods.poll, WALL_RECHECK)
        opens = next_change(ranges, now_wall, tz)
        next_look = latest if opens is None else min(latest, opens - now_wall + now_mono)
        return Plan(0, next_look, PlanReason.OUTSIDE_WINDOW)
    room = limits.npending - state.outstanding
    if limits.nmax is not None:
        room = min(room, limits.nmax - state.made)
    if room <= 0:
        return Plan(0, poll_at, PlanReason.PENDING_FULL)
    if periods.exec > 0:
        if state.last_launch_mono is not None:
            # Compare with the same sum used as the wake-up time, so waking at exactly
            # that time passes the test (no float-rounding busy loop).
            exec_due = state.last_launch_mono + periods.exec
            if now_mono < exec_due:
                return Plan(0, min(poll_at, exec_due), PlanReason.EXEC_PERIOD)
        return Plan(1, poll_at, PlanReason.MAKE)
    return Plan(room, poll_at, PlanReason.MAKE)


def _next_poll(poll: float, now_mono: float, look_due: float | None) -> float:
    if look_due is None or look_due > now_mono:
        return now_mono + poll
    steps = math.floor((now_mono - look_due) / poll) + 1
    next_look = look_due + steps * poll
    if next_look <= now_mono:
        next_look += poll
    return next_look


def due_key(priority: int, seq: int) -> tuple[int, int]:
    """Sort key for tasks due in the same tick: higher priority first, then older (lower seq)."""
    return (-priority, seq)


# --------------------------------------------------------------------------- timer heap

T = TypeVar("T")


@dataclass(eq=False)
class TimerHandle(Generic[T]):
    """A pushed timer; pass it to `TimerHeap.cancel`. `live` is False once popped or cancelled."""

    due: float
    seq: int
    item: T
    live: bool = field(default=True)


class TimerHeap(Generic[T]):
    """Items due at monotonic times: push, cancel (lazily), pop those due. O(log n) each.

    The loop sleeps until `peek()` and then calls `pop_due(now)`; ties in due time come
    out in insertion order. Cancelled entries are dropped when they reach the top, and
    the heap is rebuilt when they outnumber the live ones, so it never grows without bound.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle[T]]] = []
        self._seq = 0
        self._live = 0

    def push(self, due: float, item: T) -> TimerHandle[T]:
        """Schedule `item` at monotonic time `due`; returns its handle."""
        if due != due:
            raise ValueError("a timer cannot be due at NaN")
        self._seq += 1
        handle = TimerHandle(due, self._seq, item)
        heapq.heappush(self._heap, (due, self._seq, handle))
        self._live += 1
        return handle

    def cancel(self, handle: TimerHandle[T]) -> bool:
        """Withdraw a timer; False if it was already popped or cancelled."""
        if not handle.live:
            return False
        handle.live = False
        self._live -= 1
        if len(self._heap) > 64 and len(self._heap) > 2 * self._live:
            self._heap = [entry for entry in self._heap if entry[2].live]
            heapq.heapify(self._heap)
        return True

    def pop_due(self, now: float) -> list[T]:
        """Remove and return the items due at or before `now`, by due time then insertion."""
        items = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            handle = heapq.heappop(heap)[2]
            if handle.live:
                handle.live = False
                self._live -= 1
                items.append(handle.item)
        return items

    def peek(self) -> float | None:
        """The earliest live due time, or None when empty."""
        heap = self._heap
        while heap and not heap[0][2].live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return self._live

    def __bool__(self) -> bool:
        return self._live > 0
