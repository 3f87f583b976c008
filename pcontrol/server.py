"""The controller's Unix socket: one loop per client connection.

Read a line, decode it (wire.decode_request), run the command from the table (verbs.TABLE),
turn any refusal or bug into an error reply, write the reply. Only end of input or a closed
connection ends the loop; a malformed, over-long or unknown request gets an error reply and
the next line is read. Connections that `subscribe` also receive events; one that cannot
keep up (its write backlog passes EVENT_BACKLOG) is dropped rather than grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from pathlib import Path

from .commands import CommandResult
from .controller import Controller
from .errors import CommandError, ErrorCode, WireError
from .verbs import TABLE
from .wire import MAX_LINE, Event, Reply, decode_request, encode

log = logging.getLogger(__name__)

#: Bytes of unsent events after which a subscriber is dropped.
EVENT_BACKLOG = 64 * 1024 * 1024


class _TooLong(Exception):
    pass


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED), if known."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class Connection:
    """One client; also the Session its commands see."""

    def __init__(self, server: "ControlServer", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.server = server
        self.controller: Controller = server.controller
        self._reader = reader
        self._writer = writer
        self.owner: str | None = None
        self.subscribed = False

    # -- Session ----------------------------------------------------------------------------

    def subscribe(self, owner: str | None) -> None:
        self.owner = owner
        self.subscribed = True
        self.controller.subscribe(self)

    def unsubscribe(self) -> None:
        self.subscribed = False
        self.controller.unsubscribe(self)

    def request_shutdown(self) -> None:
        # After this reply is written: the loop turn that ends this handler writes it first.
        asyncio.get_running_loop().call_soon(self.server.request_shutdown)

    def send_event(self, event: Event) -> None:
        if self._writer.is_closing():
            self.unsubscribe()
            return
        if self._writer.transport.get_write_buffer_size() > EVENT_BACKLOG:
            log.warning("dropping a subscriber that does not read its events")
            self.unsubscribe()
            self._writer.transport.abort()
            return
        self._writer.write(encode(event))

    # -- the loop ---------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            uid = peer_uid(self._writer)
            if uid is not None and uid != os.geteuid():
                log.warning("refused a connection from uid %d", uid)
                await self._send(Reply.failure(None, ErrorCode.FORBIDDEN,
                                               "this pcontrol serves only its owner"))
                return
            while True:
                try:
                    line = await self._next_line()
                except _TooLong:
                    await self._send(Reply.failure(
                        None, ErrorCode.TOO_LONG,
                        f"request line longer than {MAX_LINE} bytes; discarded"))
                    continue
                if line is None:
                    return
                if not line.strip():
                    continue
                await self._send(await self._answer(line))
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            self.unsubscribe()
            self._writer.close()

    async def _next_line(self) -> bytes | None:
        """The next line, or None at end of input; raise _TooLong after skipping a long one."""
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed
        while True:       # skip the rest of the over-long line, a bounded chunk at a time
            try:
                dropped = await self._reader.readexactly(consumed)
                if dropped.endswith(b"\n"):
                    raise _TooLong
                await self._reader.readuntil(b"\n")
                raise _TooLong
            except asyncio.LimitOverrunError as exc:
                consumed = exc.consumed
            except asyncio.IncompleteReadError:
                return None

    async def _answer(self, line: bytes) -> Reply:
        try:
            request = decode_request(line)
        except WireError as exc:
            return Reply.failure(exc.request_id, exc.code, exc.message)
        if self.server.shutting_down:
            return Reply.failure(request.id, ErrorCode.SHUTTING_DOWN, "pcontrol is stopping")
        try:
            result: CommandResult = await TABLE.run(self, list(request.argv))
        except CommandError as exc:
            return Reply.failure(request.id, exc.code, exc.message, exc.data)
        except Exception as exc:      # a bug: report it, keep serving
            log.exception("command %r failed", list(request.argv))
            return Reply.failure(request.id, ErrorCode.INTERNAL,
                                 f"internal error in pcontrol: {type(exc).__name__}: {exc}")
        return Reply.success(request.id, result.text, result.data)

    async def _send(self, reply: Reply) -> None:
        self._writer.write(encode(reply))
        await self._writer.drain()

    def hang_up(self) -> None:
        """Close after what is already written has been sent."""
        self._writer.close()


class ControlServer:
    """Listens on the socket; owns the connections."""

    def __init__(self, controller: Controller, socket_path: Path):
        self.controller = controller
        self.socket_path = Path(socket_path)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self.shutdown_requested = asyncio.Event()

    @property
    def shutting_down(self) -> bool:
        return self.shutdown_requested.is_set()

    async def start(self) -> None:
        try:
            self.socket_path.unlink()       # stale: the caller holds the pid lock
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._accept, path=str(self.socket_path), limit=MAX_LINE)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self._connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        """Stop listening and drop every client."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.hang_up()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass
