"""The controller's listeners: its Unix socket and, optionally, TCP; one loop per connection.

Admission first: on the Unix socket only the owner's uid (SO_PEERCRED); on TCP only a
client that answers the challenge with a proof of the shared secret (auth.py). Then the
loop: read a line, decode it (wire.decode_request), run the command from the table
(verbs.TABLE, through answer.py), turn any refusal or bug into an error reply, write the reply. Only end of
input or a closed connection ends the loop; a malformed, over-long or unknown request gets
an error reply and the next line is read. Connections that `subscribe` also receive
events; one that cannot keep up (its write backlog passes EVENT_BACKLOG) is dropped.

Hostile clients meet bounds (ServerLimits), never unbounded waits or memory:

- a line is read a chunk at a time; one longer than `max_line` is answered `too_long` at
  once and its rest skipped without being kept; all connections together hold at most
  `max_buffered` bytes of unfinished lines (the line that passes it is refused likewise);
- a line must be complete within `line_timeout` of its first byte, and the skipped rest of
  an over-long one within another (half a request and a stall: an error reply and the
  connection closed; a trickle of bytes does not extend it); idle *between* lines is fine;
- a TCP client must finish authenticating within `auth_timeout`; at most
  `max_unauthenticated` may be at it at once;
- at most `max_connections` connections (one file descriptor each). At the limit a new
  connection closes the longest-idle one that is neither subscribed nor mid-request, or,
  when there is none, is refused with an error reply. The daemon raises its soft
  RLIMIT_NOFILE so that the limit plus FD_RESERVE fits, or lowers the limit to what fits;
- a reply the client does not read within `write_timeout` ends the connection.

Every refusal is an error reply (id null) written before the close; see _refuse.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pclient.fdlimit import raise_soft_limit
from pclient.readsize import read_at_most
from pclient.turnlines import TurnLines

from . import auth
from .address import is_loopback, parse_host_port
from .auth import peer_uid
from .controller import Controller
from .errors import ErrorCode, WireError
from .answer import answer, answer_batch
from .wire import MAX_LINE, Event, Interest, Reply, Request, decode_request, encode

log = logging.getLogger(__name__)

#: Bytes of unsent events after which a subscriber is dropped.
EVENT_BACKLOG = 64 * 1024 * 1024
#: Events held for the end of a loop turn before they are written at once (Connection._turn).
CORK_EVENTS = 256
#: File descriptors kept free for everything but client connections (agents, journal, log).
FD_RESERVE = 512
#: The fewest connections the daemon accepts even with a tiny descriptor limit.
MIN_CONNECTIONS = 32
#: After a refusal: seconds, and bytes, of the client's input read and dropped before the close.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """The bounds a client meets; see the module docstring."""

    max_line: int = MAX_LINE                  #: bytes, newline included
    max_connections: int = 1000               #: Unix and TCP together
    max_unauthenticated: int = 64             #: TCP clients still in the handshake
    line_timeout: float = 10.0                #: seconds from a line's first byte to its end
    auth_timeout: float = 5.0                 #: seconds for a TCP client's proof
    write_timeout: float = 60.0               #: seconds a client may leave a reply unread
    read_chunk: int = 64 * 1024               #: bytes read at a time
    max_buffered: int = 4 * MAX_LINE          #: unfinished-line bytes over all connections


#: What a ControlServer uses when given no limits (a test daemon may replace it).
DEFAULT_LIMITS = ServerLimits()


class Transport(str, enum.Enum):
    """Which listener a connection came through."""

    UNIX = "unix"
    TCP = "tcp"


class ReadStatus(enum.Enum):
    """What _LineReader.next_line found."""

    LINE = "line"           #: a whole line
    EOF = "eof"             #: end of input (an unfinished line is dropped)
    TOO_LONG = "too_long"   #: the line passed max_line; its rest is being skipped
    NO_ROOM = "no_room"     #: unfinished lines of all connections passed max_buffered
    STALLED = "stalled"     #: the line (or the wait for it) passed its deadline


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  reply: Reply) -> None:
    """Send a last reply and close without losing it.

    Closing a socket whose input still holds unread bytes resets the connection, and the
    client may then never read the reply. So: half-close, read and drop what the client
    still sends until it closes too (bounded by LINGER_SECONDS and LINGER_BYTES), then close.
    """
    try:
        writer.write(encode(reply))
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.wait_for(_drop_input(reader, LINGER_BYTES), LINGER_SECONDS)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _drop_input(reader: asyncio.StreamReader, budget: int) -> None:
    while budget > 0:
        chunk = await reader.read(min(budget, 64 * 1024))
        if not chunk:
            return
        budget -= len(chunk)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (an IPv6 address as `[ADDR]:PORT`) for --listen (port 0: any free port)."""
    return parse_host_port(text, lowest_port=0)


