#!/usr/bin/env python3
"""Scheduler benchmarks (issue 3): idle cost of many tasks, and local-job throughput.

    .venv/bin/python bench/bench_sched.py [--idle-seconds 60] [--jobs 2000]

1. CPU use of the scheduler over a time window with 10,000 defined idle tasks: half wait
   outside their trange window, half look every 10 s and skip in task.exec. Target: < 5 % of
   one core.
2. Throughput of N `true` jobs with `npending 4` (exit macro included), next to `xargs -P4`
   and GNU `parallel -j4` (when installed) run on the same machine in the same run.
Prints a table; nothing is asserted (that is the tests' job).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import sys
import time
from datetime import datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import psched  # noqa: E402
from peers import peer_rows, print_rate_table  # noqa: E402
from psched.scheduler.eventloop import run_until  # noqa: E402
from psched.scheduler.attach import scheduler_of  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle_tasks(count: int, seconds: float) -> dict:
    interp = psched.Interp(stdout=io.StringIO())
    now = datetime.now()
    closed_from = (now + timedelta(hours=2)).strftime("%H:%M")
    closed_to = (now + timedelta(hours=3)).strftime("%H:%M")
    parts = []
    for i in range(count):
        if i % 2:
            parts.append(f"task w{i}\n  host LOCAL\n  command true\n  trange {closed_from} {closed_to}\n  periods -poll 1\nend\n")
        else:
            parts.append(f"task p{i}\n  host LOCAL\n  command true\n  periods -poll 10\n  task.exec\n    skip\n  end\nend\n")
    t0 = time.perf_counter()
    interp.eval("".join(parts), "idle.sched")
    define = time.perf_counter() - t0
    interp.eval("run")
    run_until(asyncio.sleep(1.0))  # the first look of every task happens here
    c0, w0 = cpu(), time.perf_counter()
    run_until(asyncio.sleep(seconds))
    used, wall = cpu() - c0, time.perf_counter() - w0
    scheduler_of(interp).stop()
    return {"tasks": count, "define_s": define, "wall_s": wall, "cpu_s": used, "cpu_pct": 100 * used / wall}


def sched_throughput(jobs: int) -> float:
    out = io.StringIO()
    interp = psched.Interp(stdout=out)
    interp.eval(f"""
set n 0
task many
  host LOCAL
  command true
  nmax {jobs}
  npending 4
  task.exit 0
    incr n
  end
end
""")
    t0 = time.perf_counter()
    interp.eval("run\nwait -timeout 600")
    elapsed = time.perf_counter() - t0
    assert interp.eval("set n") == str(jobs), "every exit macro must have run"
    scheduler_of(interp).stop()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()

    idle = idle_tasks(args.tasks, args.idle_seconds)
    print(f"\nidle scheduler: {idle['tasks']} tasks defined in {idle['define_s']:.2f} s")
    print(f"{'window s':>10} {'cpu s':>8} {'cpu % of one core':>18}  target")
    print(f"{idle['wall_s']:>10.1f} {idle['cpu_s']:>8.2f} {idle['cpu_pct']:>18.2f}  < 5 %")

    n = args.jobs
    rows = [("sched (npending 4, exit macro)", sched_throughput(n))] + peer_rows(n)
    print_rate_table(f"local throughput, {n} `true` jobs", n, rows, width=32)


if __name__ == "__main__":
    main()
