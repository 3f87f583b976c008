"""A daemon's log file: rotated by size with N kept, reopened on request (logrotate's SIGHUP).

    handler = RotatingLog(path, max_bytes=10 << 20, keep=5, follow_fds=(1, 2))
    logging.getLogger().addHandler(handler)
    handler.reopen()            # after logrotate moved the file away
    handler.check()             # rotate now if the file passed max_bytes (writes not made by logging)

Used by pcontrol's daemon, the sched server and pclient's --log (standard library only, so
the agent can carry it). `rotate_files` is the one rename chain (PATH -> PATH.1 -> ... ->
PATH.N): RotatingLog uses it, and so do a task's `stdout PATH -append -rotate SIZE -keep N`
files (pclient.output). `follow_fds` are descriptors (stdout, stderr) pointed at the current
file whenever it is opened, rotated or reopened, so that what the process writes outside
logging (a traceback, a server's macro output) lands in the same file and counts toward its
size: disk use stays within about (keep + 1) x max_bytes. max_bytes 0 never rotates.

The sizes (DEFAULT_MAX_BYTES, DEFAULT_KEEP, parse_size, size_argument) are pclient.logsizes',
re-exported here.
"""

from __future__ import annotations

import logging.handlers
import os
import sys
from typing import Sequence, Union

from .logsizes import DEFAULT_KEEP, DEFAULT_MAX_BYTES, parse_size, size_argument

def rotate_files(path: str, keep: int) -> None:
    """PATH becomes PATH.1, PATH.1 becomes PATH.2, ... PATH.keep is dropped (keep 0: PATH is removed)."""
    if keep <= 0:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        return
    for index in range(keep - 1, 0, -1):
        source, target = f"{path}.{index}", f"{path}.{index + 1}"
        if os.path.exists(source):
            os.replace(source, target)
    if os.path.exists(path):
        os.replace(path, f"{path}.1")


class RotatingLog(logging.handlers.RotatingFileHandler):
    """See the module docstring."""

    def __init__(self, path: Union[str, os.PathLike], max_bytes: int = DEFAULT_MAX_BYTES,
                 keep: int = DEFAULT_KEEP, follow_fds: Sequence[int] = ()):
        self.follow_fds = tuple(follow_fds)
        super().__init__(os.fspath(path), maxBytes=max_bytes, backupCount=max(keep, 1) if max_bytes else 0,
                         encoding="utf-8", delay=False)
        self._follow()

    def _open(self):  # type: ignore[override]
        stream = super()._open()
        try:
            os.chmod(self.baseFilename, 0o600)
        except OSError:
            pass
        return stream

    def _follow(self) -> None:
        if self.stream is None or not self.follow_fds:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        for fd in self.follow_fds:
            os.dup2(self.stream.fileno(), fd)

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        if self.backupCount > 0:
            rotate_files(self.baseFilename, self.backupCount)
        self.stream = self._open()
        self._follow()

    def reopen(self) -> None:
        """Close and open the file again by its name (it may have been moved away)."""
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
            self._follow()
        finally:
            self.release()

    def check(self) -> None:
        """Rotate now if the file has passed max_bytes (for writes that logging did not make)."""
        if not self.maxBytes or self.stream is None:
            return
        self.acquire()
        try:
            if os.fstat(self.stream.fileno()).st_size >= self.maxBytes:
                self.doRollover()
        finally:
            self.release()


__all__ = ["RotatingLog", "parse_size", "size_argument", "rotate_files", "DEFAULT_MAX_BYTES", "DEFAULT_KEEP"]
