#!/usr/bin/env python3
"""What a user sees (issue 13): whole commands, each beside its peer in the same run.

    .venv/bin/python bench/bench_user.py [--jobs 2000] [--rounds 3] [--only 1,2,3,4,5] [--first-job-rr]

Every figure is the median of several rounds that alternate us and the peers:
  1. 2,000 `true` jobs from one task, `host LOCAL`, `sched script` start to exit,
     vs `xargs -P4` and `parallel -j4` on the same 2,000 commands;
  2. the same with `host NONE` on the embedded default, cold (a fresh $SCHED_HOME, no pcontrol
     running: sched starts it and its localhost agent, and stops it at the end);
  3. the same with 4 hosts through a real sshd on 127.0.0.1 (one agent per host over ssh)
     vs `parallel -j4 -S` with ssh ControlMaster over the same sshd;
  4. `sched -c 'echo hi'` vs `tclsh`, `python3 -c pass` and the venv's own `python -c pass`,
     with the instructions each runs when valgrind is installed (independent of the load);
  5. submit-to-start latency of one job on an idle controller (p50, p99 of 200), and the time
     from `sched script` start to its first job running on a cold embedded default.
Figures 1 and 2 also give the CPU per job of everything each runner started, its jobs included
(sched, its local jobs, and the pcontrol and agent it started, which this process reaps as their
child subreaper; xargs or parallel and theirs): unlike the wall times, it hardly depends on the
load of the machine. Figure 5 likewise gives the CPU that sched, pcontrol and the agent had
used when the first job ran (the job reads it from /proc), pcontrol's at ready and the agent's
at IDLE. On a machine others load, `--first-job-rr` runs figure 5's cold first-job scripts
under SCHED_RR (chrt -r, as root; their pcontrol and agent inherit it), so that the others'
processes do not stretch them: close to an idle machine, a little faster (no time slices of
CFS between the three of them).
Targets (issue 13): 1 >= 70 % of xargs; 2 >= 50 % of xargs and >= 2.5x parallel; 3 >= 10x
parallel -S; 4 < 80 ms; 5 p50 < 2 ms, p99 < 10 ms, first job < 300 ms.

Each figure ends with the state of the machine while it ran (from /proc/stat and the load
average): how busy its CPUs were, how much of that was waiting for the disk (iowait) or taken by
the hypervisor (steal), so that figures from different days can be told apart.

Before measuring, the project's modules are compiled to .pyc once, as an installed package has
them: with PYTHONDONTWRITEBYTECODE set (as in our CI) an editable install would otherwise
compile every module of sched, pcontrol and the agent again in each process it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import compileall
import ctypes
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "pcontrol"))

BIN = Path(sys.executable).parent
SCHED = str(BIN / "sched")
PCLIENT = str(BIN / "pclient")
#: the interpreter itself, not a shim in front of it (pyenv's `python3` is a shell script)
PYTHON = os.path.realpath(sys.executable)


#: CPU seconds of each runner's rounds: every process the run started, its jobs included
#: (xargs or parallel and theirs; sched, its local jobs, and the pcontrol and agent it started,
#: which this process, a child subreaper, reaps after they stop). Load-independent, unlike the
#: wall times.
CPU: dict[str, list[float]] = {}
REAP_WAIT = 60.0
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of our runs (pcontrol, its agents) are re-parented to us, so their CPU counts."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def children() -> set[int]:
    """Our live (or not yet reaped) children."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def reap_orphans(before: set[int]) -> None:
    """Wait (bounded) for the children a run left, such as a pcontrol that was told to stop;
    not for those we had before it (a running sshd, an ssh ControlMaster)."""
    deadline = time.monotonic() + REAP_WAIT
    while time.monotonic() < deadline:
        left = children() - before
        if not left:
            return
        for pid in left:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)


def wall(argv: list[str] | str, env: dict[str, str] | None = None, shell: bool = False) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, timeout=900)
    secs = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{argv!r} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return secs


