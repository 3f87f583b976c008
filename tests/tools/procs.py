"""Finding the test's processes in /proc: by their command line and environment (agents name
their survivor socket directory in PCLIENT_RUNTIME_DIR, jobs inherit what sched or pcontrol had),
one way for every test folder and bench."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path


def alive(pid: int) -> bool:
    """A live process: not gone, not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def parent_of(pid: int) -> int | None:
    """The parent's pid (None: gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid`, whichever of its threads made them."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and parent_of(int(entry)) == pid]


def pids_where(match: Callable[[bytes, bytes], bool]) -> list[int]:
    """Live processes (not this one) whose (cmdline, environ) satisfy `match` (both NUL-separated bytes)."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if match(cmdline, environ) and alive(int(entry)):
            found.append(int(entry))
    return found


def agents_with_runtime(run_dir: Path | str) -> list[int]:
    """Live pclient agents whose survivor socket directory is `run_dir`."""
    needle = f"PCLIENT_RUNTIME_DIR={run_dir}\0".encode()
    return pids_where(lambda cmdline, env: b"pclient" in cmdline and needle in env)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    """Its output once it has exited 0 (killed if it is still there after `timeout` or an error)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return out, err
