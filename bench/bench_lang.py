"""Benchmark of the language: parse speed and the cost of a macro call, next to tclsh.

    .venv/bin/python bench/bench_lang.py [--lines N] [--calls N] [--grow N,N,...] [--keep FILE]

1. Parse speed: a generated, realistic .sched script of 10,000 lines (task blocks with their
   directives, task.exec and task.exit blocks, macros, if/elif/else, for and foreach blocks,
   Tcl-style braced bodies, echo lines with $var, ${var}, $arr(key) and [command]
   substitutions) is parsed with psched.lang.parser.parse. Target: under 0.5 s. The same parse
   with the garbage collector switched off is shown too: the difference is what the
   collector costs while the parser builds its many small objects.
2. Macro-call cost: a macro that does `set`, `expr` and `queuepush`, called in a `for` loop;
   microseconds per call, with and without the empty loop's own cost. Target: under 100 us.
   The same loop runs in tclsh (a proc doing set, expr and lappend to a global list, Tcl's
   nearest thing to a queue push) and the ratio ours / Tcl is shown; without tclsh that
   column says so. The generated script's task blocks are only parsed, never run.
3. Growing a list: `lappend l $i` (and `append s "x$i "`, and `lappend` to a global through
   `global`) N times in a proc's loop, for N = 10,000, 40,000 and 160,000; microseconds per
   call, loop included, in sched and in tclsh (the same Tcl text in both). Target: linear,
   i.e. the cost per call at the largest N under twice the cost at the smallest (the values
   grow in place; copying them at each call made 160,000 lappends take 20 s).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psched
from psched.lang.parser import parse

PARSE_TARGET_S = 0.5
CALL_TARGET_US = 100.0
REPEAT = 3

# One unit of a realistic script; {n} makes names unique. Each unit is UNIT_LINES lines.
UNIT = """\
# --- stage {n}: scan run {n}, then process what it found -------------------------------
set run{n} /data/run{n}
set limits(scan{n}) {{10 20}}
macro submit{n} host file
  local size [string length $file]
  if {{$size > 0}}
    queuepush work{n} -uniq -key 1 "$host $file"
  elif {{$host eq "none"}}
    echo "nothing for ${{host}} in $run{n}"
  else
    error "empty file name for $host"
  end
end

task scan{n}
  command /usr/local/bin/scan --dir $run{n} --out /tmp/scan{n}.out --level [expr {{{n} % 4}}]
  host LOCAL
  periods -poll 60 -exec 300 -timeout 3600
  nmax 10
  npending 2
  trange 08:00 18:00 -days Mon-Fri
  priority {n}
  stdout -var out{n}
  task.exec
    set f [queuepop work{n}]
    if {{$f eq ""}}
      skip
    end
  end
  task.exit 0
    echo "scan{n} done: [llength $out{n}] lines, limit $limits(scan{n})"
  end
  task.exit timeout
    echo "scan{n} timed out after [clock seconds]"
  end
end

for i 0 3
  echo "round $i of stage {n}: [expr {{$i * 2 + {n}}}] in ${{run{n}}}/part$i"
end
foreach h {{alpha beta gamma}}
  if {{[string match a* $h]}}
    echo "host $h goes first"
  elif {{$h eq "beta"}}
    echo "host $h second"
  else
    submit{n} $h $run{n}/$h.dat
  end
end
if {{[info exists done{n}]}} {{ echo "already done: $done{n}" }} else {{ set done{n} 0 }}
while {{$done{n} < 2}} {{ incr done{n}; echo "tick $done{n}" }}

"""
UNIT_LINES = UNIT.count("\n")


def generate(lines: int) -> str:
    """A script of exactly `lines` lines (whole units, then comment lines to fill up)."""
    parts = []
    n = 0
    while (n + 1) * UNIT_LINES <= lines:
        parts.append(UNIT.format(n=n))
        n += 1
    text = "".join(parts)
    missing = lines - text.count("\n")
    text += "".join(f"echo \"filler {k}: $run0 [llength {{a b c}}]\"\n" for k in range(missing))
    return text


def bench_parse(text: str, collect: bool = True) -> float:
    """Best time to parse `text`; with collect=False the garbage collector is off meanwhile."""
    best = float("inf")
    for _ in range(REPEAT):
        gc.collect()
        if not collect:
            gc.disable()
        try:
            start = time.perf_counter()
            parse(text, "<bench>")
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


MACRO = """\
macro bench_m
  set x $1
  set y [expr {$x * 2 + 1}]
  queuepush benchq $y
