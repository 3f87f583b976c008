"""The interpreter and the core commands: substitution, variables, arrays, env, macros, procs,
eval/subst/rename/help, output and source. Tables of (script, expected result), each run in a
fresh Interp."""

from __future__ import annotations

import io
import os

import pytest

import psched
from psched.lang.errors import ArityError, SchedError, ScriptError
from pressctrlc import PressCtrlC


def run(script: str) -> str:
    return psched.Interp(stdout=io.StringIO()).eval(script)


def run_out(script: str) -> tuple[str, str]:
    out = io.StringIO()
    result = psched.Interp(stdout=out).eval(script)
    return result, out.getvalue()


# --- substitution ------------------------------------------------------------------------------

SUBSTITUTION = [
    # words and quoting
    ("set x hello", "hello"),
    ('set x "a b  c"', "a b  c"),
    ("set x {a b  c}", "a b  c"),
    ("set x {a {b c} d}", "a {b c} d"),
    ("set x {}", ""),
    ('set x ""', ""),
    ("set x {$y [z] \\n}", "$y [z] \\n"),  # braces: no substitution at all
    ('set y 1; set x "a$y"', "a1"),
    ('set y 1; set x "a[set y]b"', "a1b"),
    ('set x "a\\tb"', "a\tb"),
    ('set x "\\"q\\""', '"q"'),
    ('set x "a{b"', "a{b"),  # braces inside quotes are plain
    ("set x a\"b", 'a"b'),  # a quote inside a bare word is plain
    ("set x a{b}", "a{b}"),  # braces inside a bare word are plain
    # variables
    ("set a 1; set b $a", "1"),
    ("set a 1; set b ${a}x", "1x"),
    ("set {a b} 2; set c ${a b}", "2"),
    ("set a 1; set b $a.txt", "1.txt"),
    ("set a 1; set b $a$a", "11"),
    ("set a 1; set b x$a-y", "x1-y"),
    ("set x $", "$"),  # a lone $ is literal
    ("set x a$", "a$"),
    ("set x $-", "$-"),
    ('set x "$"', "$"),
    ("set ::g 5; set g", "5"),
    ("set g 5; set x $::g", "5"),
    # arrays
    ("set a(k) v; set a(k)", "v"),
    ("set a(k) v; set x $a(k)", "v"),
    ("set a(k) v; set i k; set x $a($i)", "v"),
    ("set a(1,2) v; set i 1; set j 2; set x $a($i,$j)", "v"),
    ("set a(xk) v; set i k; set x $a(x$i)", "v"),
    ("set a(k) v; set x $a([set y k])", "v"),
    ("set a() empty; set x $a()", "empty"),
    ("set a(k) v; set x ${a(k)}", "v"),  # ${a(k)}: the name a(k), read as an array element
    ("set a(k) 1; set b(1) deep; set x $b($a(k))", "deep"),
    ('set a(k) v; set x "<$a(k)>"', "<v>"),
    # command substitution
    ("set x [set y 3]", "3"),
    ("set x [set y 3][set z 4]", "34"),
    ("set x a[set y 3]b", "a3b"),
    ("set x [set y [set z 5]]", "5"),
    ("set x []", ""),
    ("set x [set y 1; set z 2]", "2"),
    ("set x [\nset y 1\nset z 2\n]", "2"),
    ("set x [# a comment\nset z 2]", "2"),
    # backslashes
    ("set x a\\ b", "a b"),
    ("set x \\$y", "$y"),
    ("set x \\[y\\]", "[y]"),
    ("set x \\{", "{"),
    ("set x \\}", "}"),
    ('set x \\"', '"'),
    ("set x \\\\", "\\"),
    ("set x a\\nb", "a\nb"),
    ("set x \\x41", "A"),
    ("set x \\u00e9", "\u00e9"),
    ("set x \\101", "A"),
    ("set x \\q", "q"),  # an unknown escape is the character
    # continuation lines
    ("set x \\\n    5", "5"),
    ("set x [set y \\\n  6]", "6"),
    ('set x "a\\\n     b"', "a b"),  # in quotes the continuation is one space
    ("set x {a\\\n   b}", "a b"),  # in braces too
    ("set x 1 ;# comment", "1"),
    ("# comment \\\n continued\nset x 2", "2"),
    # separators
    ("set x 1; set y 2", "2"),
    ("set x 1\n\n\n   set y 3\n", "3"),
    ("\tset\tx\t4", "4"),
    ("", ""),
    ("   \n  \n", ""),
    ("# only a comment", ""),
    ("set x #notacomment", "#notacomment"),
    ("set x 1\r\nset y $x\r\n", "1"),  # CRLF line ends
    ("set x 1\r\nif $x == 1\r\n  set y ok\r\nend\r\n", "ok"),
    ("set x\ra", "a"),  # a carriage return is a blank
    # unicode
    ("set x h\u00e9llo; set x", "h\u00e9llo"),
    ("set \u00e9t\u00e9 \u2603; set \u00e9t\u00e9", "\u2603"),
]


