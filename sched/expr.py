"""Tcl's `expr`: our own tokenizer, parser and evaluator (never Python's eval).

Data flow: `compile_expr(text)` tokenizes and parses the text once (cached by text)
into a tree, folds constant parts, and turns the tree into nested closures; the
resulting `Expr` is evaluated many times against a context that supplies
variables and command substitution:

    ctx.get_var(name, index)   # $name, ${name}, $name(index)  -> str
    ctx.eval_script(text)      # [script]                       -> str

Both are called lazily, only for the parts actually evaluated (`&&`, `||` and
`?:` short-circuit). Values are Python ints (any size), floats and strs; a string
that looks like a number is a number, as in Tcl. Integers with a leading zero
are decimal (Tcl 9), not octal. Every failure is an ExprError whose `.offset` is a
0-based index into the expression text (a malformed list under `in`/`ni` gives
the ListError of that list).

Precedence, highest first (all binary operators are left-associative but `**`):
    unary - + ! ~    **    * / %    + -    << >>    < > <= >= lt gt le ge
    == != eq ne in ni    &    ^    |    &&    ||    ?: (right-associative)
"""

from __future__ import annotations

import enum
import logging
import math
import random
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol, Union

from .errors import ExprError, ListError
from .tcllist import backslash_at, skip_braced, split_tuple

log = logging.getLogger(__name__)

__all__ = [
    "Expr", "ExprContext", "compile_expr", "format_value", "parse_number", "parse_bool",
    "is_true", "MAX_DEPTH", "MAX_INT_BITS", "FUNCTIONS",
]

Value = Union[int, float, str]

# Deeper trees than this are refused (evaluation recurses once per level).
MAX_DEPTH = 100
# Integer results wider than this are refused rather than stalling the process.
MAX_INT_BITS = 1 << 17
# Decimal strings with more digits than this are not read as numbers.
_MAX_INT_DIGITS = 40_000
_INF = math.inf


class ExprContext(Protocol):
    """What an expression needs from the interpreter."""

    def get_var(self, name: str, index: str | None) -> str: ...

    def eval_script(self, text: str) -> str: ...


class _OpFailure(Exception):
    """An operator or function failed; the compiled node adds the offset."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# =============================================================================================
# numbers, booleans and their text


_NUMBER_RE = re.compile(
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
        return _int_to_str(v)  # type: ignore[arg-type]
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


# =============================================================================================
# operators


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


# =============================================================================================
# math functions


def _arg(v: Value, name: str) -> int | float:
    n = _num_or_none(v)
    if n is None:
        raise _OpFailure(f'argument to {name}(): expected number but got "{_short(_s(v))}"')
    return n


def _check_nan(x: int | float, name: str) -> int | float:
    if x != x:
        raise _OpFailure(f"argument to {name}(): domain error: argument not in valid range")
    return x


def _fn_abs(v: Value) -> Value:
    return abs(_check_nan(_arg(v, "abs"), "abs"))


def _trunc(v: Value, name: str) -> int:
    x = _check_nan(_arg(v, name), name)
    if type(x) is float:
        if math.isinf(x):
            raise _too_big()
        return int(x)
    return x  # type: ignore[return-value]


def _wrap64(i: int) -> int:
    i &= (1 << 64) - 1
    return i - (1 << 64) if i >= 1 << 63 else i


def _fn_int(v: Value) -> Value:
    return _wrap64(_trunc(v, "int"))


def _fn_wide(v: Value) -> Value:
    return _wrap64(_trunc(v, "wide"))


def _fn_entier(v: Value) -> Value:
    return _trunc(v, "entier")


def _fn_double(v: Value) -> Value:
    return _to_float(_arg(v, "double"))


def _fn_round(v: Value) -> Value:
    x = _check_nan(_arg(v, "round"), "round")
    if type(x) is int:
        return x
    if math.isinf(x):
        raise _too_big()
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return -r if x < 0 else r


def _fn_floor(v: Value) -> Value:
    x = _to_float(_check_nan(_arg(v, "floor"), "floor"))
    return x if math.isinf(x) else float(math.floor(x))


def _fn_ceil(v: Value) -> Value:
    x = _to_float(_check_nan(_arg(v, "ceil"), "ceil"))
    return x if math.isinf(x) else float(math.ceil(x))


def _fn_sqrt(v: Value) -> Value:
    x = _check_nan(_arg(v, "sqrt"), "sqrt")
    if x < 0:
        raise _OpFailure("argument to sqrt(): domain error: argument not in valid range")
    try:
        return math.sqrt(x)
    except OverflowError:
        return _to_float(math.isqrt(x))  # type: ignore[arg-type]


def _fn_isqrt(v: Value) -> Value:
    x = _check_nan(_arg(v, "isqrt"), "isqrt")
    if x < 0:
        raise _OpFailure("square root of negative argument")
    if type(x) is float:
        if math.isinf(x):
            raise _too_big()
        x = math.floor(x)
    return math.isqrt(x)  # type: ignore[arg-type]


def _float_fn(f: Callable[[float], float], name: str, *, exact_ints: bool = False) -> Callable[[Value], Value]:
    """Wrap a math-module function with Tcl's errors: domain error, Inf on overflow."""

    def call(v: Value) -> Value:
        x = _check_nan(_arg(v, name), name)
        if not exact_ints:
            x = _to_float(x)
        try:
            r = f(x)  # type: ignore[arg-type]
        except ValueError:
            if name in ("log", "log10") and x == 0:
                return -_INF
            raise _OpFailure(f"argument to {name}(): domain error: argument not in valid range") from None
        except OverflowError:
            return -_INF if name == "sinh" and x < 0 else _INF
        if r != r:
            raise _OpFailure(f"argument to {name}(): domain error: argument not in valid range")
        return r

    return call


