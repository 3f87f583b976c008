"""One output stream of a job: every byte to a file when the job names one, a bounded head in memory.

    sink = Sink(limit=1 << 20, dest=OutputFile("/data/run.log", append=False))
    sink.feed(chunk)          # as the job writes (jobproc's watcher thread)
    error = sink.finish()     # the job is over: the file is in place (or why it is not)
    sink.head, sink.total, sink.truncated

The bytes go, as they come, to a spool file beside the destination (`.NAME.pclient-PID-N.part`
in the same directory, so nothing is held in memory however large the output).  When the job
ends the spool replaces the destination at once (os.replace: a reader never sees half a
file), or, with `append`, is appended to it and removed.  The destination receives exactly the
job's bytes: no decoding, no cut.  Only the first `limit` bytes are also kept in memory (for
$stdout and the like); `total` counts them all.  Errors (a missing directory, a full disk)
are returned by `finish`, never raised: they are the job's data, not the runner's failure.

A destination with `rotate` (a task's `stdout PATH -append -rotate SIZE -keep N`) is written
in place instead, as the bytes come, and rotated by size with `keep` old files
(pclient.logfile.rotate_files, the daemons' rename chain): no file passes `rotate` bytes, so
a job that prints without end holds at most (keep + 1) x rotate bytes of disk.  A reader may
then see the output of a job still running, which is what such a file is for.

`as_text(data)` is how a job's output becomes text ($stdout, the `ended` message's head, an
outbox's lines): UTF-8, a byte that is not part of UTF-8 standing for the Latin-1 character
of its value, as Tcl 8.6's `exec` reads a program's output (a probe printing ISO-8859-1
`café` gives café, not a replacement character; no byte's value is lost). sched reads
script text by the same rule (psched.lang.scripttext, which cannot import this package).
"""

from __future__ import annotations

import codecs
import itertools
import os
from dataclasses import dataclass
from typing import Union


__all__ = ["OutputFile", "Sink", "as_text"]

_LATIN1_ERRORS = "pclient-latin1"


def _latin1(error: UnicodeError) -> tuple:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error(_LATIN1_ERRORS, _latin1)


def as_text(data: bytes) -> str:
    """A job's output bytes as text, as Tcl's `exec` gives them (see the module's doc)."""
    return data.decode("utf-8", _LATIN1_ERRORS)

_COPY_CHUNK = 1 << 20
_serial = itertools.count(1)


@dataclass(frozen=True)
class OutputFile:
    """Where a stream goes: `path` (replaced when the job ends), or appended to with `append`;
    with `rotate` (bytes, needs `append`) written in place and rotated, `keep` old files kept."""

    path: str
    append: bool = False
    rotate: int = 0
    keep: int = 0


class Sink:
    """Collects one stream (see the module docstring)."""

    def __init__(self, limit: int, dest: Union[OutputFile, None] = None) -> None:
        self.limit = limit
        self.dest = dest
        self._chunks: list[bytes] = []
        self.kept = 0
        self.total = 0
        self.error: Union[str, None] = None
        self._fd = -1
        self._spool: Union[str, None] = None
        self._target: Union[str, None] = None
        self._size = 0  # bytes in the file written in place (a rotating destination)
        if dest is not None and dest.rotate > 0:
            self._open_rotating(dest)
        elif dest is not None:
            self._open(dest)

    def _open_rotating(self, dest: OutputFile) -> None:
        target = os.path.realpath(dest.path)
        try:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            self.error = f"cannot write {dest.path}: {exc.strerror or exc}"
            self._fd = -1
            return
        self._target = target

    def _write_rotating(self, data: bytes) -> None:
        assert self.dest is not None and self._target is not None
        limit = self.dest.rotate
        view = memoryview(data)
        while view:
            if self._size >= limit:
                os.close(self._fd)
                self._fd = -1
                from .logfile import rotate_files  # at the first rotation: logging's handlers cost sched and the agent start-up

                rotate_files(self._target, self.dest.keep)
                self._fd = os.open(self._target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
                self._size = 0
            piece = view[:limit - self._size]
            _write_all(self._fd, piece)
            self._size += len(piece)
            view = view[len(piece):]

    def _open(self, dest: OutputFile) -> None:
        target = os.path.realpath(dest.path)  # write through a symlink, as open() would
        directory, name = os.path.split(target)
        spool = os.path.join(directory, f".{name}.pclient-{os.getpid()}-{next(_serial)}.part")
        try:
            self._fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            self.error = f"cannot write {dest.path}: {exc.strerror or exc}"
            return
        self._spool, self._target = spool, target

    @property
    def head(self) -> bytes:
        """The first `limit` bytes."""
        return b"".join(self._chunks)

    @property
    def truncated(self) -> bool:
        return self.total > self.kept

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self.kept
        if room > 0:
            piece = data if len(data) <= room else data[:room]
            self._chunks.append(piece)
            self.kept += len(piece)
        if self._fd >= 0:
            try:
                if self._spool is None:
                    self._write_rotating(data)
                else:
                    _write_all(self._fd, data)
            except OSError as exc:
                self.error = f"cannot write {self.dest.path if self.dest else '?'}: {exc.strerror or exc}"
                self.abandon()

    def finish(self) -> Union[str, None]:
        """Put the file in place; the error that kept it from being written, if any."""
        if self._fd >= 0 and self._spool is None:  # written in place (rotating): nothing to move
            os.close(self._fd)
            self._fd = -1
            return self.error
        if self._fd < 0 or self._spool is None or self._target is None:
            return self.error
        spool, target = self._spool, self._target
        try:
            os.close(self._fd)
            self._fd = -1
            if self.dest is not None and self.dest.append:
                _append_file(spool, target)
                os.unlink(spool)
            else:
                os.replace(spool, target)
        except OSError as exc:
            self.error = f"cannot write {self.dest.path if self.dest else target}: {exc.strerror or exc}"
            self.abandon()
        self._spool = None
        return self.error

    def abandon(self) -> None:
        """Drop the spool file (the destination stays as it was)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._spool is not None:
            try:
                os.unlink(self._spool)
            except OSError:
                pass
            self._spool = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _append_file(source: str, target: str) -> None:
    src = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            while True:
                chunk = os.read(src, _COPY_CHUNK)
                if not chunk:
                    return
                _write_all(dst, chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)
