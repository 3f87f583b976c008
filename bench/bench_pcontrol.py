"""Benchmark: N trivial `true` jobs through pcontrol to 2 local hosts with 2 slots each,
next to `xargs -P4` and GNU `parallel -j4` on the same machine in the same run.

    .venv/bin/python bench/bench_pcontrol.py [--jobs 2000] [--ssh]

Prints one table: jobs, wall seconds, jobs/s, and for pcontrol the submit-to-start latency
(p50, p99; from the controller's `submitted` and `started` stamps). xargs and parallel have
no such stamps. With --ssh (needs /usr/sbin/sshd and root or a usable /run/sshd) it adds
pcontrol through a throwaway sshd on 127.0.0.1 next to `parallel -S` with ssh connection
sharing (-M) through the same sshd.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "pcontrol"))     # sshd_harness

from pcontrol.client import ControllerClient  # noqa: E402
from pcontrol.wire import EventKind  # noqa: E402

LOCAL_AGENT = f"{shlex.quote(sys.executable)} -m pclient"
#: Jobs sent one at a time to measure latency when slots are free.
IDLE_PROBES = 100
#: GNU parallel -S manages a few jobs per second here; more would take minutes.
PARALLEL_SSH_JOBS = 100


@dataclass
class Result:
    runner: str
    jobs: int
    seconds: float
    latencies: list[float] | None = None
    note: str = ""

    def row(self) -> list[str]:
        rate = self.jobs / self.seconds if self.seconds else 0.0
        p50 = p99 = "-"
        if self.latencies:
            ordered = sorted(self.latencies)
            p50 = f"{statistics.median(ordered) * 1000:.1f} ms"
            p99 = f"{ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000:.1f} ms"
        return [self.runner, str(self.jobs), f"{self.seconds:.2f}", f"{rate:.0f}", p50, p99,
                self.note]


def pcontrol(home: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "pcontrol", *args],
                            env=dict(os.environ, SCHED_HOME=home), capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"pcontrol {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


async def settled(client: ControllerClient) -> None:
    """Wait until pcontrol has written and told everything (the burst's harvest leaves
    thousands of changes to write): the next job then meets an idle controller. Its
    `submitted` stamp is taken when pcontrol reads the request, so a job read while that
    backlog drains would count the drain in its submit-to-start latency."""
    deadline = time.monotonic() + 60
    while True:
        journal = (await client.call("status"))["journal"]
        if not journal["backlog"] and not journal["held"]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"pcontrol did not settle within 60 s: {journal}")
        await asyncio.sleep(0.01)


async def one_at_a_time(client: ControllerClient, events, count: int) -> Result:
    """Submit-to-start latency with free slots: each job is sent after the last started."""
    await settled(client)
    latencies = []
    start = time.monotonic()
    for _ in range(count):
        job_id = (await client.call("job", "--", "true"))["id"]
        while True:
            event = await asyncio.wait_for(events.__anext__(), 60)
            if event.kind is EventKind.JOB and event.data["id"] == job_id \
                    and event.data["state"] == "DONE":
                latencies.append(event.data["started"] - event.data["submitted"])
                break
        await client.call("harvest", str(job_id))
    return Result("", count, time.monotonic() - start, latencies,
                  "one job at a time: latency with free slots")


async def run_through_pcontrol(home: str, hosts: dict[str, str], jobs: int) -> list[Result]:
    client = await ControllerClient.connect(home)
    try:
        await client.subscribe()
        for name, connect in hosts.items():
            argv = ["host", "add", name, "-slots", "2"]
            if connect:
                argv += ["-connect", connect]
            await client.call(*argv)
        idle: set[str] = set()
        for record in await client.call("hosts"):
            if record["state"] == "IDLE":
                idle.add(record["name"])
        events = client.events()
        while idle != set(hosts):
            event = await asyncio.wait_for(events.__anext__(), 60)
            if event.kind is EventKind.HOST:
                if event.data["state"] == "IDLE":
                    idle.add(event.data["name"])
                elif event.data["state"] == "DOWN":
                    raise RuntimeError(f"{event.data['name']} DOWN: {event.data['reason']}")
        start = time.monotonic()
        replies = await asyncio.gather(*[client.request(["job", "--", "true"])
                                         for _ in range(jobs)])
        wanted = {reply.data["id"] for reply in replies}
        done: dict[int, dict] = {}
        while len(done) < len(wanted):
            event = await asyncio.wait_for(events.__anext__(), 120)
            if event.kind is EventKind.JOB and event.data["state"] == "DONE" \
                    and event.data["id"] in wanted:
                done[event.data["id"]] = event.data
        seconds = time.monotonic() - start
        bad = [r for r in done.values() if r["outcome"] != "EXIT" or r["status"] != 0]
        latencies = [r["started"] - r["submitted"] for r in done.values() if r["started"]]
        note = f"{len(bad)} failed" if bad else ""
        await client.call("harvest", *[str(i) for i in wanted])
        results = [Result("", jobs, seconds, latencies, note)]
        results.append(await one_at_a_time(client, events, IDLE_PROBES))
        return results
    finally:
        await client.close()


def pcontrol_run(label: str, hosts: dict[str, str], jobs: int) -> list[Result]:
    home = tempfile.mkdtemp(dir="/tmp", prefix="pcb")
    try:
        pcontrol(home, "start")
        burst, single = asyncio.run(run_through_pcontrol(home, hosts, jobs))
        burst.runner, single.runner = label, label
        burst.note = burst.note or "all submitted at once: latency includes queueing"
        return [burst, single]
    finally:
        subprocess.run([sys.executable, "-m", "pcontrol", "stop", "-kill", "-force"],
                       env=dict(os.environ, SCHED_HOME=home), capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def timed(label: str, argv: list[str], jobs: int, note: str = "") -> Result:
    feed = "".join(f"{i}\n" for i in range(jobs))
    start = time.monotonic()
    result = subprocess.run(argv, input=feed, text=True, capture_output=True)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        note = f"exit {result.returncode}: {result.stderr.strip()[:60]}"
    return Result(label, jobs, seconds, None, note)


def print_table(results: list[Result]) -> None:
    headers = ["runner", "jobs", "seconds", "jobs/s", "start p50", "start p99", "note"]
    rows = [headers] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--ssh", action="store_true", help="add the runs through sshd")
    options = parser.parse_args()
    jobs = options.jobs
    print(f"{jobs} `true` jobs, 4 at a time, on {os.cpu_count()} CPUs", flush=True)
    results = pcontrol_run("pcontrol, 2 local hosts x 2 slots",
                           {"localhost": "", "local2": LOCAL_AGENT}, jobs)
    results.append(timed("xargs -P4", ["xargs", "-P4", "-n1", "true"], jobs))
    if shutil.which("parallel"):
        results.append(timed("GNU parallel -j4", ["parallel", "-j4", "true"], jobs))
    else:
        results.append(Result("GNU parallel -j4", 0, 0.0, None,
                              "not installed (apt-get install parallel)"))
    if options.ssh:
        results.extend(ssh_runs(jobs))
    print_table(results)
    return 0


def ssh_runs(jobs: int) -> list[Result]:
    from sshd_harness import SshdUnavailable, start_sshd
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="pcs"))
    try:
        with start_sshd(work / "sshd") as sshd:
            connect = sshd.connect_command()
            results = pcontrol_run("pcontrol via sshd, 2 hosts x 2 slots",
                                   {"ssh1": connect, "ssh2": connect}, jobs)
            if shutil.which("parallel"):
                ssh = shlex.join(sshd.ssh_argv()[:-1])
                login = sshd.ssh_argv()[-1]
                count = min(jobs, PARALLEL_SSH_JOBS)
                results.append(timed("GNU parallel -M -S 4/127.0.0.1",
                                     ["parallel", "-M", "--ssh", ssh, "-S", f"4/{login}",
                                      "true"], count, note=f"only {count} jobs: it is slow"))
            return results
    except SshdUnavailable as exc:
        return [Result("pcontrol via sshd", 0, 0.0, None, f"skipped: {exc}")]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
