"""Tcl's expr (psched.lang.expr): values, precedence, errors with offsets, laziness, robustness.

Expected values in the tables were checked against tclsh 8.6 except where a row says
otherwise (leading-zero integers are decimal, as in Tcl 9; lt/gt/le/ge come from Tcl 9;
error messages are ours and name the operand).
"""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psched.lang.expr as expr_module
from psched.lang.errors import ExprError, ListError, SchedError, ScriptError
from psched.lang.expr import (
    FUNCTIONS,
    MAX_DEPTH,
    compile_expr,
    format_value,
    is_true,
    parse_bool,
    parse_number,
)


class FakeCtx:
    """A context that records every variable read and command substitution."""

    def __init__(self) -> None:
        self.vars = {
            "i": "5", "n": "10", "x": "0x10", "y": " 12 ", "z": "abc", "f": "1.50", "t": "true",
            "k": "k1", "e": "", "l": "a b {c d}", "neg": "-3", "big": "123456789012345678901234567890",
            "sp": "a b", "1": "first", "0": "2", "ns::v": "9",
        }
        self.arrays = {("a", "k1"): "5", ("a", "k 2"): "6", ("a", ""): "7", ("a", "first"): "8"}
        self.scripts = {"one": "1", "seven": "7", "list": "a b {c d}", "name": "k1", "empty": ""}
        self.reads: list[tuple[str, str | None]] = []
        self.calls: list[str] = []

    def get_var(self, name: str, index: str | None) -> str:
        self.reads.append((name, index))
        if index is None:
            if name not in self.vars:
                raise ScriptError(f'can\'t read "{name}": no such variable')
            return self.vars[name]
        if (name, index) not in self.arrays:
            raise ScriptError(f'can\'t read "{name}({index})": no such element in array')
        return self.arrays[(name, index)]

    def eval_script(self, text: str) -> str:
        self.calls.append(text)
        if text in self.scripts:
            return self.scripts[text]
        raise ScriptError(f'invalid command name "{text}"')


def run(text: str, ctx: FakeCtx | None = None) -> str:
    return compile_expr(text).evaluate_str(ctx or FakeCtx())


