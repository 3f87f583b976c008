"""The pull listener: probes behind NAT connect here (TCP) to check in; one exchange per connection.

    server = PullServer(hub, ("0.0.0.0", 7780)); await server.start(); ...; await server.close()

The exchange is pclient.pullwire's: hello (the probe's id), challenge, proof (with the last
report), answer; then the connection is closed. Bounds for hostile peers: each line must come
within `line_timeout`, a line may not pass MAX_PULL_LINE, at most `max_connections` at once;
anything malformed gets an error answer and the connection closed, never a dead listener.
The business (keys, jobs, clocks, misses) is the hub's (pull.py); this module only talks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Callable

from pclient.pullwire import MAX_PULL_LINE, Answer, Challenge, Hello, Proof, PullError, decode, encode

from .pull import PullHub

log = logging.getLogger(__name__)

__all__ = ["PullServer"]


class PullServer:
    def __init__(self, hub: PullHub, listen: tuple[str, int], *, line_timeout: float = 10.0,
                 max_connections: int = 256, clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.listen = listen
        self.line_timeout = line_timeout
        self.max_connections = max_connections
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._active = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        host, port = self.listen
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_PULL_LINE + 2)
        log.info("pull listener on %s:%d", host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            line = await asyncio.wait_for(reader.readline(), self.line_timeout)
        except ValueError:  # longer than the limit
            raise PullError(f"line longer than {MAX_PULL_LINE} bytes") from None
        if not line.endswith(b"\n"):
            raise PullError("the probe closed the connection")
        return line

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self._active += 1
        try:
            if self._active > self.max_connections:
                raise PullError("too many probes at once; try again later")
            hello = decode(await self._line(reader), Hello)
            t1 = self.clock()
            challenge = secrets.token_bytes(32)
            t2 = self.clock()
            writer.write(encode(Challenge(challenge.hex(), t1, t2)))
            await writer.drain()
            proof = decode(await self._line(reader), Proof)
            answer = self.hub.check_in(hello, proof, challenge, t1, t2)
            await self.hub.flush()  # what the answer says (a report taken, a job given) is on disk first
        except (PullError, asyncio.TimeoutError, ConnectionError) as exc:
            message = "no line within the time allowed" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            log.info("pull connection from %s: %s", peer, message)
            answer = Answer(False, error=message)
        except Exception:
            log.exception("pull connection from %s failed", peer)
            answer = Answer(False, error="internal error")
        finally:
            self._active -= 1
        try:
            writer.write(encode(answer))
            await asyncio.wait_for(writer.drain(), self.line_timeout)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
