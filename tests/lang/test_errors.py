"""Runtime and parse errors: the exact file, line, column and message, the source line with
its caret, and the chain of macro calls. Every script runs as the file "t.sched"."""

from __future__ import annotations

import io

import pytest

import psched
from psched.lang.errors import ArityError, ExprError, IncompleteError, ParseError, Pos, SchedError, ScriptError
from psched.lang.parser import MAX_NESTING


def error_of(script: str) -> SchedError:
    with pytest.raises(SchedError) as info:
        psched.Interp(stdout=io.StringIO()).eval(script, "t.sched")
    return info.value


def where(err: SchedError) -> tuple[str, int, int]:
    return (err.pos.file, err.pos.line, err.pos.column)


# (script, line, column, message)
RUNTIME = [
    # unknown commands: the command's first character
    ("nosuch 1 2", 1, 1, 'invalid command name "nosuch"'),
    ("set x 1\n\n   nosuch", 3, 4, 'invalid command name "nosuch"'),
    ("set x 1; nosuch", 1, 10, 'invalid command name "nosuch"'),
    ("set x [nosuch]", 1, 8, 'invalid command name "nosuch"'),
    ('set x "a [nosuch]"', 1, 11, 'invalid command name "nosuch"'),
    ("set x [set y [nosuch]]", 1, 15, 'invalid command name "nosuch"'),
    ("$cmd", 1, 1, 'can\'t read "cmd": no such variable'),
    ("set c no; $c", 1, 11, 'invalid command name "no"'),
    ("\tnosuch", 1, 2, 'invalid command name "nosuch"'),
    # unknown variables: the position of the $ reference
    ("set x $nope", 1, 7, 'can\'t read "nope": no such variable'),
    ("set x ${nope}", 1, 7, 'can\'t read "nope": no such variable'),
    ('set x "abc $nope"', 1, 12, 'can\'t read "nope": no such variable'),
    ("set x abc$nope", 1, 10, 'can\'t read "nope": no such variable'),
    ("set a b; set x $a$nope", 1, 18, 'can\'t read "nope": no such variable'),
    ("set x $a(k)", 1, 7, 'can\'t read "a(k)": no such variable'),
    ("set a(k) 1; set x $a($nope)", 1, 22, 'can\'t read "nope": no such variable'),
    ("set a(k) 1; set x $a(j)", 1, 19, 'can\'t read "a(j)": no such element in array'),
    ("set x \\\n    $nope", 2, 5, 'can\'t read "nope": no such variable'),
    ("set x [set y $nope]", 1, 14, 'can\'t read "nope": no such variable'),
    ("set \u00e9 1; set x $\u00e9$nope", 1, 18, 'can\'t read "nope": no such variable'),
    # wrong # args: the command, the usage line in the message
    ("set", 1, 1, 'wrong # args: should be "set varName ?value?"'),
    ("set a b c", 1, 1, 'wrong # args: should be "set varName ?value?"'),
    ("  incr", 1, 3, 'wrong # args: should be "incr varName ?increment?"'),
    ("set x [incr]", 1, 8, 'wrong # args: should be "incr varName ?increment?"'),
    ("while 1", 1, 1, "missing `end` for `while` opened at line 1"),
    ("catch", 1, 1, 'wrong # args: should be "catch script ?resultVarName? ?optionVarName?"'),
    ("rename a", 1, 1, 'wrong # args: should be "rename oldName newName"'),
    ("proc p {a b} {}\np 1", 2, 1, 'wrong # args: should be "p a b"'),
    # command errors: the command
    ("set x 1\nerror boom", 2, 1, "boom"),
    ("incr x abc", 1, 1, 'expected integer but got "abc"'),
    # control flow in the wrong place: where the break is
    ("break", 1, 1, 'invoked "break" outside of a loop'),
    ("set x 1\n  continue", 2, 3, 'invoked "continue" outside of a loop'),
    ("while {1} {\n  break\n}\nif 1 {\n   break\n}", 5, 4, 'invoked "break" outside of a loop'),
    ("proc p {} {\n  set x 1\n  break\n}\np", 3, 3, 'invoked "break" outside of a loop'),
    ("skip", 1, 1, 'invoked "skip" outside of a task.exec macro'),
]


@pytest.mark.parametrize("script, line, column, message", RUNTIME)
def test_runtime_error_positions(script, line, column, message):
    err = error_of(script)
    assert err.message == message
    assert where(err) == ("t.sched", line, column)


