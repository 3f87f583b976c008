"""Reading a finished job's whole output back from the agent that spooled it.

A job submitted with `-spool` runs with `spool` in its `run`: its agent keeps every byte of its
stdout and stderr on the host (pclient.spool) and says `spooled` in its `ended`.  The owner
then reads the streams in pieces with the `output` command; each piece is one `fetch` to the
agent, answered by one `chunk`:

    data, eof = await fetches.fetch(send, host, job_word, "stdout", offset, size)
    fetches.chunk_received(host, chunk)       # from the agent's reports
    fetches.host_lost(host, reason)           # every fetch waiting on it fails

Nothing of the output is kept here: a piece goes from the agent to the asking client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable

from pclient import protocol as agent_protocol

from .errors import ConflictError

__all__ = ["FETCH_TIMEOUT", "OutputFetches"]

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 60.0
"""How long one piece may take to come back from the agent."""

_Key = tuple[str, str, str, int]   # host, job word, stream, offset


class OutputFetches:
    """The fetches waiting for their chunk, by host, job, stream and offset."""

    def __init__(self) -> None:
        self._waiting: dict[_Key, list[asyncio.Future[tuple[bytes, bool]]]] = {}

    async def fetch(self, send: Callable[[agent_protocol.Message], None], host: str, job_word: str,
                    stream: str, offset: int, size: int) -> tuple[bytes, bool]:
        """Ask the agent on `host` for a piece; its bytes and whether the stream ends there."""
        key = (host, job_word, stream, offset)
        future: asyncio.Future[tuple[bytes, bool]] = asyncio.get_running_loop().create_future()
        first = key not in self._waiting
        self._waiting.setdefault(key, []).append(future)
        if first:
            send(agent_protocol.Fetch(job=job_word, stream=stream, offset=offset, size=size))
        try:
            return await asyncio.wait_for(future, FETCH_TIMEOUT)
        except asyncio.TimeoutError:
            raise ConflictError(f"the agent on {host} did not send the {stream} of job {job_word} "
                                f"within {FETCH_TIMEOUT:g} s") from None
        finally:
            waiters = self._waiting.get(key)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiting[key]

    def chunk_received(self, host: str, chunk: agent_protocol.Chunk) -> None:
        waiters = self._waiting.pop((host, chunk.job, chunk.stream, chunk.offset), [])
        if not waiters:
            log.info("%s: a chunk of job %s nobody waits for (offset %d)", host, chunk.job, chunk.offset)
            return
        if chunk.error is not None:
            outcome: BaseException | tuple[bytes, bool] = ConflictError(f"on {host}: {chunk.error}")
        else:
            try:
                outcome = (base64.b64decode(chunk.data, validate=True), chunk.eof)
            except (binascii.Error, ValueError):
                outcome = ConflictError(f"the agent on {host} sent a chunk that is not base64")
        for future in waiters:
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def host_lost(self, host: str, reason: str) -> None:
        for key in [k for k in self._waiting if k[0] == host]:
            for future in self._waiting.pop(key):
                if not future.done():
                    future.set_exception(ConflictError(f"host {host} went down ({reason}) while "
                                                       f"the output of job {key[1]} was read"))
