"""Memory over months: sched's peak memory after N/10 and after N jobs of a standing task.

    .venv/bin/python bench/bench_memory.py [--jobs 100000] [--keep 10000]

`sched` runs as a subprocess on a throwaway $SCHED_HOME with one standing `host LOCAL` task of
`true` jobs (no nmax; 64 out at a time) whose exit macro prints every 1000th job id. When the
ids pass N/10 and N, the bench reads the process's peak resident size (VmHWM) and current
size (VmRSS) from /proc, then stops sched with SIGTERM (its clean stop). The peer, run the
same way in the same process tree, is the same sched with a retention too large to forget
anything (`retain -count` above N, `-age` a year): what memory does without the retention.

Target (issue 12): with the retention, the peak after N is within 10 % of the peak after N/10.
On a shared 2-core machine local jobs run at about 100 a second, so the default N = 100,000
takes a quarter of an hour per row; `--jobs 20000` shows the same shape in a few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHED = [str(Path(sys.executable).parent / "sched")]


def script(keep: int, age: float) -> str:
    return f"""
retain -count {keep} -age {age}
task standing
  host LOCAL
  command true
  npending 64
  task.exit default
    if {{$job_id % 1000 == 0}} {{ puts $job_id }}
  end
end
run
wait
"""


def memory(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process, in kB."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields["VmHWM"], fields["VmRSS"]


def run(jobs: int, keep: int, age: float) -> list[tuple[int, int, int, float]]:
    """[(jobs, peak kB, rss kB, seconds)] at jobs/10 and at jobs."""
    home = Path(tempfile.mkdtemp(prefix="bm-", dir="/tmp"))
    path = home / "standing.sched"
    path.write_text(script(keep, age))
    env = dict(os.environ, SCHED_HOME=str(home / "home"))
    proc = subprocess.Popen([*SCHED, str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    marks = [max(1000, jobs // 10), jobs]
    rows = []
    t0 = time.perf_counter()
    try:
        for line in proc.stdout:
            done = int(line)
            if marks and done >= marks[0]:
                peak, rss = memory(proc.pid)
                rows.append((marks.pop(0), peak, rss, time.perf_counter() - t0))
                if not marks:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--keep", type=int, default=10_000, help="retain -count for the measured run")
    args = parser.parse_args()
    print(f"sched's memory with a standing task of `true` jobs ({args.jobs} jobs)")
    print(f"{'runner':<44} {'jobs':>8} {'peak MB':>8} {'rss MB':>8} {'seconds':>8}")
    results = {}
    for name, keep, age in ((f"sched (retain -count {args.keep}, 1 day)", args.keep, 86_400.0),
                            ("sched, retention off (peer)", args.jobs * 10, 365 * 86_400.0)):
        rows = run(args.jobs, keep, age)
        results[name] = rows
        for jobs, peak, rss, secs in rows:
            print(f"{name:<44} {jobs:>8} {peak / 1024:>8.1f} {rss / 1024:>8.1f} {secs:>8.1f}")
    first = next(iter(results.values()))
    if len(first) == 2:
        growth = first[1][1] / first[0][1] - 1
        print(f"\npeak after {first[1][0]} vs after {first[0][0]} jobs, with the retention: {growth:+.1%} "
              f"(target within 10 %)")
        return 0 if growth <= 0.10 else 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
