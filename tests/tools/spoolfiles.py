"""Files planted in an agent's spool by the sweep tests (tests/pclient, tests/pcontrol)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

HOUR = 3600.0
ORPHAN = b"orphan\n"
"""What a planted file holds unless told."""


def plant(path: Path, data: bytes = ORPHAN, age: float = 2 * HOUR) -> Path:
    """A file at `path` (folders made) whose times say it was last written `age` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
