"""Helpers for the whole-product fault tests (tests/faults/test_faults_*.py) and the soak
bench (bench/bench_soak.py): a throwaway $SCHED_HOME with its pcontrol and local agents, a
sched interpreter driven in-process, and the count that proves nothing was lost or doubled.

    home = FaultHome.make()                  # a short /tmp dir, its own agent socket dir
    home.start()                             # `pcontrol start` with fast timers
    home.add_local_hosts(["h1", "h2"])       # each a local pclient through -connect
    ...
    tally = count(await home.jobs(owner), read_exit_log(path))
    assert (tally.lost, tally.duplicated) == ([], [])
    home.cleanup()                           # stop -kill, kill leftover agents, rm -rf

The count. Every job of a test's task carries a unique token as the last word of its
command (made by the task's task.exec: `job_script` below), and the task's exit macro
appends one line `TOKEN STATE s=STATUS h=HOST m=SELECTOR r=RERUN` to an exit log. The
controller's records (`jobs -owner OWNER -json`) are the jobs that exist; a job is counted
*lost* when no line names its token, *duplicated* when more than one first run (r=0) does,
and a token that two controller jobs share is a job *submitted twice*. A line with r=1 is a
*rerun*: the macro ran again because the sched running it was killed in the middle of it
(`$job_rerun`); a test that kills sched allows at most one rerun per kill (one macro runs at
a time).

Waiting is on state, bounded: `wait_until` (tests/tools/waiting.py) polls a condition nobody can signal (a process
gone, a file there) every 20 ms until a deadline; nothing here sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Iterable

from sched_shell import Shell as BaseShell
from procs import agents_with_runtime, alive, pids_where  # noqa: F401  (the fault tests import them from here)
from waiting import WAIT, wait_until, wait_until_sync  # noqa: F401  (the fault tests import them from here)

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PCONTROL = [PYTHON, "-m", "pcontrol"]
SCHED = [PYTHON, "-m", "psched.shell.cli"]
LOCAL_AGENT = f"{shlex.quote(PYTHON)} -m pclient"

#: `pcontrol serve` options for fault tests: heartbeat 0.5 s (a silent host is DOWN within
#: 1.5 s), fast retries of DOWN hosts, a lease long enough for any test, and a reconcile
#: grace that ends a job nobody reports within 30 s.
FAST_SERVE = ("--heartbeat", "0.5", "--retry-min", "0.2", "--retry-max", "1", "--lease", "120",
              "--grace", "30")


# -- processes -------------------------------------------------------------------------------

def pids_with_arg(marker: str) -> list[int]:
    """Live processes with `marker` in their command line."""
    needle = marker.encode()
    return pids_where(lambda cmdline, _env: needle in cmdline)


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# -- a home with its controller --------------------------------------------------------------

@dataclass
class FaultHome:
    """A $SCHED_HOME of its own (short: Unix socket paths), with the agents' survivor socket
    directory inside it, so everything a test starts can be found and ended."""

    path: Path
    env: dict[str, str]

    @classmethod
    def make(cls, prefix: str = "ft") -> "FaultHome":
        path = Path(tempfile.mkdtemp(dir="/tmp", prefix=prefix))
        run_dir = path / "run"
        run_dir.mkdir(mode=0o700)
        env = dict(os.environ, SCHED_HOME=str(path), PCLIENT_RUNTIME_DIR=str(run_dir))
        return cls(path, env)

    @property
    def run_dir(self) -> Path:
        return self.path / "run"

    @property
    def owner(self) -> str:
        """The owner id of a sched on this home (psched.scheduler.remote.owner_id)."""
        from psched.scheduler.remote import owner_id

        return owner_id(self.path)

    def pcontrol(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([*PCONTROL, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"pcontrol {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def start(self, serve_args: Iterable[str] = FAST_SERVE) -> int:
        """`pcontrol start`; the daemon's pid (already running: that one's)."""
        self.pcontrol("start", *serve_args)
        pid = self.pid()
        assert pid is not None, "pcontrol start returned but no daemon holds the pid file"
        return pid

    def pid(self) -> int | None:
        from pcontrol.daemon import read_pid
        from pcontrol.paths import Paths

        return read_pid(Paths.for_home(self.path))

    def kill_pcontrol(self) -> int:
        """SIGKILL the daemon and wait until it is gone (its pid lock released)."""
        pid = self.pid()
        assert pid is not None, "pcontrol is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until_sync(lambda: not alive(pid) and self.pid() != pid, f"pcontrol {pid} is gone")
        return pid

    def add_local_hosts(self, names: Iterable[str], slots: int = 4) -> None:
        """Hosts that are local agents started through -connect (as ssh would start one)."""
        names = list(names)
        for name in names:
            self.pcontrol("host", "add", name, "-slots", str(slots), "-connect",
                          f"{LOCAL_AGENT} --slots {slots}")
        wait_until_sync(lambda: self._all_up(names), f"hosts {names} are up")

    def _all_up(self, names: list[str]) -> bool:
        hosts = {h["name"]: h for h in self.call_sync("hosts", "-json")}
        return all(hosts.get(n, {}).get("state") in ("IDLE", "BUSY") for n in names)

    async def call(self, *argv: str) -> Any:
        """One controller command from inside a loop (its JSON result)."""
        from pcontrol.client import ControllerClient

        client = await ControllerClient.connect(self.path)
        try:
            return await client.call(*argv)
        finally:
            await client.close()

    async def jobs(self, owner: str | None = None) -> list[dict[str, Any]]:
        argv = ["jobs", "-json"] + (["-owner", owner] if owner else [])
        return await self.call(*argv)

    def call_sync(self, *argv: str) -> Any:
        """`call` for code that runs no event loop."""
        return asyncio.run(self.call(*argv))

    def jobs_sync(self, owner: str | None = None) -> list[dict[str, Any]]:
        return self.call_sync("jobs", "-json", *(["-owner", owner] if owner else []))

    def agents(self) -> list[int]:
        """Live pclient agents started for this home (their environment names its socket dir)."""
        return agents_with_runtime(self.run_dir)

    def survivor_sockets(self) -> list[Path]:
        return sorted(self.run_dir.glob("*.sock"))

    def cleanup(self) -> None:
        """End everything this home started: the daemon (every job killed), agents left
        behind (a test that failed half-way), then the directory."""
        if self.pid() is not None:
            result = self.pcontrol("stop", "-kill", "-force", check=False)
            if result.returncode != 0 and self.pid() is not None:
                kill_all([self.pid()])
        marker = f"PCLIENT_RUNTIME_DIR={self.run_dir}\0".encode()
        # agents and their jobs inherit the variable: end every process that carries it
        kill_all(pids_where(lambda _c, env: marker in env))
        shutil.rmtree(self.path, ignore_errors=True)


# -- the task every counting test runs -------------------------------------------------------

def job_script(name: str, exit_log: Path, scripts: list[str], *, nmax: int, npending: int,
               retry: int = 0, host: str = "NONE", extra: str = "",
               selectors: tuple[str, ...] = ("default",)) -> str:
    """A task whose job number k runs `sh -c scripts[k % len(scripts)] TOKEN` (the script
    sees its token as $0) and whose exit macros (one per selector) append
    `TOKEN STATE s=STATUS h=HOST m=SELECTOR r=RERUN` to `exit_log`. TOKEN is unique per job, across
    restarts of sched: the time in microseconds and the task's job count."""
    kinds = " ".join("{" + s + "}" for s in scripts)
    macros = "".join(f"""
  task.exit {selector}
    exec sh -c {{echo "$1 $2 s=$3 h=$4 m=$5 r=$7" >> "$6"}} exitlog [lindex $job_command end] $job_state $exit_status $job_host {selector} {{{exit_log}}} $job_rerun
  end""" for selector in selectors)
    return f"""
task {name}
  host {host}
  nmax {nmax}
  npending {npending}
  retry {retry}
{extra}
  task.exec
    set kinds [list {kinds}]
    command sh -c [lindex $kinds [expr {{$job_count % [llength $kinds]}}]] "t[clock microseconds]x$job_count"
  end{macros}
end
"""


@dataclass
class ExitLine:
    token: str
    state: str
    status: str
    host: str
    macro: str
    rerun: bool = False  # r=1: run again after a sched died in it


def read_exit_log(path: Path) -> list[ExitLine]:
    """The lines the exit macros wrote (none yet: empty). The r= word is optional (bench_soak's
    macro writes none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = []
    for raw in text.splitlines():
        words = raw.split()
        if len(words) not in (5, 6):
            raise AssertionError(f"malformed exit-log line {raw!r} in {path}")
        lines.append(ExitLine(words[0], words[1], words[2][2:], words[3][2:], words[4][2:],
                              len(words) == 6 and words[5] == "r=1"))
    return lines


def token_of(record: dict[str, Any]) -> str:
    return record["argv"][-1]


@dataclass
class Tally:
    """Jobs the controller holds for an owner, against the exit macros that ran."""

    submitted: int
    one_outcome: int
    lost: list[str] = field(default_factory=list)             # no exit macro ran
    duplicated: list[str] = field(default_factory=list)       # more than one first run
    reruns: list[str] = field(default_factory=list)           # a run after sched died in one
    submitted_twice: list[str] = field(default_factory=list)  # one token, two controller jobs
    not_done: list[int] = field(default_factory=list)         # controller ids not DONE
    wrong_outcome: list[str] = field(default_factory=list)    # macro saw another outcome
    strays: list[str] = field(default_factory=list)           # macro lines of unknown jobs

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.submitted_twice or self.not_done
                    or self.wrong_outcome or self.strays)

    def summary(self) -> str:
        return (f"{self.submitted} submitted, {self.one_outcome} with exactly one outcome, "
                f"{len(self.lost)} lost, {len(self.duplicated)} duplicated, "
                f"{len(self.reruns)} rerun after a kill, "
                f"{len(self.submitted_twice)} submitted twice, {len(self.not_done)} not done, "
                f"{len(self.wrong_outcome)} with a wrong outcome, {len(self.strays)} strays")


def count(records: list[dict[str, Any]], lines: list[ExitLine]) -> Tally:
    """Compare the controller's records with the exit log (see the module docstring)."""
    by_token: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for record in records:
        by_token[token_of(record)].append(record)
    runs = collections.Counter(line.token for line in lines)
    first_runs = collections.Counter(line.token for line in lines if not line.rerun)
    seen = {line.token: line for line in lines}
    tally = Tally(submitted=len(by_token), one_outcome=0)
    tally.submitted_twice = sorted(t for t, rs in by_token.items() if len(rs) > 1)
    tally.not_done = sorted(r["id"] for r in records if r["state"] != "DONE")
    for token, recs in by_token.items():
        n = runs.get(token, 0)
        tally.reruns += [token] * (n - first_runs.get(token, 0))
        if n == 0:
            tally.lost.append(token)
        elif first_runs.get(token, 0) > 1:
            tally.duplicated.append(token)
        else:
            tally.one_outcome += 1
            record = recs[-1]
            if record["state"] == "DONE" and seen[token].state != record["outcome"]:
                tally.wrong_outcome.append(token)
    tally.strays = sorted(set(runs) - set(by_token))
    return tally