@pytest.mark.parametrize("script, expected", SUBSTITUTION)
def test_substitution(script, expected):
    assert run(script) == expected


def test_command_substitution_word_stays_one_word():
    # the result of [..] or $x is never split into words again
    assert run("set v {a b c}; set x $v") == "a b c"
    assert run("set x [set y {1 2 3}]") == "1 2 3"


# --- variables ---------------------------------------------------------------------------------

VARIABLES = [
    ("set x 5", "5"),
    ("set x 5; set x", "5"),
    ("set x 5; set x 6; set x", "6"),
    ("set x 5; unset x; info exists x", "0"),
    ("set x 1; set y 2; unset x y; list [info exists x] [info exists y]", "0 0"),
    ("unset -nocomplain nothere", ""),
    ("unset", ""),
    ("set a(1) x; set a(2) y; unset a(1); list [info exists a(1)] [info exists a(2)]", "0 1"),
    ("set a(1) x; unset a; info exists a", "0"),
    ("incr x", "1"),
    ("set x 5; incr x", "6"),
    ("set x 5; incr x 10", "15"),
    ("set x 5; incr x -7", "-2"),
    ("set x 5; incr x; set x", "6"),
    ("set x 08; incr x", "9"),  # a leading zero is decimal, as in expr
    ("set x 0x10; incr x", "17"),
    ("set x { 4 }; incr x", "5"),
    ("set x 99999999999999999999; incr x", "100000000000000000000"),
    ("set a(k) 1; incr a(k) 2", "3"),
    ("incr a(new)", "1"),
    ("set x {}; append x", ""),
    ("append x a", "a"),
    ("append x a b c", "abc"),
    ("set x 1; append x 2 3; set x", "123"),
    ("set a(k) x; append a(k) y; set a(k)", "xy"),
]


@pytest.mark.parametrize("script, expected", VARIABLES)
def test_variables(script, expected):
    assert run(script) == expected


@pytest.mark.parametrize("script, message", [
    ("set nope", 'can\'t read "nope": no such variable'),
    ("set a(1) x; set a", 'can\'t read "a": variable is array'),
    ("set a 1; set a(1)", 'can\'t read "a(1)": variable isn\'t array'),
    ("set a(1) x; set a(2)", 'can\'t read "a(2)": no such element in array'),
    ("set a 1; set a(1) 2", 'can\'t set "a(1)": variable isn\'t array'),
    ("set a(1) 1; set a 2", 'can\'t set "a": variable is array'),
    ("unset nope", 'can\'t unset "nope": no such variable'),
    ("set a(1) x; unset a(2)", 'can\'t unset "a(2)": no such element in array'),
    ("set x abc; incr x", 'expected integer but got "abc"'),
    ("incr x 1.5", 'expected integer but got "1.5"'),
    ("incr x 2.0", 'expected integer but got "2.0"'),
    ("set x 1.0; incr x", 'expected integer but got "1.0"'),
    ("local x", "local: only inside a macro or proc"),
])
def test_variable_errors(script, message):
    with pytest.raises(ScriptError) as info:
        run(script)
    assert info.value.message == message


