"""Introspection: the `array` and `info` ensembles.

    array get|set|names|exists|size|unset
    info exists|commands|vars|locals|globals|procs|body|args|default|level|script

Pattern arguments are Tcl glob patterns (psched.lang.patterns.glob_match). Arrays keep their
elements in the order they were set, so `array names` and `array get` list them in that
order (Tcl's order is its hash table's; scripts must not rely on either). The `env` array is
the process environment.

`info procs` lists macros and procs alike (both are user commands, psched.lang.registry.Macro);
`info body` of a block macro is the text of its lines between the header and `end`.
`info level` counts the macro and proc calls under way along the interpreter's frames
(psched.lang.interp.Frame: each knows its caller and level), as `upvar` and `uplevel` do.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import ScriptError
from ..interp import Interp
from ..nodes import Block, Command, Script
from ..registry import BUILTINS, Macro
from ..tcllist import join_list, split_tuple
from ..args import get_int, set_arity
from ..patterns import glob_match
from ..tclregex import regex_search, tcl_regex


__all__ = ["macro_body_text"]


def _matching(names: list[str], pattern: str | None) -> list[str]:
    if pattern is None or pattern == "*":
        return names
    return [n for n in names if glob_match(pattern, n)]


# --- array --------------------------------------------------------------------------------------

array = BUILTINS.ensemble("array", "operations on array variables: get, set, names, exists, size, unset")


@array.sub("array exists arrayName", "1 if the variable is an array")
def array_exists(interp: Any, argv: list[str]) -> str:
    return "1" if interp.array(argv[2]) is not None else "0"


@array.sub("array get arrayName ?pattern?", "a list of key value pairs (of the keys that match)")
def array_get(interp: Any, argv: list[str]) -> str:
    table = interp.array(argv[2])
    if table is None:
        return ""
    pattern = argv[3] if len(argv) > 3 else None
    items: list[str] = []
    for key in _matching(list(table), pattern):
        items += (key, table[key])
    return join_list(items)


@array.sub("array set arrayName list", "set elements from a list of key value pairs (the array is created if missing)")
def array_set(interp: Any, argv: list[str]) -> str:
    name = argv[2]
    pairs = split_tuple(argv[3])
    if len(pairs) % 2:
        raise ScriptError("list must have an even number of elements")
    table = interp.array(name, create=True)
    if table is None:
        raise ScriptError(f'can\'t set "{name}({pairs[0]})": variable isn\'t array' if pairs
                          else f'can\'t array set "{name}": variable isn\'t array')
    for k in range(0, len(pairs), 2):
        table[pairs[k]] = pairs[k + 1]
    return ""


@array.sub("array names arrayName ?mode? ?pattern?", "the keys (that match a pattern; mode -glob, -exact or -regexp)")
def array_names(interp: Any, argv: list[str]) -> str:
    table = interp.array(argv[2])
    mode, pattern = "-glob", None
    if len(argv) == 4:
        pattern = argv[3]
    elif len(argv) == 5:
        mode, pattern = argv[3], argv[4]
    if mode not in ("-glob", "-exact", "-regexp"):
        raise ScriptError(f'bad option "{mode}": must be -exact, -glob, or -regexp')
    if table is None:
        return ""
    keys = list(table)
    if pattern is None:
        return join_list(keys)
    if mode == "-glob":
        return join_list(_matching(keys, pattern))
    if mode == "-exact":
        return join_list(k for k in keys if k == pattern)
    rx = tcl_regex(pattern)
    return join_list(k for k in keys if regex_search(interp, rx, k))


@array.sub("array size arrayName", "the number of elements (0 if not an array)")
def array_size(interp: Any, argv: list[str]) -> str:
    table = interp.array(argv[2])
    return str(len(table)) if table is not None else "0"


@array.sub("array unset arrayName ?pattern?", "delete the array, or its elements whose keys match")
def array_unset(interp: Any, argv: list[str]) -> str:
    name = argv[2]
    table = interp.array(name)
    if table is None:
        return ""
    if len(argv) == 3:
        interp.unset_var(name, nocomplain=True)
        return ""
    for key in _matching(list(table), argv[3]):
        del table[key]
    return ""


# --- info ---------------------------------------------------------------------------------------

info = BUILTINS.ensemble("info", "about the interpreter: exists, commands, vars, globals, procs, body, args, level")


@info.sub("info exists varName", "1 if the variable (or array element) exists")
def info_exists(interp: Any, argv: list[str]) -> str:
    return "1" if interp.var_exists(argv[2]) else "0"


@info.sub("info commands ?pattern?", "the names of the commands (that match a glob pattern)")
def info_commands(interp: Any, argv: list[str]) -> str:
    names = sorted(n for n, c in interp.commands.items() if c.fn is not None or c.block is not None)
    return join_list(_matching(names, argv[2] if len(argv) > 2 else None))


@info.sub("info vars ?pattern?", "the variables visible here (that match a glob pattern)")
def info_vars(interp: Any, argv: list[str]) -> str:
    return join_list(_matching(interp.visible_vars(), argv[2] if len(argv) > 2 else None))


@info.sub("info locals ?pattern?", "the variables of this macro or proc call only")
def info_locals(interp: Any, argv: list[str]) -> str:
    frame = interp.frame
    if frame is interp.globals:
        return ""
    names = sorted(k for k, v in frame.vars.items() if v is not None and type(v).__name__ != "_Link")
    return join_list(_matching(names, argv[2] if len(argv) > 2 else None))


@info.sub("info globals ?pattern?", "the global variables (that match a glob pattern)")
def info_globals(interp: Any, argv: list[str]) -> str:
    names = sorted(k for k, v in interp.globals.vars.items() if v is not None)
    return join_list(_matching(names, argv[2] if len(argv) > 2 else None))


@info.sub("info procs ?pattern?", "the names of the macros and procs (that match a glob pattern)")
def info_procs(interp: Any, argv: list[str]) -> str:
    names = sorted(n for n, c in interp.commands.items() if c.macro is not None)
    return join_list(_matching(names, argv[2] if len(argv) > 2 else None))


def _macro(interp: Any, name: str) -> Macro:
    cdef = interp.commands.get(name)
    if cdef is None or cdef.macro is None:
        raise ScriptError(f'"{name}" isn\'t a procedure')
    return cdef.macro


def macro_body_text(macro: Macro) -> str:
    """The source text of a macro's or proc's body."""
    body: Script = macro.body
    if macro.kind != "macro" or not body.commands:
        return body.source.text if macro.kind != "macro" else ""
    source = body.source
    first = body.commands[0].pos.line
    last_item = body.commands[-1]
    if type(last_item) is Block:
        last = last_item.end_pos.line if last_item.end_pos else last_item.pos.line
    else:
        assert type(last_item) is Command
        end_offset = last_item.words[-1].end
        last = first + source.text.count("\n", _line_offset(source, first), end_offset)
    return "\n".join(source.line(n) for n in range(first, last + 1))


def _line_offset(source: Any, line: int) -> int:
    """Offset in source.text of the start of file line `line`."""
    offset = 0
    for _ in range(line - source.line0):
        offset = source.text.index("\n", offset) + 1
    return offset


@info.sub("info body procname", "the body of a macro or proc")
def info_body(interp: Any, argv: list[str]) -> str:
    return macro_body_text(_macro(interp, argv[2]))


@info.sub("info args procname", "the parameter names of a macro or proc")
def info_args(interp: Any, argv: list[str]) -> str:
    macro = _macro(interp, argv[2])
    names = [p for p, _ in macro.params]
    if macro.variadic:
        names.append("args")
    return join_list(names)


@info.sub("info default procname arg varName", "1 and the default in varName if the parameter has one, else 0")
def info_default(interp: Any, argv: list[str]) -> str:
    macro = _macro(interp, argv[2])
    for pname, default in macro.params:
        if pname == argv[3]:
            interp.set_var(argv[4], default or "")
            return "1" if default is not None else "0"
    raise ScriptError(f'procedure "{argv[2]}" doesn\'t have an argument "{argv[3]}"')


@info.sub("info level ?number?", "how deep in macro and proc calls we are; with a number, the words of that call")
def info_level(interp: Any, argv: list[str]) -> str:
    frame = interp.frame
    if len(argv) == 2:
        return str(frame.level)
    n = get_int(argv[2])
    level = frame.level + n if n <= 0 else n
    if not 1 <= level <= frame.level:
        raise ScriptError(f'bad level "{argv[2]}"')
    while frame.level > level and frame.caller is not None:
        frame = frame.caller
    return join_list(frame.call if frame.call is not None else [frame.name])


@info.sub("info complete command", "1 if the text is whole: no brace, quote or bracket left open, no block "
                                   "without its end (as the prompt decides whether to read on)")
def info_complete(interp: Any, argv: list[str]) -> str:
    from ..openness import needs_more  # (its scanner, loaded when first asked)

    return "0" if needs_more(argv[2]) is not None else "1"


@info.sub("info hostname", "the name of this machine")
def info_hostname(interp: Any, argv: list[str]) -> str:
    import socket  # (only when asked: sched's start-up does without it)

    return socket.gethostname()


@info.sub("info nameofexecutable", "the file of the running sched program")
def info_nameofexecutable(interp: Any, argv: list[str]) -> str:
    program = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else sys.executable
    return os.path.realpath(program)


@info.sub("info script", "the file being sourced, or empty")
def info_script(interp: Any, argv: list[str]) -> str:
    return "" if interp.current_file == "<string>" else interp.current_file


set_arity(array.table["names"], 3)