end
macro empty_m
end
"""


def bench_ours(calls: int) -> dict[str, float]:
    """Microseconds per round of: a loop calling the macro, the same loop empty."""
    interp = psched.Interp()
    interp.eval(MACRO)
    loops = {
        "call": f"queueinit benchq\nfor i 0 {calls}\n  bench_m $i\nend\n",
        "empty": f"for i 0 {calls}\nend\n",
        "empty_macro": f"for i 0 {calls}\n  empty_m $i\nend\n",
    }
    out = {}
    for name, script in loops.items():
        best = float("inf")
        for _ in range(REPEAT):
            gc.collect()
            start = time.perf_counter()
            interp.eval(script)
            best = min(best, time.perf_counter() - start)
        out[name] = best / calls * 1e6
    assert interp.eval("queuesize benchq") == str(calls)
    assert interp.eval("set y") == str((calls - 1) * 2 + 1)
    return out


TCL = """\
proc bench_m {{v}} {{
  global x y benchq
  set x $v
  set y [expr {{$x * 2 + 1}}]
  lappend benchq $y
}}
proc empty_m {{v}} {{}}
proc best {{script}} {{
  set b 1e99
  for {{set r 0}} {{$r < {repeat}}} {{incr r}} {{
    set t [lindex [time {{uplevel #0 $script}} 1] 0]
    if {{$t < $b}} {{set b $t}}
  }}
  return $b
}}
puts [best {{set benchq {{}}; for {{set i 0}} {{$i < {calls}}} {{incr i}} {{bench_m $i}}}}]
puts [best {{for {{set i 0}} {{$i < {calls}}} {{incr i}} {{}}}}]
puts [best {{for {{set i 0}} {{$i < {calls}}} {{incr i}} {{empty_m $i}}}}]
"""


def bench_tcl(calls: int) -> dict[str, float] | None:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        return None
    script = TCL.format(calls=calls, repeat=REPEAT)
    done = subprocess.run([tclsh], input=script, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"tclsh failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    call, empty, empty_macro = (float(v) / calls for v in done.stdout.split())
    return {"call": call, "empty": empty, "empty_macro": empty_macro}


GROW_SIZES = (10_000, 40_000, 160_000)
GROW_TARGET = 2.0
"""Cost per call at the largest N over the cost at the smallest: under this, growth is linear."""

GROW = """\
proc grow_list {n} { set l {}; for {set i 0} {$i < $n} {incr i} { lappend l $i }; return [llength $l] }
proc grow_text {n} { set s {}; for {set i 0} {$i < $n} {incr i} { append s "x$i " }; return [string length $s] }
proc grow_global {n} { global gl; set gl {}; for {set i 0} {$i < $n} {incr i} { lappend gl $i }; return [llength $gl] }
"""
GROW_KINDS = {"grow_list": "lappend l $i", "grow_text": 'append s "x$i "', "grow_global": "lappend gl $i (global)"}


def bench_grow_ours(sizes: tuple[int, ...]) -> dict[tuple[str, int], float]:
    """Microseconds per call of each GROW proc at each size, best of REPEAT."""
    interp = psched.Interp()
    interp.eval(GROW)
    out = {}
    for n in sizes:
        for kind in GROW_KINDS:
            best = float("inf")
            for _ in range(REPEAT):
                gc.collect()
                start = time.perf_counter()
                interp.eval(f"{kind} {n}")
                best = min(best, time.perf_counter() - start)
            out[kind, n] = best / n * 1e6
    return out


def bench_grow_tcl(sizes: tuple[int, ...]) -> dict[tuple[str, int], float] | None:
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        return None
    best = "proc best {script} { set b 1e99; for {set r 0} {$r < %d} {incr r} { set t [lindex [time $script 1] 0]; if {$t < $b} {set b $t} }; return $b }\n" % REPEAT
    runs = "".join(f"puts [best {{{kind} {n}}}]\n" for n in sizes for kind in GROW_KINDS)
    done = subprocess.run([tclsh], input=GROW + best + runs, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"tclsh failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    values = iter(float(v) for v in done.stdout.split())
    return {(kind, n): next(values) / n for n in sizes for kind in GROW_KINDS}


def grow_report(sizes: tuple[int, ...]) -> bool:
    """Print the growth table; True when every kind of growth is linear in sched."""
    ours = bench_grow_ours(sizes)
    tcl = bench_grow_tcl(sizes)
    rows = [["us per call (loop included)", *(f"sched {n}" for n in sizes), *(f"tclsh {n}" for n in sizes),
             "sched growth", "target", "verdict"]]
    linear = True
    for kind in GROW_KINDS:
        growth = ours[kind, sizes[-1]] / ours[kind, sizes[0]]
        linear &= growth < GROW_TARGET
        rows.append([GROW_KINDS[kind], *(f"{ours[kind, n]:.2f}" for n in sizes),
                     *((f"{tcl[kind, n]:.3f}" for n in sizes) if tcl else ("-" for _ in sizes)),
                     f"{growth:.2f}x", f"< {GROW_TARGET:.0f}x", "ok" if growth < GROW_TARGET else "QUADRATIC"])
    print(f"\ngrowing a variable, N calls in a proc's loop (best of {REPEAT}); growth = per-call cost at "
          f"{sizes[-1]} / at {sizes[0]}")
    print(table(rows))
    return linear


def verdict(value: float, target: float) -> str:
    return "ok" if value < target else "SLOW"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=10_000, help="lines of the generated script (default 10000)")
    ap.add_argument("--calls", type=int, default=20_000, help="macro calls per timed loop (default 20000)")
    ap.add_argument("--grow", default=",".join(map(str, GROW_SIZES)),
                    help="sizes of the list-growing loops, smallest first (default 10000,40000,160000)")
    ap.add_argument("--keep", metavar="FILE", help="also write the generated script to FILE")
    args = ap.parse_args(argv)

    text = generate(args.lines)
    if args.keep:
        Path(args.keep).write_text(text, encoding="utf-8")
    nlines = text.count("\n")
    seconds = bench_parse(text)
    seconds_no_gc = bench_parse(text, collect=False)
    ours = bench_ours(args.calls)
    tcl = bench_tcl(args.calls)

    def tcl_cell(key: str) -> str:
        return f"{tcl[key]:.2f} us" if tcl else "-"

    def ratio(key: str) -> str:
        return f"{ours[key] / tcl[key]:.1f}x" if tcl and tcl[key] > 0 else "-"

    call_alone = ours["call"] - ours["empty"]
    tcl_alone = tcl["call"] - tcl["empty"] if tcl else 0.0
    rows = [
        ["measure", "sched", "tclsh", "ratio", "target", "verdict"],
        [f"parse {nlines} lines", f"{seconds:.3f} s", "-", "-", f"< {PARSE_TARGET_S} s", verdict(seconds, PARSE_TARGET_S)],
        ["parse speed", f"{nlines / seconds:,.0f} lines/s", "-", "-", "", ""],
        ["parse, garbage collector off", f"{seconds_no_gc:.3f} s", "-", "-", "", ""],
        ["loop round + macro call (set, expr, queuepush)", f"{ours['call']:.2f} us", tcl_cell("call"), ratio("call"),
         f"< {CALL_TARGET_US:.0f} us", verdict(ours["call"], CALL_TARGET_US)],
        ["macro call alone (empty loop subtracted)", f"{call_alone:.2f} us",
         f"{tcl_alone:.2f} us" if tcl else "-", f"{call_alone / tcl_alone:.1f}x" if tcl and tcl_alone > 0 else "-",
         f"< {CALL_TARGET_US:.0f} us", verdict(call_alone, CALL_TARGET_US)],
        ["loop round + call of an empty macro", f"{ours['empty_macro']:.2f} us", tcl_cell("empty_macro"), ratio("empty_macro"), "", ""],
        ["empty loop round", f"{ours['empty']:.2f} us", tcl_cell("empty"), ratio("empty"), "", ""],
    ]
    print(f"sched language benchmark (Python {sys.version.split()[0]}, best of {REPEAT}, {args.calls} calls per loop)")
    print(table(rows))
    if tcl is None:
        print("note: tclsh not found on PATH (Debian package `tcl`): the Tcl column is empty")
    else:
        print("note: the Tcl proc pushes with `lappend` to a global list, Tcl's nearest thing to queuepush")
    linear = grow_report(tuple(int(n) for n in args.grow.split(",")))
    slow = seconds >= PARSE_TARGET_S or ours["call"] >= CALL_TARGET_US or not linear
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