VALUE_ROWS = [
    # literals and numbers
    ("1", "1"), ("  42  ", "42"), ("0x10", "16"), ("0X1f", "31"), ("0o17", "15"), ("0b101", "5"),
    ("0d19", "19"), ("010", "10"), ("1.", "1.0"), (".5", "0.5"), ("1e3", "1000.0"), ("1E3", "1000.0"),
    ("1.5e+3", "1500.0"), ("1.e5", "100000.0"), ("Inf", "Inf"), ("-Inf", "-Inf"), ("inf", "Inf"),
    ("infinity + 1", "Inf"), ("12345678901234567890123", "12345678901234567890123"),
    ("2**100", "1267650600228229401496703205376"),
    # float formatting like Tcl 8.6
    ("1e16", "10000000000000000.0"), ("1e17", "1e+17"), ("1.5e-7", "1.5e-7"), ("1e-4", "0.0001"),
    ("1e-5", "1e-5"), ("0.1+0.2", "0.30000000000000004"), ("1/3.0", "0.3333333333333333"),
    ("100.0", "100.0"), ("1e100", "1e+100"), ("123456789012345678.0", "1.2345678901234568e+17"),
    ("-0.0", "-0.0"), ("1e308*10", "Inf"), ("-1e308*10", "-Inf"),
    # arithmetic
    ("1+2*3", "7"), ("(1+2)*3", "9"), ("7/2", "3"), ("-7/2", "-4"), ("7/-2", "-4"), ("7%-2", "-1"),
    ("-7%2", "1"), ("10/4.0", "2.5"), ("1.0/0", "Inf"), ("-1/0.0", "-Inf"), ("1/-0.0", "-Inf"),
    ("-9223372036854775808 / -1", "9223372036854775808"), ("2**62*2", "9223372036854775808"),
    ("-2**2", "4"), ("2**3**2", "512"), ("2**-1", "0"), ("1**-1", "1"), ("(-1)**-1", "-1"),
    ("(-1)**-2", "1"), ("(-2)**3", "-8"), ("0**0", "1"), ("2**0.5", "1.4142135623730951"),
    ("2**-1.0", "0.5"), ("2.0**1024", "Inf"), ("10**20", "100000000000000000000"),
    ("2**53+1 == 2.0**53", "0"), ("2**2000 + 1.0", "Inf"),
    ("--3", "3"), ("- 3", "-3"), ("+5", "5"), ("-\"3\"", "-3"), ("1 +2", "3"), ("1--2", "3"),
    # bits and shifts
    ("1<<64", "18446744073709551616"), ("-1>>1", "-1"), ("1>>100", "0"), ("-1>>100", "-1"),
    ("~0", "-1"), ("~5", "-6"), ("5&3", "1"), ("5|3", "7"), ("5^3", "6"),
    ("5 >> 100000000000000000000", "0"),
    # comparisons: numeric when both are numbers, else as strings
    ("1 < 2", "1"), ("1 < 2 < 3", "1"), ("3 > 2 > 1", "0"), ("1 == 1.0", "1"), ('"1.0" == 1', "1"),
    ('"1e2" == 100', "1"), ('"10" < "9"', "0"), ('"10" < "9a"', "1"), ('"a" < 1', "0"),
    ('"abc" < "abd"', "1"), ('"abc" == "abc"', "1"), ('"" == 0', "0"), ("{1 2} == {1 2}", "1"),
    ("1 <= 1", "1"), ("2 >= 3", "0"), ("1 != 2", "1"), ('1.0 == "1.0 "', "1"),
    # string operators: a literal keeps its spelling
    ("0x10 eq 16", "0"), ('"1" eq 1', "1"), ("1 eq 1.0", "0"), ("1.0 eq 1.0", "1"),
    ("1e3 eq 1000.0", "0"), ('"5" eq 5', "1"), ('{abc} eq "abc"', "1"), ('"a" ne "b"', "1"),
    ('"" eq {}', "1"), ("(0x10+0) eq 16", "1"), ("-0x10 eq -16", "1"),
    ('"a" lt "b"', "1"), ('"b" gt "a"', "1"), ('"10" lt "9"', "1"), ('"a" le "a"', "1"), ('"a" ge "b"', "0"),
    # ==, eq, in share one precedence level, left to right (as in Tcl's implementation)
    ('"a" eq "a" == 1', "1"), ('"b" == "b" eq 1', "1"), ("1 == 2 in {0 1}", "1"), ("2 in {1 2} == 1", "1"),
    # list membership
    ('"a b" in "{a b} c"', "1"), ('"x" ni {a b}', "1"), ("3 in 3", "1"), ('"" in ""', "0"),
    ('"" in "{}"', "1"), ("1.0 in {1}", "0"), ("1 in {1 2}", "1"),
    # logic and booleans
    ("1 && 0 || 1", "1"), ("yes && 1", "1"), ("t && 1", "1"), ("tru && 1", "1"), ("of || 0", "0"),
    ("n || 0", "0"), ('"TRUE" && 1', "1"), ("on && yes", "1"), ("true || false", "1"), ("!true", "0"),
    ('!"off"', "1"), ("!!3", "1"), ("!5", "0"), ("!0.0", "1"), ("!2.5", "0"), ("true", "true"),
    ("1 && 2", "1"), ("0.0 || 0", "0"),
    # conditional
    ("1 ? 2 : 3", "2"), ("0 ? 2 : 3", "3"), ("1 ? 2 : 3 ? 4 : 5", "2"), ("0 ? 2 : 0 ? 4 : 5", "5"),
    ('1 ? "a" : "b"', "a"), ("1 ? \"0x10\" : 2", "16"), ("yes ? 1 : 2", "1"),
    # functions
    ("abs(-5)", "5"), ("abs(-3.5)", "3.5"), ('abs("-3")', "3"), ("abs(-0.0)", "0.0"),
    ("abs(-9223372036854775808)", "9223372036854775808"), ("abs (1)", "1"),
    ("int(-3.7)", "-3"), ("int(1e20)", "7766279631452241920"), ("int(2**64+5)", "5"),
    ("int(2**63)", "-9223372036854775808"), ("wide(2**64+5)", "5"), ('int(" 12 ")', "12"),
    ("entier(1e20)", "100000000000000000000"), ("entier(-3.7)", "-3"),
    ("double(1)", "1.0"), ('double("0x10")', "16.0"), ("double(10**400)", "Inf"),
    ("round(2.5)", "3"), ("round(-2.5)", "-3"), ("round(2.4)", "2"), ("round(-0.5)", "-1"),
    ("round(0.49999999999999994)", "0"), ("round(7)", "7"),
    ("floor(2)", "2.0"), ("floor(-3.5)", "-4.0"), ("ceil(-3.5)", "-3.0"), ("ceil(2.1)", "3.0"),
    ("sqrt(4)", "2.0"), ("sqrt(2**100)", "1125899906842624.0"), ("isqrt(17)", "4"),
    ("isqrt(2**100)", "1125899906842624"), ("isqrt(16.0)", "4"), ("isqrt(2.5)", "1"),
    ("pow(2,10)", "1024.0"), ("pow(2,-1)", "0.5"), ("exp(1)", "2.718281828459045"), ("exp(1000)", "Inf"),
    ("log(0)", "-Inf"), ("log10(1000)", "3.0"), ("log(2**2000) > 1386", "1"),
    ("sin(0)", "0.0"), ("cos(0)", "1.0"), ("atan2(1,1)", "0.7853981633974483"), ("hypot(3,4)", "5.0"),
    ("fmod(7,-2)", "1.0"), ("fmod(-7,2)", "-1.0"), ("sinh(1)", "1.1752011936438014"), ("tanh(0)", "0.0"),
    ("cosh(0)", "1.0"), ("tan(1e308)", "-0.5086861259107568"), ("asin(1)", "1.5707963267948966"),
    ("acos(1)", "0.0"), ("atan(0)", "0.0"),
    ("min(1,2.0)", "1"), ("max(1,2.0)", "2.0"), ('max(1,"2")', "2"), ("max(3)", "3"), ("min(4,2,8)", "2"),
    ("bool(2)", "1"), ('bool("yes")', "1"), ("bool(0.0)", "0"), ('bool("no")', "0"),
    ("max(abs(-2), int(3.9)) + round(0.5)", "4"),
    # whitespace and newlines are blanks
    ("1 +\n 2", "3"), ("\t(1)\n", "1"),
]


