"""The operators of Tcl's `expr`: binary operators with their precedence and operand reading
(the table _BINARY the parser and compiler share) and the unary operators (_UNARY).

Each operator takes values and returns a value, or raises _OpFailure with Tcl's message.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

from .values import (
    _INF,
    MAX_INT_BITS,
    Value,
    _float_result,
    _int,
    _num,
    _num_or_none,
    _OpFailure,
    _s,
    _to_float,
    _too_big,
    _truth,
    parse_bool,
)
from ..tcllist import split_tuple


def _add(a: Value, b: Value) -> Value:
    if type(a) is int and type(b) is int:
        return a + b  # type: ignore[operator]
    x, y = _num(a, "+"), _num(b, "+")
    if type(x) is int and type(y) is int:
        return x + y
    return _float_result(_to_float(x) + _to_float(y))


def _sub(a: Value, b: Value) -> Value:
    if type(a) is int and type(b) is int:
        return a - b  # type: ignore[operator]
    x, y = _num(a, "-"), _num(b, "-")
    if type(x) is int and type(y) is int:
        return x - y
    return _float_result(_to_float(x) - _to_float(y))


def _mul(a: Value, b: Value) -> Value:
    if type(a) is int and type(b) is int and a.bit_length() + b.bit_length() <= 64:  # type: ignore[union-attr]
        return a * b  # type: ignore[operator]
    x, y = _num(a, "*"), _num(b, "*")
    if type(x) is int and type(y) is int:
        if x.bit_length() + y.bit_length() > MAX_INT_BITS + 1:
            raise _too_big()
        return x * y
    return _float_result(_to_float(x) * _to_float(y))


def _div(a: Value, b: Value) -> Value:
    x, y = _num(a, "/"), _num(b, "/")
    if type(x) is int and type(y) is int:
        if y == 0:
            raise _OpFailure("divide by zero")
        return x // y
    fx, fy = _to_float(x), _to_float(y)
    if fy == 0.0:
        if fx == 0.0:
            raise _OpFailure("domain error: argument not in valid range")
        return math.copysign(_INF, fx) * math.copysign(1.0, fy)
    return _float_result(fx / fy)


def _mod(a: Value, b: Value) -> Value:
    x, y = _int(a, "%"), _int(b, "%")
    if y == 0:
        raise _OpFailure("divide by zero")
    return x % y


def _float_pow(x: float, y: float) -> float:
    if x == 0.0 and y < 0:
        raise _OpFailure("exponentiation of zero by negative power")
    try:
        return _float_result(math.pow(x, y))
    except ValueError:
        raise _OpFailure("domain error: argument not in valid range") from None
    except OverflowError:
        odd = y == math.floor(y) and math.fmod(y, 2.0) != 0.0
        return -_INF if x < 0 and odd else _INF


def _pow(a: Value, b: Value) -> Value:
    x, y = _num(a, "**"), _num(b, "**")
    if type(x) is int and type(y) is int:
        if y < 0:
            if x == 0:
                raise _OpFailure("exponentiation of zero by negative power")
            if x == 1:
                return 1
            if x == -1:
                return -1 if y % 2 else 1
            return 0
        if x in (0, 1):
            return x if y else 1
        if x == -1:
            return -1 if y % 2 else 1
        if (abs(x).bit_length() - 1) * y >= MAX_INT_BITS:
            raise _too_big()
        r = x**y
        if r.bit_length() > MAX_INT_BITS:
            raise _too_big()
        return r
    return _float_pow(_to_float(x), _to_float(y))


def _shl(a: Value, b: Value) -> Value:
    x, y = _int(a, "<<"), _int(b, "<<")
    if y < 0:
        raise _OpFailure("negative shift argument")
    if x == 0:
        return 0
    if x.bit_length() + y > MAX_INT_BITS:
        raise _too_big()
    return x << y


def _shr(a: Value, b: Value) -> Value:
    x, y = _int(a, ">>"), _int(b, ">>")
    if y < 0:
        raise _OpFailure("negative shift argument")
    if y >= x.bit_length():
        return -1 if x < 0 else 0
    return x >> y


def _bitand(a: Value, b: Value) -> Value:
    return _int(a, "&") & _int(b, "&")


def _bitor(a: Value, b: Value) -> Value:
    return _int(a, "|") | _int(b, "|")


def _bitxor(a: Value, b: Value) -> Value:
    return _int(a, "^") ^ _int(b, "^")


def _comparable(a: Value, b: Value) -> tuple[int | float, int | float] | tuple[str, str]:
    """Both as numbers when both read as numbers, else both as strings (Tcl's rule for < == ...)."""
    x, y = _num_or_none(a), _num_or_none(b)
    if x is None or y is None:
        return _s(a), _s(b)
    return x, y


def _eq(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x == y else 0


def _ne(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x != y else 0


def _lt(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x < y else 0  # type: ignore[operator]


def _gt(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x > y else 0  # type: ignore[operator]


def _le(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x <= y else 0  # type: ignore[operator]


def _ge(a: Value, b: Value) -> Value:
    x, y = _comparable(a, b)
    return 1 if x >= y else 0  # type: ignore[operator]


def _str_eq(a: Value, b: Value) -> Value:
    return 1 if _s(a) == _s(b) else 0


def _str_ne(a: Value, b: Value) -> Value:
    return 0 if _s(a) == _s(b) else 1


def _str_lt(a: Value, b: Value) -> Value:
    return 1 if _s(a) < _s(b) else 0


def _str_gt(a: Value, b: Value) -> Value:
    return 1 if _s(a) > _s(b) else 0


def _str_le(a: Value, b: Value) -> Value:
    return 1 if _s(a) <= _s(b) else 0


def _str_ge(a: Value, b: Value) -> Value:
    return 1 if _s(a) >= _s(b) else 0


def _in(a: Value, b: Value) -> Value:
    return 1 if _s(a) in split_tuple(_s(b)) else 0


def _ni(a: Value, b: Value) -> Value:
    return 0 if _s(a) in split_tuple(_s(b)) else 1


class _Op(enum.Enum):
    """How a binary operator reads its operands."""

    NUMERIC = "numeric"  # operands are values (numbers where they look like numbers)
    STRING = "string"  # operands are taken as text: a literal keeps its spelling (0x10 eq 16 is 0)


# operator -> (precedence, function, operand reading); `**` is the one right-associative.
_BINARY: dict[str, tuple[int, Callable[[Value, Value], Value], _Op]] = {
    "**": (11, _pow, _Op.NUMERIC),
    "*": (10, _mul, _Op.NUMERIC), "/": (10, _div, _Op.NUMERIC), "%": (10, _mod, _Op.NUMERIC),
    "+": (9, _add, _Op.NUMERIC), "-": (9, _sub, _Op.NUMERIC),
    "<<": (8, _shl, _Op.NUMERIC), ">>": (8, _shr, _Op.NUMERIC),
    "<": (7, _lt, _Op.NUMERIC), ">": (7, _gt, _Op.NUMERIC),
    "<=": (7, _le, _Op.NUMERIC), ">=": (7, _ge, _Op.NUMERIC),
    "lt": (7, _str_lt, _Op.STRING), "gt": (7, _str_gt, _Op.STRING),
    "le": (7, _str_le, _Op.STRING), "ge": (7, _str_ge, _Op.STRING),
    "==": (6, _eq, _Op.NUMERIC), "!=": (6, _ne, _Op.NUMERIC),
    "eq": (6, _str_eq, _Op.STRING), "ne": (6, _str_ne, _Op.STRING),
    "in": (6, _in, _Op.STRING), "ni": (6, _ni, _Op.STRING),
    "&": (5, _bitand, _Op.NUMERIC), "^": (4, _bitxor, _Op.NUMERIC), "|": (3, _bitor, _Op.NUMERIC),
}
_LOGIC_PREC = {"&&": 2, "||": 1}
_WORD_OPS = frozenset({"eq", "ne", "in", "ni", "lt", "gt", "le", "ge"})


def _neg(v: Value) -> Value:
    n = _num(v, "-")
    return -n


def _pos(v: Value) -> Value:
    return _num(v, "+")


def _not(v: Value) -> Value:
    t = type(v)
    if t is str and parse_bool(v) is None:  # type: ignore[arg-type]
        _num(v, "!")  # raises the operand error
    return 0 if _truth(v) else 1


def _bitnot(v: Value) -> Value:
    return ~_int(v, "~")


_UNARY: dict[str, Callable[[Value], Value]] = {"-": _neg, "+": _pos, "!": _not, "~": _bitnot}

