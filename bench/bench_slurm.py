#!/usr/bin/env python3
"""Slurm host overhead (issue 18): N short jobs from one sched task through a Slurm host of
pcontrol, next to a plain loop of `sbatch --wrap` in the same run, on the same private
one-node cluster (tests/tools/slurmcluster.py: munged, slurmctld, slurmd; needs root and
Debian's slurm packages, which scripts/setup installs).

    .venv/bin/python bench/bench_slurm.py [--jobs 500] [--poll 1.0] [--rounds 1]

Both are timed from the first submission to the moment every job has ended and its end is
known: the loop then polls `squeue` every 0.1 s (kinder to it than pcontrol's --poll); sched
counts the jobs' exit macros. Target: pcontrol adds no more than 10 % to what Slurm itself
takes. Prints a table; asserts only that every job ended well.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "tools"))
sys.path.insert(0, str(ROOT / "bench"))

import psched  # noqa: E402
from peers import timed_run  # noqa: E402
from slurmcluster import SlurmCluster, missing  # noqa: E402
from waiting import wait_until_sync  # noqa: E402

ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING"}


def plain_loop(cluster: SlurmCluster, jobs: int, out_dir: Path) -> float:
    """A shell user's way: sbatch --wrap in a loop, then squeue until all have ended."""
    t0 = time.perf_counter()
    ids = []
    for number in range(jobs):
        done = subprocess.run(["sbatch", "--parsable", f"--output={out_dir}/loop-{number}.out",
                               "--wrap", "true"], env=cluster.env, capture_output=True,
                              text=True, check=True)
        ids.append(done.stdout.strip().split(";")[0])
    while True:
        out = cluster.run("squeue", "-h", "-t", "all", "-j", ",".join(ids), "-O",
                          "State:|").stdout.split()
        states = [s.rstrip("|") for s in out]
        if len(states) == jobs and not any(s in ACTIVE for s in states):
            elapsed = time.perf_counter() - t0
            assert all(s == "COMPLETED" for s in states), set(states)
            return elapsed
        time.sleep(0.1)


def through_sched(cluster: SlurmCluster, jobs: int, poll: float) -> float:
    home = tempfile.mkdtemp(prefix="bench-slurm.", dir="/tmp")
    os.environ["SCHED_HOME"] = home
    os.environ["SLURM_CONF"] = cluster.env["SLURM_CONF"]
    from pcontrol import daemon
    from pcontrol.paths import Paths

    paths = Paths.for_home(home)
    daemon.start(paths, ["--slurm-poll", str(poll)])
    try:
        interp = psched.Interp(stdout=io.StringIO())
        interp.eval(f"controller host add cluster1 -slurm -slots {jobs}")
        wait_until_sync(lambda: "IDLE" in interp.eval("controller check host cluster1"),
                        "the Slurm host is up")
        interp.eval(f"""
set n 0
task many
  command true
  host cluster1 -required
  nmax {jobs}
  npending {jobs}
  periods -poll 0.05
  task.exit 0
    incr n
  end
end
""")
        return timed_run(interp, jobs)
    finally:
        daemon.stop(paths, kill=True, force=True)
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--poll", type=float, default=1.0, help="pcontrol --slurm-poll")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    why = missing()
    if why:
        print(f"bench_slurm: {why}", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="bench-slurm-cluster.", dir="/tmp"))
    cluster = SlurmCluster(directory)
    cluster.start()
    try:
        rows = []
        for _ in range(args.rounds):
            rows.append(("plain loop of sbatch --wrap, squeue every 0.1 s",
                         plain_loop(cluster, args.jobs, directory)))
            rows.append((f"sched task -> pcontrol Slurm host (--slurm-poll {args.poll:g})",
                         through_sched(cluster, args.jobs, args.poll)))
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\n{args.jobs} short jobs (`true`) on a one-node Slurm ({os.cpu_count()} CPUs here)")
    print(f"{'runner':<56} {'seconds':>8} {'jobs/s':>8}")
    for name, secs in rows:
        print(f"{name:<56} {secs:>8.2f} {args.jobs / secs:>8.0f}")
    loop = min(s for n, s in rows if n.startswith("plain"))
    ours = min(s for n, s in rows if not n.startswith("plain"))
    print(f"pcontrol adds {100 * (ours - loop) / loop:+.1f} % to the plain loop (target: <= +10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