def test_interp_variable_api():
    interp = psched.Interp(stdout=io.StringIO())
    interp.set_var("a", "1")
    interp.set_var("b", "2", index="k")
    interp.set_var("c(x)", "3")
    assert interp.get_var("a") == "1"
    assert interp.get_var("b", "k") == "2"
    assert interp.get_var("b(k)") == "2"
    assert interp.get_var("c", "x") == "3"
    assert interp.var_exists("b(k)") and not interp.var_exists("b(z)") and not interp.var_exists("zz")
    assert interp.array("b") == {"k": "2"}
    assert interp.array("a") is None
    assert interp.array("fresh", create=True) == {}
    assert interp.eval("set fresh(1) one; set fresh(1)") == "one"
    interp.unset_var("a")
    assert not interp.var_exists("a")
    interp.unset_var("a", nocomplain=True)
    assert {"b", "c", "env"} <= set(interp.visible_vars())


# --- the env array -----------------------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("PSCHED_TEST_VAR", raising=False)
    monkeypatch.setenv("PSCHED_TEST_SEEN", "from-os")
    yield
    os.environ.pop("PSCHED_TEST_VAR", None)  # monkeypatch restores the rest


def test_env_reads_the_process_environment(clean_env):
    assert run("set env(PSCHED_TEST_SEEN)") == "from-os"
    assert run("set x $env(PSCHED_TEST_SEEN)") == "from-os"
    assert run('set x "<$env(PSCHED_TEST_SEEN)>"') == "<from-os>"


def test_env_writes_the_process_environment(clean_env):
    run("set env(PSCHED_TEST_VAR) written")
    assert os.environ["PSCHED_TEST_VAR"] == "written"
    run("append env(PSCHED_TEST_VAR) +more")
    assert os.environ["PSCHED_TEST_VAR"] == "written+more"
    run("unset env(PSCHED_TEST_VAR)")
    assert "PSCHED_TEST_VAR" not in os.environ
    with pytest.raises(ScriptError, match='can\'t read "env\\(PSCHED_TEST_VAR\\)": no such element in array'):
        run("set env(PSCHED_TEST_VAR)")


def test_env_seen_from_procs_and_macros(clean_env):
    assert run("proc p {} {global env; return $env(PSCHED_TEST_SEEN)}; p") == "from-os"
    assert run("macro m\n  return $env(PSCHED_TEST_SEEN)\nend\nm") == "from-os"
    assert run("proc p {} {return $::env(PSCHED_TEST_SEEN)}; p") == "from-os"


# --- global, macros, procs ---------------------------------------------------------------------

