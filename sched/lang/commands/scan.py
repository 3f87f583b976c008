"""Tcl's `scan`: read values out of a string by a format, the reverse of `format`.

    scan string format ?varName ...?

A format is parsed once (cached) into literal text, blanks and conversions: `%d %i %o %x %X
%b %u` integers, `%c` one character (its code), `%s` a word, `%[chars]` `%[^chars]` a run of
characters, `%e %f %g` numbers, `%n` the count of characters read so far; a `*` suppresses
the assignment, `%N$` names the variable (XPG3), a width limits the characters read, and the
size `ll` reads integers without limit (otherwise they stop at 64 bits), as in Tcl.

With variables the result is the number of conversions done (-1 when the string ended before
the first); without, the list of the values, empty for the conversions that did not happen.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ..lazyre import lazy_compile
from ..errors import ScriptError
from ..expr import format_value
from ..record import Frozen
from ..registry import BUILTINS
from ..tcllist import join_list

__all__ = ["scan"]

_SPEC = lazy_compile(r"%(?:(\d+)\$|(\*))?(\d+)?(ll|[hlL])?(.?)", re.S)
_BLANKS = " \t\n\r\f\v"
_INT_DIGITS = {"d": "0123456789", "u": "0123456789", "o": "01234567", "b": "01",
               "x": "0123456789abcdefABCDEF", "X": "0123456789abcdefABCDEF"}
_BASES = {"d": 10, "u": 10, "o": 8, "b": 2, "x": 16, "X": 16}
# A number's beginning with nothing after it (`-`, `+.`): as in Tcl, the input ran out (the
# result is empty), not a mismatch.
_NUMBER_START = lazy_compile(r"[+-]?\.?")
_FLOAT = lazy_compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.I)


class Conversion(Frozen):
    __slots__ = _fields = ("kind", "slot", "width", "size", "charset", "negated", "numbered")
    kind: str  # d i o x X b u c s e f g [ n
    slot: int | None  # the variable (value) index it fills; None when suppressed
    width: int | None
    size: str  # "", "l" or "ll"
    charset: frozenset[str] | None
    negated: bool
    numbered: bool  # its variable is named by `%N$`

    def __init__(self, kind: str, slot: int | None, width: int | None, size: str,
                 charset: frozenset[str] | None = None, negated: bool = False, numbered: bool = False) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "charset", charset)
        object.__setattr__(self, "negated", negated)
        object.__setattr__(self, "numbered", numbered)


def _charset(fmt: str, i: int) -> tuple[frozenset[str], bool, int]:
    """The set of a `%[...]` conversion starting after `[` at fmt[i]; the index after `]`."""
    negated = i < len(fmt) and fmt[i] == "^"
    if negated:
        i += 1
    chars: set[str] = set()
    start = i
    while i < len(fmt) and (fmt[i] != "]" or i == start):
        if i + 2 < len(fmt) and fmt[i + 1] == "-" and fmt[i + 2] != "]":
            lo, hi = sorted((fmt[i], fmt[i + 2]))
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
            continue
        chars.add(fmt[i])
        i += 1
    if i >= len(fmt):
        raise ScriptError("unmatched [ in format string")
    return frozenset(chars), negated, i + 1


@lru_cache(maxsize=256)
def _parse_format(fmt: str) -> tuple[tuple, int]:
    """The format as a tuple of items (str literal, None for blanks, or Conversion) and the
    number of values it assigns."""
    items: list = []
    i, n = 0, len(fmt)
    next_slot = 0
    numbered = unnumbered = False
    used: list[int] = []
    while i < n:
        c = fmt[i]
        if c in _BLANKS:
            while i < n and fmt[i] in _BLANKS:
                i += 1
            items.append(None)
            continue
        if c != "%":
            items.append(c)
            i += 1
            continue
        if i + 1 < n and fmt[i + 1] == "%":
            items.append("%")
            i += 2
            continue
        m = _SPEC.match(fmt, i)
        position, star, width, size, kind = m.groups()
        end = m.end()
        if not kind:
            raise ScriptError("unterminated % conversion")  # a % at the end
        if kind not in "diouxXbcsefgEG[n":
            raise ScriptError(f'bad scan conversion character "{kind}"')
        if kind in "cns[" and size in ("l", "ll", "L"):
            raise ScriptError(f"field size modifier may not be specified in %{kind} conversion")
        charset, negated = None, False
        if kind == "[":
            charset, negated, end = _charset(fmt, end)
        if kind == "c" and width:
            raise ScriptError("field width may not be specified in %c conversion")
        slot = None
        if not star:
            if position is not None:
                numbered = True
                slot = int(position) - 1
                if slot < 0:
                    raise ScriptError('"%n$" argument index out of range')
            else:
                unnumbered = True
                slot = next_slot
                next_slot += 1
            if numbered and unnumbered:
                raise ScriptError('cannot mix "%" and "%n$" conversion specifiers')
            used.append(slot)
        size = "ll" if size == "ll" else "l"
        items.append(Conversion(kind.lower() if kind in "EG" else kind, slot, int(width) if width else None, size,
                                charset, negated, position is not None))
        i = end
    count = max(used) + 1 if used else 0
    return tuple(items), count


def _limit(value: int, size: str) -> int:
    """A C long as Tcl reads it (`ll`: no limit): a magnitude that fits 64 bits wraps to a signed
    one (18446744073709551615 is -1), a larger one stops at the largest or the smallest."""
    if size == "ll":
        return value
    if abs(value) < 1 << 64:
        return ((value + (1 << 63)) % (1 << 64)) - (1 << 63)
    return (1 << 63) - 1 if value > 0 else -(1 << 63)


def _read_int(text: str, pos: int, end: int, kind: str) -> tuple[int, int] | None:
    j = pos
    sign = 1
    if j < end and text[j] in "+-":
        sign = -1 if text[j] == "-" else 1
        j += 1
    base = _BASES.get(kind, 10)
    if kind == "i" or kind in "xX":
        if text.startswith(("0x", "0X"), j) and j + 2 < end and text[j + 2] in _INT_DIGITS["x"]:
            base, j = 16, j + 2
        elif kind == "i" and text.startswith(("0b", "0B"), j) and j + 2 < end and text[j + 2] in "01":
            base, j = 2, j + 2
        elif kind == "i" and text.startswith(("0o", "0O"), j) and j + 2 < end and text[j + 2] in "01234567":
            base, j = 8, j + 2
        elif kind == "i" and text.startswith("0", j):
            base = 8
    digits = {10: "0123456789", 8: "01234567", 2: "01", 16: _INT_DIGITS["x"]}[base]
    start = j
    while j < end and text[j] in digits:
        j += 1
    if j == start:
        return None
    return sign * int(text[start:j], base), j


def scan(text: str, fmt: str) -> tuple[list[str | None], int, bool]:
    """The values a format reads from a string, the number of conversions done, and whether
    the string ran out before the first one."""
    items, count = _parse_format(fmt)
    values: list[str | None] = [None] * count
    pos, n = 0, len(text)
    done = 0
    underflow = False
    for item in items:
        if item is None:
            while pos < n and text[pos] in _BLANKS:
                pos += 1
            continue
        if type(item) is str:
            if pos >= n:
                underflow = True
                break
            if text[pos] != item:
                break
            pos += 1
            continue
        conv: Conversion = item
        if conv.kind == "n":
            if conv.slot is not None:
                values[conv.slot] = str(pos)
            continue
        if conv.kind not in "c[":
            while pos < n and text[pos] in _BLANKS:
                pos += 1
        if pos >= n:
            underflow = True
            break
        end = min(n, pos + conv.width) if conv.width else n
        value: str
        if conv.kind == "c":
            value, pos = str(ord(text[pos])), pos + 1
        elif conv.kind == "s":
            j = pos
            while j < end and text[j] not in _BLANKS:
                j += 1
            value, pos = text[pos:j], j
        elif conv.kind == "[":
            j = pos
            while j < end and ((text[j] in conv.charset) != conv.negated):
                j += 1
            if j == pos:
                break
            value, pos = text[pos:j], j
        elif conv.kind in "efg":
            m = _FLOAT.match(text, pos, end)
            if m is None:
                underflow = _NUMBER_START.fullmatch(text, pos, end) is not None
                break
            value, pos = format_value(float(m.group())), m.end()
        else:
            found = _read_int(text, pos, end, conv.kind)
            if found is None:
                underflow = _NUMBER_START.fullmatch(text, pos, end) is not None
                break
            number, pos = found
            number = _limit(number, conv.size)
            if conv.kind == "u" and number < 0 and conv.size != "ll":
                number += 1 << 64  # (printed unsigned, as C's %lu)
            value = str(number)
        if conv.slot is not None:
            values[conv.slot] = value
            done += 1
    return values, done, underflow and done == 0


def _check_slots(items: tuple, count: int, names: int) -> None:
    """Tcl's checks of the variables a format assigns: each exactly once (without variables,
    a `%n$` format may leave some out, and they read as empty)."""
    slots = [item.slot for item in items if type(item) is Conversion and item.slot is not None]
    numbered = any(item.numbered for item in items if type(item) is Conversion)
    if names and count > names:
        raise ScriptError('"%n$" argument index out of range' if numbered
                          else "different numbers of variable names and field specifiers")
    for slot in range(max(count, names)):
        uses = slots.count(slot)
        if uses > 1:
            raise ScriptError('variable is assigned by multiple "%n$" conversion specifiers')
        if uses == 0 and (names or not numbered):
            raise ScriptError("variable is not assigned by any conversion specifiers")


@BUILTINS.command("scan string format ?varName ...?",
                  "read values from a string by a format (%d %s %c %f %x %[...] %n): the list, or the count into variables")
def cmd_scan(interp: Any, argv: list[str]) -> str:
    items, count = _parse_format(argv[2])
    names = argv[3:]
    _check_slots(items, count, len(names))
    values, done, ran_out = scan(argv[1], argv[2])
    if not names:
        if ran_out:
            return ""
        return join_list(v if v is not None else "" for v in values)
    for name, value in zip(names, values):
        if value is not None:
            interp.set_var(name, value)
    return "-1" if ran_out else str(done)