def _float_fn2(f: Callable[[float, float], float], name: str) -> Callable[[Value, Value], Value]:
    def call(a: Value, b: Value) -> Value:
        x = _to_float(_check_nan(_arg(a, name), name))
        y = _to_float(_check_nan(_arg(b, name), name))
        try:
            r = f(x, y)
        except ValueError:
            raise _OpFailure(f"argument to {name}(): domain error: argument not in valid range") from None
        except OverflowError:
            return _INF
        if r != r:
            raise _OpFailure(f"argument to {name}(): domain error: argument not in valid range")
        return r

    return call


def _fn_pow(a: Value, b: Value) -> Value:
    x = _to_float(_check_nan(_arg(a, "pow"), "pow"))
    y = _to_float(_check_nan(_arg(b, "pow"), "pow"))
    return _float_pow(x, y)


def _fn_minmax(name: str) -> Callable[..., Value]:
    pick = min if name == "min" else max

    def call(*args: Value) -> Value:
        nums = []
        for v in args:
            n = _num_or_none(v)
            if n is None or n != n:
                raise _OpFailure(f'argument to {name}(): expected number but got "{_short(_s(v))}"')
            nums.append(n)
        return pick(nums)

    return call


def _fn_bool(v: Value) -> Value:
    return 1 if _truth(v) else 0


_rng = random.Random()


def _fn_rand() -> Value:
    return _rng.random()


def _fn_srand(v: Value) -> Value:
    n = _arg(v, "srand")
    if type(n) is not int:
        raise _OpFailure(f'argument to srand(): expected integer but got "{_s(v)}"')
    _rng.seed(n)
    return _rng.random()


# name -> (function, min args, max args or None for any, pure: may be folded at compile time)
FUNCTIONS: dict[str, tuple[Callable[..., Value], int, int | None, bool]] = {
    "abs": (_fn_abs, 1, 1, True),
    "int": (_fn_int, 1, 1, True),
    "wide": (_fn_wide, 1, 1, True),
    "entier": (_fn_entier, 1, 1, True),
    "double": (_fn_double, 1, 1, True),
    "round": (_fn_round, 1, 1, True),
    "floor": (_fn_floor, 1, 1, True),
    "ceil": (_fn_ceil, 1, 1, True),
    "sqrt": (_fn_sqrt, 1, 1, True),
    "isqrt": (_fn_isqrt, 1, 1, True),
    "pow": (_fn_pow, 2, 2, True),
    "exp": (_float_fn(math.exp, "exp"), 1, 1, True),
    "log": (_float_fn(math.log, "log", exact_ints=True), 1, 1, True),
    "log10": (_float_fn(math.log10, "log10", exact_ints=True), 1, 1, True),
    "sin": (_float_fn(math.sin, "sin"), 1, 1, True),
    "cos": (_float_fn(math.cos, "cos"), 1, 1, True),
    "tan": (_float_fn(math.tan, "tan"), 1, 1, True),
    "asin": (_float_fn(math.asin, "asin"), 1, 1, True),
    "acos": (_float_fn(math.acos, "acos"), 1, 1, True),
    "atan": (_float_fn(math.atan, "atan"), 1, 1, True),
    "sinh": (_float_fn(math.sinh, "sinh"), 1, 1, True),
    "cosh": (_float_fn(math.cosh, "cosh"), 1, 1, True),
    "tanh": (_float_fn(math.tanh, "tanh"), 1, 1, True),
    "atan2": (_float_fn2(math.atan2, "atan2"), 2, 2, True),
    "hypot": (_float_fn2(math.hypot, "hypot"), 2, 2, True),
    "fmod": (_float_fn2(math.fmod, "fmod"), 2, 2, True),
    "min": (_fn_minmax("min"), 1, None, True),
    "max": (_fn_minmax("max"), 1, None, True),
    "bool": (_fn_bool, 1, 1, True),
    "rand": (_fn_rand, 0, 0, False),
    "srand": (_fn_srand, 1, 1, False),
}


