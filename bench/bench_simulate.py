"""Benchmark: `sched --simulate 7d` of 200 tasks with mixed periods and windows (issue 15).

    .venv/bin/python bench/bench_simulate.py [--days 7] [--tasks 200]

The script: 10 simulated hosts of 8 slots; 200 tasks whose -exec periods are 1 h, 2 h, 4 h,
6 h, 12 h or a day, and every 20th 15 min, a third of them with trange windows (office hours on weekdays, a night
window across midnight, an excluded early morning), some with -retry, every one with a
task.exit macro; a faults file with job times drawn from ranges, failing and timing-out
commands, a host down for 3 hours, a host's agent killed, and the controller unreachable for
half an hour. The whole real stack runs (scheduler, controller link, pcontrol's verbs and
Controller, HostTable) on virtual time; the target is under 10 s on this machine. The cost
is per job (about 0.5 ms of CPU each, through every layer), not per simulated second: the
table gives the jobs and the rate, and `--fast N` makes every Nth task a 15-minute one.

Printed beside it, as a peer in the same process tree: `systemd-analyze calendar`, which
answers one slice of the question (the trigger times of one timer), asked for the same number
of trigger times as the simulation made jobs, one call per task.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCHED = [str(Path(sys.executable).parent / "sched")]
TARGET = 10.0

PERIODS = (3600, 7200, 14400, 21600, 43200, 86400)
WINDOWS = (None, None, "trange 08:00 18:00 -days mon-fri", None, "trange 22:00 04:00", "trange -exclude 00:00 06:00")
FAULTS = """\
job "job3.sh*" takes 2m..8m
job "job5.sh*" takes 1s exits 1
job "job7.sh*" takes 20m times out
job "*" takes 5s..60s
host n3 down at 1d for 3h
host n5 killed at 2d
controller unreachable at 4d for 30m
"""


def period_of(i: int, fast: int) -> int:
    return 900 if fast and i % fast == 0 else PERIODS[i % len(PERIODS)]


def script(tasks: int, fast: int) -> str:
    lines = [f"controller host add n{h} -slots 8" for h in range(10)]
    for i in range(tasks):
        period = period_of(i, fast)
        window = WINDOWS[(i // len(PERIODS)) % len(WINDOWS)]
        lines += [f"task t{i:03d}", f"  command job{i % 17}.sh {i}", f"  periods -poll {period} -exec {period} -timeout 600"]
        if window:
            lines.append(f"  {window}")
        if i % 7 == 0:
            lines.append("  retry 1")
        lines += ["  task.exit default", "    incr ::ended", "  end", "end"]
    lines += ["set ended 0", "run"]
    return "\n".join(lines) + "\n"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_simulation(days: int, tasks: int, fast: int, work: Path) -> tuple[float, float, int, int]:
    (work / "week.sched").write_text(script(tasks, fast))
    (work / "week.faults").write_text(FAULTS)
    home = work / "home"
    home.mkdir()
    cpu0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run([*SCHED, "--simulate", f"{days}d", "--start", "2025-03-03 00:00", "--faults",
                           str(work / "week.faults"), "--seed", "1", "--json", str(work / "week.sched")],
                          capture_output=True, text=True, env=dict(os.environ, SCHED_HOME=str(home)))
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"sched --simulate failed: {done.stderr}")
    assert not any(home.iterdir()), "a simulation wrote to $SCHED_HOME"
    jobs = sum(1 for line in done.stdout.splitlines() if '"event": "start"' in line)
    return wall, cpu, jobs, len(done.stdout.splitlines())


def run_peer(tasks: int, fast: int, jobs: int) -> float | None:
    if shutil.which("systemd-analyze") is None:
        return None
    per_task = max(1, jobs // tasks)
    t0 = time.perf_counter()
    for i in range(tasks):
        minutes = period_of(i, fast) // 60
        spec = f"*-*-* *:00/{minutes}:00" if minutes < 60 else f"*-*-* 00/{minutes // 60}:00:00"
        subprocess.run(["systemd-analyze", "calendar", f"--iterations={per_task}", spec],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--fast", type=int, default=20, help="every Nth task runs every 15 min (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        wall, cpu, jobs, lines = run_simulation(args.days, args.tasks, args.fast, Path(tmp))
    peer = run_peer(args.tasks, args.fast, jobs)
    span = args.days * 86400
    print(f"\nsimulating {args.days} days of {args.tasks} tasks ({jobs} jobs started, {lines} JSON lines)")
    print(f"{'runner':<52} {'wall s':>8} {'cpu s':>8} {'virtual s / wall s':>19}")
    print(f"{'sched --simulate ' + str(args.days) + 'd (the real stack, virtual time)':<52} {wall:>8.2f} {cpu:>8.2f} "
          f"{span / wall:>19.0f}")
    if peer is None:
        print(f"{'systemd-analyze calendar (trigger times only)':<52} {'-':>8}  (not installed)")
    else:
        print(f"{'systemd-analyze calendar (trigger times only)':<52} {peer:>8.2f} {'':>8} {span / peer:>19.0f}")
    print(f"{'the same week in real time':<52} {span:>8.0f}")
    print(f"rate: {jobs / cpu:.0f} jobs per CPU second, {jobs / wall:.0f} per wall second")
    verdict = "met" if wall < TARGET else "NOT met"
    print(f"target: under {TARGET:g} s of wall time: {verdict} (cpu {cpu:.2f} s; the machine is shared, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