def compile_project() -> None:
    """The .pyc files an installed package has (see the module docstring); quiet, once."""
    for package in ("sched", "pcontrol", "pclient"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


_HOMES: list[str] = []


def fresh_home() -> str:
    """A new $SCHED_HOME under /tmp (short: Unix socket paths); removed when the bench ends, its
    pcontrol stopped first if one still runs there."""
    home = tempfile.mkdtemp(prefix="bench-user.", dir="/tmp")
    if not _HOMES:
        atexit.register(_remove_homes)
    _HOMES.append(home)
    return home


def _remove_homes() -> None:
    for home in _HOMES:
        if (Path(home) / "pcontrol.pid").exists():
            stop_pcontrol(home)
        shutil.rmtree(home, ignore_errors=True)


def home_env(home: str) -> dict[str, str]:
    env = dict(os.environ, SCHED_HOME=home)
    env.pop("PCONTROL_CONNECT", None)
    return env


def task_script(jobs: int, host: str, npending: int, before: str = "", command: str = "true") -> str:
    return f"""{before}
task many
  command {command}
  host {host}
  nmax {jobs}
  npending {npending}
end
run
wait
"""


def run_script(text: str, home: str) -> float:
    path = Path(home) / "bench.sched"
    path.write_text(text)
    return wall([SCHED, str(path)], env=home_env(home))


def stop_pcontrol(home: str) -> None:
    subprocess.run([str(BIN / "pcontrol"), "stop", "-kill", "-force"], env=home_env(home),
                   capture_output=True, timeout=60)


def median_rows(rounds: int, runners: list[tuple[str, Callable[[], float | None]]]) -> list[tuple[str, float | None]]:
    """Alternate the runners round by round; the median seconds of each."""
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    for _ in range(rounds):
        for name, run in runners:
            kids, cpu0 = children(), children_cpu()
            secs = run()
            reap_orphans(kids)
            if secs is not None:
                times[name].append(secs)
                CPU.setdefault(name, []).append(children_cpu() - cpu0)
    return [(name, statistics.median(ts) if ts else None) for name, ts in times.items()]


def print_rates(title: str, jobs: int, rows: list[tuple[str, float | None]], targets: str) -> None:
    print(f"\n{title}\n  target: {targets}")
    base = dict(rows)
    print(f"  {'runner':<44} {'seconds':>8} {'jobs/s':>8} {'vs xargs':>9} {'vs parallel':>12} {'CPU ms/job':>11}")
    xargs = next((s for n, s in rows if n.startswith("xargs") and s), None)
    par = next((s for n, s in rows if n.startswith("GNU parallel") and s), None)
    for name, secs in rows:
        if secs is None:
            print(f"  {name:<44} {'-':>8} {'-':>8}  (not installed)")
            continue
        vx = f"{xargs / secs * 100:.0f} %" if xargs else "-"
        vp = f"{par / secs:.2f}x" if par else "-"
        cpu = statistics.median(CPU[name]) / jobs * 1000 if CPU.get(name) else float("nan")
        print(f"  {name:<44} {secs:>8.2f} {jobs / secs:>8.0f} {vx:>9} {vp:>12} {cpu:>11.2f}")
    del base


def peers(jobs: int) -> list[tuple[str, Callable[[], float | None]]]:
    rows: list[tuple[str, Callable[[], float | None]]] = [
        ("xargs -P4", lambda: wall(f"seq {jobs} | xargs -P4 -I{{}} true", shell=True))]
    if shutil.which("parallel"):
        rows.append(("GNU parallel -j4", lambda: wall(f"seq {jobs} | parallel -j4 true", shell=True)))
    else:
        rows.append(("GNU parallel -j4", lambda: None))
    return rows


def bench_local(jobs: int, rounds: int) -> None:
    home = fresh_home()
    rows = median_rows(rounds, [("sched, host LOCAL, npending 4",
                                 lambda: run_script(task_script(jobs, "LOCAL", 4), home))]
                       + peers(jobs))
    print_rates(f"1. {jobs} `true` jobs, host LOCAL (median of {rounds})", jobs, rows,
                ">= 70 % of xargs -P4")


def bench_embedded(jobs: int, rounds: int) -> None:
    def cold() -> float:
        home = fresh_home()
        try:
            return run_script(task_script(jobs, "NONE", 8), home)
        finally:
            stop_pcontrol(home)
    rows = median_rows(rounds, [("sched, host NONE, embedded default, cold", cold)] + peers(jobs))
    print_rates(f"2. {jobs} `true` jobs, host NONE on the embedded default (median of {rounds})",
                jobs, rows, ">= 50 % of xargs -P4 and >= 2.5x GNU parallel")


def bench_sshd(jobs: int, rounds: int) -> None:
    from sshd_harness import SshdUnavailable, start_sshd
    work = Path(fresh_home())
    try:
        with start_sshd(work / "sshd") as sshd:
            connect = sshd.connect_command(shlex.join([PCLIENT]))
            adds = "\n".join(f"controller host add h{i} -slots 1 -connect {{{connect}}}"
                             for i in range(1, 5))

            def ours() -> float:
                home = fresh_home()
                try:
                    return run_script(task_script(jobs, "NONE", 8, before=adds), home)
                finally:
                    stop_pcontrol(home)

            control = work / "cm-%r@%h:%p"
            ssh = shlex.join(sshd.ssh_argv()[:-1] + [
                "-o", "ControlMaster=auto", "-o", f"ControlPath={control}",
                "-o", "ControlPersist=60"])
            login = sshd.ssh_argv()[-1]
            # the master up before parallel opens its four sessions through it
            subprocess.run(shlex.split(ssh) + ["-o", "ControlMaster=yes", "-f", "-N", login],
                           check=True, timeout=30)

            def theirs() -> float | None:
                if not shutil.which("parallel"):
                    return None
                return wall(f"seq {jobs} | parallel -j4 --ssh {shlex.quote(ssh)} "
                            f"-S 4/{login} true", shell=True)
            try:
                rows = median_rows(rounds, [("sched, 4 hosts x 1 slot through sshd", ours),
                                            ("GNU parallel -j4 -S, ControlMaster", theirs)])
            finally:  # the master (ControlPersist) and its session on sshd would outlive the bench
                subprocess.run(shlex.split(ssh) + ["-O", "exit", login], capture_output=True, timeout=30)
    except SshdUnavailable as exc:
        print(f"\n3. skipped: {exc}")
        return
    print(f"\n3. {jobs} `true` jobs through a real sshd on 127.0.0.1 (median of {rounds})")
    print("  target: >= 10x parallel -S with ControlMaster")
    par = rows[1][1]
    for name, secs in rows:
        if secs is None:
            print(f"  {name:<44} {'-':>8} (not installed)")
        else:
            ratio = f"{par / secs:.1f}x" if par else "-"
            print(f"  {name:<44} {secs:>8.2f} s {jobs / secs:>8.0f} jobs/s {ratio:>7}")


def instructions(argv: list[str], env: dict[str, str] | None = None, stdin: bytes = b"") -> float | None:
    """Millions of instructions `argv` runs, its children included (valgrind's callgrind): unlike
    the wall time, independent of the load of the machine. None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    with tempfile.TemporaryDirectory(prefix="bench-user-ir.") as out:
        subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                        f"--callgrind-out-file={out}/cg.%p", *argv], input=stdin, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=True)
        total = 0
        for path in Path(out).glob("cg.*"):
            for line in path.read_text().splitlines():
                if line.startswith("summary:"):
                    total += int(line.split()[1])
    return total / 1e6


def bench_startup(rounds: int) -> None:
    """sched -c against the interpreter it runs on (the venv's python, with its site-packages:
    what any program of the venv pays before its first line), the system's python3 and tclsh."""
    home = fresh_home()
    n = max(10, rounds * 5)
    venv_python = str(BIN / "python")
    commands: list[tuple[str, list[str], dict[str, str] | None, bytes]] = [
        ("sched -c 'echo hi'", [SCHED, "-c", "echo hi"], home_env(home), b""),
        ("python -c pass (sched's venv)", [venv_python, "-c", "pass"], None, b""),
        ("python3 -c pass", [PYTHON, "-c", "pass"], None, b""),
    ]
    if shutil.which("tclsh"):
        commands.append(("tclsh (puts hi)", [str(shutil.which("tclsh"))], None, b"puts hi\n"))

    def runner(argv: list[str], env: dict[str, str] | None, stdin: bytes) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, env=env, timeout=60, check=True)
            return time.perf_counter() - t0
        return run

    rows = median_rows(n, [(name, runner(argv, env, stdin)) for name, argv, env, stdin in commands])
    counts = {name: instructions(argv, env, stdin) for name, argv, env, stdin in commands}
    print(f"\n4. start-up, median of {n} (instructions: valgrind's count, once)\n"
          f"  target: sched -c 'echo hi' < 80 ms")
    for name, secs in rows:
        count = counts[name]
        ir = f"{count:8.1f} M instructions" if count is not None else "(no valgrind: no instruction count)"
        print(f"  {name:<44} {secs * 1000 if secs else float('nan'):>8.1f} ms {ir}")


