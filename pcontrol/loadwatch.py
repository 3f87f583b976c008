"""How pcontrol itself is doing, for `status`: its memory, how late its loop runs, and why.

`process_memory()` reads this process's resident memory and its peak from /proc/self/status.

`LoopWatch` wakes every `interval` seconds and records how late it woke: the loop's lag, the
time anything (a client's `status`, an agent's report) waits before pcontrol gets to it. A
late wake-up has two possible causes, told apart with /proc/self/schedstat: pcontrol was
busy (a long callback: its own fault), or it was ready to run but waiting for a CPU (the
machine is overloaded, e.g. by the agents and jobs sharing it). `summary()` gives the lag's
p50/p99/max over the last `window` seconds, the shares of that time pcontrol spent on a
CPU and waiting for one, and the garbage collector's pauses (a full collection visits every
object pcontrol keeps, and stops the loop meanwhile).

`GcPolicy` (the daemon's, see daemon.py) takes the garbage collector's full passes off
their automatic trigger: with 100,000 jobs in memory a full pass visits every one of them
and stops the loop for 80-100 ms, and while jobs are queued in a flood such passes come
every few seconds (each time the long-lived objects have grown by a quarter). They found
next to nothing (0-50 objects per pass in bench_scale), because pcontrol's long-lived data
holds no cycles. So the young generations are collected as usual, and a full pass runs on
a timer (`interval`, an hour by default): the cyclic garbage of long-lived objects waits
that long at most.

`TurnWatch` (opt-in: $PCONTROL_TURNWATCH, see daemon.py) times the loop itself: each turn
(from the selector's return to its next call: all the callbacks run in between) into a
histogram, and each callback slower than `slow` by name, so a long turn is pinned on what
ran in it. A turn is timed twice: on the wall clock and on this thread's CPU clock, so a
turn that was long because pcontrol was preempted (waiting for a CPU) is told apart from
one that was long with work. Its counters are cumulative, so a tool reading `status` twice
can tell what happened in between. It wraps the loop's selector and asyncio's Handle._run,
which are asyncio internals (stable from 3.8 to 3.13), hence opt-in: a diagnostic, not a
feature.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import bisect
import collections
import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: Seconds between two wake-ups, and seconds summarised.
INTERVAL = 0.1
WINDOW = 10.0
#: Seconds between two full garbage collections in the daemon (GcPolicy).
GC_FULL_INTERVAL = 3600.0
#: Upper edges (ms) of TurnWatch's histogram buckets; the last bucket is everything longer.
TURN_EDGES_MS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
#: Seconds from which a turn or a callback is recorded, and how many such records are kept
#: (and shown by `summary`, which `status` calls: it must stay cheap).
SLOW_CALLBACK = 0.002
SLOW_KEPT = 32
_EDGE_NAMES = [str(edge) for edge in TURN_EDGES_MS] + ["inf"]


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


class GcWatch:
    """The garbage collector's pauses, through gc.callbacks (cheap: two calls a pass)."""

    def __init__(self, clock=time.perf_counter, kept: int = 200):
        self._clock = clock
        self._started: float | None = None
        # (clock at the end, seconds, generation)
        self.pauses: collections.deque[tuple[float, float, int]] = collections.deque(maxlen=kept)
        self.full_collections = 0
        self.full_collected = 0           # objects the full passes found unreachable

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            now = self._clock()
            generation = int(info.get("generation", 0))
            self.pauses.append((now, now - self._started, generation))
            if generation == 2:
                self.full_collections += 1
                self.full_collected += int(info.get("collected", 0))
            self._started = None

    def since(self, start: float) -> tuple[int, float | None]:
        """(full collections, longest pause in s) among the pauses that ended after `start`."""
        # A copy made without allocating: a collection during the scan would append.
        pauses = self.pauses.copy()
        recent = [(seconds, gen) for end, seconds, gen in pauses if end >= start]
        if not recent:
            return 0, None
        return sum(1 for _, gen in recent if gen == 2), max(seconds for seconds, _ in recent)


class GcPolicy:
    """Full garbage collections on a timer, not on growth; see the module docstring.

    Process-wide: only the daemon uses it (tests and tools keep Python's default)."""

    #: A threshold the count of young collections never reaches.
    NEVER = 1 << 30

    def __init__(self, interval: float = GC_FULL_INTERVAL):
        self.interval = interval
        self.collections = 0
        self._saved: tuple[int, int, int] | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._saved is not None:
            return
        self._saved = gc.get_threshold()
        gc.set_threshold(self._saved[0], self._saved[1], self.NEVER)
        self._arm()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def _arm(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._collect)

    def _collect(self) -> None:
        started = time.perf_counter()
        found = gc.collect()
        self.collections += 1
        log.info("full garbage collection: %d objects freed in %.1f ms", found,
                 (time.perf_counter() - started) * 1000)
        self._arm()