# =============================================================================================
# tokens


class Tok(enum.Enum):
    NUM = "number"
    STR = "string"  # {braced} text or a boolean bareword: a constant string
    QUOTE = "quoted string"  # "..." with substitutions
    VAR = "variable"
    SCRIPT = "command substitution"
    FUNC = "function name"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    QUESTION = "?"
    COLON = ":"
    END = "end of expression"


class _Token:
    __slots__ = ("kind", "value", "start", "end", "extra")

    def __init__(self, kind: Tok, value: object, start: int, end: int, extra: object = None):
        self.kind = kind
        self.value = value
        self.start = start
        self.end = end
        self.extra = extra


_SPACE_RE = re.compile(r"[ \t\n\r\f\v]*")
_NUM_TOKEN_RE = re.compile(
    r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[dD][0-9]+"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_WORD_TAIL_RE = re.compile(r"[\w.]*")
_DIGITS = frozenset("0123456789")
_BAREWORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARNAME_RE = re.compile(r"(?:[A-Za-z0-9_]|::+)+")
_OP_RE = re.compile(r"\*\*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&^|!~?:(),]")
_QUOTE_SCAN_RE = re.compile(r'[\\\[$"]')
_INDEX_SCAN_RE = re.compile(r"[\\\[$)]")
_BS_NEWLINE_RE = re.compile(r"\\\\|\\\n[ \t]*")
_PUNCT = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA, "?": Tok.QUESTION, ":": Tok.COLON}


def find_script_end(text: str, pos: int) -> int:
    """Index of the `]` closing the command substitution whose body starts at `pos`.

    Honours nested brackets, braces and quotes at word starts, and backslashes.
    Raises ExprError("missing close-bracket") at the opening bracket.
    """
    stack = ["["]  # open contexts: "[" a script, '"' a quoted word inside it
    word_start = True
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            word_start = False
            continue
        if stack[-1] == '"':
            if c == '"':
                stack.pop()
            elif c == "[":
                stack.append("[")
                word_start = True
            i += 1
            continue
        if c == "]":
            stack.pop()
            if not stack:
                return i
            word_start = False
        elif c == "[":
            stack.append("[")
            word_start = True
        elif word_start and c == "{":
            end = skip_braced(text, i)
            if end < 0:
                break
            i = end
            word_start = False
            continue
        elif word_start and c == '"':
            stack.append('"')
            word_start = False
        else:
            word_start = c in " \t\n\r\f\v;"
        i += 1
    raise ExprError("missing close-bracket", offset=pos - 1)


def _braced_body(raw: str) -> str:
    """A {braced} operand is literal, except that backslash-newline-blanks becomes one space."""
    if "\\\n" not in raw:
        return raw
    return _BS_NEWLINE_RE.sub(lambda m: m.group() if m.group() == "\\\\" else " ", raw)


