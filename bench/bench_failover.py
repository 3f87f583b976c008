"""Failover time of `sched --serve --ha`: the leader killed (SIGKILL) to the first job dispatched
by the new leader, over N failovers, against its peer: one plain `sched --serve` that a
supervisor restarts at once after the same kill (systemd's Restart=always, RestartSec=0).

    .venv/bin/python bench/bench_failover.py [--failovers 10] [--ttl 2]

A private etcd (Debian's etcd binary, free ports, a throwaway directory) and two members, each
with its own $SCHED_HOME, sharing one file with a periodic task (`periods -exec 1`, host LOCAL)
whose every job appends its run number and the time it was fired. Each round kills the leader
and measures until the next run line appears; the killed member is started again as a standby.
Target: under 2 lease TTLs. At the end, every run number must appear exactly once, in order.

A second pool does the same with controller jobs (`host localhost`, through each member's own
pcontrol, the members sharing a secret and the local agents): each round kills the leader's
sched AND its pcontrol; each job runs 2 s and exits with a status of its own, and its exit
macro appends `RUN STATUS`: every run must fire once and its exit macro run once, with the
job's true status, though a job may have run across the failover (psched.scheduler.hatakeover).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))

from etcdserver import EtcdServer  # noqa: E402
from hapool import TASKS, Pool, check_each_run_once  # noqa: E402

CONTROLLER_TASKS = """\
catch {{controller host add localhost -slots 20}}
""" + TASKS.replace("host LOCAL", "host localhost\n  npending 10").replace(
    '>> {runs}"', '>> {runs}; sleep 2; exit [expr {{$job_count % 4}}]"').replace(
    "  end\nend", "  end\n  task.exit default\n"
    '    exec sh -c "echo [lindex [lindex $job_command 2] 1] $exit_status $job_rerun >> {exits}"\n  end\nend')
from waiting import wait_until_sync  # noqa: E402


def first_new_run(pool: Pool, count: int, timeout: float) -> float:
    wait_until_sync(lambda: len(pool.runs()) > count, "a run after the kill", timeout)
    return time.monotonic()


def ha_failovers(directory: Path, etcd: EtcdServer, rounds: int, ttl: int,
                 controller: bool = False) -> tuple[list[float], str]:
    if controller:
        pool = Pool(directory, f"{etcd.url}/bench-controller", ttl=ttl, tasks=CONTROLLER_TASKS,
                    secret=os.urandom(32))
    else:
        pool = Pool(directory, f"{etcd.url}/bench", ttl=ttl)
    times = []
    try:
        members = {"a": pool.member("a")}
        members["a"].wait_log("serving")
        members["b"] = pool.member("b")
        members["b"].wait_log("standby: ")
        leader, standby = "a", "b"
        for _ in range(rounds):
            wait_until_sync(lambda: len(pool.runs()) >= 2, "the leader fires", 30)
            count = len(pool.runs())
            pcontrol = members[leader].pcontrol_pid() if controller else None
            killed = time.monotonic()
            if pcontrol is not None:
                os.kill(pcontrol, signal.SIGKILL)   # the leader's machine dies: sched and pcontrol
            members[leader].kill9()
            times.append(first_new_run(pool, count, 10 * ttl + 30) - killed)
            members[standby].wait_log("taken over")
            offset = len(members[leader].text())
            members[leader] = pool.member(leader)           # back, as a standby
            members[leader].wait_log("standby: ", after=offset)
            leader, standby = standby, leader
        try:
            check_each_run_once(pool.runs(), 1.0)
            verdict = "yes"
            if controller:
                verdict = exits_once(pool)
        except AssertionError as err:
            verdict = f"NO: {err}"
        skipped = sum(m.text().count("may have started; not sent again") for m in members.values())
        adopted = sum(m.text().count(" runs on ") + m.text().count("ended while no controller led")
                      for m in members.values())
        verdict += (f" ({adopted} job(s) taken over running or ended across a failover)" if controller else
                    f" ({skipped} job(s) found mid-send at a failover and not sent again)")
    finally:
        pool.close()
    return times, verdict


def exits_once(pool: Pool) -> str:
    """Every fired run's exit macro once, with the job's true status (its run number modulo 4)."""
    fired = {n for n, _ in pool.runs()}

    def exits() -> list[list[str]]:
        return [line.split() for line in pool.exits_file.read_text().splitlines()] if pool.exits_file.exists() else []

    wait_until_sync(lambda: {int(e[0]) for e in exits()} >= fired, "the exit macros of every fired run", 60)
    seen = [int(e[0]) for e in exits() if int(e[0]) in fired]
    twice = sorted(n for n in set(seen) if seen.count(n) > 1)
    wrong = [e for e in exits() if int(e[0]) in fired and e[1] != str(int(e[0]) % 4)]
    if twice or wrong:
        return f"NO: exit macros twice {twice}, wrong status {wrong}"
    return f"yes, and each of the {len(fired)} exit macros once with the job's true status"


def plain_restarts(directory: Path, rounds: int) -> list[float]:
    pool = Pool(directory, "", ttl=1)
    times = []
    try:
        member = pool.member("solo", ha=False)
        offset = 0
        for _ in range(rounds):
            member.wait_log("serving", after=offset)
            wait_until_sync(lambda: len(pool.runs()) >= 2, "it fires", 30)
            count = len(pool.runs())
            killed = time.monotonic()
            member.kill9()
            offset = len(member.text())
            member = pool.member("solo", ha=False)       # the supervisor's restart
            times.append(first_new_run(pool, count, 60) - killed)
    finally:
        pool.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--ttl", type=int, default=2, help="the leader's lease in seconds (--ha-ttl)")
    args = parser.parse_args()
    why = EtcdServer.missing()
    if why:
        print(f"bench_failover: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-failover.", dir="/tmp") as tmp:
        etcd = EtcdServer.start(Path(tmp) / "etcd")
        try:
            (Path(tmp) / "ha").mkdir()
            ha, verdict = ha_failovers(Path(tmp) / "ha", etcd, args.failovers, args.ttl)
            (Path(tmp) / "hactl").mkdir()
            hactl, verdict_ctl = ha_failovers(Path(tmp) / "hactl", etcd, args.failovers, args.ttl, controller=True)
        finally:
            etcd.stop()
        (Path(tmp) / "plain").mkdir()
        plain = plain_restarts(Path(tmp) / "plain", args.failovers)
    print(f"\nfailover: leader killed (SIGKILL) to the first job of the next leader; {args.failovers} rounds, "
          f"lease TTL {args.ttl} s (target: under {2 * args.ttl} s)")
    print(f"{'runner':<58} {'median s':>9} {'max s':>7}")
    print(f"{'sched --serve --ha (standby takes over), LOCAL jobs':<58} {statistics.median(ha):>9.2f} {max(ha):>7.2f}")
    print(f"{'  ... controller jobs, sched and pcontrol killed':<58} {statistics.median(hactl):>9.2f} "
          f"{max(hactl):>7.2f}")
    print(f"{'sched --serve, restarted at once by a supervisor (peer)':<58} {statistics.median(plain):>9.2f} "
          f"{max(plain):>7.2f}")
    print(f"every run number fired exactly once across the failovers: {verdict}")
    print(f"controller jobs: every run fired exactly once: {verdict_ctl}")
    return 0 if max(ha + hactl) < 2 * args.ttl and verdict.startswith("yes") and verdict_ctl.startswith("yes") else 1


if __name__ == "__main__":
    sys.exit(main())
