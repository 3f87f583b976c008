"""Benchmark: pcontrol at scale -- 200 agents, 100,000 queued jobs -- and how it keeps up.

    .venv/bin/python bench/bench_scale.py [--agents 200] [--jobs 100000] [--duration 30]
                                          [--cpus all|apart|shared|niced] [--nice N]
                                          [--no-turns] [--profile PREFIX [--profile-cpu]]

Starts a pcontrol daemon in a throwaway $SCHED_HOME, queues JOBS `true` jobs over a few
connections at once, then adds AGENTS hosts, each a real local pclient with 1 slot
(`-connect "python -m pclient --slots 1"`), and lets the jobs run for DURATION seconds per
CPU placement once every agent is up. (Queued first, so the queue really holds JOBS pending
jobs: with the agents up, they would run about as fast as they could be queued.) Meanwhile
a process of its own (so the bench's submitters do not delay it) asks `status` every 20 ms
and times each answer. Prints one table:
queueing rate, agent start-up, dispatch rate (jobs ended per second with the queue full),
`status` latency (p50, p99, max) per phase, where pcontrol's time went per phase, its peak
memory (VmHWM from /proc/PID/status) and its journal's size. Then it stops pcontrol with
`stop -kill -force` (every job still out ends KILLED), checks that every agent has exited,
and removes the home.

The agents stand in for other machines, which would not take the controller's CPU. Here
they share the machine, and 200 agents spawning `true` keep a 2-CPU machine busy; each
agent, and each job, is a session of its own, which Linux's autogroup scheduling treats as
a peer of pcontrol's session, so sharing the CPUs pcontrol gets a small share of one and a
client's `status` mostly waits for pcontrol to be scheduled. Hence the CPU placements
(--cpus, default all three, one after the other in the same run):

- apart: pcontrol and this bench's clients on CPU 0; the agents, and so their jobs, on
  the other CPUs (`taskset` in their -connect command while they start, then
  sched_setaffinity). This is the figure that says how pcontrol itself keeps up. (The
  queueing, before any agent, runs unpinned.)
- shared: every process on every CPU, as the kernel likes (the agents are moved there
  after the apart phase, or start there with --cpus shared).
- niced: shared, but the agents and their autogroups at niceness NICED (setpriority and
  /proc/PID/autogroup; their jobs inherit the niceness), as pcontrol's `agent_nice`
  (ControllerConfig) starts the commands of its hosts.

Where the time went, per phase, from /proc (rows "pcontrol CPU"): pcontrol's user and
kernel time (all threads), and how long its loop thread was ready to run but waiting for
a CPU (/proc/PID/schedstat); busy + waiting near 100% means it never idled. With the turn
watch (on unless --no-turns; $PCONTROL_TURNWATCH, see pcontrol.loadwatch) the rows "pcontrol
turns" give its loop's own account: turns, the share of the time they took, their p50/p99
(histogram bucket edges) and the longest, and the slowest callbacks by name. The rows
"pcontrol loop" are status's `loop`: how late its loop ran over the last 10 s, and the
garbage collector's full passes. --profile PREFIX runs pcontrol under cProfile and writes
one file per phase (PREFIX.1, ...; see pcontrol.daemon), printing the top functions of
the dispatch phases.

`--nice N` starts the agents and their autogroups at niceness N (/proc/self/autogroup).
The dispatch rate measures the whole machine (the agents spawning `true` dominate it).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import io
import multiprocessing
import os
import pstats
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tools"))
from procs import agents_with_runtime  # noqa: E402

from pcontrol.client import ControllerClient  # noqa: E402
from pcontrol.loadwatch import histogram_quantile  # noqa: E402

AGENT = f"{shlex.quote(sys.executable)} -m pclient --slots 1"
#: Seconds between two `status` probes, and the most the bench waits for any one step.
PROBE_INTERVAL = 0.02
STEP_TIMEOUT = 300.0
#: Niceness of the agents (and their jobs); see the module docstring.
DEFAULT_NICE = 0
#: Connections that queue jobs at once, and requests each keeps in flight.
SUBMITTERS = 8
IN_FLIGHT = 200
#: Seconds an agent may take to say hello: 200 Pythons starting at once on one CPU (the
#: apart placement) take longer than pcontrol's default 15 s; remote hosts would not.
CONNECT_TIMEOUT = 120.0
#: Slow callbacks named per phase, and profile lines printed per dispatch phase.
SLOW_SHOWN = 3
PROFILE_LINES = 12
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Placement(str, enum.Enum):
    """Where the agents (and their jobs) run relative to pcontrol."""

    APART = "apart"      #: pcontrol on CPU 0, the agents on the others
    SHARED = "shared"    #: everyone on every CPU
    NICED = "niced"      #: everyone on every CPU, the agents at niceness NICED


#: Niceness of the agents (and their autogroups) in the `niced` placement.
NICED = 19


@dataclass(frozen=True)
class CpuSample:
    """pcontrol's CPU accounting at one moment (seconds; None: unknown)."""

    wall: float
    user: float | None
    kernel: float | None
    on_cpu: float | None       # its loop thread, from schedstat
    waiting: float | None

    @classmethod
    def read(cls, pid: int) -> "CpuSample":
        wall = time.monotonic()
        user = kernel = on_cpu = waiting = None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user, kernel = int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS
            on, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
            on_cpu, waiting = int(on) / 1e9, int(wait) / 1e9
        except (OSError, ValueError, IndexError):
            pass
        return cls(wall, user, kernel, on_cpu, waiting)


