#!/usr/bin/env python3
"""Reload without a burst (issue 17): job starts per second around a reload and at a cold start.

    .venv/bin/python bench/bench_reload.py [--tasks 1000] [--period 60]

A real served sched (`sched --serve`, its own $SCHED_HOME in a temporary directory) runs a
script of N local tasks, each `command true` with `periods -poll P -exec P`, all writing one
`joblog`, whose Starttime column (when each job started, as sched saw it) is what is counted.
On the real clock, with P = 60 s by default (about 3.5 minutes in all):

1. cold start: the starts in each second of the first period after `sched --serve` returned;
   target: no second above 3x the average rate;
2. reload: every task's command is changed in the file and `sched -c reload --attach` is run
   two periods after the start; the starts of the period before and the period after;
   target: the busiest second after the reload within 1.2x of the busiest second before
   (Icinga's anchor: 6x), and the same for the average rates.

The peer, run in the same process tree: the same script run by a plain `sched FILE` (no server:
its first runs are not spread), whose busiest second is the burst a naive scheduler makes.
Prints a table; nothing is asserted (that is the tests' job).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SCHED = [sys.executable, "-m", "psched"]


def script(tasks: int, period: float, joblog: Path, command: str) -> str:
    parts = [f"task probe{i}\n  host LOCAL\n  command {command}\n  periods -poll {period:g} -exec {period:g}\n"
             f"  joblog {joblog}\nend\n" for i in range(tasks)]
    return "".join(parts) + "run\n"


def starts(joblog: Path) -> list[float]:
    if not joblog.exists():
        return []
    lines = joblog.read_text().splitlines()[1:]
    return sorted(float(line.split("\t")[2]) for line in lines if line.count("\t") >= 8)


def per_second(times: list[float], start: float, seconds: float) -> list[int]:
    counts = Counter(int(t - start) for t in times if start <= t < start + seconds)
    return [counts.get(s, 0) for s in range(int(seconds))]


def run_sched(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED + list(args), env=env, capture_output=True, text=True, timeout=120)


def served(tasks: int, period: float, work: Path) -> dict:
    home, joblog, path = work / "home", work / "served.joblog", work / "site.sched"
    env = dict(os.environ, SCHED_HOME=str(home))
    path.write_text(script(tasks, period, joblog, "true"))
    answer = run_sched(env, "--serve", str(path))
    if answer.returncode != 0:
        raise SystemExit(f"the server did not start: {answer.stderr}")
    t0 = time.time()
    try:
        reload_at = t0 + 2 * period
        time.sleep(max(0.0, reload_at - time.time()))
        path.write_text(script(tasks, period, joblog, "true reloaded"))
        t_reload = time.time()
        reloaded = run_sched(env, "-c", "reload", "--attach")
        if reloaded.returncode != 0:
            raise SystemExit(f"reload failed: {reloaded.stderr}")
        time.sleep(max(0.0, t_reload + period + 2 - time.time()))
    finally:
        run_sched(env, "--stop")
    times = starts(joblog)
    return {"cold": per_second(times, t0, period), "before": per_second(times, t_reload - period, period),
            "after": per_second(times, t_reload, period), "reload": reloaded.stdout.strip()}


def plain_peer(tasks: int, period: float, work: Path, watch: float) -> list[int]:
    home, joblog, path = work / "peer-home", work / "peer.joblog", work / "peer.sched"
    env = dict(os.environ, SCHED_HOME=str(home))
    path.write_text(script(tasks, period, joblog, "true"))
    t0 = time.time()
    child = subprocess.Popen(SCHED + [str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(watch)
    child.send_signal(signal.SIGTERM)
    child.wait(60)
    return per_second(starts(joblog), t0, period)


def row(name: str, seconds: list[int], period: float) -> str:
    total = sum(seconds)
    average = total / period
    peak = max(seconds) if seconds else 0
    ratio = peak / average if average else float("inf")
    return f"{name:<46} {total:>7} {average:>8.1f} {peak:>8} {ratio:>10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--period", type=float, default=60.0, help="every task's period, seconds")
    parser.add_argument("--peer-seconds", type=float, default=10.0, help="how long the plain sched peer runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        peer = plain_peer(args.tasks, args.period, work, args.peer_seconds)
        result = served(args.tasks, args.period, work)
    p = args.period
    print(f"\n{args.tasks} local tasks, periods -poll {p:g} -exec {p:g}; job starts counted per second "
          f"from the joblog over one period ({p:g} s)")
    print(f"{'window':<46} {'starts':>7} {'avg/s':>8} {'peak/s':>8} {'peak/avg':>10}")
    print(row("plain `sched FILE`, cold start (peer)", peer, p))
    print(row("sched --serve, cold start (target peak/avg <= 3)", result["cold"], p))
    print(row("sched --serve, the period before the reload", result["before"], p))
    print(row("sched --serve, the period after the reload", result["after"], p))
    before, after = result["before"], result["after"]
    peak_ratio = max(after) / max(before) if before and max(before) else float("inf")
    rate_ratio = sum(after) / sum(before) if sum(before) else float("inf")
    print(f"\nafter/before the reload: busiest second {peak_ratio:.2f}x, average rate {rate_ratio:.2f}x "
          f"(target <= 1.2x; Icinga's anchor 6x)")
    print(f"the reload said: {result['reload']}")


if __name__ == "__main__":
    main()