MACROS = [
    # $0 is the count, $1..$N the words
    ("macro m\n  return $0\nend\nm", "0"),
    ("macro m\n  return $0\nend\nm a b c", "3"),
    ("macro m\n  return \"$1-$2\"\nend\nm a b", "a-b"),
    ("macro m\n  return $3\nend\nm a b c", "c"),
    ("macro m\n  return [info exists 2]\nend\nm a", "0"),
    # named params, missing ones are empty
    ("macro m a b\n  return \"<$a><$b>\"\nend\nm x", "<x><>"),
    ("macro m a b\n  return \"$a $b $1 $2 $0\"\nend\nm x y", "x y x y 2"),
    ("macro m a\n  return \"$a $0 $2\"\nend\nm x y", "x 2 y"),  # extra words still in $N
    # variables are global unless `local`; params and $N are local
    ("macro m\n  set g 5\nend\nm; set g", "5"),
    ("set g 1\nmacro m\n  incr g\nend\nm; m; set g", "3"),
    ("set g 1\nmacro m\n  local g\n  set g 9\nend\nm; set g", "1"),
    ("macro m\n  local t 7\n  return $t\nend\nm", "7"),
    ("macro m\n  local t 7\nend\nm; info exists t", "0"),
    ("set a outer\nmacro m a\n  set a inner\nend\nm x; set a", "outer"),
    ("set 1 outer\nmacro m\n  set 1 inner\nend\nm x; set 1", "outer"),
    ("macro m\n  global g\n  set g 2\nend\nm; set g", "2"),
    ("macro m\n  set arr(k) v\nend\nm; set arr(k)", "v"),
    # return ends the macro; the value of a macro without return is its last command's
    ("macro m\n  return early\n  set never 1\nend\nm", "early"),
    ("macro m\n  return early\n  set never 1\nend\nm; info exists never", "0"),
    ("macro m\n  set x last\nend\nm", "last"),
    ("macro m\nend\nm", ""),
    ("macro m\n  return\nend\nm", ""),
    # macros call macros, recursion
    ("macro inner\n  return \"in:$1\"\nend\nmacro outer\n  return [inner $1]\nend\nouter z", "in:z"),
    ("macro f n\n  if $n <= 1\n    return 1\n  end\n  return [expr {$n * [f [expr {$n - 1}]]}]\nend\nf 10",
     "3628800"),
    # a macro defined inside a macro is defined when that runs
    ("macro mk\n  macro made\n    return ok\n  end\nend\nmk; made", "ok"),
    # redefinition replaces
    ("macro m\n  return 1\nend\nmacro m\n  return 2\nend\nm", "2"),
    # a name with a substitution in the header
    ("set n dyn\nmacro $n\n  return d\nend\ndyn", "d"),
]


@pytest.mark.parametrize("script, expected", MACROS)
def test_macros(script, expected):
    assert run(script) == expected


PROCS = [
    ("proc p {} {return 1}; p", "1"),
    ("proc p {a b} {return $a-$b}; p 1 2", "1-2"),
    ("proc p {a {b dflt}} {return $a-$b}; p 1", "1-dflt"),
    ("proc p {a {b dflt}} {return $a-$b}; p 1 2", "1-2"),
    ("proc p {a args} {return $a|$args}; p 1", "1|"),
    ("proc p {a args} {return $a|$args}; p 1 2 3", "1|2 3"),
    ("proc p {args} {llength $args}; p {a b} c", "2"),
    ("proc p {args} {return $args}; p {a b} c", "{a b} c"),
    # variables are local
    ("proc p {} {set x 1}; p; info exists x", "0"),
    ("set x 5; proc p {} {info exists x}; p", "0"),
    ("set x 5; proc p {} {global x; return $x}; p", "5"),
    ("proc p {} {global x; set x 7}; p; set x", "7"),
    ("proc p {} {global a; set a(k) 8}; p; set a(k)", "8"),
    ("set x 5; proc p {} {return $::x}; p", "5"),
    ("proc p {} {set ::y 6}; p; set y", "6"),
    # the value of the last command, or return's
    ("proc p {} {set x 1; set y 2}; p", "2"),
    ("proc p {} {return a; return b}; p", "a"),
    ("proc p {} {}; p", ""),
    # recursion
    ("proc f {n} {if {$n <= 1} {return 1}; expr {$n * [f [expr {$n - 1}]]}}; f 12", "479001600"),
    # proc returns the empty string when defined
    ("proc p {} {}", ""),
    # help shows the usage line built from the params
    ("proc p {a {b 1} args} {}; lindex [split [help p] \\n] 0", "p a ?b? ?arg ...?"),
]


@pytest.mark.parametrize("script, expected", PROCS)
def test_procs(script, expected):
    assert run(script) == expected


def test_proc_arity_is_checked_from_its_params():
    with pytest.raises(ArityError, match='wrong # args: should be "p a b"'):
        run("proc p {a b} {}; p 1")
    with pytest.raises(ArityError, match='wrong # args: should be "p a \\?b\\?"'):
        run("proc p {a {b 1}} {}; p 1 2 3")
    assert run("macro m a b\nend\nm 1 2 3 4 5") == ""  # a macro takes any number


def test_global_at_top_level_is_harmless():
    assert run("set x 1; global x; set x") == "1"


# --- eval, subst, rename, help -----------------------------------------------------------------

MISC = [
    ("eval set x 5", "5"),
    ("eval {set x 6}", "6"),
    ("eval {set x 1; set y 2}", "2"),
    ("eval set x {{a b}}", "a b"),
    ("set cmd {set z 9}; eval $cmd; set z", "9"),
    ("eval {set a 1} {;} {set b 2}", "2"),
    ("eval {}", ""),
    ("set a 1; subst {$a [set a 2] \\n}", "1 2 \n"),
    ("set a(k) v; subst {<$a(k)>}", "<v>"),
    ("subst {\\$notvar}", "$notvar"),
    ("subst {a$}", "a$"),
    ("subst {${x y}x}", "x"),  # treated below: set first
    ('subst {[set x "]"]}', "]"),  # a ] in a quoted or braced word or after \\ does not close [
    ("subst {a[set x {]}]b}", "a]b"),
    ("subst {a[set x \\]]b}", "a]b"),
    ('subst {[set x "a[set y 1]b"]c}', "a1bc"),
    ("rename set assign; assign x 3", "3"),
    ("proc p {} {return p}; rename p q; q", "p"),
    ("proc p {} {return p}; rename p {}; info commands p", ""),
    ("expr {1 + 2}", "3"),
    ("expr 1 + 2", "3"),
    ("expr {\"a\" eq \"a\"}", "1"),
    ("set x 3; expr {$x * 2}", "6"),
    ("set x 3; expr $x*2", "6"),
    ("expr {[set y 4] + 1}", "5"),
]


@pytest.mark.parametrize("script, expected", MISC)
def test_misc_commands(script, expected):
    if "${x y}" in script:
        script = "set {x y} {}; " + script
    assert run(script) == expected


def test_rename_missing_command():
    with pytest.raises(ScriptError, match='can\'t rename "nosuch": command doesn\'t exist'):
        run("rename nosuch other")


def test_rename_onto_an_existing_command_is_refused():
    with pytest.raises(ScriptError, match='can\'t rename to "if": command already exists'):
        run("rename set if")
    assert run("catch {rename set if}; set x still") == "still"


def test_subst_missing_close_bracket():
    with pytest.raises(psched.ParseError, match="missing close-bracket"):
        run("subst {a[set x 1}")


def test_renamed_away_command_is_gone():
    with pytest.raises(ScriptError, match='invalid command name "set"'):
        run("rename set {}; set x 1")


def test_help_lists_commands_and_prints_usage():
    listing = run("help")
    names = [line.split()[0] for line in listing.splitlines()]
    for name in ("set", "if", "while", "for", "foreach", "macro", "proc", "catch", "echo", "help"):
        assert name in names
    assert names == sorted(names)
    assert run("help set") == "set varName ?value?\n    read a variable, or give it a value"
    assert run("help incr").splitlines()[0] == "incr varName ?increment?"
    assert run("help if").splitlines()[2:] == ["if expr  ...  end", "    block form: if EXPR / elif EXPR / else / end"]
    assert run("help macro").splitlines()[0] == "macro name ?param ...?  ...  end"
    assert run("help task").splitlines()[0] == "task name  ...  end"
    assert run("help for").splitlines()[2] == "for varName first last ?step?  ...  end"
    with pytest.raises(ScriptError, match='help: no command "nosuch"'):
        run("help nosuch")


def test_help_of_a_user_macro():
    assert run("macro deploy host\nend\nhelp deploy").splitlines()[0] == "deploy ?host?"


