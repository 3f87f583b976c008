"""The one asyncio loop of a sched process, run the way Tcl runs its event loop.

The interpreter is synchronous. The loop runs while the shell waits for input (the prompt is
`run_until(session.prompt_async())`) and inside commands that wait (`wait`, `controller ...`):
that is when jobs start and end and exit macros run. While a command runs, the loop does not,
so the interpreter is never entered from two places at once and needs no locks. A command that
wants to wait while the loop is already running (inside an exit macro) gets a clear error.

Ctrl-C while the loop runs cancels the wait (`interrupted`), never an asyncio callback half-way;
interpreted code that a callback runs (a macro) is interrupted at its next command first
(set_code_interrupter), since the loop cannot turn until that code returns.

Leaving from inside the loop: a callback (an exit macro that calls `exit`, a SIGTERM) cannot
raise through asyncio. It calls `leave_soon(exc)` instead: the wait under way is cancelled and
its `run_until` raises `exc` in the command (or prompt) that waited; a `run_until` started
later raises it at once. The exception is raised once.

asyncio itself is imported when the loop is first made: a `sched -c` that never waits never
loads it (start-up, issue 13).
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

if TYPE_CHECKING:
    import asyncio

from ..lang.errors import Interrupted, ScriptError
from ..lang.lazylog import load as load_logging

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_waiting: "asyncio.Future | None" = None  # what the outermost run_until is waiting for
_leaving: BaseException | None = None  # raised by the next (or the current) run_until
_code_interrupter: "Callable[[], object] | None" = None  # see set_code_interrupter
_interrupt_taken: "Callable[[], bool] | None" = None  # see set_interrupt_taker


def set_code_interrupter(interrupter: "Callable[[], object] | None") -> None:
    """What SIGINT during a wait does before it ends the wait: interrupt the interpreted code a
    callback of the loop runs now, if any (psched.shell.longcode). The loop cannot act on the
    signal until that code returns, and code that never returns would hold it for good."""
    global _code_interrupter
    _code_interrupter = interrupter


def set_interrupt_taker(taker: "Callable[[], bool] | None") -> None:
    """How a wait learns of a Ctrl-C that came just before it began, while the handler was not
    its own yet (the command's: it only marked the interpreter interrupted): `taker()` says
    whether one is pending and clears it; the wait then ends at once as interrupted."""
    global _interrupt_taken
    _interrupt_taken = taker


def get_loop() -> asyncio.AbstractEventLoop:
    """The process's loop, made on first use."""
    global _loop
    if _loop is None or _loop.is_closed():
        import asyncio  # with the first loop only (see the module docstring)

        load_logging()  # asyncio and what runs on the loop log with plain logging
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The process's loop if it is running now (a callback of it is calling), else None;
    never makes one, nor imports asyncio."""
    loop = _loop
    return loop if loop is not None and loop.is_running() else None


def install_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Make `loop` the process's loop (sched --simulate's virtual-time loop), before any use."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        raise RuntimeError("the process's loop is already made")
    import asyncio  # a loop is being made (see the module docstring)

    load_logging()
    _loop = loop
    asyncio.set_event_loop(loop)


def run_until(awaitable: Awaitable[T], what: str = "wait", interruptible: bool = True, leavable: bool = True) -> T:
    """Run the loop until `awaitable` is done, and return its result.

    Raises ScriptError when called from inside the running loop (an exit macro) and when
    Ctrl-C interrupts the wait; raises what `leave_soon` was given, unless `leavable` is
    false (the waits of leaving itself).
    """
    global _waiting
    loop = get_loop()
    import asyncio  # loaded by get_loop

    if loop.is_running():
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise ScriptError(f"{what}: cannot wait inside a macro that the scheduler runs")
    if _leaving is not None and leavable:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        _raise_leaving()
    task = asyncio.ensure_future(awaitable, loop=loop)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    def on_signal(signum: int, frame: object) -> None:
        # A plain handler, not loop.add_signal_handler's: it runs between two bytecodes of
        # whatever the main thread does, a macro the loop runs included (see set_code_interrupter).
        loop.call_soon_threadsafe(on_sigint)  # (wakes the loop as asyncio's handler would)
        if _code_interrupter is not None:
            _code_interrupter()  # (last: it may raise inside the code it interrupts)

    previous: object = None
    installed = False
    if interruptible:
        try:
            previous = signal.signal(signal.SIGINT, on_signal)
            installed = True
        except ValueError:  # not the main thread
            installed = False
    if installed and _interrupt_taken is not None and _interrupt_taken():
        interrupted = True
        task.cancel()  # (before it ran: it ends at its first step)
    outer, _waiting = _waiting, (task if leavable else None)
    try:
        result = loop.run_until_complete(task)
    except asyncio.CancelledError:
        if _leaving is not None and leavable:
            _raise_leaving()
        if interrupted:
            raise Interrupted(f"{what}: interrupted") from None
        raise
    finally:
        _waiting = outer
        if installed:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)  # type: ignore[arg-type]
    if _leaving is not None and leavable:
        _raise_leaving()
    return result


def leave_soon(exc: BaseException) -> None:
    """Raise `exc` (a QuitRequest) out of the wait under way, or out of the next one.

    For code running inside the loop (a macro, a signal handler's callback), which cannot raise
    through asyncio. The waits of leaving itself (`leavable=False`) are not cancelled.
    """
    global _leaving
    if _leaving is None:
        _leaving = exc
    if _waiting is not None and not _waiting.done():
        _waiting.cancel()


def take_leaving() -> BaseException | None:
    """The exception `leave_soon` stored and nobody has raised yet (and forget it)."""
    global _leaving
    exc, _leaving = _leaving, None
    return exc


def _raise_leaving() -> None:
    exc = take_leaving()
    if exc is not None:
        raise exc


def loop_running() -> bool:
    """Whether this thread runs the loop now (false, and nothing loaded, if there is none yet;
    false too while asyncio is being imported: a signal handler may ask then, and a loop cannot
    run before its module is whole)."""
    running = getattr(sys.modules.get("asyncio"), "_get_running_loop", None)
    return running is not None and running() is not None


def run_pending() -> None:
    """Let the loop handle what is ready now (ended jobs, due timers), without waiting."""
    loop = get_loop()
    import asyncio  # loaded by get_loop

    if loop.is_running():
        return
    loop.run_until_complete(asyncio.sleep(0))
    _raise_leaving()


def close_loop() -> None:
    global _loop, _leaving
    _leaving = None
    if _loop is not None and not _loop.is_closed() and not _loop.is_running():
        import asyncio  # loaded with the loop

        pending = [t for t in asyncio.all_tasks(_loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            _loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        _loop.close()
    _loop = None


__all__ = ["get_loop", "install_loop", "set_interrupt_taker", "loop_running", "run_until", "run_pending", "close_loop", "leave_soon", "take_leaving"]
