"""Generated one-liners for the differential test against tclsh (tests/lang/test_tclcompat.py).

    generated(seed=21, count=...) -> list of scripts

Deterministic for a seed: expressions (integer, float and mixed arithmetic, comparisons,
logic, functions, precedence), list quoting (lists of awkward strings taken apart again),
string commands on random text, and control flow with break, continue and return codes.
Each script is one line in the common subset of Tcl 8.6 and sched; what it prints or returns is
compared. Run `python tests/lang/tclcompat/generate.py` to see them.
"""

from __future__ import annotations

import random

INT_ATOMS = ["0", "1", "2", "3", "7", "-4", "10", "255", "0x1f", "1000000", "2147483647", "-9",
             "9223372036854775807", "123456789012345678901234567890"]
FLOAT_ATOMS = ["0.5", "1.0", "2.5", "-3.25", "1e3", "1.5e-3", "0.1", "3.0"]
INT_OPS = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "**"]
CMP_OPS = ["<", "<=", ">", ">=", "==", "!="]
FUNCS1 = ["abs", "int", "double", "round", "bool", "wide", "entier"]
FUNCS_F = ["sqrt", "exp", "floor", "ceil", "sin", "cos", "log10"]
AWKWARD = ["a", "b c", "{", "}", "{x}", "\\", "\"", "$x", "[y]", "", " ", "a\\tb", "#c", ";", "x{y",
           "{a b} c", "\\{", "}{", "é", "tab\there", "end"]
WORDS = ["alpha", "Beta", "gamma delta", "  padded  ", "MiXeD", "x.y.z", "a,b,,c", "123", "-7", "0x1A",
         "3.5", "", "true", "no", "straße"]


def _int_expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(INT_ATOMS)
    kind = rng.random()
    if kind < 0.6:
        op = rng.choice(INT_OPS)
        left, right = _int_expr(rng, depth - 1), _int_expr(rng, depth - 1)
        if op in ("<<", ">>"):
            right = str(rng.randint(0, 70))
        if op == "**":
            right = str(rng.randint(0, 5))
        return f"({left} {op} {right})"
    if kind < 0.75:
        return f"({_int_expr(rng, depth - 1)} {rng.choice(CMP_OPS)} {_int_expr(rng, depth - 1)})"
    if kind < 0.85:
        return f"({_int_expr(rng, depth - 1)} ? {_int_expr(rng, depth - 1)} : {_int_expr(rng, depth - 1)})"
    if kind < 0.92:
        return f"{rng.choice(['-', '~', '!'])}{_int_expr(rng, depth - 1)}"
    return f"{rng.choice(['abs', 'int', 'wide', 'bool'])}({_int_expr(rng, depth - 1)})"


def _float_expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.3:
        return rng.choice(FLOAT_ATOMS + INT_ATOMS[:8])
    kind = rng.random()
    if kind < 0.6:
        return f"({_float_expr(rng, depth - 1)} {rng.choice(['+', '-', '*', '/'])} {_float_expr(rng, depth - 1)})"
    if kind < 0.8:
        return f"{rng.choice(FUNCS1)}({_float_expr(rng, depth - 1)})"
    if kind < 0.9:
        return f"{rng.choice(['min', 'max'])}({_float_expr(rng, depth - 1)}, {_float_expr(rng, depth - 1)})"
    return f"{rng.choice(FUNCS_F)}(abs({_float_expr(rng, depth - 1)}) + 1)"


def _list_of(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(AWKWARD) for _ in range(n)]


def _tcl_words(items: list[str]) -> str:
    """Words for a command line that give exactly these strings (each in braces or escaped)."""
    out = []
    for s in items:
        out.append("".join("\\" + c if c in "{}[]$\\\"; \t#" else c for c in s) if s else "{}")
    return " ".join(out)


def _list_script(rng: random.Random) -> str:
    items = _list_of(rng, rng.randint(0, 5))
    words = _tcl_words(items)
    choice = rng.randrange(8)
    if choice == 0:
        return f"list {words}"
    if choice == 1:
        return f"set l [list {words}]; list [llength $l] [lindex $l end] [lrange $l 1 2]"
    if choice == 2:
        return f"set l [list {words}]; set out {{}}; foreach e $l {{append out <$e>}}; set out"
    if choice == 3:
        return f"set l [list {words}]; string equal [lindex [list $l] 0] $l"
    if choice == 4:
        return f"lsort [list {words}]"
    if choice == 5:
        return f"set l [list {words}]; lappend l [lindex $l 0] x; llength $l"
    if choice == 6:
        return f"concat [list {words}] [list {_tcl_words(_list_of(rng, 2))}]"
    return f"set l [list {words}]; list [lsearch $l *b*] [lreverse $l] [linsert $l 1 q]"