class _LineReader:
    """Splits a stream into lines with bounded memory and bounded waits.

    Reads `read_chunk` bytes at a time into its own buffer (the StreamReader beneath has a
    limit of one chunk, so it holds at most two). Bytes of an over-long line are dropped as
    they arrive. The size of the buffer is accounted in the server's `buffered` total.
    """

    def __init__(self, reader: asyncio.StreamReader, server: "ControlServer"):
        self._reader = reader
        self._server = server
        self._buffer = bytearray()
        self._scanned = 0           # no newline in _buffer[:_scanned]
        self._discarding = False    # skipping the rest of an over-long line
        self._accounted = 0         # len(_buffer) as last added to server.buffered

    @property
    def mid_line(self) -> bool:
        return bool(self._buffer) or self._discarding

    async def next_line(self, *, max_line: int | None = None,
                        deadline: float | None = None) -> tuple[ReadStatus, bytes]:
        """The next line, newline included, or why there is none.

        A line must be complete within line_timeout of the moment it was found unfinished;
        `deadline` (loop time), when given, bounds the whole wait, first byte included.
        """
        limits = self._server.limits
        limit = max_line or limits.max_line
        loop = asyncio.get_running_loop()
        line_deadline = deadline
        while True:
            status, line = self._take(limit)
            if status is not None:
                return status, line
            if line_deadline is None and self.mid_line:
                line_deadline = loop.time() + limits.line_timeout
            try:
                if line_deadline is None:
                    chunk = await self._reader.read(limits.read_chunk)
                else:
                    remaining = line_deadline - loop.time()
                    if remaining <= 0:
                        return ReadStatus.STALLED, b""
                    chunk = await asyncio.wait_for(self._reader.read(limits.read_chunk),
                                                   remaining)
            except asyncio.TimeoutError:
                return ReadStatus.STALLED, b""
            if not chunk:
                self._drop_all()
                return ReadStatus.EOF, b""
            self._buffer += chunk
            self._account()

    def _take(self, limit: int) -> tuple[ReadStatus | None, bytes]:
        """A status when the buffer decides one; (None, b"") when more bytes are needed."""
        while self._discarding:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                self._drop_all()
                return None, b""
            self._drop(newline + 1)
            self._discarding = False
        newline = self._buffer.find(b"\n", self._scanned, limit)
        if newline >= 0:
            with memoryview(self._buffer) as view:
                line = bytes(view[:newline + 1])
            self._drop(newline + 1)
            return ReadStatus.LINE, line
        if len(self._buffer) >= limit:
            self._start_discarding()
            return ReadStatus.TOO_LONG, b""
        if self._buffer and self._server.buffered > self._server.limits.max_buffered:
            self._start_discarding()
            return ReadStatus.NO_ROOM, b""
        self._scanned = len(self._buffer)
        return None, b""

    def _start_discarding(self) -> None:
        self._discarding = True
        self._scanned = 0

    def _drop(self, count: int) -> None:
        if count >= len(self._buffer):
            self._drop_all()
            return
        del self._buffer[:count]
        self._scanned = 0
        self._account()

    def _drop_all(self) -> None:
        self._buffer = bytearray()      # a fresh one: clear() may keep a huge allocation
        self._scanned = 0
        self._account()

    def _account(self) -> None:
        size = len(self._buffer)
        self._server.buffered += size - self._accounted
        self._accounted = size

    def release(self) -> None:
        self._drop_all()
        self._discarding = False


class _WriteStalled(Exception):
    """The client left a reply unread past write_timeout."""


