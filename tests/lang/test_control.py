"""Control flow: if/elif/else, while, for, foreach in block and Tcl form, break and continue in
every loop, return, catch and its codes, error. Tables of (script, expected result)."""

from __future__ import annotations

import io

import pytest

import psched
from psched.lang.errors import IncompleteError, ParseError, SchedError, ScriptError


def run(script: str) -> str:
    return psched.Interp(stdout=io.StringIO()).eval(script)


IF = [
    # block form
    ("set x 3\nif $x > 2\n  set r big\nend\nset r", "big"),
    ("set x 1\nset r none\nif $x > 2\n  set r big\nend\nset r", "none"),
    ("set x 3\nif $x > 2\n  set r big\nelif $x > 1\n  set r mid\nelse\n  set r small\nend", "big"),
    ("set x 2\nif $x > 2\n  set r big\nelif $x > 1\n  set r mid\nelse\n  set r small\nend", "mid"),
    ("set x 0\nif $x > 2\n  set r big\nelif $x > 1\n  set r mid\nelse\n  set r small\nend", "small"),
    ("set x 0\nif $x > 2\n  set r big\nelseif $x == 0\n  set r zero\nend", "zero"),
    ("if {1 > 2}\n  set r a\nelse\n  set r b\nend", "b"),
    ("if 0\n  set r a\nend", ""),  # no branch taken: empty result
    ("set s abc\nif $s eq \"abc\"\n  set r same\nend", "same"),
    ("set s {}\nif $s eq {}\n  set r empty\nend", "empty"),
    ("if [string length abc] == 3\n  set r len3\nend", "len3"),
    ("if true\n  set r t\nend", "t"),
    ("if no\n  set r t\nelse\n  set r f\nend", "f"),
    ("if 1\n  if 0\n    set r inner\n  else\n    set r inner-else\n  end\nend", "inner-else"),
    ("set x 5\nif $x > 1 &&\\\n   $x < 10\n  set r in\nend", "in"),
    # Tcl form
    ("if 1 {set r a}", "a"),
    ("if 0 {set r a}", ""),
    ("if {1} {set r a} else {set r b}", "a"),
    ("if {0} {set r a} else {set r b}", "b"),
    ("if {0} then {set r a} elseif 1 {set r c} else {set r b}", "c"),
    ("if {0} {set r a} elseif {0} {set r c} elseif {1} then {set r d}", "d"),
    ("if {0} {set r a} elif {1} {set r e}", "e"),
    ("set x 1; if $x {set r v}", "v"),
    ("if [expr {2 > 1}] then {set r w}", "w"),
    ("set i 0; while 1 {incr i; if {$i >= 3} break}; set i", "3"),  # bare body word
    ("if {1} {\n  set a 1\n  set b 2\n}", "2"),
    ("if {1} then {set r t} else {set r f}", "t"),
    ("if {0} {set r t} {set r f}", "f"),  # Tcl allows `else` to be left out
]


@pytest.mark.parametrize("script, expected", IF)
def test_if(script, expected):
    assert run(script) == expected


@pytest.mark.parametrize("script, message", [
    ("if", 'wrong # args: should be "if expr ?then? body ?arg ...?"'),
    ("if {1}", "missing `end` for `if` opened at line 1"),
    ("macro m {} {set r 1}", "missing `end` for `macro` opened at line 1; `macro` has no one-line form: its body"
                             " goes on the lines after its header (Tcl's `proc name {params} {body}` is one)"),
    ("task t\n  command true\n  task.exit {puts $stdout}\nend",
     "missing `end` for `task` opened at line 1; the `task.exit` at line 3 took it: `task.exit` has no one-line form:"
     " its selector goes on its line (`task.exit 0`, `task.exit default`), its body on the lines after, then `end`"),
    ("if {1} then", 'wrong # args: no script following "1" argument'),
    ("if {0} {set r a} else", 'wrong # args: no script following "else" argument'),
    ("if {0} {set r a} elseif", 'wrong # args: no expression after "if" argument'),
    ("if {0} {} else {} extra", 'wrong # args: extra words after "else" clause in "if" command'),
    ('if {"abc"} {}', 'expected boolean value but got "abc" in expression "\"abc\""'),
    ('set s abc\nif $s\nend', 'expected boolean value but got "abc" in expression "$s"'),
    ("if {abc} {}", 'invalid bareword "abc" (a string must be quoted "abc" or braced {abc}, a variable needs $abc)'
                    ' in expression "abc"'),
    ("else\n", "`else` outside an `if` block"),
    ("elif 1\n", "`elif` outside an `if` block"),
    ("if 1\nelse\nelse\nend", "`else` after `else` in the `if` block opened at line 1"),
    ("if 1\nelse\nelif 1\nend", "`elif` after `else` in the `if` block opened at line 1"),
    ("if 1\nelse x\nend", "`else` takes no words after it"),
    ("if 1\nelif\nend", "`elif` needs a condition"),
    ("end", "`end` without an open block to close"),
])
def test_if_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert info.value.message == message


