"""The embedded default's pcontrol warmed up while sched reads its script (psched.scheduler.earlystart,
pcontrol.warmstart), through the real `sched` and `pcontrol` programs.

Each script stops before `run` in `exec cat FIFO` until the test writes to the fifo, so that the
test sees what is there between reading and running: the warm process (its command line names
the home's log and --go-fd) and its spare agent, and no pcontrol yet (no pid file, no log).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

from procs import alive, children_of, finish, parent_of, pids_where
from waiting import wait_until_sync

SCHED = [sys.executable, "-m", "psched.shell.cli"]
PCONTROL = [sys.executable, "-m", "pcontrol"]


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="early.", dir="/tmp"))
    os.mkfifo(path / "gate")
    yield path
    subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=_env(path), capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def _env(home: Path, **more: str) -> dict[str, str]:
    env = dict(os.environ, SCHED_HOME=str(home), **more)
    env.pop("PCONTROL_CONNECT", None)
    return env


def _script(home: Path, host: str = "NONE", before_run: str = "", run: str = "run\nwait") -> Path:
    path = home / "s.sched"
    path.write_text(f"""task t
  command touch {home}/ran
  host {host}
  nmax 1
end
exec cat {home}/gate
{before_run}
{run}
""")
    return path


def _warm(home: Path, sched: subprocess.Popen) -> list[int]:
    """sched's warm pcontrol (its child: the child it forks for the spare agent has the same
    command line until that execs)."""
    log = f"--log-file\0{home}/pcontrol.log\0".encode()
    return [pid for pid in pids_where(lambda cmdline, environ: log in cmdline and b"\0--go-fd\0" in cmdline)
            if parent_of(pid) == sched.pid]


def _gate_readers(home: Path) -> list[int]:
    """The script's `exec cat` of the gate (while sched waits there, or orphaned by its kill)."""
    gate = f"cat\0{home}/gate\0".encode()
    return pids_where(lambda cmdline, environ: cmdline == gate)


def _open_gate(home: Path) -> None:
    """Let the script's `exec cat` end: opening the fifo waits for cat to open it, which a
    running cat does (nothing to do when there is none)."""
    if _gate_readers(home):
        with open(home / "gate", "w") as gate:
            gate.write("go\n")


def _start(home: Path, script: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([*SCHED, str(script)], env=_env(home, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _through_the_gate(home: Path, script: Path, meanwhile: Callable[[Any, subprocess.Popen], None] | None = None,
                      warm: bool = True) -> tuple[Any, str]:
    """Run sched on `script` to its end: wait for its warm pcontrol (when `warm`) and for the
    gate's reader, call `meanwhile(warm pid, sched)`, open the gate; (the warm pid, sched's stderr)
    once sched has exited 0."""
    sched = _start(home, script)
    pid = None
    try:
        if warm:
            [pid] = wait_until_sync(lambda: _warm(home, sched), "the warm pcontrol is there")
        wait_until_sync(lambda: _gate_readers(home), "sched runs `cat` on the gate")
        if meanwhile is not None:
            meanwhile(pid, sched)
        _open_gate(home)
    except BaseException:
        sched.kill()
        raise
    return pid, finish(sched)[1]


def test_the_warm_process_becomes_the_pcontrol_that_run_starts(home):
    def before_run(warm: int, sched: subprocess.Popen) -> None:
        assert not (home / "pcontrol.pid").exists() and not (home / "pcontrol.log").exists()
        wait_until_sync(lambda: children_of(warm), "its spare agent is there")

    warm, err = _through_the_gate(home, _script(home), before_run)
    assert f"sched: started pcontrol in {home} (pid {warm})" in err
    assert "controller had no hosts: added localhost" in err
    assert (home / "ran").exists()


def test_a_script_that_never_runs_starts_no_pcontrol(home):
    warm, err = _through_the_gate(home, _script(home, run="if 0\n  run\nend"))
    assert "pcontrol" not in err
    wait_until_sync(lambda: not alive(warm), "the warm process has gone")
    assert not (home / "pcontrol.pid").exists() and not (home / "pcontrol.log").exists()


def test_the_warm_process_and_its_spare_leave_when_sched_is_killed(home):
    sched = _start(home, _script(home))
    try:
        [warm] = wait_until_sync(lambda: _warm(home, sched), "the warm pcontrol is there")
        spares = wait_until_sync(lambda: children_of(warm), "its spare agent is there")
        wait_until_sync(lambda: _gate_readers(home), "sched runs `cat` on the gate")
        sched.send_signal(signal.SIGKILL)
        sched.wait(timeout=60)
    finally:
        if sched.poll() is None:
            sched.kill()
        _open_gate(home)  # sched's `cat` child goes on reading the gate
    wait_until_sync(lambda: not any(alive(pid) for pid in [warm, *spares]), "the warm process and its spare have gone")
    assert not (home / "pcontrol.pid").exists()


def test_an_environment_changed_before_run_starts_pcontrol_cold(home):
    warm, err = _through_the_gate(home, _script(home, before_run="set env(EARLY_START_TEST) changed"))
    assert f"sched: started pcontrol in {home} (pid " in err and f"(pid {warm})" not in err
    assert (home / "ran").exists()
    wait_until_sync(lambda: not alive(warm), "the warm process has gone")


def test_a_local_script_warms_nothing(home):
    def before_run(_: None, sched: subprocess.Popen) -> None:
        assert _warm(home, sched) == []

    _, err = _through_the_gate(home, _script(home, host="LOCAL"), before_run, warm=False)
    assert "pcontrol" not in err and (home / "ran").exists()


def test_a_warm_process_killed_before_run_leaves_run_to_start_pcontrol_cold(home):
    warm, err = _through_the_gate(home, _script(home), lambda warm, sched: os.kill(warm, signal.SIGKILL))
    assert f"sched: started pcontrol in {home} (pid " in err and f"(pid {warm})" not in err
    assert (home / "ran").exists()