@pytest.mark.parametrize(("text", "expected"), VALUE_ROWS)
def test_value(text: str, expected: str) -> None:
    assert run(text) == expected


SUBST_ROWS = [
    ("$i", "5"), ("$x", "16"), ("$y", "12"), ("$y + 1", "13"), ("$z", "abc"), ("$f", "1.5"), ("$t", "true"),
    ("${i}", "5"), ("$i * $n", "50"), ("$x + 0", "16"), ("$neg * 2", "-6"), ("$big + 1", "123456789012345678901234567891"),
    ("$a(k1)", "5"), ("$a($k)", "5"), ("$a([name])", "5"), ('$a(k\\ 2)', "6"), ("$a(k 2)", "6"), ("$a()", "7"),
    ("$a($1)", "8"), ("$0 + 1", "3"), ("$ns::v", "9"),
    ('"$i$i"', "55"), ('"a$z"', "aabc"), ('"[seven]x"', "7x"), ('"${i}0" + 1', "51"), ('"\\x41"', "A"),
    ('"a\\$b"', "a$b"), ('"$a($k)"', "5"), ('"cost: $"', "cost: $"), ("{a\\nb}", "a\\nb"), ('"a\\nb"', "a\nb"),
    ("{a\\\n   b}", "a b"), ("[one] + [seven]", "8"), ("[seven]*[seven]", "49"), ("[empty] eq {}", "1"),
    ('"c d" in [list]', "1"), ('$z in $l', "0"), ('"a" in $l', "1"), ("$sp eq {a b}", "1"),
    ("$i == 5 ? \"five\" : \"other\"", "five"), ("$z eq \"abc\" && $i > 2", "1"),
    ("[one] ? [seven] : 0", "7"), ("$e eq {}", "1"), ("$e == 0", "0"), ("[one]", "1"),
]


