"""Reading command arguments the Tcl way: integers, floats, list and string indexes, options.

The helpers every language command module shares (a command module never imports a sibling:
what several of them need lives here, in the core of the language):

    get_int(text) / get_float(text)      a number in Tcl's notation, or a clear error
    index_of(text, length)               `3`, `end`, `end-1`, `2+1` against a length
    parse_options(argv, start, spec, positional, command)   `-option ?value?` words, prefixes allowed
    set_arity(cdef, max_args)            widen what a usage line implies (`?-var v?`)
    MAX_STRING                           the longest string a command will build
"""

from __future__ import annotations

from functools import lru_cache

from .lazyre import lazy_compile
from .errors import ScriptError
from .expr import parse_number
from .registry import CommandDef

__all__ = ["MAX_STRING", "clip", "get_float", "get_int", "index_of", "parse_options", "set_arity"]

MAX_STRING = 1 << 27
"""Longest string a command will build (128 Mi characters): beyond that, an error, not a stall."""


def get_int(text: str, what: str = "integer") -> int:
    """An integer in Tcl's notation (decimal, 0x, 0o, 0b, blanks around) or a clear error."""
    value = parse_number(text)
    if type(value) is not int:
        raise ScriptError(f'expected {what} but got "{clip(text)}"')
    return value


def get_float(text: str) -> float:
    """A number (integer or floating point) as a float, or a clear error (NaN is refused, as
    Tcl_GetDoubleFromObj refuses it)."""
    value = parse_number(text)
    if value is None:
        raise ScriptError(f'expected floating-point number but got "{clip(text)}"')
    if value != value:
        raise ScriptError("floating point value is Not a Number")
    return float(value)


_INDEX_RE = lazy_compile(r"^\s*(end|[+-]?[0-9][0-9a-fA-FxXoObB]*)(?:([+-])([+-]?[0-9][0-9a-fA-FxXoObB]*))?\s*$")


@lru_cache(maxsize=1024)
def _index_parts(text: str) -> tuple[bool, int] | None:
    """`end-2` -> (True, -2); `3+1` -> (False, 4); None when the text is no index."""
    m = _INDEX_RE.match(text)
    if m is None:
        return None
    base, op, offset = m.groups()
    if base == "end":
        start = 0
    else:
        start = parse_number(base)
        if type(start) is not int:
            return None
    delta = 0
    if op is not None:
        delta = parse_number(offset)
        if type(delta) is not int:
            return None
        if op == "-":
            delta = -delta
    return base == "end", start + delta


def index_of(text: str, length: int) -> int:
    """Tcl's list and string index (`3`, `end`, `end-1`, `2+1`) against a length.

    The result may be out of range (negative or >= length); callers decide what that means.
    """
    parts = _index_parts(text)
    if parts is None:
        err = ScriptError(f'bad index "{clip(text)}": must be integer?[+-]integer? or end?[+-]integer?')
        err.errorcode = "TCL VALUE INDEX"  # as Tcl's
        raise err
    from_end, value = parts
    return length - 1 + value if from_end else value


def parse_options(argv: list[str], start: int, spec: dict[str, bool], positional: int,
                  command: str) -> tuple[dict[str, str | bool], int]:
    """Read `-option ?value?` words from argv[start:] until `positional` words remain.

    `spec` maps each option to whether it takes a value; unique prefixes are accepted and
    `--` ends the options. Returns the options found (value or True) and the index of the
    first positional word.
    """
    found: dict[str, str | bool] = {}
    i = start
    while len(argv) - i > positional and argv[i].startswith("-"):
        word = argv[i]
        if word == "--":
            i += 1
            break
        name = word if word in spec else None
        if name is None:
            matches = [o for o in spec if o.startswith(word)]
            if len(matches) == 1:
                name = matches[0]
            else:
                names = sorted(spec)
                listing = ", ".join(names[:-1]) + ", or " + names[-1] if len(names) > 1 else names[0]
                kind = "ambiguous" if matches else "bad"
                raise ScriptError(f'{kind} option "{word}": must be {listing}')
        if spec[name]:
            if i + 1 >= len(argv):
                raise ScriptError(f'{command}: no value given for option "{name}"')
            found[name] = argv[i + 1]
            i += 2
        else:
            found[name] = True
            i += 1
    return found, i


def set_arity(cdef: CommandDef, max_args: int) -> None:
    """Widen the arity a usage line implies when an optional group holds two words (`?-var v?`)."""
    cdef.max_args = max(cdef.max_args, max_args)


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
