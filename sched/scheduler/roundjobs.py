"""Where a rounds task stands in its plan: which planned runs are due now, and when to look next.

    cursor = RoundCursor(RoundsConfig(rule, hosts), seed)
    due, next_wall = cursor.due(now_wall, tz)     # the runs to make a job for now; the next look (wall)

The loop (psched.scheduler.loop) keeps one cursor per rounds task and makes one job per due run,
on the run's host. The plan of a window is taken from the pure planner
(psched.scheduler.rounds) when the window is first looked at, so it is fixed at its start.
A cursor made in the middle of a window (sched started, the task defined) skips the runs whose
time has passed rather than making them all at once; across later window changes every planned
run is made, even a little late.
"""

from __future__ import annotations

from datetime import tzinfo

from .rounds import RoundsConfig, Run, WindowPlan, plan_rounds

__all__ = ["RoundCursor"]


class RoundCursor:
    """The current window's plan and how many of its runs have been made."""

    def __init__(self, config: RoundsConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.plan: WindowPlan | None = None
        self.next_index = 0
        self.skipped = 0

    def due(self, now: float, tz: tzinfo) -> tuple[list[Run], float]:
        """The runs due at `now` (not given out before), and the wall time of the next look."""
        if self.plan is None or now >= self.plan.end:
            first = self.plan is None
            self.plan = plan_rounds(self.config, now, self.seed, tz)
            self.next_index = 0
            if first:
                while self.next_index < len(self.plan.runs) and self.plan.runs[self.next_index].start < now:
                    self.next_index += 1
                self.skipped = self.next_index
        runs = self.plan.runs
        due = []
        while self.next_index < len(runs) and runs[self.next_index].start <= now:
            due.append(runs[self.next_index])
            self.next_index += 1
        upcoming = runs[self.next_index].start if self.next_index < len(runs) else self.plan.end
        return due, upcoming
