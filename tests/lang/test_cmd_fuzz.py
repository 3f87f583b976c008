"""Random calls of the command library: whatever the words, a command returns a string or
raises a SchedError of its own, never an internal error (a Python exception turned into
"internal error in command ..."). `exec` is left out: random words must not run programs."""

import io

from hypothesis import given, settings, strategies as st

import psched
from psched.lang.errors import SchedError
from psched.lang.tcllist import join_list

COMMANDS = {
    "list": [], "llength": [], "lindex": [], "lrange": [], "lappend": [], "lsearch": [], "lsort": [],
    "join": [], "split": [], "concat": [], "lreverse": [], "linsert": [], "lreplace": [], "lset": [],
    "lassign": [], "lrepeat": [], "lmap": [], "format": [], "regexp": [], "regsub": [],
    "queueinit": [], "queuepush": [], "queuepop": [], "queuesize": [], "queuelist": [], "queuedelete": [],
    "queuenames": [],
    "string": ["length", "index", "range", "match", "trim", "trimleft", "trimright", "toupper", "tolower",
               "totitle", "first", "last", "map", "repeat", "compare", "equal", "reverse", "replace", "cat", "is"],
    "clock": ["seconds", "milliseconds", "format", "scan", "add"],
    "array": ["get", "set", "names", "exists", "size", "unset"],
    "info": ["exists", "commands", "vars", "locals", "globals", "procs", "body", "args", "default", "level"],
}

TRICKY = [
    "", "a", "0", "-1", "end", "end-1", "1+1", "x(y)", "{", "}", "{a b}", "a {b", '"', "\\", "[", "]", "$",
    "*", "?", "[a-", "%", "%d", "%*d", "%5$s", "%c", "%-08.3f", "1e400", "nan", "0x", "99999999999999999999",
    "1.5", "-all", "-inline", "-index", "-uniq", "-key", "-var", "-nocase", "-exact", "-regexp", "-format",
    "-gmt", "-timezone", "-base", "(", "(?", "\\m", "[[:alpha:]", "***=", "(?z)", "\\x", "\x00", "é",
    "2026-11-22 14:00", "14:00", "%Y", "v", "q", "1 2 3", "{1 2} {3 4}", "-strict", "int", "&", "\\1",
    "-start", "-integer", "-unique", "-command", "day", "month", "2", "env", "-line", "p", "+0100", ":UTC",
]
psched.Interp()  # the first Interp raises the recursion limit: do it before hypothesis watches

words = st.one_of(st.sampled_from(TRICKY), st.text(max_size=8))


@st.composite
def calls(draw):
    name = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [name]
    if COMMANDS[name]:
        argv.append(draw(st.sampled_from(COMMANDS[name])))
    argv += draw(st.lists(words, max_size=5))
    return join_list(argv)


@settings(max_examples=250, deadline=None)
@given(calls())
def test_commands_raise_only_their_own_errors(script):
    interp = psched.Interp(stdout=io.StringIO())
    interp.eval("set v {a b c}; set arr(k) 1; queuepush q {x y}; proc p {a {b 1}} {return $a}")
    try:
        result = interp.eval(script)
    except SchedError as err:
        assert "internal error" not in err.message, err.message
    else:
        assert isinstance(result, str)
