"""Benchmark: from `host add` to the host IDLE when pcontrol brings its agent along
(pcontrol.bootstrap), with and without the host's cache, next to `ssh host true`.

    .venv/bin/python bench/bench_bootstrap.py [--rounds 5]

Needs root and /usr/sbin/sshd: a throwaway sshd on 127.0.0.1 and a fresh account whose
PATH has python3 but no pclient (tests/pcontrol/sshd_harness.py). The controller runs in
this process (as in the tests), reaching the host through an ssh client config; `host add`
is the request sched's `controller host add` sends. Each round times, in the same run:

    ssh node true             one ssh login, a command, logout (the floor)
    ssh node python3 -c pass  the same with the host's Python started once
    host add, no cache        the account's ~/.cache/pclient removed first: the agent is sent
    host add, cached          the agent is read from the cache, verified, nothing sent
    host add -connect         an agent installed by hand (`pcontrol agent-bundle` copied to
                              the host), started with -connect "ssh node python3 FILE"

Prints one table: median, min and max milliseconds per row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pcontrol"))     # sshd_harness, pcontrol_harness
sys.path.insert(0, str(ROOT / "tests" / "tools"))        # waiting (for pcontrol_harness)

from pcontrol.bootstrap import current_bundle, write_zipapp  # noqa: E402
from pcontrol_harness import controller_running, make_config  # noqa: E402
from sshd_harness import (SshdUnavailable, fresh_user, ssh_config,  # noqa: E402
                          start_sshd)


async def host_add_to_idle(h, name: str) -> tuple[float, str]:
    """Seconds from `host add NAME` to its IDLE event; how the agent got there."""
    mark = len(h.log.events)
    start = time.perf_counter()
    await h.cmd("host", "add", name)
    record = await h.wait_host(name, "IDLE", timeout=60, after=mark)
    seconds = time.perf_counter() - start
    await h.cmd("host", "delete", name)
    return seconds, record["agent"].get("bootstrap", "")


def ssh_run(config: Path, command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["ssh", "-F", str(config), "node", command], check=True)
    return time.perf_counter() - start


async def measure(config: Path, cache: Path, installed: str, home: str, rounds: int
                  ) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {"ssh node true": [], "ssh node python3 -I -c pass": [],
                                    "host add -> IDLE, no cache": [],
                                    "host add -> IDLE, cached": [],
                                    "host add -connect (installed) -> IDLE": []}
    settings = make_config(ssh_command=("ssh", "-F", str(config)), heartbeat=1.0)
    async with controller_running(home, settings) as h:
        for index in range(rounds):
            rows["ssh node true"].append(await asyncio.to_thread(ssh_run, config, "true"))
            rows["ssh node python3 -I -c pass"].append(
                await asyncio.to_thread(ssh_run, config, "python3 -I -c pass"))
            shutil.rmtree(cache, ignore_errors=True)
            seconds, how = await host_add_to_idle(h, f"cold{index}")
            assert how.startswith("sent "), how
            rows["host add -> IDLE, no cache"].append(seconds)
            seconds, how = await host_add_to_idle(h, f"warm{index}")
            assert how.startswith("from the cache"), how
            rows["host add -> IDLE, cached"].append(seconds)
            mark = len(h.log.events)
            start = time.perf_counter()
            await h.cmd("host", "add", f"inst{index}", "-connect",
                        f"ssh -F {config} node python3 {installed}")
            await h.wait_host(f"inst{index}", "IDLE", timeout=60, after=mark)
            rows["host add -connect (installed) -> IDLE"].append(time.perf_counter() - start)
            await h.cmd("host", "delete", f"inst{index}")
    return rows


def print_table(rows: dict[str, list[float]]) -> None:
    width = max(len(name) for name in rows) + 2
    print(f"{'what':<{width}} {'median':>9} {'min':>9} {'max':>9}")
    for name, values in rows.items():
        cells = [statistics.median(values), min(values), max(values)]
        print(f"{name:<{width}} " + " ".join(f"{v * 1000:>6.0f} ms" for v in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    bundle = current_bundle()
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="pcb"))
    try:
        with start_sshd(work / "sshd") as sshd, fresh_user(sshd) as user:
            config = ssh_config(sshd, user.name, work / "ssh_config")
            home = work / "home"
            home.mkdir()
            installed = user.home / "pclient.pyz"
            write_zipapp(installed, bundle)
            os.chown(installed, user.uid, user.gid)
            print(f"{options.rounds} rounds; agent bundle {len(bundle.data)} bytes "
                  f"(sha256 {bundle.sha256[:12]}); host: {user.name}@127.0.0.1 via sshd",
                  flush=True)
            rows = asyncio.run(measure(config, user.home / ".cache" / "pclient",
                                       installed.name, str(home), options.rounds))
            print_table(rows)
    except SshdUnavailable as exc:
        print(f"skipped: {exc}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
