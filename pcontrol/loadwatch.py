"""How pcontrol itself is doing, for `status`: its memory, and how late its loop runs.

`process_memory()` reads this process's resident memory and its peak from /proc/self/status.

`LoopWatch` wakes every `interval` seconds and records how late it woke: the loop's lag, the
time anything (a client's `status`, an agent's report) waits before pcontrol gets to it. A
late wake-up has two possible causes, told apart with /proc/self/schedstat: pcontrol was
busy (a long callback: its own fault), or it was ready to run but waiting for a CPU (the
machine is overloaded, e.g. by the agents and jobs sharing it). `summary()` gives the lag's
p50/p99/max over the last `window` seconds and the shares of that time pcontrol spent on a
CPU and waiting for one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

log = logging.getLogger(__name__)

#: Seconds between two wake-ups, and seconds summarised.
INTERVAL = 0.1
WINDOW = 10.0


def process_memory() -> dict[str, int | None]:
    """This process's resident memory now and at its peak, in bytes (Linux /proc)."""
    found: dict[str, int | None] = {"rss": None, "peak": None}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    found["rss"] = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    found["peak"] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def _schedstat() -> tuple[int, int] | None:
    """Nanoseconds this thread has spent on a CPU and waiting for one (None: unknown)."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as stat:
            on_cpu, waiting, _ = stat.read().split()
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return None


class LoopWatch:
    """Samples the loop's lag; see the module docstring."""

    def __init__(self, interval: float = INTERVAL, window: float = WINDOW):
        self.interval = interval
        size = max(1, int(window / interval))
        # (loop time, lag in s, schedstat at the sample or None)
        self._samples: collections.deque[tuple[float, float, tuple[int, int] | None]] = \
            collections.deque(maxlen=size)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="pcontrol-loopwatch")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self._samples.append((now, max(0.0, now - due), _schedstat()))

    def summary(self) -> dict[str, Any]:
        """Lag p50/p99/max (ms) over the window, and the shares of it on and waiting for
        a CPU (None where unknown)."""
        samples = list(self._samples)
        if not samples:
            return {"samples": 0, "lag_p50_ms": None, "lag_p99_ms": None, "lag_max_ms": None,
                    "cpu_share": None, "cpu_wait_share": None}
        lags = sorted(lag for _, lag, _ in samples)
        result: dict[str, Any] = {
            "samples": len(lags),
            "lag_p50_ms": round(lags[len(lags) // 2] * 1000, 1),
            "lag_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000, 1),
            "lag_max_ms": round(lags[-1] * 1000, 1),
            "cpu_share": None, "cpu_wait_share": None,
        }
        first, last = samples[0], samples[-1]
        span = last[0] - first[0]
        if first[2] is not None and last[2] is not None and span > 0:
            result["cpu_share"] = round((last[2][0] - first[2][0]) / 1e9 / span, 3)
            result["cpu_wait_share"] = round((last[2][1] - first[2][1]) / 1e9 / span, 3)
        return result