@pytest.mark.parametrize(("text", "expected"), SUBST_ROWS)
def test_substitution(text: str, expected: str) -> None:
    assert run(text) == expected


def test_var_reads_pass_name_and_index() -> None:
    ctx = FakeCtx()
    compile_expr('$a($k) + $i + "${n}" + $a(k\\ 2)').evaluate(ctx)
    assert ctx.reads == [("k", None), ("a", "k1"), ("i", None), ("n", None), ("a", "k 2")]


def test_brackets_find_their_match_through_nesting_braces_and_quotes() -> None:
    ctx = FakeCtx()
    ctx.scripts.update({"f [g] {]} \"]\" x": "1", "h {a {b}} c": "2", "q \"[r]\"": "3"})
    assert compile_expr('[f [g] {]} "]" x] + [h {a {b}} c] + [q "[r]"]').evaluate(ctx) == 6
    assert ctx.calls == ['f [g] {]} "]" x', "h {a {b}} c", 'q "[r]"']


EVALUATE_TYPES = [
    ("1", int), ("1.0", float), ("$i", int), ("$f", float), ("$z", str), ("true", str),
    ('"12"', int), ("1 < 2", int), ("[one]", int), ("1 ? {a} : 2", str),
]


@pytest.mark.parametrize(("text", "kind"), EVALUATE_TYPES)
def test_evaluate_types(text: str, kind: type) -> None:
    value = compile_expr(text).evaluate(FakeCtx())
    assert type(value) is kind


