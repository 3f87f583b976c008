"""Benchmark: pcontrol at scale -- 200 agents, 100,000 queued jobs -- and how it keeps up.

    .venv/bin/python bench/bench_scale.py [--agents 200] [--jobs 100000] [--duration 60]

Starts a pcontrol daemon in a throwaway $SCHED_HOME, queues JOBS `true` jobs over a few
connections at once, then adds AGENTS hosts, each a real local pclient with 1 slot
(`-connect "python -m pclient --slots 1"`), and lets the jobs run for at most DURATION
seconds once every agent is up. (Queued first, so the queue really holds JOBS pending jobs:
with the agents up, they would run about as fast as they could be queued.) Meanwhile a
separate connection asks `status` every 20 ms and times each answer. Prints one table:
queueing rate, agent start-up, dispatch rate (jobs ended per second with the queue full),
`status` latency (p50, p99, max) while queueing, while agents start and while dispatching,
pcontrol's peak memory (VmHWM from /proc/PID/status) and its journal's size. Then it stops
pcontrol with `stop -kill -force` (every job still out ends KILLED), checks that every agent
has exited, and removes the home.

The agents stand in for other machines, but here they share the CPUs with pcontrol: 200
agents spawning `true` keep a 2-CPU machine busy, and each agent is a session of its own,
which Linux's autogroup scheduling treats as a peer of pcontrol's session, so pcontrol gets
a small share of a CPU and a client's `status` mostly waits for pcontrol to be scheduled.
Hence the rows "pcontrol loop": pcontrol's own account (status's `loop`) of how late its
event loop ran and whether it was busy (on a CPU) or waiting for a CPU: a loop that is late
while pcontrol waits for a CPU is the machine's load, not pcontrol blocking. `--nice N`
runs the agents and their autogroups at niceness N (/proc/self/autogroup), which helps
little against 200 autogroups. The dispatch rate measures the whole machine (the agents
spawning `true` dominate it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pcontrol.client import ControllerClient

AGENT = f"{shlex.quote(sys.executable)} -m pclient --slots 1"
#: Seconds between two `status` probes, and the most the bench waits for any one step.
PROBE_INTERVAL = 0.02
STEP_TIMEOUT = 300.0
#: Niceness of the agents (and their jobs); see the module docstring.
DEFAULT_NICE = 0
#: Connections that queue jobs at once, and requests each keeps in flight.
SUBMITTERS = 8
IN_FLIGHT = 200


@dataclass
class Probe:
    """`status` round trips from a connection of their own, by phase."""

    phase: str = "starting"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    loops: dict[str, dict] = field(default_factory=dict)    # pcontrol's own view, last seen

    async def run(self, home: str, stop: asyncio.Event) -> None:
        async with await ControllerClient.connect(home) as client:
            while not stop.is_set():
                start = time.perf_counter()
                status = await client.call("status", timeout=STEP_TIMEOUT)
                self.latencies.setdefault(self.phase, []).append(time.perf_counter() - start)
                self.loops[self.phase] = status["loop"]
                try:
                    await asyncio.wait_for(stop.wait(), PROBE_INTERVAL)
                except asyncio.TimeoutError:
                    pass

    def summary(self, phase: str) -> str:
        found = sorted(self.latencies.get(phase, []))
        if not found:
            return "-"
        p99 = found[min(len(found) - 1, int(len(found) * 0.99))]
        return (f"p50 {statistics.median(found) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                f"max {found[-1] * 1000:.1f} ms ({len(found)} probes)")

    def loop_summary(self, phase: str) -> str:
        loop = self.loops.get(phase)
        if not loop or not loop.get("samples"):
            return "-"
        text = (f"lag p50 {loop['lag_p50_ms']} ms, p99 {loop['lag_p99_ms']} ms, "
                f"max {loop['lag_max_ms']} ms")
        if loop.get("cpu_share") is not None:
            text += (f"; on a CPU {loop['cpu_share']:.0%}, waiting for one "
                     f"{loop['cpu_wait_share']:.0%}")
        return text + f" (last {loop['samples'] / 10:g} s)"


def pcontrol(home: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pcontrol", *args], env=_env(home),
                            capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if check and result.returncode != 0:
        raise RuntimeError(f"pcontrol {' '.join(args)}: {result.stderr.strip()}")
    return result


def _env(home: str) -> dict[str, str]:
    return dict(os.environ, SCHED_HOME=home, PCLIENT_RUNTIME_DIR=str(Path(home) / "run"))


def vm_field(pid: int, name: str) -> int | None:
    """A Vm* line of /proc/PID/status, in bytes."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def agents_of(home: str) -> list[int]:
    """Live pclients started for this home (their environment names its run directory)."""
    needle = f"PCLIENT_RUNTIME_DIR={Path(home) / 'run'}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if b"pclient" not in Path(f"/proc/{entry}/cmdline").read_bytes():
                continue
            if needle in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


