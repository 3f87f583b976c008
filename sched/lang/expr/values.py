"""Values of Tcl's `expr`: reading numbers and booleans from text, writing values back as
text, and coercing operands, for the operators (expr_ops), functions (expr_funcs), lexer
(expr_parse) and compiler (expr).

Values are Python ints (any size), floats and strs; a string that looks like a number is a
number. An operator or function that fails raises _OpFailure, which the compiled node turns into
an ExprError carrying the offset of the operator in the expression text.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Union

from ..lazyre import lazy_compile
from ..errors import ExprError

Value = Union[int, float, str]

# Integer results wider than this are refused rather than stalling the process.
MAX_INT_BITS = 1 << 17
# Decimal strings with more digits than this are not read as numbers.
_MAX_INT_DIGITS = 40_000
_INF = math.inf


class _OpFailure(Exception):
    """An operator or function failed; the compiled node adds the offset."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message



# =============================================================================================
# numbers, booleans and their text


_NUMBER_RE = lazy_compile(
    r"[ \t\n\r\f\v]*([+-]?)(?:"
    r"0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0[dD]([0-9]+)"
    r"|([0-9]+)"
    r"|((?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)"
    r"|([iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
    r")[ \t\n\r\f\v]*\Z"
)


def _digits_to_int(digits: str) -> int:
    """int(digits) without Python's 4300-digit conversion limit."""
    if len(digits) <= 4000:
        return int(digits)
    half = len(digits) // 2
    return _digits_to_int(digits[:-half]) * 10**half + _digits_to_int(digits[-half:])


def _parse_number_uncached(s: str) -> int | float | None:
    m = _NUMBER_RE.match(s)
    if m is None:
        return None
    sign, hexa, octal, binary, dec0d, dec, flt, special = m.groups()
    value: int | float
    if dec is not None or dec0d is not None:
        digits = dec if dec is not None else dec0d
        if len(digits) > _MAX_INT_DIGITS:
            return None
        value = _digits_to_int(digits)
    elif flt is not None:
        value = float(flt)
    elif special is not None:
        value = math.nan if special[0] in "nN" else _INF
    else:
        digits, base, bits = (hexa, 16, 4) if hexa else (octal, 8, 3) if octal else (binary, 2, 1)
        if len(digits) * bits > MAX_INT_BITS:
            return None
        value = int(digits, base)
    return -value if sign == "-" else value


_parse_number_cached = lru_cache(maxsize=8192)(_parse_number_uncached)


def parse_number(s: str) -> int | float | None:
    """The number a string denotes (Tcl rules: blanks around, 0x/0o/0b, floats, Inf, NaN) or None."""
    if len(s) <= 64:
        if s.isdigit() and s.isascii():  # (as _NUMBER_RE reads it: decimal, leading zeros too)
            return int(s)
        return _parse_number_cached(s)
    return _parse_number_uncached(s)


def _bool_words() -> dict[str, bool]:
    words = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
    seen: dict[str, set[str]] = {}
    for word in words:
        for k in range(1, len(word) + 1):
            seen.setdefault(word[:k], set()).add(word)
    return {p: words[next(iter(ws))] for p, ws in seen.items() if len(ws) == 1}


_BOOL_WORDS = _bool_words()


def parse_bool(s: str) -> bool | None:
    """Tcl's boolean reading of a string: a number (non-zero is true) or yes/no/true/false/on/off
    and their unique prefixes, any case. None when the string is not a boolean."""
    n = parse_number(s)
    if n is not None:
        return None if n != n else n != 0
    return _BOOL_WORDS.get(s.lower())


def _short(s: str) -> str:
    return s if len(s) <= 40 else s[:40] + "..."


def _int_to_str(n: int) -> str:
    if n.bit_length() <= 13000:
        return str(n)
    if n < 0:
        return "-" + _int_to_str(-n)
    half = int(n.bit_length() * 0.30103) // 2
    high, low = divmod(n, 10**half)
    return _int_to_str(high) + _int_to_str(low).zfill(half)


def _float_to_str(f: float) -> str:
    """Tcl 8.6 float text: shortest round-trip digits, exponent form below 1e-4 or from 1e17."""
    r = repr(f)
    if "e" not in r:
        if r[-1] == "f":
            return "Inf" if f > 0 else "-Inf"
        if r[-1] == "n":
            return "NaN"
        return r
    mantissa, _, exp_text = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).rstrip("0") or "0"
    exponent = int(exp_text) + len(int_part) - 1
    if -4 <= exponent < 17:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            return f"{sign}{whole}.{digits[exponent + 1:] or '0'}"
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{body}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def format_value(v: Value) -> str:
    """The Tcl text of a value: ints in decimal, floats like Tcl 8.6 (1.0, 1e+17, Inf, NaN)."""
    t = type(v)
    if t is str:
        return v  # type: ignore[return-value]
    if t is int:
        return str(v) if v.bit_length() <= 13000 else _int_to_str(v)  # type: ignore[union-attr,arg-type]  # (_int_to_str's first case)
    if t is float:
        return _float_to_str(v)  # type: ignore[arg-type]
    if t is bool:
        return "1" if v else "0"
    return str(v)


_s = format_value


def _to_float(x: int | float) -> float:
    try:
        return float(x)
    except OverflowError:
        return _INF if x > 0 else -_INF


def _num(v: Value, op: str) -> int | float:
    """The numeric value of an operand, or the Tcl error for operator `op`."""
    t = type(v)
    if t is int:
        return v  # type: ignore[return-value]
    if t is float:
        n = v
    elif v.isdigit() and v.isascii() and len(v) <= 64:  # type: ignore[union-attr]  # (parse_number's first case)
        return int(v)  # type: ignore[arg-type]
    else:
        n = parse_number(v)  # type: ignore[arg-type]
        if n is None:
            if v == "":
                raise _OpFailure(f'can\'t use empty string as operand of "{op}"')
            if _NUMBER_RE.match(v):  # type: ignore[arg-type]
                raise _OpFailure(f'integer value too large to represent as operand of "{op}"')
            raise _OpFailure(f'can\'t use non-numeric string "{_short(v)}" as operand of "{op}"')  # type: ignore[arg-type]
    if n != n:
        raise _OpFailure(f'can\'t use non-numeric floating-point value "NaN" as operand of "{op}"')
    return n  # type: ignore[return-value]


def _int(v: Value, op: str) -> int:
    n = _num(v, op)
    if type(n) is float:
        raise _OpFailure(f'can\'t use floating-point value "{_s(v)}" as operand of "{op}"')
    return n  # type: ignore[return-value]


def _num_or_none(v: Value) -> int | float | None:
    t = type(v)
    if t is int or t is float:
        return v  # type: ignore[return-value]
    return parse_number(v)  # type: ignore[arg-type]


def _truth(v: Value) -> bool:
    t = type(v)
    if t is int:
        return v != 0
    if t is float:
        if v != v:
            raise _OpFailure("expected boolean value but got NaN")
        return v != 0.0
    b = parse_bool(v)  # type: ignore[arg-type]
    if b is None:
        raise _OpFailure(f'expected boolean value but got "{_short(v)}"')  # type: ignore[arg-type]
    return b


def is_true(v: Value) -> bool:
    """Tcl truth of a value (numbers, yes/no/true/false/on/off); ExprError if it is not boolean."""
    try:
        return _truth(v)
    except _OpFailure as e:
        raise ExprError(e.message) from None


def _float_result(x: float) -> float:
    if x != x:
        raise _OpFailure("domain error: argument not in valid range")
    return x


def _too_big() -> _OpFailure:
    return _OpFailure("integer value too large to represent")

