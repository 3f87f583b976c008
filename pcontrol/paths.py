"""Where pcontrol keeps its files: everything lives in $SCHED_HOME (default ~/.sched).

One small value object so the daemon, the CLI, the client and the tests agree on names. A
NamedTuple, not a dataclass: a sched that reads a script needing pcontrol begins it warm with
these names before its own dataclasses are loaded (psched.scheduler.earlystart, issue 13).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

#: Unix socket paths are limited to sizeof(sun_path) - 1 bytes on Linux.
MAX_SOCKET_PATH = 107


HOME_VAR = "SCHED_HOME"
"""The environment variable naming the home that pcontrol and the sched shell share."""


def default_home() -> Path:
    """$SCHED_HOME, else ~/.sched: the one resolver of the home, for pcontrol and sched alike.

    A value of blanks only counts as unset (it names ~/.sched, not a directory called " ").
    """
    configured = os.environ.get(HOME_VAR, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".sched"


class Paths(NamedTuple):
    """The files of one controller home."""

    home: Path

    @classmethod
    def for_home(cls, home: str | os.PathLike[str] | None = None) -> "Paths":
        return cls(Path(home).expanduser() if home is not None else default_home())

    @property
    def socket(self) -> Path:
        return self.home / "pcontrol.sock"

    @property
    def pidfile(self) -> Path:
        return self.home / "pcontrol.pid"

    @property
    def log(self) -> Path:
        return self.home / "pcontrol.log"

    @property
    def journal(self) -> Path:
        return self.home / "pcontrol.db"

    @property
    def stopped_mark(self) -> Path:
        """Present while pcontrol is stopped on purpose (`pcontrol stop`): schedulers then do
        not start it again by themselves (pcontrol.daemon.mark_stopped)."""
        return self.home / "pcontrol.stopped"

    @property
    def options(self) -> Path:
        """The settings of the last `pcontrol start` or `serve` (its options, JSON), with which
        a scheduler starts pcontrol again by itself (pcontrol.launch.remembered_options)."""
        return self.home / "pcontrol.options"

    @property
    def history(self) -> Path:
        return self.home / "pcontrol_history"

    def ensure_home(self) -> None:
        """Create the home owner-only (0700); tighten it if it exists with looser bits."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = self.home.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(self.home, 0o700)

    def check_socket_path(self) -> None:
        """Raise ValueError when the socket path is too long for AF_UNIX."""
        length = len(os.fsencode(str(self.socket)))
        if length > MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path {self.socket} is {length} bytes, longer than the "
                f"{MAX_SOCKET_PATH} a Unix socket allows; use a shorter SCHED_HOME")