def test_arity_error_is_an_arity_error_naming_the_command():
    err = error_of("set")
    assert isinstance(err, ArityError)
    assert err.command == "set"


def test_render_shows_the_line_and_a_caret():
    err = error_of("set x 1\nset y [string length $nope]\n")
    assert err.render() == (
        "t.sched:2:22: can't read \"nope\": no such variable\n"
        "    set y [string length $nope]\n"
        "                         ^"
    )


def test_render_with_tabs_keeps_the_caret_under_the_character():
    err = error_of("\tset x\t$nope")
    lines = err.render().splitlines()
    assert lines[1].index("$") == lines[2].index("^")


# --- inside macros: the chain of calls ---------------------------------------------------------

def test_error_in_macro_chain():
    script = (
        "macro inner a\n"  # 1
        "  set y $a\n"  # 2
        "  nosuch $y\n"  # 3
        "end\n"  # 4
        "macro outer\n"  # 5
        "  inner 1\n"  # 6
        "end\n"  # 7
        "\n"  # 8
        "  outer\n"  # 9
    )
    err = error_of(script)
    assert err.message == 'invalid command name "nosuch"'
    assert where(err) == ("t.sched", 3, 3)
    assert err.trace == [('"inner"', Pos("t.sched", 6, 3)), ('"outer"', Pos("t.sched", 9, 3))]
    assert err.render() == (
        "t.sched:3:3: invalid command name \"nosuch\"\n"
        "      nosuch $y\n"
        "      ^\n"
        "    while executing \"inner\" at t.sched:6:3\n"
        "    while executing \"outer\" at t.sched:9:3"
    )


def test_error_in_proc_chain_and_cmdsub():
    script = "proc a {} {\n  return [b]\n}\nproc b {} {\n  expr {1 / 0}\n}\nset r [a]\n"
    err = error_of(script)
    assert isinstance(err, ExprError)
    assert err.message == 'divide by zero in expression "1 / 0"'
    assert err.trace == [('"b"', Pos("t.sched", 2, 11)), ('"a"', Pos("t.sched", 7, 8))]


def test_macro_arity_error_has_no_trace_line_of_its_own():
    err = error_of("proc p {a} {}\n\np")
    assert where(err) == ("t.sched", 3, 1)
    assert err.trace == []


def test_runaway_recursion_is_an_error_with_a_short_rendering():
    err = error_of("proc f {n} {f [incr n]}\nf 0")
    assert err.message.startswith("too many nested evaluations")
    assert where(err) == ("t.sched", 1, 13)
    lines = err.render().splitlines()
    assert lines[3:] == [
        '    while executing "f" at t.sched:1:13',
        f"    ... the line above {len(err.trace) - 2} more times",
        '    while executing "f" at t.sched:2:1',
    ]


def test_runaway_macro_recursion():
    err = error_of("macro m\n  if 1\n    m\n  end\nend\nm")
    assert err.message.startswith("too many nested evaluations")
    assert where(err)[:2] in (("t.sched", 2), ("t.sched", 3))


# --- inside Tcl-form braced bodies: absolute positions -----------------------------------------

BODIES = [
    ("if {1} {\n  set x 1\n  nosuch\n}", 3, 3, 'invalid command name "nosuch"'),
    ("if {1} {set x 1; nosuch}", 1, 18, 'invalid command name "nosuch"'),
    ("if {0} {} else {\n\n    set x $nope\n}", 3, 11, 'can\'t read "nope": no such variable'),
    ("while {1} {\n  set y $nope\n}", 2, 9, 'can\'t read "nope": no such variable'),
    ("foreach v {1 2} {\n   set y $v$nope\n}", 2, 12, 'can\'t read "nope": no such variable'),
    ("for {set i 0} {$i < 2} {incr i} {\n  nosuch $i\n}", 2, 3, 'invalid command name "nosuch"'),
    ("for {set i 0} {$i < 2} {nosuch} {}", 1, 25, 'invalid command name "nosuch"'),
    ("catch {nosuch} m; error $m", 1, 19, 'invalid command name "nosuch"'),
    ("proc p {} {\n  foreach v {1 2} {\n    if {$v == 2} {\n      set y $nope\n    }\n  }\n}\n\np",
     4, 13, 'can\'t read "nope": no such variable'),
    # a backslash-newline inside a body does not shift the lines after it
    ("if {1} {\n  echo a \\\n     b\n  nosuch\n}", 4, 3, 'invalid command name "nosuch"'),
    ("proc p {} {\n  set x [list a \\\n    b \\\n    c]\n  nosuch\n}\np", 5, 3, 'invalid command name "nosuch"'),
    # blocks inside braced bodies and braced bodies inside blocks
    ("foreach v {1} {\n  if $v == 1\n    nosuch\n  end\n}", 3, 5, 'invalid command name "nosuch"'),
    ("for i 0 1\n  if {$i == 0} {\n      nosuch\n  }\nend", 3, 7, 'invalid command name "nosuch"'),
    ("eval {\n  set a 1\n  nosuch\n}", 3, 3, 'invalid command name "nosuch"'),
]


