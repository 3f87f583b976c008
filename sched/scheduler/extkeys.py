"""The keys of the scheduler's entries in `interp.extensions`, for the shell to find them without
loading the scheduler (a `sched -c` that schedules nothing never does: start-up, issue 13).
psched.scheduler.attach, which makes the Scheduler, stores it under SCHEDULER_KEY."""

from __future__ import annotations

__all__ = ["SCHEDULER_KEY", "SCHED_NAME_KEY"]

SCHEDULER_KEY = "scheduler"
"""Key in `interp.extensions` of the interpreter's Scheduler."""

SCHED_NAME_KEY = "sched.name"
"""Key in `interp.extensions`: the name given with `sched --name NAME` (psched.scheduler.home)."""
