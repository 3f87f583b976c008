"""Benchmark: start skew of a synchronized run, 20 targets on 20 local agents (each its own
pclient process), next to NetJobs' way in the same run: "start" sent to each agent in turn.

    .venv/bin/python bench/bench_sync.py [--agents 20] [--runs 30]

Both modes go through the same pcontrol daemon, the same agents and the same gates (each
target is forked and waiting before the start); they differ only in the start itself:

  instant     pcontrol picks an instant a little ahead and sends every agent one `go`
              naming it (and the agent's measured clock offset); each gate starts its
              program at that instant by its own clock.
  in turn     (the baseline, as NetJobs did) pcontrol sends "go now" to each agent, one
              after another; each gate starts its program when its agent passes it on.

The spread of a run is max - min of its targets' real start times (noted by each gate just
before its exec). Two measures: "reported" is what `sync run` reports (each start corrected
by its agent's measured offset); "shared clock" uses the raw times, which on one machine
are readings of the same clock: the truth, including any error in the measured offsets.
The table gives p50, p95 and max of the spreads over the runs of each mode; the targets are
p95 < 2 ms and max < 5 ms for the instant start, and at least 10x tighter than in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pcontrol import daemon
from pcontrol.client import ControllerClient
from pcontrol.paths import Paths
from pcontrol.syncspec import percentile

LOCAL_AGENT = f"{shlex.quote(sys.executable)} -m pclient"


def spreads(result: dict) -> tuple[float, float]:
    """(reported, shared clock) spreads of one run, in ms."""
    starts = [t["start_ms"] for t in result["targets"] if t["start_ms"] is not None]
    raw = [t["start_ms"] + t["offset_ms"] for t in result["targets"] if t["start_ms"] is not None]
    if len(starts) != len(result["targets"]):
        raise RuntimeError(f"a target did not start: {[t['reason'] for t in result['targets']]}")
    return max(starts) - min(starts), max(raw) - min(raw)


async def wait_hosts_up(client: ControllerClient, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hosts = await client.call("hosts", "-json")
        if sum(1 for h in hosts if h["state"] == "IDLE") == count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the {count} agents did not all come up within {timeout:g} s")


async def bench(home: Path, agents: int, runs: int) -> dict[str, list[tuple[float, float]]]:
    client = await ControllerClient.connect(home)
    try:
        names = [f"a{i:02d}" for i in range(1, agents + 1)]
        for name in names:
            await client.call("host", "add", name, "-connect", LOCAL_AGENT)
        await wait_hosts_up(client, agents)
        targets = [{"host": name, "argv": ["true"]} for name in names]
        measured: dict[str, list[tuple[float, float]]] = {"instant": [], "in turn": []}
        for run in range(runs + 1):           # run 0 warms up both modes (page cache, imports)
            for mode, sequential in (("instant", False), ("in turn", True)):
                spec = {"name": f"{mode.replace(' ', '')}{run}", "targets": targets, "sequential": sequential}
                result = await client.call("sync", "run", json.dumps(spec), timeout=None)
                if result["verdict"] != "success":
                    raise RuntimeError(f"{mode} run {run} failed: {result['reason']}")
                if run:
                    measured[mode].append(spreads(result))
        return measured
    finally:
        await client.close()


def report(measured: dict[str, list[tuple[float, float]]], agents: int, runs: int) -> int:
    print(f"start skew: {agents} targets on {agents} local agents, {runs} runs per mode, "
          f"{os.cpu_count()} CPUs; spread = max - min of real start times, ms")
    header = f"{'start':<34} {'measure':<13} {'p50':>8} {'p95':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    stats = {}
    for mode, label in (("instant", "pcontrol: one instant (sync run)"),
                        ("in turn", "NetJobs: go to each in turn")):
        for which, name in ((0, "reported"), (1, "shared clock")):
            values = [pair[which] for pair in measured[mode]]
            row = (percentile(values, 0.5), percentile(values, 0.95), max(values))
            stats[(mode, which)] = row
            print(f"{label:<34} {name:<13} {row[0]:>8.3f} {row[1]:>8.3f} {row[2]:>8.3f}")
    ours, theirs = stats[("instant", 1)], stats[("in turn", 1)]
    ratio = theirs[1] / ours[1] if ours[1] > 0 else math.inf
    print(f"\nshared clock, instant vs in turn: p95 {ratio:.1f}x tighter")
    checks = [("p95 spread < 2 ms", ours[1] < 2.0), ("max spread < 5 ms", ours[2] < 5.0),
              (">= 10x tighter than in turn (p95)", ratio >= 10.0)]
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in checks) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bsync.", dir="/tmp"))
    paths = Paths.for_home(home)
    started = daemon.start(paths, [])
    if not started.ok:
        print(f"cannot start pcontrol: {started.message}", file=sys.stderr)
        return 2
    try:
        measured = asyncio.run(bench(home, options.agents, options.runs))
    finally:
        daemon.stop(paths, kill=True, force=True)
        shutil.rmtree(home, ignore_errors=True)
    return report(measured, options.agents, options.runs)


if __name__ == "__main__":
    sys.exit(main())
