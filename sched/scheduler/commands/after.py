"""Tcl's `after`: wait a while, or run a script later, on the scheduler's event loop.

    after 500                      wait half a second (the loop runs: jobs start and end meanwhile)
    after 60000 {resume nightly}   run the script at the top level in a minute; returns after#N
    after cancel after#N           it will not run

A script given to `after` runs when the loop runs (while sched waits: `wait`, `after MS`, the
prompt, a pipe), at the global level as Tcl's do. Its errors are reported like a macro's and
never stop the loop; `exit` in it leaves sched as in a macro. Until it has run, `wait` with
no argument waits for it too (it may resume or define tasks). `after MS` inside a macro the
scheduler runs is refused, as `wait` is: the macro would hold up the loop it waits on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...lang.errors import QuitRequest, SchedError, ScriptError
from ..eventloop import get_loop, run_until
from ...lang.parser import parse_cached
from ...lang.registry import BUILTINS
from ..attach import scheduler_of

__all__ = ["cmd_after"]

_KEY = "after.scripts"  # interp.extensions: {id: asyncio.TimerHandle}
_COUNT = "after.count"


@BUILTINS.command("after MS|cancel ?SCRIPT ...?",
                  "wait MS milliseconds while the scheduler works; with SCRIPT, run it at the top level after "
                  "MS ms and return its id (after#N); `after cancel ID` drops one")
def cmd_after(interp: Any, argv: list[str]) -> str:
    if argv[1] == "cancel":
        return _cancel(interp, argv)
    delay = _milliseconds(argv[1])
    if len(argv) == 2:
        run_until(asyncio.sleep(delay / 1000), "after")
        return ""
    script = interp.script_of(argv, 2) if len(argv) == 3 else parse_cached(" ".join(argv[2:]), "<after>")
    number = interp.extensions.get(_COUNT, 0) + 1
    interp.extensions[_COUNT] = number
    ident = f"after#{number}"
    scripts: dict[str, asyncio.TimerHandle] = interp.extensions.setdefault(_KEY, {})
    sched = scheduler_of(interp)
    scripts[ident] = get_loop().call_later(delay / 1000, _run_later, interp, ident, script)
    sched.pending_scripts = len(scripts)
    return ident


def _milliseconds(text: str) -> float:
    try:
        delay = float(text)
    except ValueError:
        raise ScriptError(f'after: expected milliseconds (or "cancel") but got "{text}"') from None
    if not delay >= 0 or delay == float("inf"):
        raise ScriptError(f'after: expected milliseconds >= 0 but got "{text}"')
    return delay


def _cancel(interp: Any, argv: list[str]) -> str:
    if len(argv) != 3:
        raise ScriptError('wrong # args: should be "after cancel ID"')
    scripts: dict[str, asyncio.TimerHandle] = interp.extensions.get(_KEY, {})
    handle = scripts.pop(argv[2], None)
    if handle is not None:
        handle.cancel()
        _changed(interp, scripts)
    return ""  # as Tcl: cancelling an unknown or finished id is no error


def _run_later(interp: Any, ident: str, script: Any) -> None:
    scripts: dict[str, asyncio.TimerHandle] = interp.extensions.get(_KEY, {})
    scripts.pop(ident, None)
    sched = scheduler_of(interp)
    saved = interp.frame
    interp.frame = interp.globals
    try:
        with sched.busy_with(f"the script of {ident}"):
            interp.run_toplevel(script)
    except SchedError as err:
        sched.report(f"error in the script of {ident}:\n{err.render()}")
    except QuitRequest as request:
        sched.leave(request)
    finally:
        interp.frame = saved
        _changed(interp, scripts)


def _changed(interp: Any, scripts: dict) -> None:
    sched = scheduler_of(interp)
    sched.pending_scripts = len(scripts)
    sched.check_waiters()
