"""The local agent started ahead of need (pcontrol.spareagent), through the real programs:
`python -m pcontrol start --spare-local-agent N` as the sched shell's embedded default runs it.

The spare is the process the first local start uses when it is that start's command; any
other first local start, `stop` and a pcontrol killed -9 each leave no spare behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from pcontrol.spareagent import OPTION, spare_from_argv
from procs import alive
from pcontrol_harness import run
from test_cli import wait_done
from waiting import wait_until_sync

PCONTROL = [sys.executable, "-m", "pcontrol"]


def pcontrol(home: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SCHED_HOME=home)
    return subprocess.run([*PCONTROL, *args], env=env, capture_output=True, text=True, timeout=60)


def start_with_spare(home: str, slots: int) -> int:
    started = pcontrol(home, "start", "--heartbeat", "0.2", OPTION, str(slots))
    assert started.returncode == 0, started.stderr
    return int(re.search(r"pid (\d+)", started.stdout).group(1))


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def spare_of(daemon: int) -> int:
    """The daemon's one child before any host is added: the spare."""
    return wait_until_sync(lambda: next(iter(children(daemon)), None), "the spare agent runs")


def host(home: str, name: str) -> dict:
    done = pcontrol(home, "check", "host", name, "-json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def idle_agent_pid(home: str, name: str) -> int:
    record = wait_until_sync(lambda: (r := host(home, name))["state"] in ("IDLE", "BUSY") and r,
                             f"{name} is up")
    return int(record["agent"]["local_pid"])


def gone(pid: int) -> bool:
    """Exited and reaped (not a zombie left by its parent)."""
    return not alive(pid) and not Path(f"/proc/{pid}").exists()


def test_the_first_localhost_of_that_command_is_the_spare_and_runs_jobs(home: str) -> None:
    daemon = start_with_spare(home, 2)
    try:
        spare = spare_of(daemon)
        assert pcontrol(home, "host", "add", "localhost", "-slots", "2").returncode == 0
        assert idle_agent_pid(home, "localhost") == spare
        submitted = pcontrol(home, "job", "--", "sh", "-c", "echo from the spare")
        assert submitted.returncode == 0, submitted.stderr
        assert run(wait_done(home, int(submitted.stdout)))["outcome"] == "EXIT"
        assert pcontrol(home, "stdout", submitted.stdout.strip()).stdout == "from the spare\n"
        assert "its agent was started ahead" in (Path(home) / "pcontrol.log").read_text()
    finally:
        pcontrol(home, "stop", "-kill", "-force")
    wait_until_sync(lambda: gone(spare), "the agent has exited with pcontrol stop -kill")


def test_a_first_local_start_of_another_command_ends_the_spare(home: str) -> None:
    daemon = start_with_spare(home, 2)
    try:
        spare = spare_of(daemon)
        assert pcontrol(home, "host", "add", "localhost", "-slots", "3").returncode == 0
        agent = idle_agent_pid(home, "localhost")
        assert agent != spare
        wait_until_sync(lambda: gone(spare), "the spare was ended and reaped")
        assert Path(f"/proc/{agent}/cmdline").read_bytes().split(b"\0")[-3:-1] == [b"--slots", b"3"]
    finally:
        pcontrol(home, "stop", "-kill", "-force")


def test_stop_ends_a_spare_nobody_took(home: str) -> None:
    spare = spare_of(start_with_spare(home, 2))
    stopped = pcontrol(home, "stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_until_sync(lambda: not alive(spare), "the spare ended with pcontrol")


def test_a_pcontrol_killed_minus_9_leaves_no_spare(home: str) -> None:
    daemon = start_with_spare(home, 2)
    spare = spare_of(daemon)
    os.kill(daemon, signal.SIGKILL)
    wait_until_sync(lambda: not alive(spare), "the spare, never authenticated, exited on EOF")


def test_only_serve_with_a_number_of_slots_asks_for_a_spare() -> None:
    assert spare_from_argv(["start", OPTION, "2"]) is None
    assert spare_from_argv(["serve", OPTION, "0"]) is None
    assert spare_from_argv(["serve", OPTION, "two"]) is None
    assert spare_from_argv(["serve", OPTION]) is None
    refused = pcontrol("/tmp", "serve", OPTION, "two")
    assert refused.returncode == 2 and "must be a number of slots" in refused.stderr
