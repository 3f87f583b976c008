"""Tcl's `after`: wait a while, or run a script later, on the scheduler's event loop.

    after 500                      wait half a second (the loop runs: jobs start and end meanwhile)
    after 60000 {resume nightly}   run the script at the top level in a minute; returns after#N
    after idle {puts hi}           run it at the loop's next turn
    after cancel after#N           it will not run (or `after cancel SCRIPT`: the one of that text)
    after info ?after#N?           the ids waiting, newest first (with an id: {SCRIPT timer|idle})
    update                         let the loop turn once (what is due runs)

A script given to `after` runs when the loop runs (while sched waits: `wait`, `after MS`, the
prompt, a pipe), at the global level as Tcl's do. Its errors are reported like a macro's and
never stop the loop; `exit` in it leaves sched as in a macro. Until it has run, `wait` with
no argument waits for it too (it may resume or define tasks). `after MS` inside a macro the
scheduler runs is refused, as `wait` is: the macro would hold up the loop it waits on (so is
`update`). Tcl's `vwait` is not here: `wait` waits for tasks and these scripts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ...lang.errors import QuitRequest, SchedError, ScriptError
from ..eventloop import get_loop, run_until
from ...lang.parser import parse_cached
from ...lang.tcllist import join_list
from ...lang.registry import BUILTINS
from ..attach import scheduler_of

__all__ = ["cmd_after", "cmd_update"]

_KEY = "after.scripts"  # interp.extensions: {id: Later}
_COUNT = "after.count"


@dataclass
class Later:
    """A script `after` will run: its text (for `after info` and `after cancel SCRIPT`), its
    kind (timer or idle) and the loop's handle."""

    text: str
    kind: str
    handle: asyncio.Handle


@BUILTINS.command("after MS|idle|cancel|info ?SCRIPT ...?",
                  "wait MS milliseconds while the scheduler works; with SCRIPT, run it at the top level after "
                  "MS ms (idle: at the loop's next turn) and return its id (after#N); `after cancel ID|SCRIPT` "
                  "drops one; `after info ?ID?` lists them")
def cmd_after(interp: Any, argv: list[str]) -> str:
    if argv[1] == "cancel":
        return _cancel(interp, argv)
    if argv[1] == "info":
        return _info(interp, argv)
    idle = argv[1] == "idle"
    if idle and len(argv) == 2:
        raise ScriptError('wrong # args: should be "after idle SCRIPT ?SCRIPT ...?"')
    delay = 0.0 if idle else _milliseconds(argv[1])
    if len(argv) == 2:
        run_until(asyncio.sleep(delay / 1000), "after")
        return ""
    text = argv[2] if len(argv) == 3 else " ".join(argv[2:])
    script = interp.script_of(argv, 2) if len(argv) == 3 else parse_cached(text, "<after>")
    number = interp.extensions.get(_COUNT, -1) + 1  # after#0 first, as Tcl
    interp.extensions[_COUNT] = number
    ident = f"after#{number}"
    scripts: dict[str, Later] = interp.extensions.setdefault(_KEY, {})
    sched = scheduler_of(interp)
    loop = get_loop()
    handle = (loop.call_soon(_run_later, interp, ident, script) if idle
              else loop.call_later(delay / 1000, _run_later, interp, ident, script))
    scripts[ident] = Later(text, "idle" if idle else "timer", handle)
    sched.pending_scripts = len(scripts)
    return ident


@BUILTINS.command("update ?idletasks?", "let the scheduler's loop turn once: what is due now runs (jobs "
                  "started or ended, `after` scripts)")
def cmd_update(interp: Any, argv: list[str]) -> str:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] != "idletasks"):
        raise ScriptError('wrong # args: should be "update ?idletasks?"')
    run_until(asyncio.sleep(0), "update")
    return ""


def _info(interp: Any, argv: list[str]) -> str:
    scripts: dict[str, Later] = interp.extensions.get(_KEY, {})
    if len(argv) == 2:
        return join_list(reversed(scripts))  # newest first, as Tcl lists them
    if len(argv) != 3:
        raise ScriptError('wrong # args: should be "after info ?ID?"')
    later = scripts.get(argv[2])
    if later is None:
        raise ScriptError(f'event "{argv[2]}" doesn\'t exist')
    return join_list([later.text, later.kind])


def _milliseconds(text: str) -> float:
    try:
        delay = float(text)
    except ValueError:
        raise ScriptError(f'after: expected milliseconds (or "cancel") but got "{text}"') from None
    if not delay >= 0 or delay == float("inf"):
        raise ScriptError(f'after: expected milliseconds >= 0 but got "{text}"')
    return delay


def _cancel(interp: Any, argv: list[str]) -> str:
    if len(argv) < 3:
        raise ScriptError('wrong # args: should be "after cancel ID|SCRIPT ?SCRIPT ...?"')
    scripts: dict[str, Later] = interp.extensions.get(_KEY, {})
    key = argv[2] if len(argv) == 3 and argv[2] in scripts else None
    if key is None:  # a script's text, as Tcl: the oldest of that text
        text = argv[2] if len(argv) == 3 else " ".join(argv[2:])
        key = next((ident for ident, later in scripts.items() if later.text == text), None)
    later = scripts.pop(key, None) if key is not None else None
    if later is not None:
        later.handle.cancel()
        _changed(interp, scripts)
    return ""  # as Tcl: cancelling an unknown or finished one is no error


def _run_later(interp: Any, ident: str, script: Any) -> None:
    scripts: dict[str, Later] = interp.extensions.get(_KEY, {})
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