# -- sched, in this process ------------------------------------------------------------------

class Shell(BaseShell):
    """A sched interpreter in this process, as the shell has it, its messages collected.
    Its loop runs only inside `run` (a script that waits) and `run_until`."""

    source = "faults.sched"

    def __init__(self) -> None:
        super().__init__()
        self.left = False

    @property
    def link(self) -> Any:
        return self.sched.remote

    def run_until(self, awaitable: Awaitable[Any]) -> Any:
        from psched.scheduler.eventloop import run_until

        return run_until(awaitable, interruptible=False)

    def ended(self) -> int:
        return sum(1 for job in self.sched.jobs.values() if job.done)

    def leave(self) -> None:
        """Leave as `quit -force` does: the exit hooks run (jobs out stay at the controller)."""
        from psched.shell.session import run_exit_hooks

        if not self.left:
            self.left = True
            run_exit_hooks(self.interp)

    def stop_and_leave(self, home: FaultHome) -> None:
        """Stop the controller (every job killed), then leave."""
        if self.left:
            return
        # Stop the daemon (every job killed) and let the link see its connection close, so
        # that leaving has nothing left to wait for.
        home.pcontrol("stop", "-kill", "-force", check=False)
        with contextlib.suppress(AssertionError):
            self.run_until(wait_until(lambda: not self.link.connected, "the link saw the close", 5))
        self.leave()