class _Lexer:
    """Turns expression text into tokens; substitutions become parse-tree leaves here."""

    def __init__(self, text: str):
        self.text = text

    def tokens(self) -> list[_Token]:
        text = self.text
        n = len(text)
        out: list[_Token] = []
        pos = _SPACE_RE.match(text, 0).end()  # type: ignore[union-attr]
        while pos < n:
            out.append(self._token(pos))
            pos = _SPACE_RE.match(text, out[-1].end).end()  # type: ignore[union-attr]
        out.append(_Token(Tok.END, None, n, n))
        return out

    def _token(self, pos: int) -> _Token:
        text = self.text
        c = text[pos]
        if c in _DIGITS or (c == "." and text[pos + 1 : pos + 2] in _DIGITS):
            return self._number(pos)
        if c == "$":
            node = self._varref(pos, 0)
            if node is None:
                raise ExprError('missing variable name after "$"', offset=pos)
            return _Token(Tok.VAR, node, pos, node.end)
        if c == "[":
            end = find_script_end(text, pos + 1)
            return _Token(Tok.SCRIPT, _Script(text[pos + 1 : end], pos), pos, end + 1)
        if c == '"':
            parts, end = self._parts(pos + 1, '"', 0)
            return _Token(Tok.QUOTE, parts, pos, end + 1)
        if c == "{":
            end = skip_braced(text, pos)
            if end < 0:
                raise ExprError("missing close-brace", offset=pos)
            return _Token(Tok.STR, _braced_body(text[pos + 1 : end - 1]), pos, end)
        m = _BAREWORD_RE.match(text, pos)
        if m is not None:
            return self._bareword(m)
        m = _OP_RE.match(text, pos)
        if m is not None:
            op = m.group()
            return _Token(_PUNCT.get(op, Tok.OP), op, pos, m.end())
        shown = f'"{c}"' if c.isprintable() else f"U+{ord(c):04X}"
        raise ExprError(f"invalid character {shown}", offset=pos)

    def _number(self, pos: int) -> _Token:
        text = self.text
        m = _NUM_TOKEN_RE.match(text, pos)
        end = m.end()  # type: ignore[union-attr]
        if end < len(text) and (text[end].isalnum() or text[end] in "_."):
            word_end = _WORD_TAIL_RE.match(text, end).end()  # type: ignore[union-attr]
            raise ExprError(f'invalid bareword "{text[pos:word_end]}"', offset=pos)
        spelling = text[pos:end]
        value = parse_number(spelling)
        if value is None:
            raise ExprError(f'number too large: "{_short(spelling)}"', offset=pos)
        return _Token(Tok.NUM, value, pos, end, spelling)

    def _bareword(self, m: re.Match[str]) -> _Token:
        word, pos, end = m.group(), m.start(), m.end()
        text = self.text
        if word in _WORD_OPS:
            return _Token(Tok.OP, word, pos, end)
        after = _SPACE_RE.match(text, end).end()  # type: ignore[union-attr]
        if after < len(text) and text[after] == "(":
            return _Token(Tok.FUNC, word, pos, end)
        lower = word.lower()
        if lower in ("inf", "infinity", "nan"):
            return _Token(Tok.NUM, parse_number(word), pos, end, word)
        if lower in _BOOL_WORDS:
            return _Token(Tok.STR, word, pos, end)
        raise ExprError(
            f'invalid bareword "{word}" (a string must be quoted "{word}" or braced {{{word}}},'
            f" a variable needs ${word})",
            offset=pos,
        )

    def _varref(self, pos: int, depth: int) -> _Var | None:
        """A `$` reference at `pos`, or None when no variable name follows the `$`."""
        text = self.text
        if text.startswith("${", pos):
            close = text.find("}", pos + 2)
            if close < 0:
                raise ExprError("missing close-brace for variable name", offset=pos + 1)
            return _Var(text[pos + 2 : close], None, pos, close + 1)
        m = _VARNAME_RE.match(text, pos + 1)
        if m is None:
            return None
        name, end = m.group(), m.end()
        if end < len(text) and text[end] == "(":
            index, close = self._parts(end + 1, ")", depth + 1)
            return _Var(name, index, pos, close + 1)
        return _Var(name, None, pos, end)

    def _parts(self, pos: int, terminator: str, depth: int) -> tuple[list[str | _Node], int]:
        """Text with $, [] and backslash substitution up to `terminator`; returns parts and its index."""
        if depth > MAX_DEPTH:
            raise ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", offset=pos)
        text = self.text
        n = len(text)
        parts: list[str | _Node] = []
        literal: list[str] = []
        i = pos
        scan_re = _QUOTE_SCAN_RE if terminator == '"' else _INDEX_SCAN_RE
        while i < n:
            c = text[i]
            if c == terminator:
                if literal:
                    parts.append("".join(literal))
                return parts, i
            if c == "\\":
                sub, i = backslash_at(text, i)
                literal.append(sub)
            elif c == "[":
                end = find_script_end(text, i + 1)
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_Script(text[i + 1 : end], i))
                i = end + 1
            elif c == "$":
                var = self._varref(i, depth)
                if var is None:
                    literal.append("$")
                    i += 1
                else:
                    if literal:
                        parts.append("".join(literal))
                        literal = []
                    parts.append(var)
                    i = var.end
            else:
                m = scan_re.search(text, i)
                j = m.start() if m is not None else n
                literal.append(text[i:j])
                i = j
        if terminator == '"':
            raise ExprError("missing close-quote", offset=pos - 1)
        raise ExprError('missing ")" to close the array index', offset=pos - 1)


# =============================================================================================
# parse tree


class _Node:
    """A parse-tree node; `offset` is where it starts in the text, `depth` its height."""

    __slots__ = ("offset", "depth")


class _Lit(_Node):
    __slots__ = ("value", "text")

    def __init__(self, value: Value, text: str, offset: int):
        self.value, self.text, self.offset, self.depth = value, text, offset, 1


def _parts_depth(parts: list[str | _Node] | None) -> int:
    return 1 + max((p.depth for p in parts or () if isinstance(p, _Node)), default=0)


class _Var(_Node):
    __slots__ = ("name", "index", "end")

    def __init__(self, name: str, index: list[str | _Node] | None, offset: int, end: int):
        self.name, self.index, self.offset, self.end = name, index, offset, end
        self.depth = _parts_depth(index)


class _Script(_Node):
    __slots__ = ("body",)

    def __init__(self, body: str, offset: int):
        self.body, self.offset, self.depth = body, offset, 1


class _Quote(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: list[str | _Node], offset: int):
        self.parts, self.offset, self.depth = parts, offset, _parts_depth(parts)


class _Unary(_Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: _Node, offset: int):
        self.op, self.operand, self.offset, self.depth = op, operand, offset, operand.depth + 1


