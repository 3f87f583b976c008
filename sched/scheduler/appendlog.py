"""One append-only file of text lines: how sched keeps state in $SCHED_HOME across restarts.

The run ledger (runledger.py), the switchboard (switchboard.py) and the harvest log
(remote.HarvestLog) each keep one; each knows its own records, this module only the file:

    log = AppendLog(path, "a switchboard record")  # `what` names a good line in warnings
    for number, line in log.replay():   # the complete lines an earlier sched left
        ...                             # a line its owner cannot read: log.skip(number)
    log.append([line, ...])             # whole lines, in one write(), flushed
    log.hold([line, ...])               # the same, written at the end of this loop turn (or by flush)
    log.flush()                         # write the held lines now
    if log.full:                        # past COMPACT_AT
        log.rewrite(lines)              # the owner's state, compactly (atomically)
    log.remove()                        # nothing left to keep

Each append is one write() in append mode, flushed to the OS (not fsynced): it survives the
death of the sched process, and two writers' lines never interleave. A sched killed in the
middle of a write leaves at worst a torn last line, without its newline: `replay` skips it and
says so in the log, and the next append cuts it off first, so that it is neither written onto
nor read later as a line of its own. A rewrite is atomic: a crash leaves the old file or the new
one.

Held lines (`hold`) are the lines of one loop turn written together, in one write() at the end
of the turn: a scheduler making and ending many controller jobs a turn writes once, not once a
line (issue 13). Until then they are in memory only: an owner holds only lines whose loss in a
crash its next start copes with, and writes them (`flush`) before anything that depends on
them leaves the process. While the process's loop (eventloop.py) is not running, `hold` is
`append`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from .eventloop import running_loop
from pclient.replacefile import replace_file

log = logging.getLogger(__name__)

__all__ = ["AppendLog", "COMPACT_AT", "WriteTrouble"]

COMPACT_AT = 1 << 20
"""Bytes appended (since the file was opened or rewritten) past which its owner rewrites it."""


class WriteTrouble:
    """Whether the last write of a file failed (a full disk), so that its owner says a failure
    once, not once a job while the disk stays full, and says when writing works again."""

    def __init__(self, path: Path):
        self.path = path
        self.failing = False

    def failed(self) -> bool:
        """A write failed: True the first time since one last worked (say it then)."""
        first = not self.failing
        self.failing = True
        return first

    def worked(self) -> None:
        if self.failing:
            self.failing = False
            log.warning("%s: writing works again", self.path)


class AppendLog:
    """An append-only file of lines (see the module docstring); errors are OSError, which each
    owner reports in its own words."""

    def __init__(self, path: Path, what: str, dir_mode: int = 0o777):
        self.path = Path(path)
        self.what = what
        self.dir_mode = dir_mode  # of the folders made for it
        self._fh: IO[bytes] | None = None
        self._size = 0
        self._held: list[str] = []  # lines of this loop turn, not written yet (hold)
        self._trouble = WriteTrouble(self.path)

    def replay(self) -> Iterator[tuple[int, str]]:
        """The file's complete lines, numbered from 1, without their newline (none when there is
        no file). A torn last line is skipped (and logged). Raises OSError when it cannot be read."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.decode("utf-8", errors="replace").split("\n")
        torn = lines.pop()  # "" after the last newline
        yield from enumerate(lines, 1)
        if torn:
            self.skip(len(lines) + 1)

    def skip(self, number: int) -> None:
        """Line `number` of the file is not a record (a torn write, or not ours)."""
        log.warning("%s:%d: skipping a line that is not %s (a torn write?)", self.path, number, self.what)

    def append(self, lines: Iterable[str]) -> None:
        """Add whole lines (given without their newline) in one write(), flushed.

        The file is written unbuffered, in bytes: one write() a call, as a text file's write
        and flush made it, without their layers (a scheduler appends ~4 times a controller job)."""
        text = "".join([line + "\n" for line in lines])
        data = memoryview(text.encode("utf-8"))
        if self._fh is None:
            self.path.parent.mkdir(mode=self.dir_mode, parents=True, exist_ok=True)
            self._cut_torn_line()
            self._fh = open(self.path, "ab", buffering=0)
            self._size = self._fh.tell()
        whole = len(data)
        try:
            while data:
                data = data[self._fh.write(data):]  # all of it, unless the disk refuses (OSError)
        except OSError:
            written = whole - len(data)
            if written:  # a full disk took a part: cut it, so the lines written again later
                try:     # (they stay held) do not follow a torn one
                    self._fh.truncate(self._fh.tell() - written)
                except OSError:
                    pass
            raise
        self._size += len(text)
        self._trouble.worked()

    def failed(self) -> bool:
        """A write failed: True the first time since one last worked, so that its owner says it
        once (WriteTrouble; `append` says when writing works again)."""
        return self._trouble.failed()

    def hold(self, lines: Iterable[str]) -> None:
        """Add whole lines at the end of this loop turn (or at `flush`, whichever comes first),
        in one write() with every line held meanwhile. OSError comes from `flush`, or at the end
        of the turn is logged: an owner that cannot lose a held line flushes it itself."""
        first = not self._held
        self._held.extend(lines)
        if first and self._held:
            loop = running_loop()  # (not asyncio's get_running_loop: a getpid() a call)
            if loop is None:  # between the loop's runs (a command), or a tool: at once
                self.flush()
            else:
                loop.call_soon(self._flush_at_turn_end)

    def flush(self) -> None:
        """Write the held lines now (one write()); OSError if they cannot be (they stay held)."""
        if self._held:
            self.append(self._held)
            self._held = []

    def _flush_at_turn_end(self) -> None:
        try:
            self.flush()
        except OSError as exc:
            if self.failed():
                log.warning("cannot write %s: %s (%d line(s) held, written once it works again)",
                            self.path, exc, len(self._held))

    @property
    def full(self) -> bool:
        """It has grown past COMPACT_AT: time for its owner to rewrite it."""
        return self._size > COMPACT_AT

    def rewrite(self, lines: Iterable[str]) -> None:
        """Replace the file with these lines (atomically: a crash keeps the old file). Lines
        held are dropped: the owner's state, which these lines are, has them."""
        self._held = []
        self.close()
        replace_file(self.path, "".join(line + "\n" for line in lines), dir_mode=self.dir_mode)

    def remove(self) -> None:
        """No more file (there may have been none), nor lines held for it."""
        self._held = []
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _cut_torn_line(self) -> None:
        """Truncate the file after its last newline: a killed sched's torn write goes."""
        try:
            fh = open(self.path, "rb+")
        except FileNotFoundError:
            return
        with fh:
            end = start = fh.seek(0, os.SEEK_END)
            while start > 0:
                step = min(start, 4096)
                fh.seek(start - step)
                newline = fh.read(step).rfind(b"\n")
                if newline >= 0:
                    start = start - step + newline + 1
                    break
                start -= step
            if start < end:
                log.info("%s: cutting off a torn last line (%d bytes) before appending", self.path, end - start)
                fh.truncate(start)

    def close(self) -> None:
        """Write the lines held (as far as it can), then close the file."""
        self._flush_at_turn_end()
        self._size = 0  # counted afresh from the file's size when it is opened again
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