# --- output ------------------------------------------------------------------------------------

@pytest.mark.parametrize("script, output", [
    ("echo hello", "hello\n"),
    ("echo a b   c", "a b c\n"),
    ('echo "a  b" c', "a  b c\n"),
    ("echo", "\n"),
    ("set x 5; echo x=$x", "x=5\n"),
    ("puts hello", "hello\n"),
    ("puts {a  b}", "a  b\n"),
    ("puts stdout hi", "hi\n"),
    ("puts -nonewline hi; puts -nonewline there", "hithere"),
    ("puts -nonewline stdout x", "x"),
    ("puts -nonewline", "-nonewline\n"),  # alone it is the string, as in Tcl
    ("echo \u00e9\u2603", "\u00e9\u2603\n"),
])
def test_output(script, output):
    result, out = run_out(script)
    assert result == ""
    assert out == output


def test_puts_stderr(capsys):
    run("puts stderr oops")
    assert capsys.readouterr().err == "oops\n"


def test_puts_unknown_channel():
    with pytest.raises(ScriptError, match='can not find channel named "file7"'):
        run("puts file7 x")


def test_interp_write_goes_to_stdout_given():
    out = io.StringIO()
    interp = psched.Interp(stdout=out)
    interp.write("direct")
    assert out.getvalue() == "direct"


# --- source and input --------------------------------------------------------------------------

def test_source_runs_a_file_and_returns_its_value(tmp_path):
    lib = tmp_path / "lib.sched"
    lib.write_text("set from_lib 1\nmacro twice\n  return \"$1$1\"\nend\nset last value\n")
    interp = psched.Interp(stdout=io.StringIO())
    assert interp.eval(f"source {lib}") == "value"
    assert interp.eval("twice ab") == "abab"
    assert interp.eval("set from_lib") == "1"


def test_input_is_source(tmp_path):
    lib = tmp_path / "lib.sched"
    lib.write_text("echo loaded\n")
    result, out = run_out(f"input {lib}")
    assert out == "loaded\n"


def test_return_ends_a_sourced_file(tmp_path):
    lib = tmp_path / "lib.sched"
    lib.write_text("set a 1\nreturn early\nset a 2\n")
    interp = psched.Interp(stdout=io.StringIO())
    assert interp.eval(f"set r [source {lib}]; list $r $a") == "early 1"


def test_eval_file_and_missing_file(tmp_path):
    path = tmp_path / "main.sched"
    path.write_text("set x [expr {6 * 7}]\n")
    interp = psched.Interp(stdout=io.StringIO())
    assert interp.eval_file(str(path)) == "42"
    with pytest.raises(ScriptError, match='couldn\'t read file ".*nope.sched"'):
        interp.eval(f"source {tmp_path / 'nope.sched'}")


def test_error_in_sourced_file_has_its_position_and_the_source_line(tmp_path):
    lib = tmp_path / "lib.sched"
    lib.write_text("set a 1\n\n  nosuch 2\n")
    interp = psched.Interp(stdout=io.StringIO())
    with pytest.raises(ScriptError) as info:
        interp.eval(f"set x 1\nsource {lib}\n", "main.sched")
    err = info.value
    assert (err.pos.file, err.pos.line, err.pos.column) == (str(lib), 3, 3)
    assert err.trace == [('"source"', psched.lang.errors.Pos("main.sched", 2, 1))]
    assert err.render().splitlines()[-1] == "    while executing \"source\" at main.sched:2:1"


def test_current_file_while_sourcing(tmp_path):
    lib = tmp_path / "lib.sched"
    lib.write_text("set seen [info script]\n")
    interp = psched.Interp(stdout=io.StringIO())
    interp.eval(f"source {lib}")
    assert interp.eval("set seen") == str(lib)
    assert interp.current_file == "<string>"


# --- the interpreter object --------------------------------------------------------------------