class _Chain(_Node):
    """first op1 x1 op2 x2 ... evaluated left to right (a left-nested tree, flattened)."""

    __slots__ = ("first", "rest")

    def __init__(self, first: _Node, op: str, op_offset: int, second: _Node):
        self.first = first
        self.rest = [(op, op_offset, second)]
        self.offset = first.offset
        self.depth = max(first.depth, second.depth) + 1


class _Logic(_Node):
    __slots__ = ("op", "operands")

    def __init__(self, op: str, left: _Node, right: _Node):
        self.op, self.offset = op, left.offset
        self.operands = [left, right]
        self.depth = max(left.depth, right.depth) + 1


class _Cond(_Node):
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond: _Node, then: _Node, other: _Node):
        self.cond, self.then, self.other, self.offset = cond, then, other, cond.offset
        self.depth = max(cond.depth, then.depth, other.depth) + 1


class _Call(_Node):
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list[_Node], offset: int):
        self.name, self.args, self.offset = name, args, offset
        self.depth = 1 + max((a.depth for a in args), default=0)


# =============================================================================================
# parser


def _too_deep(offset: int) -> ExprError:
    return ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", offset=offset)


class _Parser:
    """Precedence parsing over the token list; recursion only for (), ?:, unary ops and calls."""

    def __init__(self, text: str, tokens: list[_Token]):
        self.text = text
        self.toks = tokens
        self.i = 0

    def _spelling(self, t: _Token) -> str:
        return _short(self.text[t.start : t.end]) if t.kind is not Tok.END else "end of expression"

    def parse(self) -> _Node:
        if self.toks[0].kind is Tok.END:
            raise ExprError("empty expression", offset=0)
        node = self._ternary(0)
        t = self.toks[self.i]
        if t.kind is not Tok.END:
            self._after_operand(t)
        return node

    def _after_operand(self, t: _Token) -> None:
        """Raise the error for token `t` found where an operator (or the end) was expected."""
        if t.kind is Tok.RPAREN:
            raise ExprError('unexpected ")" (unbalanced parentheses)', offset=t.start)
        if t.kind is Tok.COLON:
            raise ExprError('unexpected ":" without a preceding "?"', offset=t.start)
        if t.kind is Tok.COMMA:
            raise ExprError('unexpected "," outside a function call', offset=t.start)
        raise ExprError(f'missing operator before "{self._spelling(t)}"', offset=t.start)

    def _ternary(self, depth: int) -> _Node:
        if depth >= MAX_DEPTH:
            raise _too_deep(self.toks[self.i].start)
        cond = self._binary(depth)
        q = self.toks[self.i]
        if q.kind is not Tok.QUESTION:
            return cond
        self.i += 1
        then = self._ternary(depth + 1)
        colon = self.toks[self.i]
        if colon.kind is not Tok.COLON:
            if colon.kind is Tok.END or colon.kind is Tok.RPAREN or colon.kind is Tok.COMMA:
                raise ExprError('missing ":" for the "?" of a conditional', offset=colon.start)
            self._after_operand(colon)
        self.i += 1
        other = self._ternary(depth + 1)
        node = _Cond(cond, then, other)
        if node.depth > MAX_DEPTH:
            raise _too_deep(q.start)
        return node

    def _binary(self, depth: int) -> _Node:
        operands = [self._unary(depth)]
        ops: list[tuple[str, int, int]] = []  # (operator, precedence, offset)
        toks = self.toks
        while True:
            t = toks[self.i]
            if t.kind is not Tok.OP:
                break
            op = t.value
            entry = _BINARY.get(op)  # type: ignore[arg-type]
            prec = entry[0] if entry is not None else _LOGIC_PREC.get(op)  # type: ignore[arg-type]
            if prec is None:
                break  # "!" or "~" where an operator belongs: reported by the caller
            self.i += 1
            while ops and (ops[-1][1] > prec or (ops[-1][1] == prec and op != "**")):
                self._reduce(operands, ops)
            ops.append((op, prec, t.start))  # type: ignore[arg-type]
            operands.append(self._unary(depth))
        while ops:
            self._reduce(operands, ops)
        return operands[0]

    @staticmethod
    def _reduce(operands: list[_Node], ops: list[tuple[str, int, int]]) -> None:
        op, _, offset = ops.pop()
        right = operands.pop()
        left = operands.pop()
        node: _Node
        if op in _LOGIC_PREC:
            if isinstance(left, _Logic) and left.op == op:
                left.operands.append(right)
                left.depth = max(left.depth, right.depth + 1)
                node = left
            else:
                node = _Logic(op, left, right)
        elif isinstance(left, _Chain):
            left.rest.append((op, offset, right))
            left.depth = max(left.depth, right.depth + 1)
            node = left
        else:
            node = _Chain(left, op, offset, right)
        if node.depth > MAX_DEPTH:
            raise _too_deep(offset)
        operands.append(node)

    def _unary(self, depth: int) -> _Node:
        t = self.toks[self.i]
        self.i += 1
        kind = t.kind
        if kind is Tok.NUM:
            return _Lit(t.value, t.extra, t.start)  # type: ignore[arg-type]
        if kind is Tok.VAR or kind is Tok.SCRIPT:
            return t.value  # type: ignore[return-value]
        if kind is Tok.STR:
            return _Lit(t.value, t.value, t.start)  # type: ignore[arg-type]
        if kind is Tok.QUOTE:
            parts = t.value
            if all(type(p) is str for p in parts):  # type: ignore[attr-defined]
                s = "".join(parts)  # type: ignore[arg-type]
                return _Lit(s, s, t.start)
            return _Quote(parts, t.start)  # type: ignore[arg-type]
        if kind is Tok.OP and t.value in _UNARY:
            if depth >= MAX_DEPTH:
                raise _too_deep(t.start)
            node = _Unary(t.value, self._unary(depth + 1), t.start)  # type: ignore[arg-type]
            if node.depth > MAX_DEPTH:
                raise _too_deep(t.start)
            return node
        if kind is Tok.LPAREN:
            return self._paren(t, depth)
        if kind is Tok.FUNC:
            return self._call(t, depth)
        self.i -= 1
        prev = self.toks[self.i - 1] if self.i > 0 else None
        if kind is Tok.END and prev is not None and prev.kind is Tok.LPAREN:
            raise ExprError('unbalanced parentheses: this "(" is never closed', offset=prev.start)
        if kind is Tok.RPAREN and (prev is None or prev.kind is Tok.LPAREN):
            raise ExprError('unexpected ")" (unbalanced parentheses)', offset=t.start)
        if prev is None:
            raise ExprError(f'missing operand before "{self._spelling(t)}"', offset=t.start)
        raise ExprError(f'missing operand after "{self._spelling(prev)}"', offset=t.start)

    def _paren(self, open_tok: _Token, depth: int) -> _Node:
        if depth >= MAX_DEPTH:
            raise _too_deep(open_tok.start)
        if self.toks[self.i].kind is Tok.RPAREN:
            raise ExprError('empty subexpression "()"', offset=open_tok.start)
        inner = self._ternary(depth + 1)
        close = self.toks[self.i]
        if close.kind is Tok.RPAREN:
            self.i += 1
            return inner
        if close.kind is Tok.END:
            raise ExprError('unbalanced parentheses: this "(" is never closed', offset=open_tok.start)
        self._after_operand(close)
        raise AssertionError("unreachable")

    def _call(self, name_tok: _Token, depth: int) -> _Node:
        name = name_tok.value
        open_tok = self.toks[self.i]  # the lexer only makes FUNC tokens before a "("
        self.i += 1
        spec = FUNCTIONS.get(name)  # type: ignore[arg-type]
        if spec is None:
            raise ExprError(f'unknown math function "{name}"', offset=name_tok.start)
        if depth >= MAX_DEPTH:
            raise _too_deep(name_tok.start)
        args: list[_Node] = []
        if self.toks[self.i].kind is Tok.RPAREN:
            self.i += 1
        else:
            while True:
                args.append(self._ternary(depth + 1))
                sep = self.toks[self.i]
                self.i += 1
                if sep.kind is Tok.COMMA:
                    continue
                if sep.kind is Tok.RPAREN:
                    break
                if sep.kind is Tok.END:
                    raise ExprError(
                        f'unbalanced parentheses: the "(" of {name}() is never closed', offset=open_tok.start
                    )
                self._after_operand(sep)
        _, least, most, _ = spec
        if len(args) < least:
            raise ExprError(f'not enough arguments for math function "{name}"', offset=name_tok.start)
        if most is not None and len(args) > most:
            raise ExprError(f'too many arguments for math function "{name}"', offset=name_tok.start)
        node = _Call(name, args, name_tok.start)  # type: ignore[arg-type]
        if node.depth > MAX_DEPTH:
            raise _too_deep(name_tok.start)
        return node


# =============================================================================================
# compiling the tree into closures

Evaluator = Callable[[ExprContext], Value]
_NC = object()  # "not a constant"


def _constant(v: Value) -> Evaluator:
    def ev(ctx: ExprContext) -> Value:
        return v

    return ev


def _fail(message: str, offset: int) -> Evaluator:
    """An evaluator for a constant part that always fails (only raised if it is evaluated)."""

    def ev(ctx: ExprContext) -> Value:
        raise ExprError(message, offset=offset)

    return ev


def _compile_node(node: _Node) -> tuple[Evaluator, object]:
    """The evaluator of a node and its constant value (or _NC)."""
    t = type(node)
    if t is _Lit:
        return _constant(node.value), node.value  # type: ignore[attr-defined]
    if t is _Var:
        return _compile_var(node), _NC  # type: ignore[arg-type]
    if t is _Script:
        body = node.body  # type: ignore[attr-defined]

        def script(ctx: ExprContext) -> Value:
            return ctx.eval_script(body)

        return script, _NC
    if t is _Quote:
        return _compile_parts(node.parts)  # type: ignore[attr-defined]
    if t is _Chain:
        return _compile_chain(node)  # type: ignore[arg-type]
    if t is _Logic:
        return _compile_logic(node)  # type: ignore[arg-type]
    if t is _Unary:
        return _compile_unary(node)  # type: ignore[arg-type]
    if t is _Cond:
        return _compile_cond(node)  # type: ignore[arg-type]
    return _compile_call(node)  # type: ignore[arg-type]


def _compile_parts(parts: list[str | _Node]) -> tuple[Evaluator, object]:
    if all(type(p) is str for p in parts):
        s = "".join(parts)  # type: ignore[arg-type]
        return _constant(s), s
    if len(parts) == 1:
        return _compile_node(parts[0])  # type: ignore[arg-type]
    pieces = [(True, p) if type(p) is str else (False, _compile_node(p)[0]) for p in parts]  # type: ignore[arg-type]

    def joined(ctx: ExprContext) -> Value:
        return "".join([p if const else _s(p(ctx)) for const, p in pieces])  # type: ignore[operator]

    return joined, _NC


def _compile_var(node: _Var) -> Evaluator:
    name = node.name
    if node.index is None:

        def scalar(ctx: ExprContext) -> Value:
            return ctx.get_var(name, None)

        return scalar
    index_ev, index_const = _compile_parts(node.index)
    if index_const is not _NC:
        key = index_const

        def element(ctx: ExprContext) -> Value:
            return ctx.get_var(name, key)  # type: ignore[arg-type]

        return element

    def element_sub(ctx: ExprContext) -> Value:
        return ctx.get_var(name, _s(index_ev(ctx)))

    return element_sub


def _operand(node: _Node, kind: _Op) -> tuple[Evaluator, object]:
    """Compile an operand; string operators see a literal number as it was written."""
    if kind is _Op.STRING and type(node) is _Lit:
        return _constant(node.text), node.text  # type: ignore[attr-defined]
    return _compile_node(node)


def _compile_chain(node: _Chain) -> tuple[Evaluator, object]:
    first_kind = _BINARY[node.rest[0][0]][2]
    first, acc = _operand(node.first, first_kind)
    steps = []
    for op, offset, sub in node.rest:
        _, fn, kind = _BINARY[op]
        ev, const = _operand(sub, kind)
        steps.append((fn, ev, const, offset))
    # Fold the constant prefix (1 + 2 + $x -> 3 + $x); a failing constant step stays for run time.
    folded = 0
    while folded < len(steps) and acc is not _NC and steps[folded][2] is not _NC:
        fn, _, const, offset = steps[folded]
        try:
            acc = fn(acc, const)  # type: ignore[arg-type]
        except (_OpFailure, ListError):
            break
        folded += 1
        first = _constant(acc)  # type: ignore[arg-type]
    del steps[:folded]
    if not steps:
        return first, acc
    if len(steps) == 1:
        return _binary_closure(first, *steps[0]), _NC

    def chain(ctx: ExprContext) -> Value:
        value = first(ctx)
        for fn, ev, _, offset in steps:
            try:
                value = fn(value, ev(ctx))
            except _OpFailure as e:
                raise ExprError(e.message, offset=offset) from None
        return value

    return chain, _NC


def _binary_closure(left: Evaluator, fn: Callable[[Value, Value], Value], right: Evaluator,
                    const: object, offset: int) -> Evaluator:
    if const is not _NC:

        def binary_const(ctx: ExprContext) -> Value:
            try:
                return fn(left(ctx), const)  # type: ignore[arg-type]
            except _OpFailure as e:
                raise ExprError(e.message, offset=offset) from None

        return binary_const

    def binary(ctx: ExprContext) -> Value:
        try:
            return fn(left(ctx), right(ctx))
        except _OpFailure as e:
            raise ExprError(e.message, offset=offset) from None

    return binary


def _truth_at(v: Value, offset: int) -> bool:
    if type(v) is int:
        return v != 0
    try:
        return _truth(v)
    except _OpFailure as e:
        raise ExprError(e.message, offset=offset) from None


