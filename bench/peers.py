"""The peers every throughput bench runs beside us, in the same process tree: xargs and GNU parallel;
and the timed run of an in-process sched that the end-to-end benches share.

    peer_rows(n) -> [(name, seconds or None), ...]     None: not installed
    timed_run(interp, jobs) -> seconds                 `run` + `wait`, every exit macro checked
"""

from __future__ import annotations

import shutil
import subprocess
import time

PEERS = (
    ("xargs -P4", "xargs", "seq {n} | xargs -P4 -I{{}} true"),
    ("GNU parallel -j4", "parallel", "seq {n} | parallel -j4 true"),
)


def shell_seconds(cmd: str) -> float:
    """Wall seconds of a shell pipeline (the peers are shell commands by nature)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def peer_rows(n: int) -> list[tuple[str, float | None]]:
    """Run N `true` jobs through each peer that is installed."""
    return [(name, shell_seconds(cmd.format(n=n)) if shutil.which(tool) else None) for name, tool, cmd in PEERS]


def print_rate_table(title: str, n: int, rows: list[tuple[str, float | None]], width: int = 56) -> None:
    print(f"\n{title}")
    print(f"{'runner':<{width}} {'seconds':>8} {'jobs/s':>8}")
    for name, secs in rows:
        if secs is None:
            print(f"{name:<{width}} {'-':>8} {'-':>8}  (not installed: apt-get install parallel)")
        else:
            print(f"{name:<{width}} {secs:>8.2f} {n / secs:>8.0f}")


def timed_run(interp, jobs: int) -> float:
    """Seconds of `run` and `wait` in an interpreter whose task counts its exit macros in `n`;
    then the scheduler stops and its controller link closes."""
    from psched.scheduler.attach import scheduler_of
    from psched.scheduler.eventloop import run_until

    t0 = time.perf_counter()
    interp.eval("run\nwait -timeout 900")
    elapsed = time.perf_counter() - t0
    assert interp.eval("set n") == str(jobs), "every exit macro must have run"
    sched = scheduler_of(interp)
    sched.stop()
    run_until(sched.remote.aclose())
    return elapsed