def test_interps_are_independent():
    a, b = psched.Interp(stdout=io.StringIO()), psched.Interp(stdout=io.StringIO())
    a.eval("set x 1; proc p {} {return a}")
    assert not b.var_exists("x")
    assert "p" not in b.commands and "p" in a.commands


def test_registry_copy_without_a_command():
    from psched.lang.registry import BUILTINS, Registry
    small = Registry()
    small.commands = {k: v for k, v in BUILTINS.commands.items() if k != "echo"}
    interp = psched.Interp(registry=small, stdout=io.StringIO())
    with pytest.raises(ScriptError, match='invalid command name "echo"'):
        interp.eval("echo hi")
    assert interp.eval("set x 1") == "1"


def test_interrupt_stops_the_next_command():
    interp = psched.Interp(stdout=io.StringIO())
    interp.interrupt()
    with pytest.raises(ScriptError, match="interrupted"):
        interp.eval("set x 1")
    assert interp.eval("set x 2") == "2"  # only once


def test_interrupt_is_not_caught_by_catch_and_stops_empty_loops():
    from psched.lang.errors import Interrupted

    with pytest.raises(Interrupted):
        PressCtrlC(50).eval("while 1 {catch {set x 1}}")
    # a loop whose body runs no command at all: the interrupt is seen between rounds
    interp = PressCtrlC(10**9)
    interp.interrupt()
    with pytest.raises(Interrupted):
        interp.run_toplevel(interp.read("while {1} {}"))
    interp.interrupt()
    with pytest.raises(Interrupted):
        interp.run_toplevel(interp.read("for i 0 1e18\nend"))


def test_every_error_is_a_sched_error():
    for script in ("nosuch", "set", "set x $y", "expr {1 +}", "if {", "break", "error boom"):
        with pytest.raises(SchedError):
            run(script)


def test_read_with_a_first_line_number_then_run():
    interp = psched.Interp(stdout=io.StringIO())
    script = interp.read("set x 1\nset y $nope\n", "shell", line0=10)
    with pytest.raises(ScriptError) as info:
        interp.run_toplevel(script)
    assert (info.value.pos.file, info.value.pos.line, info.value.pos.column) == ("shell", 11, 7)


# --- lazily-filled variables (psched.lang.interp.Lazy) -------------------------------------------

class Counted:
    """A Deferred that counts how often it was asked."""

    def __init__(self, text: str):
        self.text = text
        self.asked = 0

    def value(self) -> str:
        self.asked += 1
        return self.text


LAZY = [
    # (script, expected result, times the value is made)
    ("set a 1", "1", 0),
    ("info exists v", "1", 0),
    ("array exists v", "0", 0),
    ("set v new; set v", "new", 0),
    ("unset v; info exists v", "0", 0),
    ("string length $v", "5", 1),
    ("set x $v; append x !; list $v $x", "lazy! lazy!!", 1),
    ("proc p {} {upvar 1 v w; return $w}; p", "lazy!", 1),
    ("append v +", "lazy!+", 1),
]


@pytest.mark.parametrize("script,expected,asked", LAZY)
def test_a_lazy_value_is_made_once_and_only_when_read(script, expected, asked):
    from psched.lang.interp import Lazy

    interp = psched.Interp(stdout=io.StringIO())
    source = Counted("lazy!")
    interp.globals.vars["v"] = Lazy(source)
    assert interp.eval(script) == expected
    assert source.asked == asked


def test_a_lazy_value_that_cannot_be_made_is_an_error_of_the_read():
    from psched.lang.interp import Lazy

    class Broken:
        def value(self) -> str:
            raise ScriptError("could not fetch the output of job 1 from the controller: gone")

    interp = psched.Interp(stdout=io.StringIO())
    interp.globals.vars["v"] = Lazy(Broken())
    with pytest.raises(ScriptError, match="could not fetch the output of job 1"):
        interp.eval("string length $v")
    assert interp.eval("array exists v") == "0"
