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

The engine is split by concern; this module compiles the parse tree into closures and is the
public face (every public name is importable from here):

    expr_values   numbers, booleans and their text; operand coercion (_OpFailure)
    expr_ops      binary and unary operators, precedence table
    expr_funcs    math functions (FUNCTIONS)
    expr_parse    tokens, lexer, parse tree, parser (MAX_DEPTH)
    expr          compiler, Expr, compile_expr (cached)
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

from ..errors import ExprError, ListError
from .funcs import FUNCTIONS
from .ops import _BINARY, _UNARY, _Op, _add, _eq, _ge, _gt, _le, _lt, _mod, _ne, _sub
from .parse import (
    MAX_DEPTH,
    _Call,
    _Chain,
    _Cond,
    _Lexer,
    _Lit,
    _Logic,
    _Node,
    _Parser,
    _Quote,
    _Script,
    _Unary,
    _Var,
)
from .parse import Tok as Tok
from .parse import find_script_end as find_script_end
from .values import (
    MAX_INT_BITS,
    Value,
    _OpFailure,
    _s,
    _truth,
    format_value,
    is_true,
    parse_bool,
    parse_number,
)


__all__ = [
    "Expr", "ExprContext", "compile_expr", "format_value", "parse_number", "parse_bool",
    "is_true", "MAX_DEPTH", "MAX_INT_BITS", "FUNCTIONS",
]


class ExprContext(Protocol):
    """What an expression needs from the interpreter."""

    def get_var(self, name: str, index: str | None) -> str: ...

    def eval_script(self, text: str) -> str: ...


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
        fast = _digits_op(node.first, *steps[0]) if not folded else None
        return fast or _binary_closure(first, *steps[0]), _NC

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


_DIGITS_OPS: dict[Callable[[Value, Value], Value], tuple[Callable[[int, int], object], bool]] = {
    _lt: (operator.lt, True), _gt: (operator.gt, True), _le: (operator.le, True), _ge: (operator.ge, True),
    _eq: (operator.eq, True), _ne: (operator.ne, True), _add: (operator.add, False), _sub: (operator.sub, False),
}
"""Operators whose result on two integers is Python's (a comparison's made 1 or 0)."""


def _digits_op(left: _Node, fn: Callable[[Value, Value], Value], right: Evaluator, const: object,
               offset: int) -> Evaluator | None:
    """`$i < 10`, `$i + 1`, `$i % 5`: a scalar variable and an integer constant, when the
    variable holds decimal digits (as a counter does), computed at once on the two integers;
    any other value goes the general way (_binary_closure's)."""
    if type(left) is not _Var or left.index is not None or type(const) is not int:  # type: ignore[attr-defined]
        return None
    if fn is _mod and const != 0:
        op, compare = operator.mod, False  # (Python's sign rule is Tcl's)
    elif fn in _DIGITS_OPS:
        op, compare = _DIGITS_OPS[fn]
    else:
        return None
    name = left.name  # type: ignore[attr-defined]
    k: int = const  # type: ignore[assignment]

    def digits_op(ctx: ExprContext) -> Value:
        v = ctx.get_var(name, None)
        if type(v) is str and v.isdigit() and v.isascii() and len(v) <= 64:  # (as parse_number reads it)
            r = op(int(v), k)
            return (1 if r else 0) if compare else r  # type: ignore[return-value]
        try:
            return fn(v, k)
        except _OpFailure as e:
            raise ExprError(e.message, offset=offset) from None

    return digits_op


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
            if n is None:
                return v
            v = n
        if v != v:  # as Tcl: an expression is no number when it comes out Not a Number
            raise ExprError("domain error: argument not in valid range", offset=0)
        return v

    def evaluate_str(self, ctx: ExprContext) -> str:
        """The value as Tcl text (what the `expr` command returns)."""
        return format_value(self.evaluate(ctx))

    def truth(self, ctx: ExprContext) -> bool:
        """The value as a condition (if/while): numbers and yes/no/true/false/on/off."""
        v = self._ev(ctx)
        return v != 0 if type(v) is int else _truth_at(v, 0)

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
