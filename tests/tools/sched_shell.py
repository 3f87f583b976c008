"""A sched interpreter in the test's own process, as the shell has it: its scheduler made,
its messages collected. Test folders subclass it for what they need more."""

from __future__ import annotations

import io

import psched
from psched.scheduler.eventloop import run_until
from psched.scheduler.attach import scheduler_of


class Shell:
    source = "test.sched"  # the file name its scripts' errors give

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.interp = psched.Interp(stdout=self.out)
        self.sched = scheduler_of(self.interp)
        self.messages: list[str] = []
        self.sched.on_message = self.messages.append

    def run(self, text: str) -> str:
        return self.interp.eval(text, self.source)

    def close(self) -> None:
        """Close the controller link (the daemon, if any, is the test's to stop)."""
        run_until(self.sched.remote.aclose())
