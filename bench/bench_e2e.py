#!/usr/bin/env python3
"""End-to-end throughput (issue 5): sched -> pcontrol -> 2 local hosts x 2 slots -> `true`.

    .venv/bin/python bench/bench_e2e.py [--jobs 2000] [--npending 8]

One task makes N trivial jobs with `npending 8` on controller hosts, each job's task.exit
macro counts it; the same N `true` runs through `xargs -P4` and GNU `parallel -j4` in the same
run. Target: at least twice GNU parallel's rate. Prints a table; asserts only that every exit
macro ran.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import psched  # noqa: E402
from peers import peer_rows, print_rate_table, timed_run  # noqa: E402


def through_sched(jobs: int, npending: int) -> float:
    home = tempfile.mkdtemp(prefix="bench-e2e.", dir="/tmp")
    os.environ["SCHED_HOME"] = home
    from pcontrol import daemon
    from pcontrol.paths import Paths

    paths = Paths.for_home(home)
    daemon.start(paths, [])
    try:
        interp = psched.Interp(stdout=io.StringIO())
        pclient = f"{sys.executable} -m pclient --slots 2"
        interp.eval(f"controller host add h1 -slots 2 -connect {{{pclient}}}")
        interp.eval(f"controller host add h2 -slots 2 -connect {{{pclient}}}")
        interp.eval(f"""
set n 0
task many
  command true
  nmax {jobs}
  npending {npending}
  task.exit 0
    incr n
  end
end
""")
        return timed_run(interp, jobs)
    finally:
        daemon.stop(paths, kill=True, force=True)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--npending", type=int, default=8)
    args = ap.parse_args()
    n = args.jobs
    rows = [(f"sched+pcontrol (npending {args.npending}, 2x2 slots, exit macro)", through_sched(n, args.npending))]
    rows += peer_rows(n)
    print_rate_table(f"end-to-end throughput, {n} `true` jobs", n, rows)
    par = rows[2][1]
    if par:
        print(f"\nsched / GNU parallel rate: {par / rows[0][1]:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
