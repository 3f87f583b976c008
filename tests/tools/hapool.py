"""A pool of `sched --serve --foreground --ha URL` processes for the high-availability tests and
bench/bench_failover.py: each member with its own $SCHED_HOME and log, signalled by pid; and
the periodic task they share, whose every job appends its run number and due time to a file.

    pool = Pool(tmp, etcd_url, ttl=2)
    a = pool.member("a"); a.wait_log("leading:")
    b = pool.member("b", url=relay_url)      # b reaches etcd through a relay (a partition to cut)
    a.kill9(); b.wait_log("taken over")
    written = pool.kill9_between_runs(a, etcd)  # or so, while none of its jobs is under way
    c = pool.member("c", listen=True)        # --listen 127.0.0.1:PORT (c.address), the pool's secret
    runs = pool.runs()                       # [(run number, fired ms)] in the order written
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from etcdserver import EtcdServer, free_port
from procs import agents_with_runtime
from waiting import wait_until_sync

_CONSOLE = Path(sys.executable).parent / "sched"
SCHED = [str(_CONSOLE)] if _CONSOLE.exists() else [sys.executable, "-m", "psched"]
RELAY = Path(__file__).with_name("tcprelay.py")

# Each job writes `RUN FIRED LINE MESSAGE`: its task's run number (job_count), when it was fired
# (ms), the line its task.exec took from the queue `work` (item-RUN when each line is taken once,
# in order, across failovers), and the message the previous run sent it through the switchboard
# (m-RUN-1; none for the first run). One write(), so lines never interleave.
TASKS = """\
for {{set i 0}} {{$i < 1000}} {{incr i}} {{ queuepush work item-$i }}
task tick
  host LOCAL
  periods -poll 0.05 -exec {period}
  task.exec
    command sh -c "echo $job_count [clock milliseconds] [queuepop work] [lindex [queuepop inbox] end] >> {runs}"
    send tick m-$job_count
  end
end
run
"""


def _short_runtime_dir() -> Path:
    """A private directory under /tmp for the agents' survivor sockets, not one in the test's
    directory: a survivor listens on <dir>/.<key>-<pid>.sock.new, and AF_UNIX takes at most 107
    bytes. Under pytest's default basetemp (/tmp/pytest-of-USER/pytest-NN/popen-gwK/TEST0/run)
    that was 108 from pytest-10 on: the dead leader's agent could not wait for a successor and
    ended its jobs ("cannot wait for a successor: AF_UNIX path too long"), so the next leader
    found none of them (DOWN) and sent again the one whose start etcd had not recorded."""
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="harun-"))
    path.chmod(0o700)
    return path


def lines_of(path: Path) -> list[list[str]]:
    """The words of each non-empty line of a file the jobs append to ([] before it exists)."""
    try:
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


@dataclass
class Member:
    name: str
    home: Path
    log: Path
    proc: subprocess.Popen
    address: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = 30, after: int = 0) -> float:
        """Wait until the log says `text` (past offset `after`); the monotonic time it was seen."""
        wait_until_sync(lambda: text in self.text()[after:], f"{self.name}'s log says {text!r}:\n{self.text()[-2000:]}",
                        timeout)
        return time.monotonic()

    @property
    def name_in_pool(self) -> str:
        """How the pool names this member (psched.scheduler.ha.default_identity)."""
        import socket

        return f"{socket.gethostname()} pid {self.pid}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def pcontrol_pid(self) -> int | None:
        """The pid of the pcontrol in this member's home (None: none runs)."""
        try:
            pid = int((self.home / "pcontrol.pid").read_text().split()[0])
            if b"pcontrol" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)