async def wait_until(condition, what: str, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(0.1)


def agent_command(nice: int) -> str:
    """The -connect command of an agent, at niceness `nice` (see the module docstring)."""
    if not nice:
        return AGENT
    inner = f"echo {nice} > /proc/self/autogroup 2>/dev/null; exec nice -n {nice} {AGENT}"
    return f"sh -c {shlex.quote(inner)}"


async def add_agents(client: ControllerClient, count: int, nice: int = 0) -> float:
    start = time.monotonic()
    agent = agent_command(nice)
    for number in range(count):
        await client.call("host", "add", f"a{number:04d}", "-slots", "1", "-connect", agent)

    async def all_up() -> bool:
        status = await client.call("status")
        if status["hosts"]["DOWN"]:
            down = [h for h in await client.call("hosts") if h["state"] == "DOWN"]
            raise RuntimeError(f"{len(down)} agents DOWN, e.g. {down[0]['name']}: "
                               f"{down[0]['reason']}")
        return status["hosts"]["IDLE"] + status["hosts"]["BUSY"] == count

    await wait_until(all_up, f"all {count} agents are connected")
    return time.monotonic() - start


async def queue_jobs(home: str, jobs: int) -> float:
    """Submit `jobs` `true` jobs over SUBMITTERS connections; seconds taken."""
    share = [jobs // SUBMITTERS + (1 if i < jobs % SUBMITTERS else 0) for i in range(SUBMITTERS)]

    async def submitter(count: int) -> None:
        async with await ControllerClient.connect(home) as client:
            sent = 0
            while sent < count:
                batch = min(IN_FLIGHT, count - sent)
                replies = await asyncio.gather(*[client.request(["job", "--", "true"],
                                                                timeout=STEP_TIMEOUT)
                                                 for _ in range(batch)])
                refused = [r for r in replies if not r.ok]
                if refused:
                    raise RuntimeError(f"job refused: {refused[0].text}")
                sent += batch

    start = time.monotonic()
    await asyncio.gather(*[submitter(count) for count in share])
    return time.monotonic() - start


async def bench(home: str, options: argparse.Namespace, pid: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    stop = asyncio.Event()
    probe = Probe()
    async with await ControllerClient.connect(home) as client:
        prober = asyncio.get_running_loop().create_task(probe.run(home, stop))
        probe.phase = "queueing"
        queued = await queue_jobs(home, options.jobs)
        rows.append(("queued", f"{options.jobs} jobs in {queued:.1f} s "
                               f"({options.jobs / queued:.0f} jobs/s over {SUBMITTERS} "
                               f"connections, no agent yet)"))
        probe.phase = "agents starting"
        up = await add_agents(client, options.agents, options.nice)
        rows.append(("agents", f"{options.agents} real pclients, 1 slot each, all connected "
                               f"in {up:.1f} s"))
        probe.phase = "dispatching"
        status = await client.call("status")
        start_done, start = status["jobs"]["DONE"], time.monotonic()
        deadline = start + options.duration
        while time.monotonic() < deadline and status["jobs"]["DONE"] < options.jobs:
            await asyncio.sleep(0.5)
            status = await client.call("status")
        seconds = time.monotonic() - start
        done = status["jobs"]["DONE"] - start_done
        stop.set()
        await prober
        bad = sum(v for k, v in status["outcomes"].items() if k != "EXIT")
        rows.append(("dispatch rate", f"{done / seconds:.0f} jobs/s ({done} jobs ended in "
                                      f"{seconds:.1f} s; {status['jobs']['PENDING']} still "
                                      f"pending{f'; {bad} did not EXIT' if bad else ''})"))
        for phase in ("queueing", "agents starting", "dispatching"):
            rows.append((f"status, {phase}", probe.summary(phase)))
        for phase in ("queueing", "dispatching"):
            rows.append((f"pcontrol loop, {phase}", probe.loop_summary(phase)))
        peak = vm_field(pid, "VmHWM")
        rss = vm_field(pid, "VmRSS")
        rows.append(("pcontrol memory", f"peak (VmHWM) {_mib(peak)}, now {_mib(rss)}, "
                                        f"{status['totals']['jobs']} jobs in memory"))
        rows.append(("journal", f"{_mib(status['journal']['size'])} on disk"))
    return rows


def _mib(count: int | None) -> str:
    return "-" if count is None else f"{count / 1024 / 1024:.1f} MiB"


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def cleanup(home: str) -> list[str]:
    """Stop pcontrol, ending every job; kill any agent left; remove the home."""
    notes = []
    stopped = pcontrol(home, "stop", "-kill", "-force", check=False)
    if stopped.returncode != 0:
        notes.append(f"stop failed: {stopped.stderr.strip()}")
    deadline = time.monotonic() + 15.0
    while agents_of(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = agents_of(home)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        notes.append(f"{len(left)} agents had to be killed")
    shutil.rmtree(home, ignore_errors=True)
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of dispatching measured after the queueing (default 60)")
    parser.add_argument("--nice", type=int, default=DEFAULT_NICE,
                        help="niceness of the agents and their jobs (default %(default)s; "
                             "0: the same priority as pcontrol)")
    options = parser.parse_args()
    home = tempfile.mkdtemp(dir="/tmp", prefix="pcs")      # short: Unix socket paths
    (Path(home) / "run").mkdir(mode=0o700)
    print(f"{options.agents} agents (niceness {options.nice}), {options.jobs} `true` jobs, "
          f"on {os.cpu_count()} CPUs", flush=True)
    try:
        pcontrol(home, "start")
        pid = int((Path(home) / "pcontrol.pid").read_text().strip())
        rows = asyncio.run(bench(home, options, pid))
    finally:
        notes = cleanup(home)
    print_table(rows)
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