class Connection:
    """One client; also the Session its commands see."""

    def __init__(self, server: "ControlServer", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, transport: Transport = Transport.UNIX):
        self.server = server
        self.controller: Controller = server.controller
        self.transport = transport
        self._reader = reader
        self._writer = writer
        read_at_most(writer.transport)
        self._lines = _LineReader(reader, server)
        self.task: asyncio.Task | None = None
        self.owner: str | None = None
        self.interests: frozenset[Interest] | None = None  # events asked for; None: all
        self.brief = False          # job events carry the short record (subscribe -brief)
        self.subscribed = False
        self.admitted = False
        self.busy = False           # a command is running for it
        self._eviction: str | None = None   # why it is being closed to make room
        self._turn = TurnLines(self._write_out, max_lines=CORK_EVENTS)
        """Events of this loop turn, written together at its end, or before a reply: one
        write, and one wake-up of the subscriber, for a turn's events."""

    @property
    def idle(self) -> bool:
        """May be closed to make room: admitted, not subscribed, nothing in progress."""
        return (self.admitted and not self.subscribed and not self.busy
                and self._eviction is None and not self._lines.mid_line)

    @property
    def peer(self) -> str:
        if self.transport is Transport.TCP:
            address = self._writer.get_extra_info("peername")
            return f"{address[0]}:{address[1]}" if address else "a TCP peer"
        return "the Unix socket"

    # -- Session ----------------------------------------------------------------------------

    def subscribe(self, owner: str | None, interests: frozenset[Interest] | None = None,
                  brief: bool = False) -> None:
        self.owner = owner
        self.interests = interests
        self.brief = brief
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
            self._turn.drop()
            self._writer.transport.abort()
            return
        self._turn.add(self.server.encoded(event))

    def _write_out(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    # -- the loop ---------------------------------------------------------------------------

    async def serve(self) -> None:
        self.task = asyncio.current_task()
        try:
            if await self._admit():
                self.admitted = True
                await self._serve_lines()
        except (ConnectionError, BrokenPipeError, _WriteStalled):
            pass
        except asyncio.CancelledError:
            if self._eviction is None:
                raise
            if self.task is not None and hasattr(self.task, "uncancel"):
                self.task.uncancel()       # our own cancel, handled here (3.11+)
            # Idle: nothing unread to linger for, and the descriptor is wanted now.
            self._writer.write(encode(Reply.failure(None, ErrorCode.OVERLOADED,
                                                    self._eviction)))
        finally:
            self.unsubscribe()
            self._lines.release()
            self._turn.flush()
            self._writer.close()

    async def _admit(self) -> bool:
        if self.transport is Transport.TCP:
            return await self._authenticate()
        uid = peer_uid(self._writer)
        refusal = auth.owner_refusal(uid, os.geteuid())
        if refusal is not None:
            log.warning("refused a connection on the socket from uid %s", uid)
            await self._refuse(Reply.failure(None, ErrorCode.FORBIDDEN, refusal))
            return False
        return True

    async def _authenticate(self) -> bool:
        """The TCP challenge-response; True when the client proved the secret."""
        server = self.server
        secret = server.secret
        assert secret is not None, "a TCP listener always has a secret"
        challenge = auth.new_challenge()
        self._writer.write(auth.challenge_line(challenge))
        deadline = asyncio.get_running_loop().time() + server.limits.auth_timeout
        server.unauthenticated += 1
        try:
            status, line = await self._lines.next_line(max_line=auth.MAX_AUTH_LINE,
                                                       deadline=deadline)
        finally:
            server.unauthenticated -= 1
        if status is ReadStatus.EOF:
            return False
        if status is ReadStatus.STALLED:
            log.warning("dropped %s: no answer to the challenge within %g s",
                        self.peer, server.limits.auth_timeout)
            await self._refuse(Reply.failure(
                None, ErrorCode.TIMEOUT,
                f"no answer to the authentication challenge within "
                f"{server.limits.auth_timeout:g} s; closing"))
            return False
        refusal = None
        if status is ReadStatus.TOO_LONG:
            refusal = f"authentication line longer than {auth.MAX_AUTH_LINE} bytes"
        elif status is ReadStatus.NO_ROOM:
            refusal = "pcontrol holds too many unfinished lines to read this one"
        else:
            try:
                if not auth.proof_matches(secret, challenge, auth.decode_proof(line)):
                    refusal = "wrong proof: this client does not hold pcontrol's secret"
            except WireError as exc:
                refusal = f"malformed authentication: {exc.message}"
        if refusal is not None:
            log.warning("refused %s: %s", self.peer, refusal)
            await self._refuse(Reply.failure(None, ErrorCode.FORBIDDEN, refusal + "; closing"))
            return False
        log.info("admitted %s (it proved the secret)", self.peer)
        await self._send(Reply.success(None, "welcome to pcontrol", {"authenticated": True}))
        return True

    async def _serve_lines(self) -> None:
        limits = self.server.limits
        while True:
            status, line = await self._lines.next_line()
            if status is ReadStatus.EOF:
                return
            if status is ReadStatus.TOO_LONG:
                await self._send(Reply.failure(
                    None, ErrorCode.TOO_LONG,
                    f"request line longer than {limits.max_line} bytes; discarded"))
                continue
            if status is ReadStatus.NO_ROOM:
                log.warning("discarded an unfinished line from %s: unfinished lines of all "
                            "connections passed %d bytes", self.peer, limits.max_buffered)
                await self._send(Reply.failure(
                    None, ErrorCode.TOO_LONG,
                    f"request line discarded: pcontrol holds {limits.max_buffered} bytes of "
                    f"unfinished lines from all its clients, its limit"))
                continue
            if status is ReadStatus.STALLED:
                log.warning("dropped a client of %s: its request line was not complete "
                            "within %g s", self.peer, limits.line_timeout)
                await self._refuse(Reply.failure(
                    None, ErrorCode.TIMEOUT,
                    f"request line incomplete after {limits.line_timeout:g} s; "
                    f"closing the connection"))
                return
            if not line.strip():
                continue
            self.busy = True            # until the reply is out: not to be evicted meanwhile
            try:
                await self._send(await self._answer(line))
            finally:
                self.busy = False
            self.server.touch(self)

    async def _answer(self, line: bytes) -> Reply:
        try:
            request = decode_request(line)
        except WireError as exc:
            return Reply.failure(exc.request_id, exc.code, exc.message)
        if self.server.shutting_down:
            return Reply.failure(request.id, ErrorCode.SHUTTING_DOWN, "pcontrol is stopping")
        fenced = self.server.controller.fence_refusal(request.fence, self.peer)
        if fenced is not None:
            return Reply.failure(request.id, ErrorCode.FORBIDDEN, fenced)
        if request.batch:
            return await self._answer_batch(request)
        return await self._run(request.id, request.argv)

    async def _run(self, request_id: int, argv: tuple[str, ...]) -> Reply:
        return await answer(self, request_id, argv)

    async def _answer_batch(self, request: Request) -> Reply:
        return await answer_batch(self, request)

    async def _send(self, reply: Reply) -> None:
        line = encode(reply)
        if self._turn.held_bytes():          # the events before it go first, in the same write
            self._turn.add(line)
            self._turn.flush()
        else:
            self._writer.write(line)
        if self._writer.transport.get_write_buffer_size() == 0:
            await self._writer.drain()       # all sent: returns at once
            return
        try:
            await asyncio.wait_for(self._writer.drain(), self.server.limits.write_timeout)
        except asyncio.TimeoutError:
            log.warning("dropped a client of %s: it left a reply unread for %g s",
                        self.peer, self.server.limits.write_timeout)
            self._writer.transport.abort()
            raise _WriteStalled from None

    async def _refuse(self, reply: Reply) -> None:
        """A last reply, then the close (see _refuse)."""
        self._lines.release()
        await _refuse(self._reader, self._writer, reply)

    def evict(self, reason: str) -> None:
        """Close this (idle) connection to make room, telling it why."""
        self._eviction = reason
        if self.task is not None:
            self.task.cancel()      # it waits for a line: serve() sends `reason` and closes
        else:
            self._writer.close()

    def hang_up(self) -> None:
        """Close after what is already written has been sent."""
        self._turn.flush()
        self._writer.close()


class ControlServer:
    """Listens on the socket (and on TCP when asked); owns the connections.

    `listen` is (host, port) for the optional TCP listener (port 0: any free port, see
    `tcp_addresses`); it needs `secret` (pcontrol.secret.load_or_create_secret(home)).
    """

    def __init__(self, controller: Controller, socket_path: Path, *,
                 listen: tuple[str, int] | None = None, secret: bytes | None = None,
                 limits: ServerLimits | None = None):
        if listen is not None and not secret:
            raise ValueError("a TCP listener needs the shared secret")
        self.controller = controller
        self.socket_path = Path(socket_path)
        self.listen = listen
        self.secret = secret
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.max_connections = self.limits.max_connections
        self.buffered = 0               # bytes of unfinished lines, all connections
        self.unauthenticated = 0        # TCP connections still in the handshake
        self.tcp_addresses: list[tuple[str, int]] = []
        self._server: asyncio.AbstractServer | None = None
        self._tcp_server: asyncio.AbstractServer | None = None
        # Insertion order is recency: touch() moves a connection to the end.
        self._connections: dict[Connection, None] = {}
        self._tasks: set[asyncio.Task] = set()
        self.shutdown_requested = asyncio.Event()
        self._last_events: list[tuple[Event, bytes]] = []

    def encoded(self, event: Event) -> bytes:
        """The event's line, encoded once for all the subscribers it is fanned out to
        (the controller hands each the same Event, one after the other; a job's change may
        come as two, its whole record and its short one: the last two are kept)."""
        for seen, line in self._last_events:
            if seen is event:
                return line
        line = encode(event)
        self._last_events = [self._last_events[-1], (event, line)] if self._last_events else [(event, line)]
        return line

    @property
    def shutting_down(self) -> bool:
        return self.shutdown_requested.is_set()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        self._make_fd_room()
        try:
            self.socket_path.unlink()       # stale: the caller holds the pid lock
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                functools.partial(self._accept, transport=Transport.UNIX),
                path=str(self.socket_path), limit=self.limits.read_chunk)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        if self.listen is not None:
            await self._start_tcp(*self.listen)

    async def _start_tcp(self, host: str, port: int) -> None:
        self._tcp_server = await asyncio.start_server(
            functools.partial(self._accept, transport=Transport.TCP), host, port,
            limit=self.limits.read_chunk)
        self.tcp_addresses = [sock.getsockname()[:2] for sock in self._tcp_server.sockets]
        for address in self.tcp_addresses:
            log.info("listening on TCP %s:%d (clients must prove the secret)", *address)
        if not is_loopback(host):
            log.warning("the TCP listener on %s is not loopback-only; its traffic is not "
                        "encrypted (use a trusted network or an ssh tunnel)", host)

    def _make_fd_room(self) -> None:
        """Raise the soft descriptor limit to fit max_connections, or lower the limit."""
        wanted = self.limits.max_connections + FD_RESERVE
        soft = raise_soft_limit(wanted, f"{self.limits.max_connections} connections allowed")
        if soft is not None and soft < wanted:
            self.max_connections = max(MIN_CONNECTIONS, soft - FD_RESERVE)
            log.warning("descriptor limit %d: accepting at most %d connections, not %d",
                        soft, self.max_connections, self.limits.max_connections)

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    def touch(self, connection: Connection) -> None:
        """`connection` was just active: it becomes the last candidate for eviction."""
        if self._connections.pop(connection, False) is None:
            self._connections[connection] = None

    def _make_room(self, connection: Connection) -> str | None:
        """Why `connection` is refused, or None once there is room for it."""
        if (connection.transport is Transport.TCP
                and self.unauthenticated >= self.limits.max_unauthenticated):
            return (f"too many clients authenticating at once (limit "
                    f"{self.limits.max_unauthenticated}); try again later")
        if len(self._connections) < self.max_connections:
            return None
        victim = next((c for c in self._connections if c.idle), None)
        if victim is None:
            return (f"too many connections (limit {self.max_connections}), none of them "
                    f"idle; try again later")
        log.warning("at the limit of %d connections: closing the longest-idle one",
                    self.max_connections)
        del self._connections[victim]
        victim.evict(f"pcontrol reached its limit of {self.max_connections} connections "
                     f"and closed this one, the longest idle")
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                      transport: Transport) -> None:
        connection = Connection(self, reader, writer, transport)
        refusal = self._make_room(connection)
        if refusal is not None:
            log.warning("refused a connection on %s: %s", connection.peer, refusal)
            await _refuse(reader, writer, Reply.failure(None, ErrorCode.OVERLOADED, refusal))
            return
        self._connections[connection] = None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.pop(connection, None)
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        """Stop listening and drop every client."""
        for listener in (self._server, self._tcp_server):
            if listener is not None:
                listener.close()
        for connection in list(self._connections):
            connection.hang_up()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass
