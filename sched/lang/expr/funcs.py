"""The math functions of Tcl's `expr` (abs(), int(), sqrt(), max(), rand() ...): the table
FUNCTIONS gives each name its function, its argument counts and whether the compiler may fold a
call with constant arguments.

Each function takes values and returns a value, or raises _OpFailure with Tcl's message.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .ops import _float_pow
from .values import (
    _INF,
    Value,
    _num_or_none,
    _OpFailure,
    _s,
    _short,
    _to_float,
    _too_big,
    _truth,
)


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


_RAND_IM = 2147483647  # 2**31 - 1
_seed: list[int] = []
"""rand()'s state: Tcl's own generator (Park and Miller's minimal standard, seed = 16807 * seed
mod 2**31-1), so that srand(N) gives the numbers tclsh gives. Seeded from the clock at the first
rand() without srand()."""


def _set_seed(n: int) -> None:
    seed = n & 0x7FFFFFFF
    if seed in (0, 0x7FFFFFFF):  # (the generator's fixed points)
        seed ^= 123459876
    _seed[:] = [seed]


def _fn_rand() -> Value:
    if not _seed:
        import time  # (only for a rand() before any srand(): start-up)

        _set_seed(time.perf_counter_ns())
    seed = _seed[0]
    high = seed // 127773
    seed = 16807 * (seed - high * 127773) - 2836 * high  # Schrage's way, as Tcl computes it
    if seed < 0:
        seed += _RAND_IM
    _seed[0] = seed
    return seed * (1.0 / _RAND_IM)


def _fn_srand(v: Value) -> Value:
    n = _arg(v, "srand")
    if type(n) is not int:
        raise _OpFailure(f'argument to srand(): expected integer but got "{_s(v)}"')
    _set_seed(n)
    return _fn_rand()


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