def cpu_row(before: CpuSample, after: CpuSample) -> str:
    span = after.wall - before.wall
    if span <= 0 or before.user is None or after.user is None:
        return "-"

    def share(a: float | None, b: float | None) -> str:
        return "?" if a is None or b is None else f"{(b - a) / span:.0%}"

    return (f"user {share(before.user, after.user)}, kernel "
            f"{share(before.kernel, after.kernel)} (all threads); loop thread on a CPU "
            f"{share(before.on_cpu, after.on_cpu)}, ready but waiting for one "
            f"{share(before.waiting, after.waiting)} (of {span:.0f} s)")


@dataclass
class Probe:
    """`status` round trips timed by a process of its own (probe_process), sorted into
    phases by the time they began; and `status` as it was when each phase began and ended
    (first, last), fetched by the bench itself."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, dict] = field(default_factory=dict)    # the phase's first status
    last: dict[str, dict] = field(default_factory=dict)     # and its last
    began: dict[str, float] = field(default_factory=dict)   # wall clock

    def enter(self, phase: str) -> None:
        self.began[phase] = time.time()

    def sort(self, probes: list[tuple[float, float]]) -> None:
        """Give each (wall time it began, seconds) to the phase under way then."""
        starts = sorted((at, phase) for phase, at in self.began.items())
        for at, seconds in probes:
            phase = None
            for began, name in starts:
                if began <= at:
                    phase = name
            if phase is not None:
                self.latencies.setdefault(phase, []).append(seconds)


    def summary(self, phase: str) -> str:
        found = sorted(self.latencies.get(phase, []))
        if not found:
            return "-"
        p99 = found[min(len(found) - 1, int(len(found) * 0.99))]
        return (f"p50 {statistics.median(found) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
                f"max {found[-1] * 1000:.1f} ms ({len(found)} probes)")

    def loop_summary(self, phase: str) -> str:
        loop = self.last.get(phase, {}).get("loop")
        if not loop or not loop.get("samples"):
            return "-"
        text = (f"lag p50 {loop['lag_p50_ms']} ms, p99 {loop['lag_p99_ms']} ms, "
                f"max {loop['lag_max_ms']} ms")
        if loop.get("cpu_share") is not None:
            text += (f"; on a CPU {loop['cpu_share']:.0%}, waiting for one "
                     f"{loop['cpu_wait_share']:.0%}")
        text += f" (last {loop['samples'] / 10:g} s)"
        first = self.first.get(phase, {}).get("loop", {})
        if "gc_full_total" in loop and "gc_full_total" in first:
            text += (f"; {loop['gc_full_total'] - first['gc_full_total']} full GC passes "
                     f"in the phase (finding "
                     f"{loop.get('gc_full_collected', 0) - first.get('gc_full_collected', 0)} "
                     f"objects), longest GC pause of the last 10 s {loop.get('gc_max_ms')} ms")
        return text

    def turn_summary(self, phase: str) -> str:
        first = self.first.get(phase, {}).get("loop", {}).get("turns")
        last = self.last.get(phase, {}).get("loop", {}).get("turns")
        if not first or not last or last["turns"] <= first["turns"]:
            return "-"

        def delta(name: str) -> dict[str, int]:
            return {edge: count - first[name].get(edge, 0) for edge, count in last[name].items()}

        wall, cpu = delta("histogram_ms"), delta("cpu_histogram_ms")
        turns = last["turns"] - first["turns"]
        span = max(self.last[phase]["uptime"] - self.first[phase]["uptime"], 1e-9)
        began = self.began.get(phase, 0.0)
        slow_turns = [t for t in last["slow_turns"] if t[0] >= began]     # at, ms, CPU ms, n
        slow = sorted((c for c in last["slow_callbacks"] if c[0] >= began), key=lambda c: -c[1])
        longest = max(slow_turns, key=lambda t: t[1], default=None)
        most_cpu = max((t[2] for t in slow_turns), default=None)
        text = (f"{turns} turns, in turns {(last['busy_s'] - first['busy_s']) / span:.0%} "
                f"of the time, {(last['busy_cpu_s'] - first['busy_cpu_s']) / span:.0%} on a "
                f"CPU; turn p50/p99 <= {histogram_quantile(wall, 0.5):g}/"
                f"{histogram_quantile(wall, 0.99):g} ms wall, "
                f"{histogram_quantile(cpu, 0.5):g}/{histogram_quantile(cpu, 0.99):g} ms CPU; "
                f"{last['slow_turn_count'] - first['slow_turn_count']} over "
                f"{last['slow_ms']:g} ms wall, "
                f"{last['slow_cpu_turn_count'] - first['slow_cpu_turn_count']} of them over "
                f"{last['slow_ms']:g} ms CPU")
        if longest is not None:
            text += (f"; of the last {len(slow_turns)} slow turns the longest {longest[1]:.1f} ms "
                     f"({longest[2]:.1f} ms CPU), most CPU {most_cpu:.1f} ms")
        if slow:
            text += "; slowest callbacks: " + ", ".join(
                f"{what} {ms:.1f} ms" for _, ms, what in slow[:SLOW_SHOWN])
        return text


def probe_process(home: str, stop: Any, results: Any) -> None:
    """(A child process) Ask `status` every PROBE_INTERVAL until `stop` is set; send back
    [(wall time it began, seconds)]. A process of its own: in the bench's loop the probes
    would wait for the submitters' thousands of replies, and time the bench, not pcontrol."""
    async def probe() -> list[tuple[float, float]]:
        found = []
        async with await ControllerClient.connect(home) as client:
            while not stop.is_set():
                at, start = time.time(), time.perf_counter()
                await client.call("status", timeout=STEP_TIMEOUT)
                found.append((at, time.perf_counter() - start))
                await asyncio.sleep(PROBE_INTERVAL)
        return found

    results.send(asyncio.run(probe()))
    results.close()


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
    return agents_with_runtime(Path(home) / "run")


