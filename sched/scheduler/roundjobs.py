"""Where a rounds task stands in its plan: which planned runs to make a job for now, and when to look next.

    cursor = RoundCursor(RoundsConfig(rule, hosts), seed)
    due, late, next_wall = cursor.due(now_wall, tz, lead)   # the runs to make a job for now, those
                                                         # gone by (skipped), the next look (wall)
    cursor.put_back(run, now_wall)                    # a withdrawn job's run, to be made again

The loop (psched.scheduler.loop) keeps one cursor per rounds task and makes one job per due run,
on the run's host, with the run's start as the job's planned start (its not-before). A run is
due `lead(host)` seconds before its start: the loop hands rounds jobs (on controller hosts) to
the controller ROUNDS_AHEAD early; it holds them until their start and tells a pull probe its
run time in advance. The plan of a window is taken from the pure planner
(psched.scheduler.rounds) when the window's first run comes within the lead; it depends only on
the window and the seed, so it is the plan `check task -plan` shows. A cursor made in the middle
of a window (sched started, the task defined) skips the runs whose time has passed rather than
making them all at once; after that every planned run is made, even a little late, but not
once its start has gone by more than `late_limit` (the larger of the rule's gap and ROUNDS_LATE):
such runs (the wall clock was set forward, the machine was suspended, sched was held up) are
skipped, not made in a burst that would break the gap. A wall clock that moves more than a day
away from the plans (set back a day, or forward by months: a machine that booted with a dead
RTC) starts the plan again as at a start, rather than planning every window in between. A run
whose job was withdrawn before its start (the task paused or deleted) is put back: made again
when due, if the task runs by then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from .rounds import RoundsConfig, Run, WindowPlan, plan_rounds, plan_window

__all__ = ["RoundCursor", "ROUNDS_AHEAD", "ROUNDS_LATE", "no_lead"]

ROUNDS_AHEAD = 600.0
"""Seconds before its start that a run on a controller host is handed to the controller (which
holds it until its start). A pull probe hears of a job at its check-in before the run time, so
pcontrol's --pull-interval should stay below this."""


ROUNDS_LATE = 60.0
"""Seconds a run may be made after its start (a loop held up by a long macro) when the rule's
gap is shorter; a run later than that is skipped."""

_DAY = 86400.0


def no_lead(host: str) -> float:
    return 0.0


class RoundCursor:
    """The plans of the current window (and of the next, once it comes within the lead), and
    which of their runs have been given out."""

    def __init__(self, config: RoundsConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.plans: list[WindowPlan] = []
        self.taken: list[set[int]] = []   # per plan, the indexes of its runs given out
        self.skipped = 0

    @property
    def plan(self) -> WindowPlan | None:
        """The plan of the earliest window still followed."""
        return self.plans[0] if self.plans else None

    @property
    def late_limit(self) -> float:
        """Seconds after its start past which a run is skipped rather than made."""
        return max(self.config.rule.gap, ROUNDS_LATE)

    def due(self, now: float, tz: tzinfo, lead: Callable[[str], float] = no_lead
            ) -> tuple[list[Run], list[Run], float]:
        """The runs due at `now` (not given out before, start minus their host's lead reached),
        those whose start went by more than `late_limit` ago (skipped: given out, no job), and
        the wall time of the next look."""
        horizon = max((lead(host) for host in self.config.hosts), default=0.0)
        self._roll(now, tz, horizon)
        due: list[Run] = []
        late: list[Run] = []
        upcoming = self.plans[-1].end - horizon
        too_old = now - self.late_limit
        for plan, taken in zip(self.plans, self.taken):
            for i, run in enumerate(plan.runs):
                if i in taken:
                    continue
                at = run.start - lead(run.host)
                if at <= now:
                    taken.add(i)
                    (late if run.start < too_old else due).append(run)
                else:
                    upcoming = min(upcoming, at)
        self.skipped += len(late)
        self._drop_done(now)
        due.sort(key=lambda run: run.start)
        return due, late, upcoming

    def put_back(self, start: float, host: str, now: float) -> bool:
        """The run at `start` on `host` had its job withdrawn before that time: give it out
        again when due. False when its start has gone by or its window is no longer followed."""
        if start <= now:
            return False
        for plan, taken in zip(self.plans, self.taken):
            for i, run in enumerate(plan.runs):
                if run.start == start and run.host == host and i in taken:
                    taken.discard(i)
                    return True
        return False

    def _roll(self, now: float, tz: tzinfo, horizon: float) -> None:
        if self.plans and not self.plans[0].start - _DAY <= now <= self.plans[-1].end + _DAY:
            self.plans, self.taken = [], []  # the wall clock moved a day or more away: as at a start
        if not self.plans:
            plan = plan_rounds(self.config, now, self.seed, tz)
            passed = {i for i, run in enumerate(plan.runs) if run.start < now}
            self.skipped += len(passed)
            self.plans, self.taken = [plan], [passed]
        while self.plans[-1].end <= now + horizon:  # the next window's runs come within the lead
            last = self.plans[-1]
            following = plan_rounds(self.config, last.end, self.seed, tz)
            if following.start != last.end:  # cannot happen (windows tile the day); do not spin
                following = plan_window(self.config, last.end, following.end, self.seed)
            self.plans.append(following)
            self.taken.append(set())

    def _drop_done(self, now: float) -> None:
        """Forget windows that are over and whose runs were all given out."""
        while len(self.plans) > 1 and self.plans[0].end <= now and len(self.taken[0]) == len(self.plans[0].runs):
            self.plans.pop(0)
            self.taken.pop(0)
