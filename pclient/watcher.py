"""The job runner's own thread: deadlines, exits and output, whatever the asyncio loop is doing.

One Watcher per process (`watcher()`), started on first use.  jobproc hands it everything
about a running job that must happen at its moment: reading the job's output pipes (so a job
never stalls on a full pipe while the loop is busy), noticing the exit of its process (through
a pidfd, so the end time recorded is the real one), firing its timeout and the SIGKILL after
the kill grace.  The asyncio loop only hears of results (call_soon_threadsafe), so a loop
blocked by a long macro (`exec sleep 5`, a busy loop at the prompt) delays no timeout, no kill
and no exit time, only the moment the loop learns of them.

    w = watcher()
    w.call(fn)                    # run fn() in the watcher thread, soon (thread-safe)
    w.at(when, fn) -> Timer       # in the thread: fn() at time.monotonic() `when`
    w.watch(fd, fn) / w.unwatch(fd)   # in the thread: fn() whenever fd is readable
    w.watch_now(fd, fn)           # the same, asked from any thread (no hand-off with epoll)

Callbacks run in the watcher thread and must not block for long; an exception in one is
logged and never stops the thread.

Every job passes between this thread and the loop's several times (started, exited, result),
and a thread that wants the GIL waits for the one holding it up to the interpreter's switch
interval, 5 ms by default: longer than a short job lives.  So the process that starts the
watcher runs with a switch interval of SWITCH_INTERVAL (issue 13: 2,000 `true` jobs from sched
took ~25 % less time, for the same CPU).  The descriptors are watched with epoll itself, not
through `selectors` (a few microseconds less per call), and `watch_now` registers a descriptor
from the thread that starts the job, epoll_ctl being safe from any thread: the job's start is no
hand-off to this thread, only its end is one back to the loop.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import selectors
import sys
import threading
import time
from collections import deque
from typing import Callable, Union

__all__ = ["Timer", "Watcher", "watcher"]

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another wants it, in a process that runs jobs."""


class Timer:
    """A pending `at` call; `cancel()` it before it fires to drop it."""

    __slots__ = ("when", "fn", "cancelled")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Watcher:
    """A selector over job descriptors plus a heap of deadlines, served by one daemon thread."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = selectors.DefaultSelector() if self._epoll is None else None
        self._handlers: dict[int, Callable[[], None]] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._register(self._wake_r)
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name="pclient-jobs", daemon=True)
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()

    @property
    def in_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[[], None]) -> None:
        """Run fn() in the watcher thread as soon as it can (from any thread)."""
        self._calls.append(fn)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def at(self, when: float, fn: Callable[[], None]) -> Timer:
        """In the watcher thread: call fn() at monotonic time `when`."""
        timer = Timer(when, fn)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def watch(self, fd: int, fn: Callable[[], None]) -> None:
        """In the watcher thread: call fn() each time fd is readable."""
        self._handlers[fd] = fn
        self._register(fd)

    def watch_now(self, fd: int, fn: Callable[[], None]) -> None:
        """`watch`, from any thread: at once with epoll, else handed to the watcher thread."""
        if self._epoll is None:
            self.call(lambda: self.watch(fd, fn))
        else:  # `watch`, inlined (three descriptors a job)
            self._handlers[fd] = fn  # (set before the fd is polled: the thread may see it at once)
            self._epoll.register(fd, select.EPOLLIN)

    def unwatch(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is None:
            return
        try:
            if self._epoll is not None:
                self._epoll.unregister(fd)
            else:
                self._selector.unregister(fd)  # type: ignore[union-attr]
        except (KeyError, ValueError, OSError):
            pass

    def _register(self, fd: int) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLIN)
        else:
            self._selector.register(fd, selectors.EVENT_READ)  # type: ignore[union-attr]

    def _ready(self, timeout: Union[float, None]) -> list:
        """The descriptors readable within `timeout` seconds (None: wait)."""
        if self._epoll is not None:
            try:
                return [fd for fd, _ in self._epoll.poll(-1 if timeout is None else timeout)]
            except InterruptedError:
                return []
        return [key.fd for key, _ in self._selector.select(timeout)]  # type: ignore[union-attr]

    def _run(self) -> None:
        while True:
            timeout: Union[float, None] = None
            if self._calls:
                timeout = 0
            elif self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for fd in self._ready(timeout):
                if fd == self._wake_r:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    fn = self._handlers.get(fd)
                    if fn is not None:  # (None: unwatched by an earlier callback of this turn)
                        self._safely(fn)
            while self._calls:
                self._safely(self._calls.popleft())
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, timer = heapq.heappop(self._timers)
                if not timer.cancelled:
                    self._safely(timer.fn)

    @staticmethod
    def _safely(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("job watcher: a callback failed")


_WATCHER: Union[Watcher, None] = None
_WATCHER_LOCK = threading.Lock()


def watcher() -> Watcher:
    """This process's watcher thread, started on first use (again after a fork)."""
    global _WATCHER
    running = _WATCHER
    if running is not None and running._thread.is_alive():  # (each job asks: no lock then)
        return running
    with _WATCHER_LOCK:
        if _WATCHER is None or not _WATCHER._thread.is_alive():
            _WATCHER = Watcher()
        return _WATCHER