@pytest.mark.parametrize("script, line, column, message", BODIES)
def test_errors_inside_braced_bodies_have_file_positions(script, line, column, message):
    err = error_of(script)
    assert err.message == message
    assert where(err) == ("t.sched", line, column)
    assert err.source_line == script.splitlines()[line - 1]


def test_source_line_of_a_body_on_the_first_line_keeps_its_columns():
    err = error_of("if {1} {set x 1; nosuch}")
    assert err.render().splitlines()[1:] == ["    if {1} {set x 1; nosuch}", "                     ^"]


# --- strings run as scripts --------------------------------------------------------------------

def test_error_in_eval_of_a_string_points_into_the_string_and_the_eval():
    err = error_of('set x 1\nif {$x > 0} {\n  eval "set y 1\\nnosuch 2"\n}')
    assert err.message == 'invalid command name "nosuch"'
    assert where(err) == ("<eval>", 2, 1)
    assert err.trace == [('"eval"', Pos("t.sched", 3, 3))]
    assert err.render().splitlines()[1] == "    nosuch 2"


def test_error_in_a_proc_body_given_as_a_string():
    err = error_of('proc p {} "set a 1; nosuch"\np')
    assert where(err) == ("<eval>", 1, 10)
    assert err.trace == [('"p"', Pos("t.sched", 2, 1))]


# --- expr errors: the character in the expression ----------------------------------------------

EXPR = [
    ("expr {1 +}", 1, 10, 'missing operand after "+" in expression "1 +"'),
    ("expr {1 / 0}", 1, 9, 'divide by zero in expression "1 / 0"'),
    ("set y [expr {2 * (3}]", 1, 18, 'unbalanced parentheses: this "(" is never closed in expression "2 * (3"'),
    ("set x 1\nif {$x +} {echo}", 2, 9, 'missing operand after "+" in expression "$x +"'),
    ("set x 1\nwhile {$x <} {}", 2, 12, 'missing operand after "<" in expression "$x <"'),
    ("for {set i 0} {$i <} {incr i} {}", 1, 20, 'missing operand after "<" in expression "$i <"'),
    ("set x 1\nif $x +\n  echo\nend", 2, 8, 'missing operand after "+" in expression "$x +"'),
    ("set x 1\nif 0\nelif $x ==\nend", 3, 11, 'missing operand after "==" in expression "$x =="'),
    ("set x 1\nwhile $x *\nend", 2, 11, 'missing operand after "*" in expression "$x *"'),
    ("if {1 +\n   } {}", 2, 4, 'missing operand after "+" in expression "1 +    "'),
    ("expr 1 +", 1, 6, 'missing operand after "+" in expression "1 +"'),  # not braced: the first word
    ("expr {$nope + 1}", 1, 7, 'can\'t read "nope": no such variable'),
    ("expr {[nosuch] + 1}", 1, 8, 'invalid command name "nosuch"'),
    ("if {[string length $nope] > 0} {}", 1, 20, 'can\'t read "nope": no such variable'),
    ("set x 1\nif [nosuch $x] > 1\nend", 2, 5, 'invalid command name "nosuch"'),
    ("set i 0\nwhile {$i < 3 &&\n       [nosuch]} {}", 3, 9, 'invalid command name "nosuch"'),
    ("proc p {} {\n  return [expr {2 * [nosuch]}]\n}\np", 2, 22, 'invalid command name "nosuch"'),
    ("expr {[set a 1] + [nosuch]}", 1, 20, 'invalid command name "nosuch"'),
    ("set a x\nif $a\nend", 2, 4, 'expected boolean value but got "x" in expression "$a"'),
]


