"""`sched` as a subprocess on a home of the test's own, for the tests of its promises (one sched
per home, clean stops, ids and launches across restarts): start it on a script, wait for a mark
it writes, signal it, read what its exit macros logged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from procs import pids_where
from waiting import wait_until_sync

_CONSOLE = Path(sys.executable).parent / "sched"
SCHED = [str(_CONSOLE)] if _CONSOLE.exists() else [sys.executable, "-m", "psched"]


@dataclass
class SchedRun:
    """One `sched` process (stdin not a terminal: as under cron or systemd)."""

    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """Wait for the end; (status, stdout, stderr). A negative status: killed by that signal."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"sched did not end within {timeout} s; stderr: {err}") from None
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def start(home: Path, script: Path | str, *args: str, env: dict[str, str] | None = None) -> SchedRun:
    """`sched [ARGS] SCRIPT` with $SCHED_HOME = home; `script` is a path or the text of one."""
    if not isinstance(script, Path):
        path = home.parent / f"script-{len(list(home.parent.glob('script-*')))}.sched"
        path.write_text(script)
        script = path
    environ = dict(os.environ if env is None else env, SCHED_HOME=str(home))
    proc = subprocess.Popen([*SCHED, *args, str(script)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ, start_new_session=True)
    return SchedRun(proc)


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path: Path, n: int, what: str, timeout: float = 30) -> list[str]:
    wait_until_sync(lambda: len(lines(path)) >= n, what, timeout)
    return lines(path)


def kill_home_processes(home: Path) -> list[int]:
    """SIGKILL every process whose environment has SCHED_HOME=home (what a killed sched left:
    its local jobs, its pcontrol and agents); the pids killed."""
    mark = b"SCHED_HOME=" + bytes(home) + b"\0"
    killed = pids_where(lambda _cmdline, env: mark in env + b"\0")
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed


def kill_group(pid: int) -> None:
    """End what a test started under a session of its own (the sched and its jobs)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
