"""Fencing tokens on an agent's host: a controller of a high-availability pool (pcontrol under
`sched --serve --ha`) gives its leader's token in `auth`; the highest token any agent of a
survivor key has accepted is kept beside the survivor sockets, and a lower one is refused.

    floor = FenceFloor.of(key)          # <runtime dir>/<key>.fence (pclient.lease.runtime_dir)
    floor.current()                     # 0: no token seen on this host for this key
    floor.raise_to(17)                  # max(current, 17), atomically (flock); the new floor
    refusal(mine=12, floor=17)          # "token 12 is lower than 17, which has taken over..."

So once the agent of a new leader's controller has authenticated on a host, every agent of an
older leader's controller there refuses what that controller still asks (run, kill, a sync
start) and a new agent it starts is refused at `auth`; a survivor gives its jobs only to a
successor whose token is not lower than its own. The file is one decimal number, written with
a single write() under an flock and read without one: a reader sees the old or the new number.
Standard library only.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Union

from .lease import runtime_dir

log = logging.getLogger(__name__)

__all__ = ["FenceFloor", "refusal"]

SUFFIX = ".fence"


def refusal(mine: Union[int, None], floor: int) -> Union[str, None]:
    """Why a controller with token `mine` is refused on a host whose floor is `floor` (None: it is not)."""
    if floor <= 0:
        return None
    if mine is None:
        return f"fenced: this controller has no fencing token and token {floor} has taken over this host"
    if mine < floor:
        return f"fenced: token {mine} is lower than {floor}, which has taken over this host"
    return None


class FenceFloor:
    """The highest fencing token accepted on this host for one survivor key (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def of(cls, key: str, directory: Union[Path, None] = None) -> "FenceFloor":
        return cls((directory or runtime_dir()) / f"{key}{SUFFIX}")

    def current(self) -> int:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("cannot read the fencing floor %s: %s", self.path, exc)
            return 0
        return int(text) if text.strip().isdigit() else 0

    def raise_to(self, token: int) -> int:
        """Make the floor at least `token`; the floor after."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            floor = int(text) if text.isdigit() else 0
            if token > floor:
                data = str(token).encode()
                os.pwrite(fd, data.ljust(max(len(data), len(text)), b" "), 0)
                os.ftruncate(fd, len(data))
                floor = token
            return floor
        finally:
            os.close(fd)
