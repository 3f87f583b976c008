"""The Tcl commands of issue 21, one table per command: what they return, and their errors
with message and position (file t.sched, line, column). Each script runs as a sched script in
a fresh interpreter; test_sched_runs_them_as_a_program runs one file through the real `sched`.

Covers return options, error/throw/catch/try, upvar/uplevel, switch (and its block), apply,
dict, scan, {*} and errorInfo/errorCode. tests/lang/test_tclcompat.py compares the same
commands with tclsh."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import psched
from psched.lang.errors import ParseError, SchedError


def run(script: str) -> tuple[str, str]:
    """(the script's result, what it printed)."""
    out = io.StringIO()
    result = psched.Interp(stdout=out).eval(script, "t.sched")
    return result, out.getvalue()


def error_of(script: str) -> SchedError:
    with pytest.raises(SchedError) as info:
        psched.Interp(stdout=io.StringIO()).eval(script, "t.sched")
    return info.value


RESULTS = {
    "return": [
        ("proc p {} {return -code break}; set r {}; foreach i {1 2} {lappend r $i; p}; set r", "1"),
        ("proc p {} {return -code continue}; set r {}; foreach i {1 2} {p; lappend r $i}; set r", ""),
        ("proc in {} {return -level 2 out}; proc mid {} {in; return no}; mid", "out"),
        ("list [catch {return -level 0 -code error oops} m] $m", "1 oops"),
        ("proc p {} {return -code 7 seven}; list [catch p m] $m", "7 seven"),
        ("catch {return -options {-code break -x y} v} m o; list $m $o", "v {-x y -code 3 -level 1}"),
        ("return -level 0 here", "here"),
    ],
    "error/throw/catch": [
        ("catch {error msg info CODE} m o; list $m [dict get $o -errorcode] [dict get $o -errorinfo]", "msg CODE info"),
        ("catch {throw {A B} boom} m o; list $m [dict get $o -errorcode] $errorCode", "boom {A B} {A B}"),
        ("catch {set a 1} m o; set o", "-code 0 -level 0"),
        ("catch {expr {1/0}} m o; dict get $o -errorcode", "ARITH DIVZERO {divide by zero}"),
        ("catch {error boom} m; lindex [split $errorInfo \\n] 0", "boom"),
        ("catch {set x \"unclosed}", "1"),
    ],
    "try": [
        ("try {error bad} on error {m o} {list $m [dict get $o -code]}", "bad 1"),
        ("try {throw {X Y} no} trap {X} m {set m}", "no"),
        ("try {throw {X Y} no} trap {Z} m {set m} on error m {list other $m}", "other no"),
        ("set log {}; try {lappend log body} finally {lappend log fin}; set log", "body fin"),
        ("try {error a} on error {} - on break {} {set r fell}", "fell"),
        ("list [catch {try {error a} finally {set f 1}} m] $m $f", "1 a 1"),
        ("try {set r 1} on ok v {list ok $v}", "ok 1"),
    ],
    "upvar/uplevel": [
        ("proc add {v n} {upvar 1 $v x; incr x $n}; set c 1; add c 4; set c", "5"),
        ("proc g {} {upvar #0 gl x; set x g}; proc h {} g; h; set gl", "g"),
        ("proc p {} {uplevel 1 {set u 3}}; p; set u", "3"),
        ("proc a {} {set v a; b}; proc b {} {uplevel 1 {set v}}; a", "a"),
        ("proc c {} {upvar #0 cnt(k) e; incr e}; c; c; set cnt(k)", "2"),
        ("macro m\n  upvar 1 mv x\n  set x fromMacro\nend\nproc p {} {m; set mv}\np", "fromMacro"),
        ("proc lv {} {info level}; proc lv2 {} lv; list [lv] [lv2]", "1 2"),
    ],
    "switch": [
        ("switch b {a {set r A} b {set r B}}", "B"),
        ("switch -glob abc a* {set r glob} default {set r none}", "glob"),
        ("switch -regexp -matchvar m -indexvar i abcd {(b)(c) {list $m $i}}", "{bc b c} {{1 2} {1 1} {2 2}}"),
        ("switch x a - x - y {set r shared}", "shared"),
        ("switch -nocase ABC abc {set r yes}", "yes"),
        ("switch -- -v {-v {set r dash}}", "dash"),
        ("switch z a {set r a}", ""),
        ("switch -glob main.c\ncase *.h *.c\n  set r C\ndefault\n  set r other\nend", "C"),
        ("switch q\ncase a\n  set r a\nend", ""),
    ],
    "apply": [
        ("apply {{x {y 2}} {expr {$x * $y}}} 5", "10"),
        ("apply {args {llength $args}} a b c", "3"),
        ("apply {{} {set loc 1; info exists loc}}", "1"),
    ],
    "dict": [
        ("dict create a 1 b 2 a 3", "a 3 b 2"),
        ("dict get {a {b {c deep}}} a b c", "deep"),
        ("set d {}; dict set d x y 1; dict set d x z 2; set d", "x {y 1 z 2}"),
        ("set d {a 1 b 2}; dict unset d a; set d", "b 2"),
        ("list [dict exists {a {b 1}} a b] [dict exists {a 1} z]", "1 0"),
        ("dict keys {ab 1 b 2 ac 3} a*", "ab ac"),
        ("set r {}; dict for {k v} {a 1 b 2} {lappend r $v$k}; set r", "1a 2b"),
        ("dict map {k v} {a 1 b 2} {expr {$v * 2}}", "a 2 b 4"),
        ("dict filter {a 1 b 2 c 3} script {k v} {expr {$v > 1}}", "b 2 c 3"),
        ("dict merge {a 1} {a 2 b 3}", "a 2 b 3"),
        ("set d {}; dict incr d n 3; dict append d s x y; dict lappend d l p q; set d", "n 3 s xy l {p q}"),
        ("set d {a 1 b 2}; dict update d a x {incr x 10}; set d", "a 11 b 2"),
        ("set d {a 1 b 2}; dict with d {set a [expr {$a + $b}]}; set d", "a 3 b 2"),
        ("dict size {a 1 b 2}", "2"),
    ],
    "scan": [
        ("scan {12 abc 3.5} {%d %s %f}", "12 abc 3.5"),
        ("list [scan {10:20} {%d:%d} h m] $h $m", "2 10 20"),
        ("scan abc %d", "{}"),
        ("scan {} %d v", "-1"),
        ("scan 0x1f %x", "31"),
        ("scan 12abc {%d%n%c}", "12 2 97"),
        ("scan {a-b} {%[a-z]-%s}", "a b"),
        ("scan {12 34} {%2$d %1$d}", "34 12"),
    ],
    "{*}": [
        ("set l {a b}; list x {*}$l y", "x a b y"),
        ("list {*}{} {*}[list p {q r}]", "p {q r}"),
        ("set c {string repeat}; {*}$c ab 2", "abab"),
    ],
}

ERRORS = {
    # (script, line, column, message)
    "return": [
        ("return -code foo", 1, 1, 'bad completion code "foo": must be ok, error, return, break, continue, or an integer'),
        ("set x 1\nreturn -level -1", 2, 1, 'bad -level value: expected non-negative integer but got "-1"'),
    ],
    "error/throw/catch": [
        ("error", 1, 1, 'wrong # args: should be "error message ?errorInfo? ?errorCode?"'),
        ("throw {} boom", 1, 1, "type must be non-empty list"),
        ("  throw {A} msg", 1, 3, "msg"),
        ("catch", 1, 1, 'wrong # args: should be "catch script ?resultVarName? ?optionVarName?"'),
    ],
    "try": [
        ("try {error boom} foo", 1, 1, 'bad handler type "foo": must be finally, on, or trap'),
        ("try {error boom} on nosuch {} {}", 1, 1, 'bad completion code "nosuch": must be ok, error, return, break, continue, or an integer'),
        ("try {error boom} on error", 1, 1, 'wrong # args to on clause: must be "... on code variableList script"'),
        ("try {\n  set x 1\n  nosuch\n} on ok {} {}", 3, 3, 'invalid command name "nosuch"'),
        ("try {error a} on error {} {error b}", 1, 28, "b"),
    ],
    "upvar/uplevel": [
        ("upvar 1 x y", 1, 1, 'bad level "1"'),
        ("upvar x", 1, 1, 'wrong # args: should be "upvar ?level? otherVar localVar ?otherVar localVar ...?"'),
        ("proc p {} {uplevel 3 {set x}}\np", 1, 12, 'bad level "3"'),
        ("proc p {} {upvar x a(b)}\np", 1, 12, 'bad variable name "a(b)": can\'t create a scalar variable that looks like an array element'),
        ("proc p {} {uplevel {nosuch}}\np", 1, 21, 'invalid command name "nosuch"'),
    ],
    "switch": [
        ("switch a {a}", 1, 1, "extra switch pattern with no body"),
        ("switch a {a -}", 1, 1, 'no body specified for pattern "a"'),
        ("switch -foo a {a b}", 1, 1, 'bad option "-foo": must be -exact, -glob, -indexvar, -matchvar, -nocase, -regexp, or --'),
        ("switch -glob -exact a {a b}", 1, 1, 'bad option "-exact": -glob option already found'),
        ("switch -matchvar m a {a b}", 1, 1, "-matchvar option requires -regexp option"),
        ("switch x {x {\n  nosuch\n}}", 2, 3, 'invalid command name "nosuch"'),
    ],
    "apply": [
        ("apply {{x y} {}} 1", 1, 1, 'wrong # args: should be "apply lambdaExpr x y"'),
        ("apply {x} 1", 1, 1, 'can\'t interpret "x" as a lambda expression'),
    ],
    "dict": [
        ("dict get {a 1} b", 1, 1, 'key "b" not known in dictionary'),
        ("dict get {a 1 b}", 1, 1, "missing value to go with key"),
        ("dict create a", 1, 1, 'wrong # args: should be "dict create ?key value ...?"'),
        ("dict for {k} {a 1} {}", 1, 1, "must have exactly two variable names"),
        ("dict filter {a 1} nope", 1, 1, 'bad filterType "nope": must be key, script, or value'),
        ("set x 1\n  dict incr", 2, 3, 'wrong # args: should be "dict incr dictVarName key ?increment?"'),
    ],
    "scan": [
        ("scan abc %q", 1, 1, 'bad scan conversion character "q"'),
        ("scan {1 2} {%d %d} a", 1, 1, "different numbers of variable names and field specifiers"),
        ("scan a {%1c}", 1, 1, "field width may not be specified in %c conversion"),
        ("scan a {%[a}", 1, 1, "unmatched [ in format string"),
    ],
}


def _cases(table: dict) -> list:
    return [pytest.param(*case, id=f"{name}: {case[0][:40]}") for name, cases in table.items() for case in cases]


@pytest.mark.parametrize("script, expected", _cases(RESULTS))
def test_result(script, expected):
    assert run(script)[0] == expected


@pytest.mark.parametrize("script, line, column, message", _cases(ERRORS))
def test_error_message_and_position(script, line, column, message):
    err = error_of(script)
    assert err.message == message
    assert (err.pos.file, err.pos.line, err.pos.column) == ("t.sched", line, column)


BLOCK_ERRORS = [
    ("switch $x\n  echo first\ncase a\n  echo a\nend", 2, 3, "this line comes before the first of them"),
    ("try\n  echo\nfinally\n  echo\non error m\nend", 5, 1, "`on` after `finally` in the `try` block opened at line 2"),
    ("switch $x\ncase\nend", 2, 1, "`case` needs at least one pattern"),
    ("try\n  echo\non error\nend", 3, 1, "`on` takes a completion code and a list of variable names"),
    ("switch $x\ndefault more\nend", 2, 9, "`default` takes no words after it"),
]


@pytest.mark.parametrize("script, line, column, fragment", BLOCK_ERRORS)
def test_block_clauses_are_checked_when_read(script, line, column, fragment):
    """A bad clause line stops the script before any of it runs (nothing printed)."""
    out = io.StringIO()
    with pytest.raises(ParseError) as info:
        psched.Interp(stdout=out).eval("echo ran\n" + script, "t.sched")
    err = info.value
    assert fragment in err.message
    assert (err.pos.line, err.pos.column) == (line + 1, column)
    assert out.getvalue() == ""


def test_clause_words_outside_their_block_are_commands():
    result, printed = run("proc on {a b} {echo on:$a$b}\nproc default {} {echo dflt}\non 1 2\ndefault")
    assert printed == "on:12\ndflt\n"


def test_errorinfo_names_the_command_and_the_calls():
    interp = psched.Interp(stdout=io.StringIO())
    interp.eval("proc inner {} {error deep}\nproc outer {} {inner}\ncatch outer", "t.sched")
    assert interp.get_var("errorInfo") == 'deep\n    while executing\n"error deep"\n    invoked from within\n"inner"\n    invoked from within\n"outer"'
    assert interp.get_var("errorCode") == "NONE"


def test_help_and_usage_come_from_one_declaration():
    interp = psched.Interp(stdout=io.StringIO())
    for name in ("switch", "try", "throw", "upvar", "uplevel", "apply", "scan", "dict"):
        assert interp.eval(f"help {name}").startswith(name), name
    assert "dict for {keyVarName valueVarName} dictionary body" in interp.eval("help dict")


SCRIPT = """\
proc bump {varName} { upvar 1 $varName v; incr v }
set n 0
bump n
set d [dict create n $n]
switch -glob [dict get $d n] {
    1 { puts one }
    default { puts other }
}
try {
    throw {APP FAIL} "it failed"
} trap {APP} {msg} {
    puts "trapped: $msg"
}
puts [scan "7 8" "%d %d"]
puts [apply {{a b} {expr {$a * $b}}} {*}{6 7}]
dict get $d nosuch
"""


def test_sched_runs_them_as_a_program(tmp_path):
    """The same commands through the real `sched` program: output, then the error with its
    position, source line and caret on stderr, exit status 1."""
    path = tmp_path / "tcl.sched"
    path.write_text(SCRIPT)
    sched = Path(sys.executable).parent / "sched"
    done = subprocess.run([str(sched), str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout == "one\ntrapped: it failed\n7 8\n42\n"
    assert done.returncode == 1
    assert done.stderr.splitlines()[:3] == [
        f'{path}:16:1: key "nosuch" not known in dictionary',
        "    dict get $d nosuch",
        "    ^",
    ]
