"""`array` and `info` (psched.lang.commands.info)."""

import os

import pytest

import psched
from psched.lang.errors import SchedError


def run(script):
    return psched.Interp().eval(script)


CASES = [
    ("array set a {x 1 y 2}; array get a", "x 1 y 2"),
    ("array set a {x 1 y 2 xz 3}; array get a x*", "x 1 xz 3"),
    ("array set a {x 1 y 2}; array names a", "x y"),
    ("array set a {x 1 y 2 xz 3}; array names a x*", "x xz"),
    ("array set a {x 1 y 2 xz 3}; array names a -exact x", "x"),
    ("array set a {x 1 y 2 xz 3}; array names a -regexp {^x.}", "xz"),
    ("array set a {x 1}; array exists a", "1"),
    ("set s 1; array exists s", "0"),
    ("array exists nosuch", "0"),
    ("array set a {x 1 y 2}; array size a", "2"),
    ("array size nosuch", "0"),
    ("array get nosuch", ""),
    ("array set a {}; array exists a", "1"),
    ("set a(k) v; array set a {j w}; list $a(k) $a(j)", "v w"),
    ("array set a {x 1 y 2 z 3}; array unset a y; array names a", "x z"),
    ("array set a {x 1 y 2}; array unset a; info exists a", "0"),
    ("array unset nosuch", ""),
    ("array set a {{two words} 1}; set {a(two words)}", "1"),
    # info
    ("set x 1; info exists x", "1"),
    ("info exists nosuch", "0"),
    ("set a(k) 1; list [info exists a(k)] [info exists a(j)]", "1 0"),
    ("info commands lsor*", "lsort"),
    ("info commands queue*", "queuedelete queueinit queuelist queuenames queuepop queuepush queuesize"),
    ("proc p {} {}; info commands p", "p"),
    ("set zz1 1; set zz2 2; info vars zz*", "zz1 zz2"),
    ("set zz1 1; proc p {} {set zlocal 1; info vars z*}; p", "zlocal"),
    ("set zz1 1; proc p {} {global zz1; set zlocal 1; info locals}; p", "zlocal"),
    ("set zz1 1; proc p {} {info globals zz*}; p", "zz1"),
    ("proc p1 {} {}; proc p2 {} {}; info procs p*", "p1 p2"),
    ("macro m1\nend\ninfo procs m*", "m1"),
    ("proc p {a {b 2} args} {return $a}; info args p", "a b args"),
    ("proc p {a {b 2} args} {return $a}; info body p", "return $a"),
    ("proc p {a {b 2}} {}; list [info default p b d] $d [info default p a e] $e", "1 2 0 {}"),
    ("macro m x\n  echo hi $x\n  if {1} {\n    echo in\n  }\nend\ninfo body m", "  echo hi $x\n  if {1} {\n    echo in\n  }"),
    ("macro m x\n  echo a\n  if 1\n    echo b\n  end\nend\ninfo body m", "  echo a\n  if 1\n    echo b\n  end"),
    ("macro m x y\nend\ninfo args m", "x y"),
    ("info level", "0"),
    ("proc lv {} {info level}; proc lv2 {} {lv}; lv2", "2"),
    ("proc lv {a} {info level 0}; lv 7", "lv 7"),
    ("proc lv {} {info level -1}; proc up {x} {lv}; up 3", "up 3"),
    ("macro lv\n  info level\nend\nlv", "1"),
    ("info script", ""),
]


@pytest.mark.parametrize("script,expected", CASES)
def test_array_and_info(script, expected):
    assert run(script) == expected


def test_env_array_is_the_environment(monkeypatch):
    monkeypatch.setenv("PSCHED_TEST_VAR", "hello")
    interp = psched.Interp()
    assert interp.eval("array get env PSCHED_TEST_V*") == "PSCHED_TEST_VAR hello"
    interp.eval("array set env {PSCHED_TEST_VAR2 x}")
    assert os.environ["PSCHED_TEST_VAR2"] == "x"
    monkeypatch.delenv("PSCHED_TEST_VAR2")


def test_info_script_while_sourcing(tmp_path):
    path = tmp_path / "s.sched"
    path.write_text("info script\n")
    assert psched.Interp().eval_file(str(path)) == str(path)


ERRORS = [
    ("array set a {x}", "list must have an even number of elements"),
    ("set s 1; array set s {x 1}", "variable isn't array"),
    ("array names a -bogus x", 'bad option "-bogus"'),
    ("array bogus a", 'unknown subcommand "bogus"'),
    ("info body nosuch", '"nosuch" isn\'t a procedure'),
    ("info args set", '"set" isn\'t a procedure'),
    ("proc p {a} {}; info default p z v", 'procedure "p" doesn\'t have an argument "z"'),
    ("info level 1", 'bad level "1"'),
    ("info exists", "wrong # args"),
]


@pytest.mark.parametrize("script,message", ERRORS)
def test_errors(script, message):
    with pytest.raises(SchedError) as info:
        run(script)
    assert message in info.value.message
