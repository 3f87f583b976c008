"""The one asyncio loop of a sched process, run the way Tcl runs its event loop.

The interpreter is synchronous. The loop runs while the shell waits for input (the prompt is
`run_until(session.prompt_async())`) and inside commands that wait (`wait`, `controller ...`):
that is when jobs start and end and exit macros run. While a command runs, the loop does not,
so the interpreter is never entered from two places at once and needs no locks. A command that
wants to wait while the loop is already running (inside an exit macro) gets a clear error.

Ctrl-C while the loop runs cancels the wait (`interrupted`), never a callback half-way.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Awaitable, TypeVar

from ..lang.errors import ScriptError

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """The process's loop, made on first use."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run_until(awaitable: Awaitable[T], what: str = "wait", interruptible: bool = True) -> T:
    """Run the loop until `awaitable` is done, and return its result.

    Raises ScriptError when called from inside the running loop (an exit macro) and when
    Ctrl-C interrupts the wait.
    """
    loop = get_loop()
    if loop.is_running():
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise ScriptError(f"{what}: cannot wait inside a macro that the scheduler runs")
    task = asyncio.ensure_future(awaitable, loop=loop)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    installed = False
    if interruptible:
        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
            installed = False
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if interrupted:
            raise ScriptError(f"{what}: interrupted") from None
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def run_pending() -> None:
    """Let the loop handle what is ready now (ended jobs, due timers), without waiting."""
    loop = get_loop()
    if loop.is_running():
        return
    loop.run_until_complete(asyncio.sleep(0))


def close_loop() -> None:
    global _loop
    if _loop is not None and not _loop.is_closed() and not _loop.is_running():
        pending = [t for t in asyncio.all_tasks(_loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            _loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        _loop.close()
    _loop = None


__all__ = ["get_loop", "run_until", "run_pending", "close_loop"]
