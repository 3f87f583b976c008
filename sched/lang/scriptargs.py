"""The command line a script reads, as tclsh gives it: the global variables argv0, argv and argc.

    set_script_arguments(interp, argv0, arguments)   set the three; kept for reset_script_arguments
    reset_script_arguments(interp)                   the same values again (a server's `reload`)

psched.shell.cli gives them: argv0 is the first FILE as given (PROGRAM_NAME with none: the
prompt, stdin, `-c` alone), argv the words after `--` (or after the FILE of `--args`) as one
list written as `list` writes it, argc their number. They are plain globals that a script may
change, as in tclsh. A server's `reload` (psched.scheduler.reload) sets them again to the values
sched started with before it runs its files, so that a file that consumes its arguments
(`set argv [lassign $argv host]`) reads the same ones at every load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tcllist import join_list

__all__ = ["PROGRAM_NAME", "SCRIPT_ARGUMENTS_KEY", "set_script_arguments", "reset_script_arguments"]

PROGRAM_NAME = "sched"
"""argv0 when no FILE is given (tclsh's is the name it was started by)."""

SCRIPT_ARGUMENTS_KEY = "script.arguments"
"""Key in `interp.extensions`: (argv0, the arguments) as sched was given them."""


def set_script_arguments(interp: Any, argv0: str, arguments: Sequence[str]) -> None:
    """Set the globals argv0, argv and argc, and keep the values for reset_script_arguments."""
    given = interp.extensions[SCRIPT_ARGUMENTS_KEY] = (argv0, tuple(arguments))
    _set(interp, *given)


def reset_script_arguments(interp: Any) -> None:
    """Set argv0, argv and argc again to the values given to set_script_arguments, if any."""
    given = interp.extensions.get(SCRIPT_ARGUMENTS_KEY)
    if given is not None:
        _set(interp, *given)


def _set(interp: Any, argv0: str, arguments: tuple[str, ...]) -> None:
    interp.globals.vars.update(argv0=argv0, argv=join_list(arguments), argc=str(len(arguments)))
