"""Scripts run as closures compiled once per node (psched.lang.compile): what they keep of the
interpreter's general path. Redefining or renaming a command while a compiled loop runs, the
compiled forms of for/while/if/expr/incr/set/switch/upvar and ensemble subcommands against
the commands they stand for (results, errors and their positions, errorInfo), Ctrl-C in a
tight loop, the depth limit, and one node run by two interpreters that define a name apart."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import psched
from psched.lang.errors import Interrupted, SchedError
from pressctrlc import PressCtrlC


def run(script: str) -> str:
    return psched.Interp(stdout=io.StringIO()).eval(script, "t.sched")


def error_of(script: str) -> SchedError:
    with pytest.raises(SchedError) as info:
        psched.Interp(stdout=io.StringIO()).eval(script, "t.sched")
    return info.value


# --- definitions change while compiled code runs ---------------------------------------------------

REDEFINED = [
    # a proc redefined inside the loop that calls it: the next call finds the new body
    ("proc f {} {return 1}; set r {}; for {set i 0} {$i < 3} {incr i} {lappend r [f]; proc f {} {return 2}}; set r",
     "1 2 2"),
    # a built-in with a compiled form (expr) replaced by a proc in the middle of a loop, then restored
    ("set r {}; foreach i {1 2 3} {lappend r [expr {$i * 10}]; if {$i == 1} {rename expr real_expr; proc expr args {return X}}}; "
     "rename expr {}; rename real_expr expr; lappend r [expr {2 + 2}]", "10 X X 4"),
    # `incr`, `set` and `switch` replaced while a proc that uses them is defined
    ("proc p {} {set n 1; incr n; switch -glob -- $n {2 {return two} default {return other}}}; set a [p]; "
     "proc incr {name args} {upvar 1 $name v; set v 5}; list $a [p]", "two other"),
    ("proc p {} {set x 7}; set a [p]; rename set real_set; proc set {n v} {return \"set $n\"}; "
     "real_set b [p]; rename set {}; rename real_set set; list $a $b", "7 {set x}"),
    # an ensemble subcommand found once, but `dict` itself renamed away and back
    ("set d {}; proc p {} {global d; dict incr d a}; p; rename dict dict2; catch p m; rename dict2 dict; p; list $m $d",
     '{invalid command name "dict"} {a 2}'),
    # a command renamed while a loop that calls it runs: the loop's next round finds none
    ("proc g {} {return g}; set r {}; catch {foreach i {1 2} {lappend r [g]; rename g h}} m; list $r $m",
     'g {invalid command name "g"}'),
    # the count of words is checked again when the name finds another definition
    ("proc g {a} {return $a}; set r {}; foreach i {1 2} {lappend r [catch {g x} m] $m; proc g {a b} {}}; set r",
     '0 x 1 {wrong # args: should be "g a b"}'),
    # a command not defined at first, then defined
    ("set r {}; foreach i {1 2} {lappend r [catch {later 5} m] $m; proc later {x} {return ok$x}}; set r",
     '1 {invalid command name "later"} 0 ok5'),
    # `for` itself replaced: the compiled loop is not used any more
    ("proc run {} {set n 0; for {set i 0} {$i < 3} {incr i} {incr n}; return $n}; set a [run]; "
     "rename for real_for; proc for {a b c d} {return replaced}; list $a [run]", "3 0"),
]


@pytest.mark.parametrize("script, expected", REDEFINED)
def test_a_command_redefined_while_running_is_found_at_its_next_call(script, expected):
    assert run(script) == expected


def test_for_replaced_is_seen_by_the_next_call():
    # (`run`'s own `for` command finds the proc from its next call on)
    interp = psched.Interp(stdout=io.StringIO())
    interp.eval("proc run {} {set n 0; for {set i 0} {$i < 3} {incr i} {incr n}; return $n}")
    assert interp.eval("run") == "3"
    interp.eval("rename for real_for; proc for {a b c d} {return replaced}")
    assert interp.eval("proc run2 {} {for {set i 0} {$i < 3} {incr i} {}}; run2") == "replaced"


def test_one_node_in_two_interpreters_follows_each_ones_definitions():
    # `eval` of the same text shares one parsed (and compiled) script between interpreters
    a, b = psched.Interp(stdout=io.StringIO()), psched.Interp(stdout=io.StringIO())
    b.eval("rename expr real_expr; proc expr {args} {return from-b}")
    assert a.eval("eval {expr {1 + 1}}") == "2"
    assert b.eval("eval {expr {1 + 1}}") == "from-b"
    assert a.eval("eval {expr {1 + 1}}") == "2"


# --- compiled forms give what their commands give ----------------------------------------------------

SAME = [
    ("set x 007; incr x", "8"),
    ("incr nosuch", "1"),
    ("set x 5; incr x -7", "-2"),
    ("set x -3; incr x", "-2"),
    ("set x 99999999999999999999999; incr x", "100000000000000000000000"),
    ("set x { 4 }; incr x", "5"),
    ("set x 0x10; incr x", "17"),
    ("proc p {} {set a(1) 4; incr a(1)}; p", "5"),
    ("set x 5; list [expr {$x < 10}] [expr {$x + 1}] [expr {$x - 10}] [expr {$x % 3}] [expr {$x % -3}] [expr {$x == 5}]",
     "1 6 -5 2 -1 1"),
    ("set x abc; list [expr {$x < 10}] [expr {$x != 10}]", "0 1"),  # strings compare as strings
    ("set x 5.5; list [expr {$x < 10}] [expr {$x + 1}]", "1 6.5"),
    ("set x 0x10; expr {$x + 1}", "17"),
    ("set x 12345678901234567890123; expr {$x + 1}", "12345678901234567890124"),
    ("set i 0; while {$i < 5} {incr i}; set i", "5"),
    ("set r {}; for {set i 0} {$i < 6} {incr i} {if {$i == 1} continue; if {$i == 4} break; lappend r $i}; set r", "0 2 3"),
    ("set r {}; for {set i 0} {$i < 5} {incr i; if {$i == 2} break} {lappend r $i}; set r", "0 1"),
    ("set x 3; if {$x > 5} {set r big} elseif {$x > 1} then {set r mid} else {set r small}", "mid"),
    ("if {0} {set r a}", ""),
    ("proc s {k} {switch -glob -- $k {a* - b* {return ab} c? {return c} default {return other}}}; list [s apple] [s bee] [s cx] [s cxx]",
     "ab ab c other"),
    ("proc s {k} {switch -exact -nocase $k {ONE {return 1} default {return d}}}; list [s one] [s two]", "1 d"),
    ("proc s {k} {switch -regexp -matchvar m -- $k {{(a)(b)} {return $m} default {return no}}}; s xab", "ab a b"),
    ("proc s {k} {switch $k {x {return x}}}; s y", ""),
    ("proc f {name} {upvar 1 $name v; incr v}; set n 1; f n; f n; set n", "3"),
    ("set d {b 1}; dict incr d a; dict incr d b 5; set d", "b 6 a 1"),
    ("string length abc", "3"),
    ("string len abcd", "4"),  # a prefix: the general way
]


@pytest.mark.parametrize("script, expected", SAME)
def test_compiled_forms_give_what_the_commands_give(script, expected):
    assert run(script) == expected


ERRORS = [
    ("set x abc; incr x", 'expected integer but got "abc"', 1, 12),
    ("proc p {} {\n  set x 1.5\n  incr x\n}\np", 'expected integer but got "1.5"', 3, 3),
    ("set x abc\nexpr {$x + 1}", 'can\'t use non-numeric string "abc" as operand of "+" in expression "$x + 1"', 2, 10),
    ("set x 1\nexpr {$x % 0}", 'divide by zero in expression "$x % 0"', 2, 10),
    ("for {set i 0} {$i < nope} {incr i} {}", 'invalid bareword "nope"', 1, 21),
    ("proc p {} {\n  for {set i 0} {$i < 3} {incr i} {\n    error boom\n  }\n}\np", "boom", 3, 5),
    ("while {$undefined} {}", 'can\'t read "undefined": no such variable', 1, 8),
    ("if {1 +} {}", 'missing operand after "+" in expression "1 +"', 1, 8),
    ("if {1} {\n  nosuch\n}", 'invalid command name "nosuch"', 2, 3),
    ("proc s {k} {\n  switch -glob -- $k {\n    a* { error inbody }\n  }\n}\ns a", "inbody", 3, 10),
    ("upvar 1 x y", 'bad level "1"', 1, 1),
    ("set d {a}; dict incr d a", "missing value to go with key", 1, 12),
]


@pytest.mark.parametrize("script, message, line, column", ERRORS)
def test_errors_of_compiled_forms_keep_their_messages_and_positions(script, message, line, column):
    err = error_of(script)
    assert message in err.message
    assert (err.pos.file, err.pos.line, err.pos.column) == ("t.sched", line, column)


def test_error_info_through_compiled_procs_and_loops():
    interp = psched.Interp(stdout=io.StringIO())
    script = "proc inner {} {\n  error deep\n}\nproc outer {} {\n  foreach i {1} {\n    inner\n  }\n}\ncatch outer m o\nset errorInfo"
    info = interp.eval(script, "t.sched")
    assert info.splitlines()[0] == "deep"
    assert '"inner"' in info and '"outer"' in info
    assert interp.eval("dict get $o -errorcode") == "NONE"


# --- Ctrl-C and the depth limit --------------------------------------------------------------------


@pytest.mark.parametrize("script", [
    "for {set i 0} {1} {incr i} {}",
    "proc spin {} {while 1 {incr n}}; spin",
    "proc f {k} {switch -glob -- $k {a* {dict incr ::d a}}}; while 1 {f a}",
    "while 1 {if {1} {set x [expr {1 + 1}]}}",
])
def test_ctrl_c_stops_a_tight_compiled_loop(script):
    interp = PressCtrlC(1000)
    with pytest.raises(Interrupted):
        interp.eval(script)
    assert interp.left <= 0


def test_runaway_recursion_still_stops():
    err = error_of("proc r {} {r}; r")
    assert "too many nested evaluations" in err.message
    err = error_of("proc r {n} {if {$n > 0} {r [expr {$n - 1}]}}; r 100000")
    assert "too many nested evaluations" in err.message


# --- through the real program --------------------------------------------------------------------

PROGRAM = """\
proc tally {dictVar key} {
    upvar 1 $dictVar d
    switch -glob -- $key {
        a* { dict incr d a }
        default { dict incr d other }
    }
}
set counts {}
for {set i 0} {$i < 1000} {incr i} { tally counts [lindex {apple berry} [expr {$i % 2}]] }
puts $counts
proc expr {args} { return 7 }
for {set i 0} {$i < 1} {incr i} { puts [expr {$i + 1}] }
rename expr {}
for {set i 0} {$i < 3} {incr i} { puts [expr {1 + 1}] }
"""


def test_sched_program_runs_compiled_loops(tmp_path):
    """A compiled loop through the real `sched` program: results, a built-in replaced while the
    program runs, and the error (position, source line, caret) when the command is gone."""
    path = tmp_path / "loop.sched"
    path.write_text(PROGRAM)
    sched = Path(sys.executable).parent / "sched"
    done = subprocess.run([str(sched), str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout == "a 500 other 500\n7\n"
    assert done.returncode == 1
    assert done.stderr.splitlines()[:3] == [
        f'{path}:14:41: invalid command name "expr"',
        "    for {set i 0} {$i < 3} {incr i} { puts [expr {1 + 1}] }",
        "                                            ^",
    ]