# (expression, message, offset)
ERROR_ROWS = [
    ("", "empty expression", 0),
    ("   ", "empty expression", 0),
    ("1 +", 'missing operand after "+"', 3),
    ("1 + * 2", 'missing operand after "+"', 4),
    ("* 2", 'missing operand before "*"', 0),
    ("-", 'missing operand after "-"', 1),
    ("1 ? 2 :", 'missing operand after ":"', 7),
    ("max(1,,2)", 'missing operand after ","', 6),
    ('"a" eq', 'missing operand after "eq"', 6),
    ("1 2", 'missing operator before "2"', 2),
    ("abs(1 2)", 'missing operator before "2"', 6),
    ("1 (2)", 'missing operator before "("', 2),
    ("(1", 'unbalanced parentheses: this "(" is never closed', 0),
    ("((1)", 'unbalanced parentheses: this "(" is never closed', 0),
    ("(", 'unbalanced parentheses: this "(" is never closed', 0),
    ("1)", 'unexpected ")" (unbalanced parentheses)', 1),
    (")", 'unexpected ")" (unbalanced parentheses)', 0),
    ("(1))", 'unexpected ")" (unbalanced parentheses)', 3),
    ("()", 'empty subexpression "()"', 0),
    ("abs(1", 'unbalanced parentheses: the "(" of abs() is never closed', 3),
    ("1 ? 2", 'missing ":" for the "?" of a conditional', 5),
    ("1 : 2", 'unexpected ":" without a preceding "?"', 2),
    ("1 ? 2 : 3 : 4", 'unexpected ":" without a preceding "?"', 10),
    ("1, 2", 'unexpected "," outside a function call', 1),
    ("[one", "missing close-bracket", 0),
    ("1 + [a [b]", "missing close-bracket", 4),
    ('"abc', "missing close-quote", 0),
    ("1 + {abc", "missing close-brace", 4),
    ("$", 'missing variable name after "$"', 0),
    ("1 + $ x", 'missing variable name after "$"', 4),
    ("${abc", "missing close-brace for variable name", 1),
    ("$a(k", 'missing ")" to close the array index', 2),
    ("1 + 2 # c", 'invalid character "#"', 6),
    (".", 'invalid character "."', 0),
    ("1 @ 2", 'invalid character "@"', 2),
    ("abc", 'invalid bareword "abc" (a string must be quoted "abc" or braced {abc}, a variable needs $abc)', 0),
    ("1 == o", 'invalid bareword "o" (a string must be quoted "o" or braced {o}, a variable needs $o)', 5),
    ("1e3x", 'invalid bareword "1e3x"', 0),
    ("0x", 'invalid bareword "0x"', 0),
    ("0b2", 'invalid bareword "0b2"', 0),
    ("1.2.3", 'invalid bareword "1.2.3"', 0),
    (".\u0663", 'invalid character "."', 0),
    ("1\u0663", 'invalid bareword "1\u0663"', 0),
    ("foo(1)", 'unknown math function "foo"', 0),
    ("1 + ABS(-5)", 'unknown math function "ABS"', 4),
    ("abs()", 'not enough arguments for math function "abs"', 0),
    ("abs(1,2)", 'too many arguments for math function "abs"', 0),
    ("max()", 'not enough arguments to math function "max"', 0),
    ("rand(1)", 'too many arguments for math function "rand"', 0),
    # run-time errors point at the operator (or the operand / function)
    ("1/0", "divide by zero", 1),
    ("1 % 0", "divide by zero", 2),
    ("7 / -0", "divide by zero", 2),
    ("0/0.0", "domain error: argument not in valid range", 1),
    ("Inf - Inf", "domain error: argument not in valid range", 4),
    ('"abc" + 1', 'can\'t use non-numeric string "abc" as operand of "+"', 6),
    ("$z * 2", 'can\'t use non-numeric string "abc" as operand of "*"', 3),
    ('-"abc"', 'can\'t use non-numeric string "abc" as operand of "-"', 0),
    ('!"abc"', 'can\'t use non-numeric string "abc" as operand of "!"', 0),
    ('"" + 1', 'can\'t use empty string as operand of "+"', 3),
    ("true + 1", 'can\'t use non-numeric string "true" as operand of "+"', 5),
    ("NaN + 1", 'can\'t use non-numeric floating-point value "NaN" as operand of "+"', 4),
    ("7.0 % 2", 'can\'t use floating-point value "7.0" as operand of "%"', 4),
    ("1 << 3.0", 'can\'t use floating-point value "3.0" as operand of "<<"', 2),
    ("~1.5", 'can\'t use floating-point value "1.5" as operand of "~"', 0),
    ("1.5 & 1", 'can\'t use floating-point value "1.5" as operand of "&"', 4),
    ("2 << -1", "negative shift argument", 2),
    ("0 ** -1", "exponentiation of zero by negative power", 2),
    ("0.0 ** -1", "exponentiation of zero by negative power", 4),
    ("(-8) ** (1.0/3)", "domain error: argument not in valid range", 5),
    ('"abc" && 1', 'expected boolean value but got "abc"', 0),
    ('1 && $z', 'expected boolean value but got "abc"', 5),
    ('$z ? 1 : 2', 'expected boolean value but got "abc"', 0),
    ('bool("abc")', 'expected boolean value but got "abc"', 0),
    ("sqrt(-1)", "argument to sqrt(): domain error: argument not in valid range", 0),
    ("log(-1)", "argument to log(): domain error: argument not in valid range", 0),
    ("asin(2)", "argument to asin(): domain error: argument not in valid range", 0),
    ("fmod(1,0)", "argument to fmod(): domain error: argument not in valid range", 0),
    ("isqrt(-1)", "square root of negative argument", 0),
    ('int("abc")', 'argument to int(): expected number but got "abc"', 0),
    ('min("a",1)', 'argument to min(): expected number but got "a"', 0),
    ("srand(1.5)", 'argument to srand(): expected integer but got "1.5"', 0),
    ("round(Inf)", "integer value too large to represent", 0),
    ("int(-Inf)", "integer value too large to represent", 0),
    # growth guards
    ("2**200000", "integer value too large to represent", 1),
    ("10**100000", "integer value too large to represent", 2),
    ("1 << 10000000000000", "integer value too large to represent", 2),
    ("2**100000 * 2**100000", "integer value too large to represent", 10),
    ("9" * 50000, 'number too large: "' + "9" * 40 + '..."', 0),
]