class Pool:
    def __init__(self, directory: Path, url: str, ttl: int = 2, period: float = 1.0, tasks: str = TASKS,
                 secret: bytes | None = None):
        """`tasks`: the pool's file, formatted with {period}, {runs} and {exits} (files in the
        pool's directory); `secret`: every member's $SCHED_HOME/secret (its controller's agents
        then take over each other's: pcontrol.adoption)."""
        self.directory = Path(directory)
        self.url = url
        self.ttl = ttl
        self.runtime = _short_runtime_dir() if secret is not None else None
        """The agents' survivor sockets, shared by the members' controllers (with `secret`)."""
        self.runs_file = self.directory / "runs"
        self.exits_file = self.directory / "exits"
        self.script = self.directory / "tasks.sched"
        self.script.write_text(tasks.format(period=period, runs=self.runs_file, exits=self.exits_file))
        self.members: list[Member] = []
        self.relays: list[subprocess.Popen] = []
        self.secret = secret if secret is not None else os.urandom(32)
        """The pool's: every member that listens holds it (and, given here, every member: their
        controllers' agents then take over each other's)."""
        self.shares_agents = secret is not None

    def member(self, name: str, url: str | None = None, ha: bool = True, listen: bool = False) -> Member:
        """A `sched --serve --foreground --ha` on the pool's file (ha False: a plain server, the
        bench's peer: one sched that a supervisor restarts); with `listen`, on TCP too (a free
        port of 127.0.0.1, the pool's secret in its home)."""
        home = self.directory / name
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.shares_agents and not (home / "secret").exists():
            fd = os.open(home / "secret", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, self.secret)
            os.close(fd)
        log = self.directory / f"{name}.log"
        env = dict(os.environ, SCHED_HOME=str(home))
        address = None
        if listen:
            (home / "secret").write_bytes(self.secret)
            (home / "secret").chmod(0o600)
            address = f"127.0.0.1:{free_port()}"
        if self.runtime is not None:
            env["PCLIENT_RUNTIME_DIR"] = str(self.runtime)
        with open(log, "ab") as out:
            options = ["--ha", url or self.url, "--ha-ttl", str(self.ttl)] if ha else []
            options += ["--listen", address] if address else []
            proc = subprocess.Popen(SCHED + ["--serve", "--foreground", *options, str(self.script)], env=env,
                                    stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, cwd=self.directory)
        member = Member(name, home, log, proc, address)
        self.members.append(member)
        return member

    def attach(self, member: Member, script: str) -> subprocess.CompletedProcess:
        """`sched -c SCRIPT --attach` on a member's home."""
        env = dict(os.environ, SCHED_HOME=str(member.home))
        return subprocess.run(SCHED + ["-c", script, "--attach"], env=env, capture_output=True, text=True, timeout=30)

    def stop_command(self, member: Member) -> subprocess.CompletedProcess:
        """`sched --stop` on a member's home."""
        env = dict(os.environ, SCHED_HOME=str(member.home))
        return subprocess.run(SCHED + ["--stop"], env=env, capture_output=True, text=True, timeout=30)

    @property
    def prefix(self) -> str:
        """The pool's keys in etcd (psched.scheduler.ha.parse_ha_url)."""
        return "/psched/" + self.url.rsplit("/", 1)[1]

    def relay(self, port: int, target_port: int) -> subprocess.Popen:
        """A TCP relay 127.0.0.1:port -> 127.0.0.1:target_port (SIGSTOP it: a partition)."""
        proc = subprocess.Popen([sys.executable, str(RELAY), str(port), "127.0.0.1", str(target_port)],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        self.relays.append(proc)
        return proc

    def member_behind_relay(self, name: str) -> tuple[Member, subprocess.Popen]:
        """A member that reaches etcd through a relay of its own (SIGSTOP the relay: that member
        is cut from etcd, the others are not), and the relay."""
        etcd = urllib.parse.urlsplit(self.url)
        port = free_port()
        relay = self.relay(port, etcd.port)
        return self.member(name, url=f"http://127.0.0.1:{port}{etcd.path}"), relay

    def made(self, etcd: EtcdServer, task: str = "tick") -> int:
        """How many jobs of `task` etcd counts made (0 before the first)."""
        kv = etcd.get(f"{self.prefix}/state/task/{task}")
        return int(json.loads(base64.b64decode(kv["value"]))["made"]) if kv else 0

    def kill9_between_runs(self, member: Member, etcd: EtcdServer, task: str = "tick") -> int:
        """SIGKILL the leader `member` while no job of `task` is under way; the runs written then.

        A `host LOCAL` job dies with its leader, and the next leader does not run it again
        (docs/operators.md, limits: at most once for that window), so a test that each run fires
        once kills between two runs: the leader is stopped (SIGSTOP: it makes and starts nothing
        more, while a job it has started goes on) and killed once each run that etcd counts made
        has written its line; else it goes on (SIGCONT) until that line is there, and again."""
        while True:
            os.kill(member.pid, signal.SIGSTOP)
            try:
                made = self.made(etcd, task)
                written = len(self.runs())
            except BaseException:
                os.kill(member.pid, signal.SIGCONT)
                raise
            if written >= made:
                member.kill9()
                return written
            os.kill(member.pid, signal.SIGCONT)
            wait_until_sync(lambda: len(self.runs()) >= made, f"run {made - 1} has written its line", 30)

    def runs(self) -> list[tuple[int, int]]:
        """(run number, fired at ms) of every job, in the order they were written (each job
        also took the next line of the queue `work`: check_each_run_once checks those too)."""
        out = []
        try:
            text = self.runs_file.read_text()
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) in (3, 4):
                assert parts[2] == f"item-{parts[0]}", f"run {parts[0]} took {parts[2]} from the queue"
                if out or len(parts) == 4:  # each run but the first got the message of the one before
                    assert parts[3:] == [f"m-{int(parts[0]) - 1}"], f"run {parts[0]} got the message {parts[3:]}"
                out.append((int(parts[0]), int(parts[1])))
        return out

    def close(self) -> None:
        for member in self.members:
            member.stop()
        for member in self.members:   # a killed member's pcontrol; agents left with jobs (by pid)
            pid = member.pcontrol_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        if self.runtime is not None:
            for pid in agents_with_runtime(self.runtime):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(self.runtime, ignore_errors=True)
        for relay in self.relays:
            try:
                os.kill(relay.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            relay.kill()
            relay.wait(10)


def check_each_run_once(runs: list[tuple[int, int]], period: float) -> None:
    """Every run number from 0 on exactly once, in order, and never two within the exec period."""
    numbers = [n for n, _ in runs]
    assert numbers == list(range(len(numbers))), f"runs out of order, missing or twice: {numbers}"
    for (_, before), (n, at) in zip(runs, runs[1:]):
        assert at - before >= period * 1000 - 50, f"run {n} fired {at - before} ms after run {n - 1}"
