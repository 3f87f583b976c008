"""Live updates for open pages: changes gathered, then sent as server-sent events, bounded.

The mirror tells `Fanout` of each job that changes; at most every `interval` seconds one message
goes to every open page: the changed jobs' rows (up to `MAX_ROWS`; past that, only "resync",
and the page asks for its table again). Each page has a queue of `QUEUE` messages; a page that
does not read its stream loses its queue and gets one "resync" instead, so a slow browser costs
a bounded amount of memory and never slows the others. At most `MAX_STREAMS` pages at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .mirror import row

log = logging.getLogger(__name__)

__all__ = ["Fanout", "TooManyStreams"]

MAX_ROWS = 200
QUEUE = 32
MAX_STREAMS = 64
#: Seconds between two messages at most (changes in between are sent together).
INTERVAL = 0.25
#: Seconds of silence after which a comment line keeps proxies from closing the stream.
KEEPALIVE = 15.0


class TooManyStreams(Exception):
    """Refused: MAX_STREAMS pages are open already."""


class _Stream:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)

    def offer(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:     # it does not keep up: it starts over from the table
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"resync": True})


class Fanout:
    """A MirrorListener that batches the changes for the open pages' event streams."""

    def __init__(self, *, interval: float = INTERVAL, max_streams: int = MAX_STREAMS):
        self.interval = interval
        self.max_streams = max_streams
        self._streams: set[_Stream] = set()
        self._jobs: dict[int, dict[str, Any]] = {}
        self._overflow = False
        self._other = False       # hosts, tasks or the connection changed
        self._flush: asyncio.TimerHandle | None = None
        self.sent = 0

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    # -- MirrorListener, and the feeds' "something else changed" ----------------------------

    def job_seen(self, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        if not self._streams:
            return
        if len(self._jobs) < MAX_ROWS:
            self._jobs[int(record["id"])] = record
        else:
            self._overflow = True
        self._schedule()

    def hosts_seen(self, records: Sequence[dict[str, Any]]) -> None:
        self.changed()

    def changed(self) -> None:
        if self._streams:
            self._other = True
            self._schedule()

    def _schedule(self) -> None:
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.interval, self._send)

    def _send(self) -> None:
        self._flush = None
        if self._overflow:
            message: dict[str, Any] = {"resync": True}
        else:
            message = {"jobs": [row(r) for r in self._jobs.values()], "other": self._other}
        self._jobs.clear()
        self._overflow = self._other = False
        for stream in self._streams:
            stream.offer(message)
        self.sent += 1

    # -- one page's stream ------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[bytes]:
        """The lines of one page's event stream, forever (until the page goes)."""
        if len(self._streams) >= self.max_streams:
            raise TooManyStreams(f"{self.max_streams} pages follow the updates already")
        stream = _Stream()
        self._streams.add(stream)
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(stream.queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                data = json.dumps(message, separators=(",", ":"))
                yield f"event: update\ndata: {data}\n\n".encode()
        finally:
            self._streams.discard(stream)
