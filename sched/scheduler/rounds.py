"""The round planner: N random rounds per window of the day, one run per host in each (pure maths).

    rule = parse_rounds(["3", "-windows", "02:00 05:30 07:00 12:00 20:00", "-gap", "2m", "-runtime", "35s"])
    config = RoundsConfig(rule, hosts=("probe1", "probe2", "probe3"))
    check_fits(config)                                # RoundsError saying by how much, or None
    plan = plan_rounds(config, now, seed=7, tz=tz)    # the WindowPlan of the window holding `now`

What the NDT probe governor did (issue 16). The boundaries are times of day; between two
consecutive ones (the last wraps to the first of the next day) lies a window. A window is cut
into `rounds` equal shares; in each share one round runs: every host once, in a shuffled order,
each start `runtime + gap` after the previous one. A round takes `hosts x (runtime + gap)`
(its last gap keeps the next round, or the next window, clear), and starts at a moment drawn
uniformly from the part of its share where it still fits. So rounds never overlap and never run
over the next boundary; a configuration whose rounds cannot fit in its shortest window is
refused (`check_fits`), with the shortfall in the message.

Times are wall-clock epochs; boundaries are local wall times in `tz` (the daylight-saving day
makes a window an hour shorter or longer; a round that no longer fits that day is dropped and
the plan says so). A plan depends only on (config, the window, seed): the random generator is
seeded with the seed and the window's start, so the plan of a window is the same whenever it
is computed (`check task -plan`, the loop, a simulator). Nothing here reads a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Sequence

from ..lang.tcllist import split_list
from .syncdefs import DurationError, parse_duration
from .timing import MINUTES_PER_DAY, TimingError, parse_hhmm, wall_to_epoch

__all__ = ["RoundsError", "RoundsRule", "RoundsConfig", "Run", "WindowPlan", "parse_rounds", "check_fits",
           "window_at", "plan_window", "plan_rounds", "describe_plan", "ROUNDS_USAGE"]

ROUNDS_USAGE = "rounds N -windows {HH:MM ...} -gap DURATION -runtime DURATION ?-seed N?"


class RoundsError(TimingError):
    """A `rounds` directive that cannot be read or cannot fit; `word_index` is 0-based among its
    words (a TimingError: the same message and word index)."""


@dataclass(frozen=True)
class RoundsRule:
    """The words of a `rounds` directive: how many rounds per window, the boundaries (minutes of
    the day, increasing), the least gap and the time a run takes (seconds), and the seed (None:
    the task derives one from its name)."""

    rounds: int
    windows: tuple[int, ...]
    gap: float
    runtime: float
    seed: int | None = None

    @property
    def step(self) -> float:
        """Seconds from one start to the next in a round."""
        return self.runtime + self.gap

    def __str__(self) -> str:
        bounds = " ".join(f"{m // 60:02d}:{m % 60:02d}" for m in self.windows)
        seed = "" if self.seed is None else f" -seed {self.seed}"
        return f"{self.rounds} -windows {{{bounds}}} -gap {self.gap:g}s -runtime {self.runtime:g}s{seed}"


@dataclass(frozen=True)
class RoundsConfig:
    """What the planner needs: the rule and the hosts each round runs on (`host -each`)."""

    rule: RoundsRule
    hosts: tuple[str, ...]

    @property
    def round_length(self) -> float:
        return len(self.hosts) * self.rule.step


@dataclass(frozen=True)
class Run:
    """One planned job: when (wall epoch), on which host, in which round (0-based)."""

    start: float
    host: str
    round: int


@dataclass(frozen=True)
class WindowPlan:
    """The runs of one window, in start order; `dropped` rounds did not fit (a short DST day)."""

    start: float
    end: float
    runs: tuple[Run, ...]
    dropped: int = 0
    notes: tuple[str, ...] = field(default=())

    def next_after(self, now: float) -> Run | None:
        return next((r for r in self.runs if r.start > now), None)


# --- reading the directive ---------------------------------------------------------------------

_OPTIONS = ("-windows", "-gap", "-runtime", "-seed")


def parse_rounds(args: Sequence[str]) -> RoundsRule:
    """The RoundsRule of the words after `rounds`; RoundsError names the bad word."""
    if not args:
        raise RoundsError(f"wrong # args: should be \"{ROUNDS_USAGE}\"")
    try:
        count = int(args[0], 10)
    except ValueError:
        raise RoundsError(f"the number of rounds must be a whole number, got '{args[0]}'", 0) from None
    if count < 1:
        raise RoundsError(f"the number of rounds must be at least 1, got {count}", 0)
    values: dict[str, tuple[str, int]] = {}
    i = 1
    while i < len(args):
        option = args[i]
        if option not in _OPTIONS:
            raise RoundsError(f"unknown option '{option}': expected {', '.join(_OPTIONS)}", i)
        if i + 1 >= len(args):
            raise RoundsError(f"missing value after {option}", i)
        values[option] = (args[i + 1], i + 1)
        i += 2
    for needed in ("-windows", "-gap", "-runtime"):
        if needed not in values:
            raise RoundsError(f"rounds needs {needed}: {ROUNDS_USAGE}")
    windows = _parse_windows(*values["-windows"])
    gap = _duration(*values["-gap"], "-gap")
    runtime = _duration(*values["-runtime"], "-runtime")
    if runtime + gap <= 0:
        raise RoundsError("-runtime and -gap cannot both be 0: runs would start at the same moment", values["-gap"][1])
    seed = None
    if "-seed" in values:
        text, index = values["-seed"]
        try:
            seed = int(text, 10)
        except ValueError:
            raise RoundsError(f"-seed must be a whole number, got '{text}'", index) from None
    return RoundsRule(count, windows, gap, runtime, seed)


def _parse_windows(text: str, index: int) -> tuple[int, ...]:
    try:
        words = split_list(text)
    except Exception as err:  # a malformed list: the list code's message says where
        raise RoundsError(f"-windows must be a list of HH:MM times: {err}", index) from None
    if not words:
        raise RoundsError("-windows needs at least one HH:MM boundary", index)
    minutes = []
    for word in words:
        try:
            minutes.append(parse_hhmm(word))
        except TimingError as err:
            raise RoundsError(f"-windows: {err.message}", index) from None
    for before, after, word in zip(minutes, minutes[1:], words[1:]):
        if after <= before:
            raise RoundsError(f"-windows boundaries must increase through the day (the last wraps to the first "
                              f"of the next day), got {word} after {before // 60:02d}:{before % 60:02d}", index)
    return tuple(minutes)


def _duration(text: str, index: int, what: str) -> float:
    try:
        seconds = parse_duration(text, what)
    except DurationError as err:
        raise RoundsError(str(err), index) from None
    if seconds is None:
        raise RoundsError(f"{what} needs a duration, not none", index)
    return seconds


# --- fitting -----------------------------------------------------------------------------------


def _nominal_lengths(rule: RoundsRule) -> list[tuple[int, int, float]]:
    """(start minute, end minute, seconds) of each window on a day without a clock change."""
    bounds = rule.windows
    out = []
    for i, start in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else bounds[0] + MINUTES_PER_DAY
        out.append((start, end % MINUTES_PER_DAY, (end - start) * 60.0))
    return out


def check_fits(config: RoundsConfig) -> None:
    """Refuse a configuration whose rounds cannot fit in its shortest window, saying by how much."""
    if not config.hosts:
        raise RoundsError("rounds needs hosts to run on: give the task `host -each {HOST ...}`")
    rule = config.rule
    need = rule.rounds * config.round_length
    start, end, length = min(_nominal_lengths(rule), key=lambda w: w[2])
    if need > length:
        raise RoundsError(
            f"{rule.rounds} rounds x {len(config.hosts)} hosts x ({rule.runtime:g}s runtime + {rule.gap:g}s gap) "
            f"= {duration_text(need)} do not fit in the shortest window {_hhmm(start)}-{_hhmm(end)} ({duration_text(length)}): "
            f"{duration_text(need - length)} too long", None)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def duration_text(seconds: float) -> str:
    """`95` -> `1m35s`, `5400` -> `1h30m`: a duration as the rounds messages say it."""
    seconds = round(seconds, 3)
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{rest:g}s" if rest else f"{int(minutes)}m"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes:02d}m" + (f"{rest:g}s" if rest else "")


# --- planning ----------------------------------------------------------------------------------


def _window_bounds(rule: RoundsRule, day: date, i: int, tz: tzinfo) -> tuple[float, float]:
    midnight = datetime(day.year, day.month, day.day)
    start_min = rule.windows[i]
    if i + 1 < len(rule.windows):
        end_wall = midnight + timedelta(minutes=rule.windows[i + 1])
    else:
        end_wall = midnight + timedelta(days=1, minutes=rule.windows[0])
    return wall_to_epoch(midnight + timedelta(minutes=start_min), tz), wall_to_epoch(end_wall, tz)


def window_at(rule: RoundsRule, now: float, tz: tzinfo = timezone.utc) -> tuple[float, float]:
    """(start, end) epochs of the window holding `now` (start <= now < end)."""
    today = datetime.fromtimestamp(now, tz).date()
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        for i in range(len(rule.windows)):
            start, end = _window_bounds(rule, day, i, tz)
            if start <= now < end:
                return start, end
    raise AssertionError(f"no window holds {now}")  # the windows tile every day


def plan_window(config: RoundsConfig, start: float, end: float, seed: int) -> WindowPlan:
    """The runs of the window [start, end): one shuffled round per equal share, each at a uniform
    random moment of the share where it fits."""
    rule = config.rule
    rng = random.Random(f"{seed}:{start:.0f}")  # the same plan for the same window, whenever asked
    length = end - start
    need = config.round_length
    rounds = rule.rounds
    dropped = 0
    notes: list[str] = []
    while rounds > 0 and rounds * need > length:
        rounds -= 1
        dropped += 1
    if dropped:
        notes.append(f"the window is {duration_text(length)} this day (a clock change): {dropped} of {rule.rounds} "
                     f"rounds do not fit and are left out")
    runs: list[Run] = []
    if rounds:
        share = length / rounds
        for k in range(rounds):
            slack = share - need
            first = start + k * share + rng.uniform(0.0, max(slack, 0.0))
            order = list(config.hosts)
            rng.shuffle(order)
            runs.extend(Run(first + j * rule.step, host, k) for j, host in enumerate(order))
    return WindowPlan(start, end, tuple(runs), dropped, tuple(notes))


def plan_rounds(config: RoundsConfig, now: float, seed: int, tz: tzinfo = timezone.utc) -> WindowPlan:
    """The plan of the window holding `now` (the seam `sched --simulate` calls)."""
    start, end = window_at(config.rule, now, tz)
    return plan_window(config, start, end, seed)


def describe_plan(plan: WindowPlan, tz: tzinfo) -> list[str]:
    """Lines for `check task -plan`: the window, then one line per run."""
    def at(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S")

    lines = [f"window {at(plan.start)} .. {at(plan.end)}: {len(plan.runs)} runs"]
    lines.extend(plan.notes)
    lines.extend(f"  round {r.round + 1}  {at(r.start)}  {r.host}" for r in plan.runs)
    return lines

