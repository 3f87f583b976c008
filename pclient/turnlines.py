"""Lines written in one turn of the event loop, written together at its end.

The lines a busy turn writes to one peer (an agent's reports to pcontrol, pcontrol's runs and
acks to an agent, its events to a subscriber) go out in one write: one system call, and one
wake-up of the reader, instead of one a line. A lone line waits only for the end of the turn it
was written in (issue 13: batching adds no latency to a lone job). Order is kept: whoever
writes anything else to the same stream (a reply) or closes it calls `flush` first.
Standard library only: pcontrol uses it too.
"""

from __future__ import annotations

import asyncio
from typing import Callable, List, Union


class TurnLines:
    """Held lines of this turn, and how they are written (`write`: one call for all of them)."""

    __slots__ = ("_write", "_max_lines", "_max_bytes", "_held")

    def __init__(self, write: Callable[[bytes], None], max_lines: Union[int, None] = None,
                 max_bytes: Union[int, None] = None) -> None:
        self._write = write
        self._max_lines = max_lines
        """More lines than this are not held to the end of the turn (None: no bound)."""
        self._max_bytes = max_bytes
        """Nor a line this long (None: no bound): the stream's flow control then holds the writer."""
        self._held: List[bytes] = []

    def add(self, line: bytes) -> None:
        first = not self._held
        self._held.append(line)
        if first:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running (tests, tools): at once
                self.flush()
                return
        if ((self._max_lines is not None and len(self._held) >= self._max_lines)
                or (self._max_bytes is not None and len(line) >= self._max_bytes)):
            self.flush()

    def flush(self) -> None:
        """Write the held lines, in order, in one write."""
        lines, self._held = self._held, []
        if lines:
            self._write(b"".join(lines))

    def drop(self) -> None:
        """Forget the held lines (the stream is being aborted)."""
        self._held.clear()

    def held_bytes(self) -> int:
        return sum(len(line) for line in self._held)
