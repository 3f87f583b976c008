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
"""

from __future__ import annotations

import argparse
import logging.handlers
import os
import sys
from typing import Sequence, Union

#: Defaults for every log of the product: 10 MiB a file, 5 old files kept.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5


def parse_size(text: str) -> int:
    """Bytes from `10485760`, `512k`, `10M`, `1G` (powers of 1024); ValueError otherwise."""
    word = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(word[-1:], 1)
    number = word[:-1] if scale != 1 else word
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f'expected a size such as 10M, 512k or 1048576 but got "{text}"') from None
    if value < 0:
        raise ValueError(f'a size cannot be negative: "{text}"')
    return int(value * scale)


def size_argument(text: str) -> int:
    """parse_size as an argparse type (the programs' --log-max-bytes): a bad size is a usage error."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