WHILE = [
    ("set i 0\nwhile $i < 5\n  incr i\nend\nset i", "5"),
    ("set i 0\nwhile {$i < 5}\n  incr i\nend\nset i", "5"),
    ("set i 0; while {$i < 5} {incr i}; set i", "5"),
    ("set i 0; while {$i < 5} {incr i}", ""),  # the result of while is empty
    ("set i 10; while {$i < 5} {incr i}; set i", "10"),
    ("set i 0; set r {}; while {$i < 6} {incr i; if {$i % 2} continue; append r $i}; set r", "246"),
    ("set i 0; while 1 {incr i; if {$i == 4} break}; set i", "4"),
    ("set i 0\nset r {}\nwhile 1\n  incr i\n  if $i == 2\n    continue\n  end\n  if $i > 4\n    break\n  end\n"
     "  append r $i\nend\nset r", "134"),
    ("set i 0; while {$i < 3} {incr i; set j 0; while 1 {incr j; if {$j == 2} break}}; list $i $j", "3 2"),
]


@pytest.mark.parametrize("script, expected", WHILE)
def test_while(script, expected):
    assert run(script) == expected


FOR = [
    # block form: FIRST <= VAR < LAST
    ("set r {}\nfor i 0 5\n  append r $i\nend\nset r", "01234"),
    ("set r {}\nfor i 0 0\n  append r $i\nend\nset r", ""),
    ("set r {}\nfor i 3 1\n  append r $i\nend\nset r", ""),
    ("set r {}\nfor i 0 10 3\n  append r $i,\nend\nset r", "0,3,6,9,"),
    ("set r {}\nfor i 5 0 -2\n  append r $i,\nend\nset r", "5,3,1,"),
    ("set r {}\nfor i 0 -3 -1\n  append r $i,\nend\nset r", "0,-1,-2,"),
    ("set r {}\nfor i 0 1 0.25\n  append r $i,\nend\nset r", "0,0.25,0.5,0.75,"),
    ("set n 0\nfor i 0 1 0.1\n  incr n\nend\nset n", "10"),  # no drift: 10 rounds, not 11
    ("set r {}\nfor i 1.5 3\n  append r $i,\nend\nset r", "1.5,2.5,"),
    ("set n 4\nset r {}\nfor i 1 $n\n  append r $i\nend\nset r", "123"),
    ("set r {}\nfor i 0 [expr {2 + 1}]\n  append r $i\nend\nset r", "012"),
    ("for i 0 3\nend\nset i", "2"),  # the variable keeps the last value
    ("set r {}\nfor i 0 10\n  if $i == 2\n    continue\n  end\n  if $i == 5\n    break\n  end\n  append r $i\nend\nset r",
     "0134"),
    ("set r {}\nfor i 0 3\n  for j 0 2\n    append r $i$j,\n  end\nend\nset r", "00,01,10,11,20,21,"),
    ("set r {}\nfor i 0 3\n  set i 100\n  append r x\nend\nset r", "xxx"),  # rounds are counted, not read back
    # Tcl form
    ("set r {}; for {set i 0} {$i < 3} {incr i} {append r $i}; set r", "012"),
    ("set r {}; for {set i 10} {$i > 0} {incr i -3} {append r $i,}; set r", "10,7,4,1,"),
    ("set r {}; for {set i 0} {$i < 10} {incr i} {if {$i == 2} continue; if {$i == 4} break; append r $i}; set r",
     "013"),
    ("for {set i 0} {$i < 3} {incr i} {}; set i", "3"),
    ("set r {}; for {} {[string length $r] < 3} {} {append r x}; set r", "xxx"),
]


