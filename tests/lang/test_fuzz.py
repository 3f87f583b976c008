"""Property tests: no input makes the parser or the interpreter raise anything but SchedError.

(a) random text, rich in the characters and words that matter (braces, quotes, brackets, $,
    backslashes, newlines, `end` and block keywords, unicode, NUL), fed to `parse`;
(b) the same text run by an Interp whose registry holds no command that touches the system
    (no exec, source, puts, clock, scheduler) and that stops after a budget of commands and
    loop rounds and refuses huge values, so that no script can run long or eat memory;
(c) realistic scripts with random characters inserted, deleted and replaced, parsed and run.

The budget and the size limit raise Interrupted, which `catch` lets through. Each property runs
a bounded number of examples with no deadline, so the suite stays fast (PSCHED_FUZZ_EXAMPLES
in the environment asks for more).
"""

from __future__ import annotations

import io
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psched
from psched.lang.errors import Interrupted, SchedError
from psched.lang.parser import is_complete, parse
from psched.lang.registry import BUILTINS, Registry

# PSCHED_FUZZ_EXAMPLES=20000 for a long hunt; the suite runs 300 of each.
SETTINGS = settings(max_examples=int(os.environ.get("PSCHED_FUZZ_EXAMPLES", "300")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- the guarded interpreter -------------------------------------------------------------------

SAFE_COMMANDS = {
    # core
    "set", "unset", "incr", "append", "global", "local", "if", "while", "for", "foreach", "break",
    "continue", "return", "skip", "error", "catch", "macro", "proc", "rename", "expr", "eval", "subst",
    "echo", "help",
    # introspection and lists (bounded by the size of their input)
    "info", "array", "list", "llength", "lindex", "lrange", "lappend", "concat", "join", "split",
    # task definitions only store a definition; the scheduler never runs here
    "task", "task.exec", "task.exit", "host", "command", "nmax", "npending", "priority", "active",
}

MAX_STEPS = 3000
MAX_VALUE = 100_000


def safe_registry() -> Registry:
    registry = Registry()
    registry.commands = {name: cdef for name, cdef in BUILTINS.commands.items() if name in SAFE_COMMANDS}
    return registry


class GuardedInterp(psched.Interp):
    """An Interp that stops after MAX_STEPS commands and loop rounds and refuses huge values."""

    def __init__(self) -> None:
        self.steps = 0
        super().__init__(registry=safe_registry(), stdout=io.StringIO())

    def _step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Interrupted("fuzz budget spent")

    # Every command asks whether Ctrl-C was pressed before it runs: count the commands there.
    @property
    def interrupted(self) -> bool:
        self._step()
        return self._interrupted

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        self._interrupted = value

    def loop_body(self, body):
        self._step()
        return super().loop_body(body)

    def set_var(self, name, value, index=None):
        if len(value) > MAX_VALUE or len(name) > MAX_VALUE:
            raise Interrupted("fuzz value too large")
        return super().set_var(name, value, index)

    def growing(self, name):  # append and lappend grow a value in place, without set_var
        grow = super().growing(name)
        if grow is not None and len(grow.text) > MAX_VALUE:
            raise Interrupted("fuzz value too large")
        return grow

    def write(self, text):
        if self.stdout.tell() < MAX_VALUE:
            super().write(text)


def only_sched_errors(text: str) -> None:
    """Parse and run `text`: a result or a SchedError, nothing else."""
    try:
        parse(text, "fuzz.sched")
    except SchedError:
        pass
    is_complete(text)  # never raises
    try:
        GuardedInterp().eval(text, "fuzz.sched")
    except SchedError as err:
        err.render()  # rendering never fails either
        # a Python exception inside a command is reported as an "internal error": still a bug
        assert not err.message.startswith("internal error"), err.message


def test_guard_stops_runaway_scripts():
    for script in ("while 1 {}", "while 1\nend", "for i 0 1e18\nend", "proc f {} {catch f; catch f}; f",
                   "set x ab; while 1 {append x $x}", "while 1 {catch {while 1 {}}}"):
        interp = GuardedInterp()
        try:
            interp.eval(script)
        except Interrupted:
            pass
        else:
            raise AssertionError(f"not stopped: {script}")
    assert "exec" not in GuardedInterp().commands and "source" not in GuardedInterp().commands


# --- (a) and (b): random text ------------------------------------------------------------------

PIECES = [
    "{", "}", "[", "]", '"', "$", "\\", "\n", "\r\n", ";", " ", "  ", "\t", "#", "(", ")", "::",
    "end", "if", "elif", "elseif", "else", "then", "while", "for", "foreach", "macro", "proc",
    "task", "task.exec", "task.exit", "set", "incr", "append", "catch", "eval", "subst", "expr",
    "return", "break", "continue", "error", "echo", "local", "global", "rename", "unset",
    "x", "y", "a(k)", "$x", "${x}", "$a(", "$a(k)", "[set x]", "{*}", "\\\n", "\\{", "\\}", "\\[",
    "\\$", "\\x41", "\\u263", "1", "0", "-1", "1e308", "0x", "3.5", "+", "*", "/", "==", "&&", "?", ":",
    "\x00", "\u00e9", "\u2603", "\U0001f600", "\ufeff", "\u200b",
]

random_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=40).map("".join)


@SETTINGS
@given(random_text)
def test_random_text_parses_or_fails_with_a_parse_error(text):
    try:
        parse(text, "fuzz.sched")
    except SchedError:
        pass


@SETTINGS
@given(random_text)
def test_random_text_runs_or_fails_with_a_sched_error(text):
    only_sched_errors(text)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_unicode_text(text):
    only_sched_errors(text)


# --- (c): mutated realistic scripts ------------------------------------------------------------

REALISTIC = [
    # block forms, macros, arrays
    """# build the modules, then report
set total 0
set names {alpha beta gamma}
macro build name ?flags?
  local out
  set out "built $name"
  if $1 eq "beta"
    incr total 2
  elif [llength $names] > 2
    incr total
  else
    set total 0
  end
  set result($name) $out
  return $out
end
foreach n $names
  build $n -O2
end
for i 0 10 2
  append trace "$i,"
end
echo "total=$total trace=$trace"
""",
    # Tcl forms, procs, catch, expr
    """proc fib {n} {
    if {$n < 2} { return $n }
    return [expr {[fib [expr {$n - 1}]] + [fib [expr {$n - 2}]]}]
}
set r {}
for {set i 0} {$i < 8} {incr i} {
    lappend r [fib $i]
}
if {[catch {error "bad thing"} msg]} {
    set r "$r / $msg"
} elseif {$r eq ""} then {
    set r none
} else {
    set r ok
}
while {[llength $r] > 3} { set r [lrange $r 1 end] }
set r
""",
    # tasks
    """task nightly
  host LOCAL
  command echo "hello $env(HOME)"
  nmax 3
  npending 1
  priority 5
  task.exec
    if $job_count > 2
      skip
    end
  end
  task.exit 0
    incr done
  end
  task.exit default
    echo "job failed"
  end
end
""",
    # substitutions of every kind
    """set a(x) 1; set i x
set b "quoted $a($i) [set a(x)] \\t \\x41 \\u00e9"
set c {braced $a(x) [nope] \\n}
set d ${b}${c}
set e [subst {$a($i) [llength $d]}]
eval [list set f [list 1 2 3]]
catch {unset a(x)} err
echo $b $c $d $e $f $err
""",
]

mutation = st.tuples(st.sampled_from(["insert", "delete", "replace"]), st.floats(0, 1),
                     st.sampled_from(PIECES + ["a", "1", " ", "\n"]))


def mutate(script: str, edits: list[tuple[str, float, str]]) -> str:
    for op, where, piece in edits:
        i = int(where * len(script))
        if op == "insert":
            script = script[:i] + piece + script[i:]
        elif op == "delete":
            script = script[:i] + script[i + len(piece):]
        else:
            script = script[:i] + piece + script[i + len(piece):]
    return script


def test_realistic_scripts_run_unmutated():
    for script in REALISTIC:
        interp = GuardedInterp()
        interp.eval(script)  # they are valid: no error
    assert GuardedInterp().eval(REALISTIC[1]) == "/ bad thing"


@SETTINGS
@given(st.sampled_from(REALISTIC), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_scripts_fail_only_with_sched_errors(script, edits):
    only_sched_errors(mutate(script, edits))


# --- deep nesting ------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, database=None)
@given(st.sampled_from(["[", "{", '"[', "$a(", "if 1\n", "if 1 {", "while 1\n", "[if 1\n", "eval {", "{[", "[{"]),
       st.integers(200, 3000))
def test_deep_nesting_never_crashes(opener, depth):
    closer = {"[": "]", "{": "}", '"[': ']"', "$a(": ")", "if 1\n": "end\n", "if 1 {": "}", "while 1\n": "end\n",
              "[if 1\n": "\nend\n]", "eval {": "}", "{[": "]}", "[{": "}]"}[opener]
    only_sched_errors(opener * depth + "set x 1\n" + closer * depth)
    only_sched_errors(opener * depth)