@pytest.mark.parametrize("script, line, column, message", EXPR)
def test_expr_error_positions(script, line, column, message):
    err = error_of(script)
    assert err.message == message
    assert where(err) == ("t.sched", line, column)


# --- parse errors ------------------------------------------------------------------------------

PARSE = [
    ("set x {abc", IncompleteError, 1, 7, "missing close-brace (opened at line 1, column 7)"),
    ('set x "abc', IncompleteError, 1, 7, "missing close-quote (opened at line 1, column 7)"),
    ("set x [abc", IncompleteError, 1, 7, "missing close-bracket `]` (opened at line 1, column 7)"),
    ("set x 1\nmacro m\n  set y 2\n", IncompleteError, 2, 1, "missing `end` for `macro` opened at line 2"),
    ("set x {a}b", ParseError, 1, 10, "extra characters after close-brace"),
    ('set x "a"b', ParseError, 1, 10, "extra characters after close-quote"),
    ("set x ]", ParseError, 1, 7,
     "unmatched `]` (a close-bracket with no `[` before it; write \\] for a literal one)"),
    ("set x 1\nend", ParseError, 2, 1, "`end` without an open block to close"),
]


@pytest.mark.parametrize("script, cls, line, column, message", PARSE)
def test_parse_error_positions(script, cls, line, column, message):
    err = error_of(script)
    assert type(err) is cls
    assert err.message == message
    assert where(err) == ("t.sched", line, column)


def test_parse_error_in_a_body_is_reported_when_it_runs_with_file_position():
    err = error_of("set x 1\nif {1} {\n  set y {a}b\n}")
    assert type(err) is ParseError
    assert err.message == "extra characters after close-brace"
    assert where(err) == ("t.sched", 3, 12)


# --- deep nesting: an error, never a crash -----------------------------------------------------

DEEP = 3000

DEEP_SCRIPTS = {
    "brackets": "[" * DEEP + "set x 1" + "]" * DEEP,
    "brackets in a word": "set x " + "[set y " * DEEP + "1" + "]" * DEEP,
    "brackets in quotes": 'set x "[' * DEEP + ']"' * DEEP,
    "braces": "set x " + "{" * DEEP + "}" * DEEP,
    "array indexes": "set x $a(" * DEEP + ")" * DEEP,
    "block ifs": "if 1\n" * DEEP + "end\n" * DEEP,
    "tcl ifs": "if 1 {" * DEEP + "}" * DEEP,
    "tcl ifs, braced conditions": "if {1} {" * DEEP + "}" * DEEP,
    "evals": "eval {" * DEEP + "}" * DEEP,
    "whiles": "while 1\n" * DEEP + "break\n" + "end\n" * DEEP,
    "mixed": "[if 1\n" * DEEP + "\nend\n]" * DEEP,
}


@pytest.mark.parametrize("name", list(DEEP_SCRIPTS))
def test_deep_nesting_is_a_parse_error(name):
    err = error_of(DEEP_SCRIPTS[name])
    assert isinstance(err, ParseError)
    assert "nested too deeply" in err.message
    assert f"more than {MAX_NESTING} levels" in err.message


@pytest.mark.parametrize("name", ["brackets", "braces", "block ifs", "array indexes"])
def test_unclosed_deep_nesting_is_an_error(name):
    text = DEEP_SCRIPTS[name]
    err = error_of(text[: len(text) // 2])
    assert isinstance(err, ParseError)


def test_nesting_just_under_the_limit_works():
    depth = 50
    assert psched.Interp(stdout=io.StringIO()).eval("set x " + "[set y " * depth + "7" + "]" * depth) == "7"
    assert psched.Interp(stdout=io.StringIO()).eval("if 1\n" * depth + "set r deep\n" + "end\n" * depth) == "deep"
    assert psched.Interp(stdout=io.StringIO()).eval("if 1 {" * depth + "set r tcl" + "}" * depth) == "tcl"


def test_deep_runtime_nesting_of_tcl_bodies_is_an_error():
    # each body is parsed when it runs: the nesting happens at run time
    script = "proc nest {n} {if {$n > 0} {eval [list if 1 [list nest [expr {$n - 1}]]]}}; nest 5000"
    err = error_of(script)
    assert isinstance(err, ScriptError)
    assert err.message.startswith("too many nested evaluations")