@pytest.mark.parametrize("script, expected", FOR)
def test_for(script, expected):
    assert run(script) == expected


@pytest.mark.parametrize("script, message", [
    ("for i 0 10 0\nend", "for: STEP may not be 0"),
    ("for i a 10\nend", 'expected number but got "a"'),
    ("for i 0 NaN\nend", 'expected number but got "NaN"'),
    ("for {set i 0} {$i < 3} {incr i}", 'wrong # args: should be "for start test next body"'),
])
def test_for_errors(script, message):
    with pytest.raises(ScriptError) as info:
        run(script)
    assert info.value.message == message


FOREACH = [
    # block form
    ("set r {}\nforeach v {a b c}\n  append r $v\nend\nset r", "abc"),
    ("set l {x y}\nset r {}\nforeach v $l\n  append r <$v>\nend\nset r", "<x><y>"),
    ("set r {}\nforeach v {}\n  append r $v\nend\nset r", ""),
    ("set r {}\nforeach {a b} {1 2 3 4 5}\n  append r \"$a-$b,\"\nend\nset r", "1-2,3-4,5-,"),
    ("set r {}\nforeach a {1 2} b {x y z}\n  append r $a$b,\nend\nset r", "1x,2y,z,"),
    ("set r {}\nforeach v {{a b} c}\n  append r [llength $v]\nend\nset r", "21"),
    ("set r {}\nforeach v {1 2 3 4}\n  if $v == 2\n    continue\n  end\n  if $v == 4\n    break\n  end\n  append r $v\nend\n"
     "set r", "13"),
    ("foreach v {a b c}\nend\nset v", "c"),
    ("set r {}\nforeach a {1} b {}\n  append r $a$b.\nend\nset r", "1."),  # odd # of words: block form
    # Tcl form
    ("set r {}; foreach v {a b c} {append r $v}; set r", "abc"),
    ("set r {}; foreach {a b} {1 2 3 4} {append r $b$a}; set r", "2143"),
    ("set r {}; foreach a {1 2} b {x y z} {append r $a$b,}; set r", "1x,2y,z,"),
    ("set r {}; foreach v {1 2 3 4} {if {$v == 2} continue; if {$v == 4} break; append r $v}; set r", "13"),
    ("set r {}; set body {append r $v}; foreach v {p q} $body; set r", "pq"),
    ("foreach v {a b} {}", ""),
]


@pytest.mark.parametrize("script, expected", FOREACH)
def test_foreach(script, expected):
    assert run(script) == expected


@pytest.mark.parametrize("script, message", [
    ("foreach {} {1 2} {}", "foreach varlist is empty"),
    ("foreach a", 'wrong # args: should be "foreach varList list ?varList list ...? body"'),
    ("foreach {} {1}\nend", "foreach varlist is empty"),  # odd: the block form
    ("foreach v {1 2} {}\nend", "`end` without an open block to close"),  # even: the Tcl form
    ("foreach v {a {b} c", "missing close-brace (opened at line 1, column 11)"),
])
def test_foreach_errors(script, message):
    with pytest.raises((ScriptError, ParseError)) as info:
        run(script)
    assert info.value.message == message


# --- return, error, catch -----------------------------------------------------------------------