def _string_script(rng: random.Random) -> str:
    s = _tcl_words([rng.choice(WORDS)])
    t = _tcl_words([rng.choice(WORDS)])
    i, j = rng.randint(-2, 6), rng.choice(["end", "end-1", "2", "0", "10"])
    forms = [
        f"string length {s}", f"string toupper {s}", f"string tolower {s}", f"string totitle {s}",
        f"string index {s} {i}", f"string range {s} {i} {j}", f"string reverse {s}",
        f"string first {t} {s}", f"string last [string index {s} 1] {s}", f"string trim {s}",
        f"string trimleft {s} a", f"string map {{a A e E}} {s}", f"string repeat {s} {abs(i) % 3}",
        f"string compare {s} {t}", f"string equal -nocase {s} {t}", f"string match *a* {s}",
        f"string is integer {s}", f"string is double {s}", f"string is boolean {s}", f"string is alpha {s}",
        f"string replace {s} 1 2 XY", f"split {s} {{.,}}", f"join [split {s} {{}}] -",
        f"format {{%5s|%-5s|%x}} {s} {t} {abs(i)}", f"string cat {s} {t}", f"string wordend {s} 1",
        f"regexp -inline {{[a-z]+}} {s}", f"regsub -all {{[aeiou]}} {s} _",
        f"scan {s} %d", f"scan {s} %s%n", f"string is digit -strict {s}",
    ]
    return rng.choice(forms)


def _control_script(rng: random.Random) -> str:
    n = rng.randint(1, 6)
    k = rng.randint(0, n)
    code = rng.choice(["break", "continue", "return", "error", "ok", "3", "4", "5"])
    forms = [
        f"set r {{}}; for {{set i 0}} {{$i < {n}}} {{incr i}} {{if {{$i == {k}}} break; lappend r $i}}; set r",
        f"set r {{}}; for {{set i 0}} {{$i < {n}}} {{incr i}} {{if {{$i == {k}}} continue; lappend r $i}}; set r",
        f"set r {{}}; set i 0; while {{$i < {n}}} {{incr i; if {{$i % 2}} continue; lappend r $i}}; set r",
        f"set r {{}}; foreach {{a b}} {{1 2 3 4 5}} {{lappend r $b$a; if {{$a == {k}}} break}}; set r",
        f"proc p {{}} {{return -code {code} v}}; list [catch p m] $m",
        f"proc p {{}} {{return -code {code} v}}; set r {{}}; foreach i {{1 2}} {{lappend r [catch p]}}; set r",
        f"list [catch {{return -level 0 -code {code} x}} m] $m",
        f"proc q {{}} {{foreach i {{1 2 3}} {{if {{$i == {max(k, 1)}}} {{return $i}}}}; return none}}; q",
        f"set r [catch {{{code if code in ('break', 'continue') else 'error boom'}}} m]; list $r $m",
        f"proc f n {{if {{$n <= 1}} {{return 1}}; expr {{$n * [f [expr {{$n - 1}}]]}}}}; f {n + 10}",
        f"switch {k} {{0 {{set x zero}} 1 - 2 {{set x small}} default {{set x big}}}}",
        f"set d {{}}; for {{set i 0}} {{$i < {n}}} {{incr i}} {{dict incr d [expr {{$i % 2}}]}}; set d",
    ]
    return rng.choice(forms)


def generated(seed: int = 21, count: int = 320) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    makers = [
        lambda: f"expr {{{_int_expr(rng, 3)}}}",
        lambda: f"expr {{{_float_expr(rng, 3)}}}",
        lambda: _list_script(rng),
        lambda: _string_script(rng),
        lambda: _control_script(rng),
    ]
    while len(out) < count:
        script = makers[len(out) % len(makers)]()
        if script not in out:
            out.append(script)
    return out


if __name__ == "__main__":
    for line in generated():
        print(line)