async def wait_until(condition, what: str, timeout: float = STEP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(0.1)


def cpu_sets(placement: Placement) -> tuple[set[int], set[int]]:
    """(CPUs of pcontrol and the bench, CPUs of the agents) for a placement."""
    every = set(range(os.cpu_count() or 1))
    if placement is Placement.APART:
        return {0}, every - {0}
    return every, every


def agent_command(nice: int, cpus: set[int] | None) -> str:
    """The -connect command of an agent, at niceness `nice` and on `cpus` (None: any)."""
    command = AGENT
    if cpus is not None:
        command = f"taskset -c {','.join(map(str, sorted(cpus)))} {command}"
    if not nice:
        return command
    inner = f"echo {nice} > /proc/self/autogroup 2>/dev/null; exec nice -n {nice} {command}"
    return f"sh -c {shlex.quote(inner)}"


def place(pids: list[int], cpus: set[int]) -> int:
    """Move every thread of these processes to `cpus`; how many processes moved."""
    moved = 0
    for pid in pids:
        try:
            threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            for tid in threads:
                os.sched_setaffinity(tid, cpus)
            moved += 1
        except (OSError, ValueError):
            continue           # it exited meanwhile
    return moved


def renice(pids: list[int], nice: int) -> int:
    """Set every thread of these processes, and their autogroups, to niceness `nice`."""
    done = 0
    for pid in pids:
        try:
            for tid in (int(t) for t in os.listdir(f"/proc/{pid}/task")):
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            try:
                Path(f"/proc/{pid}/autogroup").write_text(str(nice))
            except OSError:
                pass           # no autogroups here
            done += 1
        except (OSError, ValueError):
            continue           # it exited meanwhile
    return done


async def add_agents(client: ControllerClient, count: int, command: str) -> tuple[float, int]:
    """Add the agents; (seconds until all are connected, hosts that went DOWN meanwhile).

    A host that goes DOWN while 200 agents boot on one CPU (a slow hello, a late pong) is
    retried by pcontrol itself; only one still down at the time limit fails the bench."""
    start = time.monotonic()
    for number in range(count):
        await client.call("host", "add", f"a{number:04d}", "-slots", "1", "-connect", command)

    async def all_up() -> bool:
        status = await client.call("status")
        return status["hosts"]["IDLE"] + status["hosts"]["BUSY"] == count

    try:
        await wait_until(all_up, f"all {count} agents are connected")
    except RuntimeError:
        down = [h for h in await client.call("hosts") if h["state"] == "DOWN"]
        if down:
            raise RuntimeError(f"{len(down)} agents DOWN, e.g. {down[0]['name']}: "
                               f"{down[0]['reason']}") from None
        raise
    fell = sum(1 for h in await client.call("hosts")
               if any(step["state"] == "DOWN" for step in h.get("history", ())))
    return time.monotonic() - start, fell


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


class Run:
    """One bench run: the phases, their `status` probes, CPU samples and rows."""

    def __init__(self, home: str, options: argparse.Namespace, pid: int,
                 placements: list[Placement]):
        self.home = home
        self.options = options
        self.pid = pid
        self.placements = placements
        self.probe = Probe()
        self.phases: list[str] = []
        self.cpu: dict[str, tuple[CpuSample, CpuSample]] = {}
        self.rows: list[tuple[str, str]] = []
        self._phase_start: CpuSample | None = None

    async def enter(self, client: ControllerClient, phase: str) -> None:
        """End the phase under way (its CPU sample, its last status, its profile) and
        begin `phase`."""
        await self._end_phase(client)
        self.phases.append(phase)
        self.probe.enter(phase)
        self._phase_start = CpuSample.read(self.pid)
        self.probe.first[phase] = await client.call("status")

    async def _end_phase(self, client: ControllerClient) -> None:
        if self.phases and self._phase_start is not None:
            self.cpu[self.phases[-1]] = (self._phase_start, CpuSample.read(self.pid))
            self.probe.last[self.phases[-1]] = await client.call("status")
            self._phase_start = None
            if self.options.profile:
                os.kill(self.pid, signal.SIGUSR1)      # PREFIX.N: this phase's profile

    async def go(self, prober: int) -> dict:
        """The run, returning the last `status`; `prober` is the pid of the probe process
        (placed with the bench)."""
        options = self.options
        async with await ControllerClient.connect(self.home) as client:
            await self.enter(client, "queueing")
            queued = await queue_jobs(self.home, options.jobs)
            self.rows.append(("queued", f"{options.jobs} jobs in {queued:.1f} s "
                                        f"({options.jobs / queued:.0f} jobs/s over "
                                        f"{SUBMITTERS} connections, no agent yet)"))
            first = self.placements[0]
            ours, agent_cpus = cpu_sets(first)
            place([self.pid, os.getpid(), prober], ours)   # threads made later inherit it
            command = agent_command(options.nice,
                                    agent_cpus if first is Placement.APART else None)
            await self.enter(client, f"agents starting, {first.value}")
            up, fell = await add_agents(client, options.agents, command)
            retried = f"; {fell} went DOWN once and were retried" if fell else ""
            self.rows.append(("agents", f"{options.agents} real pclients, 1 slot each, "
                                        f"all connected in {up:.1f} s ({first.value}"
                                        f"{retried})"))
            for placement in self.placements:
                await self.dispatch(client, placement, prober)
            await self._end_phase(client)
            status = await client.call("status")
        return status

    def table(self, status: dict) -> list[tuple[str, str]]:
        """The rows, once the probes are sorted into phases."""
        options = self.options
        for phase in self.phases:
            self.rows.append((f"status, {phase}", self.probe.summary(phase)))
        for phase in self.phases:
            self.rows.append((f"pcontrol CPU, {phase}",
                              cpu_row(*self.cpu[phase]) if phase in self.cpu else "-"))
        for phase in self.phases:
            self.rows.append((f"pcontrol loop, {phase}", self.probe.loop_summary(phase)))
        if not options.no_turns:
            for phase in self.phases:
                self.rows.append((f"pcontrol turns, {phase}", self.probe.turn_summary(phase)))
        peak = vm_field(self.pid, "VmHWM")
        rss = vm_field(self.pid, "VmRSS")
        self.rows.append(("pcontrol memory", f"peak (VmHWM) {_mib(peak)}, now {_mib(rss)}, "
                                             f"{status['totals']['jobs']} jobs in memory"))
        self.rows.append(("journal", f"{_mib(status['journal']['size'])} on disk"))
        return self.rows

    async def dispatch(self, client: ControllerClient, placement: Placement,
                       prober: int) -> None:
        """Run the jobs with the agents placed so for `duration` s; a dispatch rate row."""
        ours, agents = cpu_sets(placement)
        moved = place(agents_of(self.home), agents)
        place([self.pid, os.getpid(), prober], ours)
        if placement is Placement.NICED:
            renice(agents_of(self.home), NICED)
        phase = f"dispatching, {placement.value}"
        await self.enter(client, phase)
        status = await client.call("status")
        start_done, start = status["jobs"]["DONE"], time.monotonic()
        deadline = start + self.options.duration
        while time.monotonic() < deadline and status["jobs"]["PENDING"] > 0:
            await asyncio.sleep(0.5)
            status = await client.call("status")
        seconds = time.monotonic() - start
        done = status["jobs"]["DONE"] - start_done
        bad = sum(v for k, v in status["outcomes"].items() if k != "EXIT")
        where = {Placement.APART: "pcontrol on CPU 0, agents on "
                                  + ",".join(map(str, sorted(agents))),
                 Placement.SHARED: "all on every CPU",
                 Placement.NICED: f"all on every CPU, agents at niceness {NICED}"}[placement]
        self.rows.append((f"dispatch rate, {placement.value}",
                          f"{done / seconds:.0f} jobs/s ({done} jobs ended in {seconds:.1f} s;"
                          f" {status['jobs']['PENDING']} still pending; {where}; "
                          f"{moved} agents placed"
                          f"{f'; {bad} did not EXIT' if bad else ''})"))


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


def profile_rows(prefix: str, phases: list[str]) -> list[str]:
    """The top functions (own time) of each dispatch phase's profile."""
    lines = []
    for number, phase in enumerate(phases, start=1):
        path = f"{prefix}.{number}"
        if not phase.startswith("dispatching") or not os.path.exists(path):
            continue
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.sort_stats("tottime").print_stats(PROFILE_LINES)
        lines.append(f"profile of {phase} ({path}), by own time:")
        body = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(body) if "ncalls" in line), 0)
        lines.extend("  " + line for line in body[start:] if line.strip())
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of dispatching measured per CPU placement (default "
                             "%(default)s)")
    parser.add_argument("--cpus", choices=["all"] + [p.value for p in Placement],
                        default="all",
                        help="where the agents run: apart from pcontrol's CPU, sharing "
                             f"every CPU, sharing them at niceness {NICED}, or all three "
                             "one after the other (default %(default)s)")
    parser.add_argument("--nice", type=int, default=DEFAULT_NICE,
                        help="niceness of the agents and their jobs (default %(default)s; "
                             "0: the same priority as pcontrol)")
    parser.add_argument("--no-turns", action="store_true",
                        help="do not time pcontrol's loop turns ($PCONTROL_TURNWATCH)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="run pcontrol under cProfile, one file per phase: PREFIX.1, ...")
    parser.add_argument("--profile-cpu", action="store_true",
                        help="profile pcontrol's CPU time rather than the wall clock's")
    options = parser.parse_args()
    placements = list(Placement) if options.cpus == "all" else [Placement(options.cpus)]
    if Placement.APART in placements:
        if (os.cpu_count() or 1) < 2:
            parser.error("--cpus apart needs at least 2 CPUs")
        if shutil.which("taskset") is None:
            parser.error("--cpus apart needs taskset (util-linux)")
    if not options.no_turns:
        os.environ["PCONTROL_TURNWATCH"] = "1"
    if options.profile:
        options.profile = os.path.abspath(options.profile)
        os.environ["PCONTROL_PROFILE"] = options.profile
        if options.profile_cpu:
            os.environ["PCONTROL_PROFILE_CLOCK"] = "cpu"
    home = tempfile.mkdtemp(dir="/tmp", prefix="pcs")      # short: Unix socket paths
    (Path(home) / "run").mkdir(mode=0o700)
    print(f"{options.agents} agents (niceness {options.nice}), {options.jobs} `true` jobs, "
          f"on {os.cpu_count()} CPUs; placements: "
          f"{', '.join(p.value for p in placements)}", flush=True)
    run = None
    stop = multiprocessing.Event()
    receiving, sending = multiprocessing.Pipe(duplex=False)
    prober = None
    try:
        pcontrol(home, "start", "--connect-timeout", f"{CONNECT_TIMEOUT:g}")
        pid = int((Path(home) / "pcontrol.pid").read_text().strip())
        run = Run(home, options, pid, placements)
        prober = multiprocessing.Process(target=probe_process, args=(home, stop, sending),
                                         name="status-probe")
        prober.start()
        status = asyncio.run(run.go(prober.pid))
        stop.set()
        if not receiving.poll(STEP_TIMEOUT):
            raise RuntimeError(f"the status probe sent nothing within {STEP_TIMEOUT:g} s")
        run.probe.sort(receiving.recv())
        rows = run.table(status)
    finally:
        stop.set()
        if prober is not None:
            prober.join(10.0)
            if prober.is_alive():          # the run failed with pcontrol unresponsive
                prober.terminate()
                prober.join(10.0)
        notes = cleanup(home)
    print_table(rows)
    if options.profile and run is not None:
        for line in profile_rows(options.profile, run.phases):
            print(line)
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