CATCH = [
    ("catch {set x 1}", "0"),
    ("catch {set x 1} r; set r", "1"),
    ("catch {error boom}", "1"),
    ("catch {error boom} r; set r", "boom"),
    ("catch {nosuch} r; set r", 'invalid command name "nosuch"'),
    ("catch {set} r; set r", 'wrong # args: should be "set varName ?value?"'),
    ("catch {expr {1 +}} r; set r", 'missing operand after "+" in expression "1 +"'),
    ("catch {return 5}", "2"),
    ("catch {return 5} r; set r", "5"),
    ("catch {break}", "3"),
    ("catch {continue}", "4"),
    ("catch {}", "0"),
    ("catch {error a} r; catch {set y 2} r; set r", "2"),
    ("set s {error computed}; catch $s r; set r", "computed"),
    # catch restores the frame: an error deep in procs and macros leaves us where we were
    ("proc p {} {set local 1; error deep}; catch p; info exists local", "0"),
    ("proc p {} {error inner}; proc q {} {p}; catch {q} r; set r", "inner"),
    ("macro m\n  local t 1\n  error m-err\nend\ncatch m r; list $r [info exists t]", "m-err 0"),
    # a loop continues after a caught error
    ("set n 0; foreach v {1 x 3} {if {[catch {incr n $v}]} {append bad $v}}; list $n $bad", "4 x"),
    # break inside catch inside a loop is seen by catch, not by the loop
    ("set i 0; while {$i < 3} {incr i; catch break}; set i", "3"),
    # return code of a macro body's return through catch
    ("macro m\n  return v\nend\ncatch m r; set r", "v"),
]


@pytest.mark.parametrize("script, expected", CATCH)
def test_catch(script, expected):
    assert run(script) == expected


RETURN = [
    ("return", ""),
    ("return 7", "7"),
    ("set x 1\nreturn $x\nset x 2", "1"),
    ("proc p {} {foreach v {1 2 3} {if {$v == 2} {return $v}}; return none}; p", "2"),
    ("proc p {} {while 1 {return out}}; p", "out"),
    ("macro m\n  for i 0 10\n    if $i == 3\n      return $i\n    end\n  end\nend\nm", "3"),
    ("proc p {} {set r [catch {return inner} v]; return $r:$v}; p", "2:inner"),
]


@pytest.mark.parametrize("script, expected", RETURN)
def test_return(script, expected):
    assert run(script) == expected


def test_error_raises_script_error_with_message():
    with pytest.raises(ScriptError) as info:
        run("error {it broke}")
    assert info.value.message == "it broke"
    assert info.value.command == "error"


@pytest.mark.parametrize("script, message", [
    ("break", 'invoked "break" outside of a loop'),
    ("continue", 'invoked "continue" outside of a loop'),
    ("skip", 'invoked "skip" outside of a task.exec macro'),
    ("proc p {} {break}; p", 'invoked "break" outside of a loop'),
    ("macro m\n  continue\nend\nm", 'invoked "continue" outside of a loop'),
    ("if 1 {break}", 'invoked "break" outside of a loop'),
])
def test_control_flow_outside_loops(script, message):
    with pytest.raises(ScriptError) as info:
        run(script)
    assert info.value.message == message


def test_block_inside_tcl_body_and_tcl_inside_block():
    script = (
        "set r {}\n"
        "foreach v {1 2 3} {\n"
        "  if $v == 2\n"
        "    append r two\n"
        "  else\n"
        "    append r $v\n"
        "  end\n"
        "}\n"
        "for i 0 2\n"
        "  if {$i} {append r !} else {append r ?}\n"
        "end\n"
        "set r"
    )
    assert run(script) == "1two3?!"


def test_missing_end_is_incomplete():
    for opener, script in [("if", "if 1\n  set x 1\n"), ("while", "while 1\n"), ("for", "for i 0 3\n"),
                           ("foreach", "foreach v {1 2}\n"), ("macro", "macro m\n  set x 1\n")]:
        with pytest.raises(IncompleteError) as info:
            run(script)
        assert info.value.opener == opener
        assert info.value.message == f"missing `end` for `{opener}` opened at line 1"


def test_loop_bodies_are_parsed_once():
    # a Tcl-form body is parsed when first run and cached on its word
    from psched.lang import parser

    interp = psched.Interp(stdout=io.StringIO())
    calls = []
    real = parser.parse

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    parser.parse = counting
    try:
        interp.eval("set n 0; for {set i 0} {$i < 50} {incr i} {incr n}")
    finally:
        parser.parse = real
    assert interp.eval("set n") == "50"
    assert calls.count("incr n") == 1