async def _agent_up(home: str) -> tuple[float, float]:
    """Seconds from `host add localhost` to its agent IDLE, on a running pcontrol; and the CPU
    seconds the agent had used by then."""
    from pcontrol.client import ControllerClient
    from pcontrol.wire import EventKind

    client = await ControllerClient.connect(home)
    try:
        await client.subscribe()
        events = client.events()
        t0 = time.perf_counter()
        await client.call("host", "add", "localhost", "-slots", "2")
        while True:
            event = await asyncio.wait_for(events.__anext__(), 60)
            if event.kind is EventKind.HOST and event.data["state"] == "IDLE":
                secs = time.perf_counter() - t0
                record = await client.call("check", "host", "localhost", "-json")
                return secs, cpu_of(int(record["agent"]["local_pid"]))
            if event.kind is EventKind.HOST and event.data["state"] == "DOWN":
                raise RuntimeError(f"localhost DOWN: {event.data['reason']}")
    finally:
        await client.close()


def cpu_of(pid: int) -> float:
    """CPU seconds process `pid` has used so far, all its threads (load-independent, unlike
    the wall times); nan once it is gone."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError):
        return float("nan")
    return total / 1e9


#: The first job of figure 5: its mark, then the CPU (ns) so far of its agent, of the agent's
#: parent (pcontrol) and of that one's parent (the sched that started it), one `pid ns` a line.
FIRST_JOB = """touch "$1"
agent=$PPID
pcontrol=$(cut -d' ' -f4 /proc/$agent/stat)
sched=$(cut -d' ' -f4 /proc/$pcontrol/stat)
for pid in $sched $pcontrol $agent; do
  cat /proc/$pid/task/*/schedstat | awk -v pid=$pid '{ns += $1} END {print pid, ns}'
done > "$1.cpu"
"""


def controller_start(rounds: int) -> dict[str, float]:
    """The two steps of a cold embedded default after sched's own start, one after the other:
    pcontrol from its start to ready (as sched starts it: pcontrol.launch, asking for the local
    agent ahead, pcontrol.spareagent), then its first agent from `host add localhost` to IDLE;
    the same without the agent ahead; beside `python3 -c pass`, alternated. Median seconds of
    wall time, and of CPU (pcontrol's at ready, the agent's at IDLE)."""
    from pcontrol import launch
    from pcontrol.paths import Paths
    from pcontrol.spareagent import OPTION

    times: dict[str, list[float]] = {}
    for _ in range(max(3, rounds)):
        for ahead in (True, False):
            home = fresh_home()
            tag = "ahead" if ahead else "plain"
            try:
                t0 = time.perf_counter()
                outcome = launch.start(Paths.for_home(home), [OPTION, "2"] if ahead else [])
                times.setdefault(f"ready {tag}", []).append(time.perf_counter() - t0)
                if not outcome.ok:
                    raise RuntimeError(outcome.message)
                times.setdefault(f"ready cpu {tag}", []).append(cpu_of(outcome.pid))
                secs, cpu = asyncio.run(_agent_up(home))
                times.setdefault(f"agent {tag}", []).append(secs)
                times.setdefault(f"agent cpu {tag}", []).append(cpu)
            finally:
                stop_pcontrol(home)
        times.setdefault("python", []).append(wall([PYTHON, "-c", "pass"]))
    return {name: statistics.median(ts) for name, ts in times.items()}


FIRST_JOB_PREFIX: list[str] = []
"""What figure 5's `sched script` runs under: `chrt -r 20` with --first-job-rr."""


def first_job() -> tuple[float, dict[str, float]]:
    """Seconds from `sched script` start to its first job running, cold embedded default; and
    the CPU seconds sched, pcontrol and the agent had used by then."""
    home = fresh_home()
    mark = Path(home) / "first"
    try:
        (Path(home) / "first.sh").write_text(FIRST_JOB)
        script = task_script(1, "NONE", 1, command=f"sh {home}/first.sh {mark}")
        path = Path(home) / "first.sched"
        path.write_text(script)
        t0 = time.time()
        wall([*FIRST_JOB_PREFIX, SCHED, str(path)], env=home_env(home))
        secs = mark.stat().st_mtime - t0
        lines = Path(f"{mark}.cpu").read_text().split("\n")
        cpu = {name: int(line.split()[1]) / 1e9 for name, line in zip(("sched", "pcontrol", "agent"), lines)}
        return secs, cpu
    finally:
        stop_pcontrol(home)


def bench_latency(rounds: int) -> None:
    from bench_pcontrol import one_at_a_time, settled  # noqa: F401  (settled: used inside)
    from pcontrol import daemon
    from pcontrol.client import ControllerClient
    from pcontrol.paths import Paths
    from pcontrol.wire import EventKind

    home = fresh_home()
    daemon.start(Paths.for_home(home), [])

    async def measure() -> list[float]:
        client = await ControllerClient.connect(home)
        try:
            await client.subscribe()
            events = client.events()
            await client.call("host", "add", "localhost", "-slots", "2")
            while True:
                if any(r["state"] == "IDLE" for r in await client.call("hosts")):
                    break
                await asyncio.wait_for(events.__anext__(), 60)
            result = await one_at_a_time(client, events, 200)
            return sorted(result.latencies)
        finally:
            await client.close()
    try:
        lat = asyncio.run(measure())
    finally:
        stop_pcontrol(home)
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000

    firsts = [first_job() for _ in range(max(3, rounds))]
    steps = controller_start(rounds)
    print("\n5. latency\n  target: p50 < 2 ms, p99 < 10 ms; first job < 300 ms")
    print(f"  {'submit-to-start, idle controller, 200 jobs':<44} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    ms = {name: statistics.median(cpu[name] for _, cpu in firsts) * 1000 for name in ("sched", "pcontrol", "agent")}
    rr = " (SCHED_RR)" if FIRST_JOB_PREFIX else ""
    print(f"  {'sched script start to first job (cold)' + rr:<44} median {statistics.median(s for s, _ in firsts) * 1000:6.0f} ms"
          f"   CPU by then: sched {ms['sched']:.0f}, pcontrol {ms['pcontrol']:.0f}, agent {ms['agent']:.0f} ms")
    print(f"    {'of which pcontrol start to ready':<42} median {steps['ready ahead'] * 1000:6.0f} ms"
          f"   its CPU {steps['ready cpu ahead'] * 1000:.0f} ms")
    print(f"    {'and its agent up (host add to IDLE)':<42} median {steps['agent ahead'] * 1000:6.0f} ms"
          f"   the agent's CPU {steps['agent cpu ahead'] * 1000:.0f} ms (started ahead, beside pcontrol)")
    print(f"    {'  the same, agent not started ahead:':<42} median {steps['ready plain'] * 1000:6.0f} ms"
          f" + {steps['agent plain'] * 1000:.0f} ms   CPU {steps['ready cpu plain'] * 1000:.0f} ms"
          f" + {steps['agent cpu plain'] * 1000:.0f} ms")
    print(f"    {'(python3 -c pass, alternated with them)':<42} median {steps['python'] * 1000:6.0f} ms")
    print("  (wall times depend on the load of the machine; the CPU figures hardly do)")


class Machine:
    """The machine's CPU time by kind (/proc/stat's first line) since `start`, printed by `report`."""

    KINDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

    def __init__(self) -> None:
        self.before = self._read()

    @staticmethod
    def _read() -> dict[str, int]:
        try:
            with open("/proc/stat") as stat:
                fields = stat.readline().split()[1:1 + len(Machine.KINDS)]
        except OSError:
            return {}
        return dict(zip(Machine.KINDS, map(int, fields)))

    def report(self) -> None:
        after = self._read()
        spent = {kind: after[kind] - self.before.get(kind, 0) for kind in after}
        total = sum(spent.values())
        if not total:
            return
        busy = total - spent.get("idle", 0) - spent.get("iowait", 0)
        share = {kind: spent.get(kind, 0) / total * 100 for kind in ("iowait", "steal")}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"  machine meanwhile: CPUs {busy / total * 100:.0f} % busy, iowait {share['iowait']:.0f} %,"
              f" steal {share['steal']:.0f} %, load {load:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="1,2,3,4,5")
    parser.add_argument("--first-job-rr", action="store_true",
                        help="figure 5's first-job scripts under SCHED_RR (chrt -r 20; root)")
    args = parser.parse_args()
    if args.first_job_rr:
        FIRST_JOB_PREFIX[:] = ["chrt", "-r", "20"]
    only = set(args.only.split(","))
    compile_project()
    become_subreaper()
    print(f"bench_user: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"{args.jobs} jobs, {args.rounds} rounds")
    if "1" in only:
        machine = Machine()
        bench_local(args.jobs, args.rounds)
        machine.report()
    if "2" in only:
        machine = Machine()
        bench_embedded(args.jobs, args.rounds)
        machine.report()
    if "3" in only:
        machine = Machine()
        bench_sshd(args.jobs, args.rounds)
        machine.report()
    if "4" in only:
        machine = Machine()
        bench_startup(args.rounds)
        machine.report()
    if "5" in only:
        machine = Machine()
        bench_latency(args.rounds)
        machine.report()


if __name__ == "__main__":
    main()