class LoopWatch:
    """Samples the loop's lag; see the module docstring."""

    def __init__(self, interval: float = INTERVAL, window: float = WINDOW):
        self.interval = interval
        self.window = window
        size = max(1, int(window / interval))
        # (loop time, lag in s, schedstat at the sample or None)
        self._samples: collections.deque[tuple[float, float, tuple[int, int] | None]] = \
            collections.deque(maxlen=size)
        self._task: asyncio.Task | None = None
        self.gc = GcWatch()
        self.turns: TurnWatch | None = None
        """Set (and installed) by whoever wants turns timed (daemon.py, tests)."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="pcontrol-loopwatch")
            self.gc.install()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.gc.uninstall()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self._samples.append((now, max(0.0, now - due), _schedstat()))

    def summary(self) -> dict[str, Any]:
        """Lag p50/p99/max (ms) over the window, the shares of it on and waiting for a CPU
        (None where unknown), the garbage collector's full passes and longest pause in it,
        and the turns' figures when a TurnWatch is on."""
        samples = list(self._samples)
        full, pause = self.gc.since(time.perf_counter() - self.window)
        result: dict[str, Any] = {
            "samples": len(samples), "lag_p50_ms": None, "lag_p99_ms": None,
            "lag_max_ms": None, "cpu_share": None, "cpu_wait_share": None,
            "gc_full": full, "gc_max_ms": None if pause is None else round(pause * 1000, 1),
            "gc_full_total": self.gc.full_collections,
            "gc_full_collected": self.gc.full_collected,
        }
        if self.turns is not None:
            result["turns"] = self.turns.summary()
        if not samples:
            return result
        lags = sorted(lag for _, lag, _ in samples)
        result.update({
            "lag_p50_ms": round(lags[len(lags) // 2] * 1000, 1),
            "lag_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000, 1),
            "lag_max_ms": round(lags[-1] * 1000, 1),
        })
        first, last = samples[0], samples[-1]
        span = last[0] - first[0]
        if first[2] is not None and last[2] is not None and span > 0:
            result["cpu_share"] = round((last[2][0] - first[2][0]) / 1e9 / span, 3)
            result["cpu_wait_share"] = round((last[2][1] - first[2][1]) / 1e9 / span, 3)
        return result


def describe_callback(handle: asyncio.Handle) -> str:
    """What a loop callback is, in a few words: the task it steps, or the function."""
    callback = getattr(handle, "_callback", None)
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {owner.get_name()} ({getattr(coro, '__qualname__', coro)})"
    name = getattr(callback, "__qualname__", None) or type(callback).__name__
    if owner is not None and not isinstance(owner, type):
        protocol = getattr(owner, "_protocol", None)
        if protocol is not None:
            return f"{name} -> {type(protocol).__qualname__}"
    return name


class TurnWatch:
    """Times the loop's turns and names its slow callbacks; see the module docstring.

    `clock` is injectable for tests. Only one TurnWatch may be installed at a time (it
    wraps Handle._run, which every loop in the process shares).
    """

    _installed: "TurnWatch | None" = None

    def __init__(self, *, slow: float = SLOW_CALLBACK, clock=time.perf_counter,
                 cpu_clock=time.thread_time):
        self.slow = slow
        self._clock = clock
        self._cpu_clock = cpu_clock
        self.turns = 0
        self.busy = 0.0                      # seconds spent in turns (wall clock)
        self.busy_cpu = 0.0                  # of which on a CPU (this thread's CPU clock)
        self.longest = 0.0
        self.histogram = [0] * (len(TURN_EDGES_MS) + 1)        # wall clock
        self.cpu_histogram = [0] * (len(TURN_EDGES_MS) + 1)    # CPU clock
        self.slow_callbacks: collections.deque[tuple[float, float, str]] = \
            collections.deque(maxlen=SLOW_KEPT)     # (wall time at the end, s, what)
        self.slow_turns: collections.deque[tuple[float, float, float, int]] = \
            collections.deque(maxlen=SLOW_KEPT)     # (wall time at the end, s, CPU s, callbacks)
        self.slow_turn_count = 0             # turns of `slow` or more, wall clock
        self.slow_cpu_turn_count = 0         # turns of `slow` or more on a CPU
        self._turn_start: float | None = None
        self._turn_cpu_start = 0.0
        self._callbacks = 0                  # run in the current turn
        self._selector: Any = None
        self._select: Any = None
        self._handle_run: Any = None

    # -- installing -------------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wrap the loop's selector and Handle._run; False (and a warning) if this loop
        has no selector to wrap."""
        if TurnWatch._installed is not None:
            raise RuntimeError("a TurnWatch is already installed")
        selector = getattr(loop, "_selector", None)
        if selector is None or not hasattr(selector, "select"):
            log.warning("turn watch: this event loop has no selector to time; off")
            return False
        self._selector, self._select = selector, selector.select
        selector.select = self._timed_select
        self._handle_run = asyncio.events.Handle._run
        watch = self

        def _run(handle: asyncio.Handle) -> None:
            watch._callbacks += 1
            start = watch._clock()
            try:
                watch._handle_run(handle)
            finally:
                took = watch._clock() - start
                if took >= watch.slow:
                    watch.slow_callbacks.append((time.time(), took, describe_callback(handle)))

        asyncio.events.Handle._run = _run          # TimerHandle inherits it
        TurnWatch._installed = self
        return True

    def uninstall(self) -> None:
        if TurnWatch._installed is not self:
            return
        asyncio.events.Handle._run = self._handle_run
        if self._selector is not None:
            try:
                del self._selector.select          # back to the class's method
            except AttributeError:
                self._selector.select = self._select
        TurnWatch._installed = None

    def _timed_select(self, timeout: float | None = None) -> Any:
        self.turn_ended()
        try:
            return self._select(timeout)
        finally:
            self._turn_start = self._clock()
            self._turn_cpu_start = self._cpu_clock()

    # -- counting ---------------------------------------------------------------------------

    def turn_ended(self) -> None:
        """The loop is about to wait again: count the turn that ran since it last woke."""
        if self._turn_start is None:
            return
        took = self._clock() - self._turn_start
        cpu = self._cpu_clock() - self._turn_cpu_start
        self._turn_start = None
        self.add_turn(took, cpu, self._callbacks)
        self._callbacks = 0

    def add_turn(self, seconds: float, cpu: float = 0.0, callbacks: int = 0) -> None:
        if seconds >= self.slow:
            self.slow_turns.append((time.time(), seconds, cpu, callbacks))
            self.slow_turn_count += 1
            if cpu >= self.slow:
                self.slow_cpu_turn_count += 1
        self.turns += 1
        self.busy += seconds
        self.busy_cpu += cpu
        if seconds > self.longest:
            self.longest = seconds
        self.histogram[bisect.bisect_left(TURN_EDGES_MS, seconds * 1000)] += 1
        self.cpu_histogram[bisect.bisect_left(TURN_EDGES_MS, cpu * 1000)] += 1

    def summary(self) -> dict[str, Any]:
        """Cumulative: turns, seconds in turns (wall, CPU), the longest turn, histograms of
        turns by wall and by CPU time (upper edge in ms -> turns; "inf" for the rest), the
        counts of slow turns, and the latest slow turns [wall time at the end, ms, CPU ms,
        callbacks] and callbacks [wall time at the end, ms, what]."""
        return {
            "turns": self.turns, "busy_s": round(self.busy, 3),
            "busy_cpu_s": round(self.busy_cpu, 3),
            "longest_ms": round(self.longest * 1000, 2),
            "histogram_ms": dict(zip(_EDGE_NAMES, self.histogram)),
            "cpu_histogram_ms": dict(zip(_EDGE_NAMES, self.cpu_histogram)),
            "slow_ms": self.slow * 1000,
            "slow_turn_count": self.slow_turn_count,
            "slow_cpu_turn_count": self.slow_cpu_turn_count,
            "slow_turns": [[at, took * 1000, cpu * 1000, count]
                           for at, took, cpu, count in self.slow_turns],
            "slow_callbacks": [[at, took * 1000, what] for at, took, what in self.slow_callbacks],
        }


def histogram_quantile(histogram: dict[str, int], share: float) -> float | None:
    """The upper edge (ms) of the bucket holding the `share` quantile of a TurnWatch
    histogram (or of the difference of two); None when empty; inf past the last edge."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    wanted = share * total
    seen = 0
    for edge, count in histogram.items():
        seen += count
        if seen >= wanted:
            return float(edge)
    return float("inf")