@pytest.mark.parametrize(("text", "message", "offset"), ERROR_ROWS)
def test_error(text: str, message: str, offset: int) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text).evaluate(FakeCtx())
    assert info.value.message == message
    assert info.value.offset == offset
    assert isinstance(info.value, SchedError)


SYNTAX_ERRORS_AT_COMPILE = ["1 +", "(1", "abc", "foo(1)", "abs()", "[x", "1 ? 2", "$"]


@pytest.mark.parametrize("text", SYNTAX_ERRORS_AT_COMPILE)
def test_syntax_errors_are_found_when_compiling(text: str) -> None:
    with pytest.raises(ExprError):
        compile_expr(text)


def test_constant_errors_wait_for_evaluation_of_their_branch() -> None:
    # A constant sub-expression that fails is an error only if it is evaluated.
    assert run("0 ? 1/0 : 2") == "2"
    assert run("1 || 1/0") == "1"
    assert run("0 && sqrt(-1)") == "0"
    with pytest.raises(ExprError, match="divide by zero"):
        run("1 ? 1/0 : 2")


def test_context_errors_pass_through() -> None:
    with pytest.raises(ScriptError, match='can\'t read "nope"'):
        run("$nope + 1")
    with pytest.raises(ScriptError, match="invalid command name"):
        run("[nope]")


def test_bad_list_under_in_is_a_list_error() -> None:
    with pytest.raises(ListError, match="unmatched open brace"):
        run('"a" in "{a b"')


# --- laziness ------------------------------------------------------------------------------

LAZY_ROWS = [
    ("0 && [x]", "0", []),
    ("1 || [x]", "1", []),
    ("$e eq {} || [x]", "1", []),
    ("[one] && [seven]", "1", ["one", "seven"]),
    ("[empty] ne {} && [x]", "0", ["empty"]),
    ("1 ? [seven] : [x]", "7", ["seven"]),
    ("0 ? [x] : [one]", "1", ["one"]),
    ("[one] ? [seven] : [x]", "7", ["one", "seven"]),
    ("0 && [x] || [one]", "1", ["one"]),
    ("1 || [x] && [y]", "1", []),
    ("[one] == 2 && [x] && [y]", "0", ["one"]),
    ("$i > 3 ? ($n > 3 ? [seven] : [x]) : [y]", "7", ["seven"]),
    ("[one] + [seven] * [one]", "8", ["one", "seven", "one"]),
]


@pytest.mark.parametrize(("text", "expected", "calls"), LAZY_ROWS)
def test_only_evaluated_branches_call_the_context(text: str, expected: str, calls: list[str]) -> None:
    ctx = FakeCtx()
    assert compile_expr(text).evaluate_str(ctx) == expected
    assert ctx.calls == calls


def test_lazy_variables() -> None:
    ctx = FakeCtx()
    assert compile_expr("$i == 5 || $nope").evaluate(ctx) == 1
    assert ctx.reads == [("i", None)]


# --- conditions, helpers, formatting -------------------------------------------------------

TRUTH_ROWS = [
    ("1", True), ("0", False), ("$t", True), ('"no"', False), ("2.5", True), ("0.0", False), ("$i > 3", True),
    ('"0x0"', False), ("{off}", False), ("[one]", True),
]


@pytest.mark.parametrize(("text", "expected"), TRUTH_ROWS)
def test_truth(text: str, expected: bool) -> None:
    assert compile_expr(text).truth(FakeCtx()) is expected


