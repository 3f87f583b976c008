"""An asyncio loop on virtual time: it never waits, it jumps to its next timer.

    loop = VirtualLoop(start=0.0)
    loop.time()          # virtual seconds: they pass only when the loop would otherwise wait

`sched --simulate` (psched.scheduler.simulation) runs the real scheduler, controller and
their asyncio code on this loop: a `call_at`, `asyncio.sleep` or `wait_for` timeout whose
moment is an hour away costs one loop turn, not an hour. The loop has no selector and no
self-pipe (asyncio's selector loops open a socket pair to wake themselves): nothing here can
wait on a file descriptor, which is what a simulation wants, since it starts no process and
opens no socket. A reader, a writer, a subprocess or a signal handler asked of it is refused
(NotImplementedError, which run_until's SIGINT handler already tolerates).

When nothing is ready and no timer is set the loop has nothing left to do ever: `select`
raises Stalled rather than block for good.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["VirtualLoop", "Stalled"]


class Stalled(RuntimeError):
    """The virtual loop has no ready callback and no timer: it would wait forever."""


class _JumpingSelector:
    """What asyncio's `_run_once` asks for its poll: here, time passes by `timeout`."""

    def __init__(self, loop: "VirtualLoop") -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise Stalled("the simulation has nothing left to do (no timer, nothing ready)")
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def close(self) -> None:
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    """A BaseEventLoop whose `time()` is virtual and advanced only by its idle polls."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = float(start)
        self._selector = _JumpingSelector(self)
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass (the loop does this itself when idle)."""
        if seconds > 0:
            self._now += seconds

    # -- what a selector loop would do with file descriptors: nothing here -----------------

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass  # one thread: a callback scheduled from elsewhere is run at the next turn anyway

    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
        raise NotImplementedError("a virtual-time loop takes no signals")

    def remove_signal_handler(self, sig: int) -> bool:
        return False

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("cannot close a running event loop")
        if not self.is_closed():
            super().close()
            self._selector = None  # type: ignore[assignment]
