"""Benchmark of the Tcl commands of issue 21 in a tight loop, next to tclsh in the same run.

    .venv/bin/python bench/bench_tcl.py [--calls N]

The same Tcl script runs in sched (in this process, psched.Interp) and in tclsh 8.6: a proc
that takes a dictionary by name (`upvar`), picks a branch with `switch -glob` and counts with
`dict incr`, called in a `for` loop; and, to see where the time goes, procs that do only one
of those, an empty proc, and bench_lang.py's reference proc (set, expr, lappend). Each row is
microseconds per call (best of 3) with the empty loop's own round subtracted, in both, and
the ratio sched / tclsh. Target: the upvar/switch/dict call within 25x of tclsh (the issue's
bound for macro calls); the reference row shows where the same machine puts today's ~20x.
Without tclsh (Debian package tcl8.6) the Tcl column says so.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import time

import psched

RATIO_TARGET = 25.0
REPEAT = 3

PROCS = """\
proc tally {dictVar key} {
    upvar 1 $dictVar d
    switch -glob -- $key {
        a* { dict incr d a }
        b* { dict incr d b }
        default { dict incr d other }
    }
}
proc only_upvar {name} { upvar 1 $name v; set v }
proc only_switch {key} { switch -glob -- $key { a* { set r 1 } b* { set r 2 } default { set r 3 } } }
proc only_dict {} { global counts; dict incr counts a }
proc empty {x} {}
proc reference {v} { global x y benchq; set x $v; set y [expr {$x * 2 + 1}]; lappend benchq $y }
set benchq {}
set keys {apple banana cherry avocado blueberry}
set counts {}
"""

LOOPS = {
    "upvar + switch + dict incr (tally)": "for {set i 0} {$i < CALLS} {incr i} { tally counts [lindex $keys [expr {$i % 5}]] }",
    "upvar alone": "for {set i 0} {$i < CALLS} {incr i} { only_upvar keys }",
    "switch -glob alone": "for {set i 0} {$i < CALLS} {incr i} { only_switch [lindex $keys [expr {$i % 5}]] }",
    "dict incr alone": "for {set i 0} {$i < CALLS} {incr i} { only_dict }",
    "empty proc call": "for {set i 0} {$i < CALLS} {incr i} { empty $i }",
    "reference: set, expr, lappend (bench_lang's)": "for {set i 0} {$i < CALLS} {incr i} { reference $i }",
    "empty loop round": "for {set i 0} {$i < CALLS} {incr i} {}",
}


def bench_ours(calls: int) -> dict[str, float]:
    interp = psched.Interp()
    interp.eval(PROCS)
    out = {}
    for name, loop in LOOPS.items():
        script = loop.replace("CALLS", str(calls))
        best = float("inf")
        for _ in range(REPEAT):
            gc.collect()
            start = time.perf_counter()
            interp.eval(script)
            best = min(best, time.perf_counter() - start)
        out[name] = best / calls * 1e6
    assert interp.eval("dict get $counts a") != ""
    return out


def bench_tcl(calls: int) -> dict[str, float] | None:
    tclsh = shutil.which("tclsh8.6") or shutil.which("tclsh")
    if tclsh is None:
        return None
    lines = [PROCS, "proc best {script} { set b 1e99; for {set r 0} {$r < %d} {incr r} "
                    "{ set t [lindex [time {uplevel #0 $script} 1] 0]; if {$t < $b} {set b $t} }; return $b }" % REPEAT]
    for loop in LOOPS.values():
        lines.append("puts [best {%s}]" % loop.replace("CALLS", str(calls)))
    done = subprocess.run([tclsh], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"tclsh failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    return {name: float(v) / calls for name, v in zip(LOOPS, done.stdout.split())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args(argv)
    ours = bench_ours(args.calls)
    tcl = bench_tcl(args.calls)
    rows = [["call, loop round subtracted", "sched us", "tclsh us", "ratio", "target", "verdict"]]
    loop = "empty loop round"
    ratios = {}
    for name in LOOPS:
        if name == loop:
            continue
        mine = ours[name] - ours[loop]
        if tcl is None:
            rows.append([name, f"{mine:.2f}", "(no tclsh)", "-", "", ""])
            continue
        theirs = tcl[name] - tcl[loop]
        ratios[name] = ratio = mine / theirs if theirs > 0 else float("inf")
        target = name.startswith("upvar + switch")
        rows.append([name, f"{mine:.2f}", f"{theirs:.3f}", f"{ratio:.1f}x", f"< {RATIO_TARGET:.0f}x" if target else "",
                     ("ok" if ratio < RATIO_TARGET else "SLOW") if target else ""])
    rows.append([loop + " (not subtracted)", f"{ours[loop]:.2f}", f"{tcl[loop]:.3f}" if tcl else "-", "", "", ""])
    worst = ratios.get(next(iter(LOOPS)), 0.0)
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\n{args.calls} calls per loop, best of {REPEAT}; sched in this process, tclsh {'not found' if tcl is None else 'as a child'}")
    return 0 if tcl is None or worst < RATIO_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