def test_truth_of_a_non_boolean() -> None:
    with pytest.raises(ExprError, match='expected boolean value but got "abc"') as info:
        compile_expr("$z").truth(FakeCtx())
    assert info.value.offset == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"), (-12, "-12"), (10**50, "1" + "0" * 50), (1.0, "1.0"), (-0.0, "-0.0"), (0.1, "0.1"),
        (1e16, "10000000000000000.0"), (1e17, "1e+17"), (1.5e-7, "1.5e-7"), (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"), (math.inf, "Inf"), (-math.inf, "-Inf"),
        (math.nan, "NaN"), ("text", "text"), (True, "1"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected  # type: ignore[arg-type]


def test_format_value_of_huge_ints_is_exact() -> None:
    n = 7**30000 + 12345
    text = format_value(n)
    assert len(text) > 4300  # past Python's default int->str limit
    assert text.endswith(str(n % 10**12).zfill(12))
    assert parse_number(text) == n
    assert format_value(-n) == "-" + text
    assert format_value(10**5000) == "1" + "0" * 5000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12), (" 12 ", 12), ("-0x10", -16), ("+5", 5), ("010", 10), ("0b11", 3), ("0o17", 15),
        ("1e500", math.inf), ("-inf", -math.inf), ("Infinity", math.inf), ("1.5", 1.5), (".5", 0.5),
        ("5.", 5.0), ("abc", None), ("", None), ("1 2", None), ("0x", None), ("1_000", None), ("٣", None),
        ("1e", None), ("--1", None),
    ],
)
def test_parse_number(text: str, expected: object) -> None:
    assert parse_number(text) == expected


def test_parse_number_nan() -> None:
    value = parse_number("NaN")
    assert isinstance(value, float) and value != value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True), ("0", False), ("yes", True), ("NO", False), ("t", True), ("fal", False), ("on", True),
        ("of", False), ("o", None), ("abc", None), ("", None), ("0.0", False), ("2", True), ("nan", None),
    ],
)
def test_parse_bool(text: str, expected: bool | None) -> None:
    assert parse_bool(text) is expected


def test_is_true() -> None:
    assert is_true("yes") and not is_true(0) and is_true(2.5)
    with pytest.raises(ExprError, match="expected boolean value"):
        is_true("maybe")


def test_every_function_is_listed_with_its_arity() -> None:
    expected = set(
        "abs int double round floor ceil sqrt pow exp log log10 sin cos tan asin acos atan atan2 "
        "sinh cosh tanh hypot fmod min max bool entier wide rand srand isqrt".split()
    )
    assert set(FUNCTIONS) == expected


def test_rand_and_srand() -> None:
    first = compile_expr("srand(42)").evaluate(FakeCtx())
    assert 0.0 <= first < 1.0
    again = compile_expr("srand(42)").evaluate(FakeCtx())
    assert again == first
    rand = compile_expr("rand()")
    assert not rand.is_constant
    values = {rand.evaluate(FakeCtx()) for _ in range(20)}
    assert len(values) > 1 and all(0.0 <= v < 1.0 for v in values)


# --- compilation: caching, folding, no re-tokenizing -----------------------------------------


def test_compile_is_cached_by_text() -> None:
    assert compile_expr("$i + 1") is compile_expr("$i + 1")
    assert compile_expr("1 + 2 * 3").is_constant
    assert not compile_expr("$i + 1").is_constant


