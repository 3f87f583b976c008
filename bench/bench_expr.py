"""Benchmark of `expr` alone: compile cost and evaluation cost per expression.

Prints microseconds per evaluation of compiled expressions against a trivial
context (dict lookups for variables, a constant for [script]), the cost of a
cache hit in compile_expr, the cost of a cold compile, and, when `tclsh` is on
PATH, the same evaluations in Tcl 8.6 as a ratio.

    .venv/bin/python bench/bench_expr.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import timeit

from psched.lang.expr import _compile, compile_expr

EXPRESSIONS = [
    "$i < $n",
    "$i + 1",
    "$i * 2 + $x / 3",
    '$s eq "abc" && $i > 2',
    "max($i, $n) % 7",
    '$i == 5 ? "yes" : "no"',
    "[cmd] + 1",
    "sqrt($x) + abs(-$i)",
]
VARS = {"i": "5", "n": "10", "x": "3.5", "s": "abc"}
ROUNDS = 100_000


class Ctx:
    def get_var(self, name: str, index: str | None) -> str:
        return VARS[name]

    def eval_script(self, text: str) -> str:
        return "1"


def ours() -> dict[str, float]:
    ctx = Ctx()
    out = {}
    for text in EXPRESSIONS:
        compiled = compile_expr(text)
        seconds = min(timeit.repeat(lambda: compiled.evaluate(ctx), number=ROUNDS, repeat=3))
        out[text] = seconds / ROUNDS * 1e6
    return out


def tcl() -> dict[str, float] | None:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        return None
    lines = ["proc cmd {} {return 1}", "set i 5; set n 10; set x 3.5; set s abc"]
    for k, text in enumerate(EXPRESSIONS):
        lines.append(f"proc bench{k} {{i n x s}} {{expr {{{text}}}}}")
        lines.append(f"puts [lindex [time {{bench{k} $i $n $x $s}} {ROUNDS}] 0]")
    with tempfile.NamedTemporaryFile("w", suffix=".tcl", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        done = subprocess.run([tclsh, f.name], capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        print("tclsh failed:", done.stderr, file=sys.stderr)
        return None
    return dict(zip(EXPRESSIONS, (float(v) for v in done.stdout.split())))


def main() -> None:
    mine = ours()
    theirs = tcl()
    print(f"{'expression':32} {'psched us':>10} {'tclsh us':>10} {'ratio':>7}")
    for text, us in mine.items():
        if theirs is not None:
            # tclsh's figure includes a proc call; it is an upper bound for its expr.
            print(f"{text:32} {us:10.2f} {theirs[text]:10.3f} {us / theirs[text]:7.1f}")
        else:
            print(f"{text:32} {us:10.2f} {'-':>10} {'-':>7}")
    hit = min(timeit.repeat(lambda: compile_expr("$i * 2 + $x / 3"), number=ROUNDS, repeat=3)) / ROUNDS * 1e6
    cold_text = '$i * 7 + ($n - 3) / 2 > [cmd $k] && $s eq "x7" || max($i, 2) in {1 2 3}'
    cold = min(timeit.repeat(lambda: _compile(cold_text), number=2000, repeat=3)) / 2000 * 1e6
    print(f"\ncompile_expr cache hit: {hit:.2f} us; cold compile of a 70-char expression: {cold:.0f} us")


if __name__ == "__main__":
    main()