def _compile_logic(node: _Logic) -> tuple[Evaluator, object]:
    is_and = node.op == "&&"
    items = []
    for sub in node.operands:
        ev, const = _compile_node(sub)
        if const is not _NC:
            try:
                truth = _truth(const)  # type: ignore[arg-type]
            except _OpFailure as e:
                items.append((_fail(e.message, sub.offset), sub.offset))
                continue
            if truth is not is_and:
                # 0 && ... or 1 || ...: the rest is never evaluated
                if not items:
                    result = 0 if is_and else 1
                    return _constant(result), result
                items.append((_constant(const), sub.offset))  # type: ignore[arg-type]
                break
            continue  # a true operand of && (false of ||) changes nothing
        items.append((ev, sub.offset))
    if not items:
        result = 1 if is_and else 0
        return _constant(result), result
    if len(items) == 1:
        (only, off), = items

        def single(ctx: ExprContext) -> Value:
            return 1 if _truth_at(only(ctx), off) else 0

        return single, _NC
    if is_and:

        def logic_and(ctx: ExprContext) -> Value:
            for ev, off in items:
                if not _truth_at(ev(ctx), off):
                    return 0
            return 1

        return logic_and, _NC

    def logic_or(ctx: ExprContext) -> Value:
        for ev, off in items:
            if _truth_at(ev(ctx), off):
                return 1
        return 0

    return logic_or, _NC


def _compile_unary(node: _Unary) -> tuple[Evaluator, object]:
    fn = _UNARY[node.op]
    sub, const = _compile_node(node.operand)
    offset = node.offset
    if const is not _NC:
        try:
            value = fn(const)  # type: ignore[arg-type]
            return _constant(value), value
        except _OpFailure as e:
            return _fail(e.message, offset), _NC

    def unary(ctx: ExprContext) -> Value:
        try:
            return fn(sub(ctx))
        except _OpFailure as e:
            raise ExprError(e.message, offset=offset) from None

    return unary, _NC


def _compile_cond(node: _Cond) -> tuple[Evaluator, object]:
    cond, cond_const = _compile_node(node.cond)
    then, then_const = _compile_node(node.then)
    other, other_const = _compile_node(node.other)
    offset = node.cond.offset
    if cond_const is not _NC:
        try:
            truth = _truth(cond_const)  # type: ignore[arg-type]
        except _OpFailure as e:
            return _fail(e.message, offset), _NC
        return (then, then_const) if truth else (other, other_const)

    def conditional(ctx: ExprContext) -> Value:
        return then(ctx) if _truth_at(cond(ctx), offset) else other(ctx)

    return conditional, _NC


def _compile_call(node: _Call) -> tuple[Evaluator, object]:
    fn, _, _, pure = FUNCTIONS[node.name]
    compiled = [_compile_node(a) for a in node.args]
    args = [ev for ev, _ in compiled]
    offset = node.offset
    if pure and all(const is not _NC for _, const in compiled):
        try:
            value = fn(*[const for _, const in compiled])
            return _constant(value), value
        except _OpFailure as e:
            return _fail(e.message, offset), _NC
    if len(args) == 1:
        (arg,) = args

        def call1(ctx: ExprContext) -> Value:
            try:
                return fn(arg(ctx))
            except _OpFailure as e:
                raise ExprError(e.message, offset=offset) from None

        return call1, _NC

    def call(ctx: ExprContext) -> Value:
        values = [a(ctx) for a in args]
        try:
            return fn(*values)
        except _OpFailure as e:
            raise ExprError(e.message, offset=offset) from None

    return call, _NC


# =============================================================================================
# the public face


class Expr:
    """A compiled expression: evaluate it as often as needed against a context."""

    __slots__ = ("text", "_ev", "_const")

    def __init__(self, text: str, ev: Evaluator, const: object):
        self.text = text
        self._ev = ev
        self._const = const

    @property
    def is_constant(self) -> bool:
        """True when the value does not depend on variables, commands or rand()."""
        return self._const is not _NC

    def evaluate(self, ctx: ExprContext) -> Value:
        """The value: an int, a float or a str (a str that reads as a number comes back as the number)."""
        v = self._ev(ctx)
        if type(v) is str:
            n = parse_number(v)  # type: ignore[arg-type]
            if n is not None and n == n:
                return n
        return v

    def evaluate_str(self, ctx: ExprContext) -> str:
        """The value as Tcl text (what the `expr` command returns)."""
        return format_value(self.evaluate(ctx))

    def truth(self, ctx: ExprContext) -> bool:
        """The value as a condition (if/while): numbers and yes/no/true/false/on/off."""
        return _truth_at(self._ev(ctx), 0)

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def _compile(text: str) -> Expr:
    tree = _Parser(text, _Lexer(text).tokens()).parse()
    ev, const = _compile_node(tree)
    if type(const) is str:
        n = parse_number(const)  # type: ignore[arg-type]
        if n is not None and n == n:
            const = n
            ev = _constant(n)
    return Expr(text, ev, const)


_compile_cached = lru_cache(maxsize=4096)(_compile)


def compile_expr(text: str) -> Expr:
    """Parse `text` as a Tcl expression (cached by text). Raises ExprError with `.offset`."""
    if len(text) > 2000:
        return _compile(text)
    return _compile_cached(text)