def test_evaluation_never_tokenizes_or_parses_again(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_expr("$i * 2 + [seven] > 10 && $z in {abc def} ? max($i, 3) : -1")

    class Forbidden:
        def __init__(self, *args: object) -> None:
            raise AssertionError("evaluation re-tokenized the expression")

    monkeypatch.setattr(expr_module, "_Lexer", Forbidden)
    monkeypatch.setattr(expr_module, "_Parser", Forbidden)
    ctx = FakeCtx()
    for _ in range(20000):  # speed sanity: this loop is a few tens of ms
        assert compiled.evaluate(ctx) == 5
    assert len(ctx.calls) == 20000


# --- deep nesting and big inputs -------------------------------------------------------------

DEEP_ROWS = [
    "(" * 5000 + "1" + ")" * 5000,
    "-" * 5000 + "1",
    "!" * 5000 + "1",
    "1" + "**1" * 5000,
    "1?" * 3000 + "1" + ":1" * 3000,
    "$a(" * 3000 + ")" * 3000,
    "abs(" * 5000 + "1" + ")" * 5000,
    '"' + "$a(" * 3000,
    "(" * 5000,
]


@pytest.mark.parametrize("text", DEEP_ROWS, ids=lambda t: t[:12])
def test_deep_nesting_is_a_clear_error(text: str) -> None:
    with pytest.raises(ExprError, match=f"nested too deeply \\(more than {MAX_DEPTH} levels\\)"):
        compile_expr(text).evaluate(FakeCtx())


def test_reasonable_nesting_works() -> None:
    assert run("(" * 60 + "1" + ")" * 60) == "1"
    assert run("-" * 60 + "1") == "1"


def test_long_flat_chains_do_not_nest() -> None:
    assert run("+".join(["1"] * 20000)) == "20000"
    assert run(" && ".join(["1"] * 5000)) == "1"
    assert run(" || ".join(["0"] * 5000)) == "0"
    assert run("+".join(["$i"] * 3000)) == "15000"


def test_deeply_nested_brackets_are_one_script() -> None:
    ctx = FakeCtx()
    ctx.scripts["[" * 2000 + "x" + "]" * 2000] = "4"
    assert compile_expr("[" * 2001 + "x" + "]" * 2001).evaluate(ctx) == 4


# --- robustness: nothing but ExprError / ListError ------------------------------------------

_ATOMS = list("0123456789 ()+-*/%<>=!&|^~?:,.eE$[]{}\"\\abcdefxnotruinq\n") + [
    "**", "<<", ">>", "==", "!=", "&&", "||", "eq", "ne", "in", "ni", "lt", "0x", "1e5", "Inf", "NaN",
    "abs(", "max(", "$i", "$z", "$f", "$e", "$l", "$a(k1)", "${i}", "[one]", '"$i"', " ? ", " : ",
    "rand()", "srand(", " yes ", "2**", "**9999", "<<999999", "int(", "round(", "1e308", "isqrt(",
    "$nope", "[nope]", "\u00e9", "\u0663", "\x00",
]

_VALID = [row[0] for row in VALUE_ROWS + SUBST_ROWS]


def _evaluate_safely(text: str) -> None:
    ctx = FakeCtx()
    try:
        compiled = compile_expr(text)
        compiled.evaluate(ctx)
        compiled.truth(ctx)
    except ExprError as e:
        assert e.offset is not None and 0 <= e.offset <= len(text)  # every error points into the text
    except ListError:
        pass  # a malformed list under in/ni; its offset is into the list
    except ScriptError:
        pass  # the fake context's own "no such variable / command"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_ATOMS), max_size=16).map("".join))
def test_random_token_soup_raises_only_expr_errors(text: str) -> None:
    _evaluate_safely(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_text_raises_only_expr_errors(text: str) -> None:
    _evaluate_safely(text)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_VALID))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        piece = draw(st.sampled_from(_ATOMS))
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif action == "replace":
            text = text[:pos] + piece + text[pos + len(piece) :]
        else:
            text = text[:pos] + text[pos:] * 2
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_valid_expressions_raise_only_expr_errors(text: str) -> None:
    _evaluate_safely(text)


# --- against the real thing ----------------------------------------------------------------

_TCLSH = shutil.which("tclsh")
# Rows whose value is the same in Tcl 8.6 (not: leading zeros, lt/gt/le/ge, 0d, NaN handling).
_TCL_SKIP = ("010", "0d19", " lt ", " gt ", " le ", " ge ")


@pytest.mark.skipif(_TCLSH is None, reason="tclsh (Debian package tcl) is not installed")
def test_values_match_tclsh(tmp_path) -> None:
    rows = [(t, v) for t, v in VALUE_ROWS if not any(s in t for s in _TCL_SKIP) and "\n" not in t]
    script = tmp_path / "values.tcl"
    script.write_text(
        "set f [open [lindex $argv 0]]\n"
        "while {[gets $f e] >= 0} { if {[catch {expr $e} r]} { puts ERROR } else { puts $r } }\n"
    )
    source = tmp_path / "exprs.txt"
    source.write_text("\n".join(t for t, _ in rows) + "\n")
    done = subprocess.run([_TCLSH, str(script), str(source)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    outputs = done.stdout.split("\n")
    assert len(rows) > 200 and len(outputs) >= len(rows)
    for (text, ours), theirs in zip(rows, outputs):
        assert ours == theirs, text
