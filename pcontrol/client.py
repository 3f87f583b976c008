"""Client side of the controller socket: an asyncio client and a blocking helper.

The sched shell (its `controller ...` command), the pcontrol CLI and its prompt all talk to
the daemon through `ControllerClient`:

    client = await ControllerClient.connect(home)          # or socket_path=...
    client = await ControllerClient.connect(home, tcp=("10.0.0.5", 7000))   # over TCP
    reply = await client.request(["host", "add", "node1", "-slots", "4"])
    data = await client.call("jobs", "-owner", "me")       # raises CommandFailed if not ok
    records = await client.all_jobs("-owner", "me")        # every one, a page per request
    await client.subscribe(owner="me")
    async for event in client.events(): ...                # or on_event=callback
    await client.close()

Requests are pipelined: any number may be outstanding; each waits on its own future,
resolved by the reader task when the reply with its id arrives.

Over TCP (`pcontrol serve --listen`) the client first answers the server's challenge with
a proof of the secret in $SCHED_HOME (or the `secret` given); see auth.py. The front ends
(the CLI, its prompt, sched's link) say where to connect with a `ControllerAddress`: the
local socket of a home, or HOST:PORT from `--connect` or $PCONTROL_CONNECT, with the secret
of $SCHED_HOME or of `--secret-file` / $PCONTROL_SECRET_FILE.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pclient.readsize import READ_BYTES, read_at_most
from pclient.turnlines import TurnLines

from . import auth
from .address import format_address, parse_host_port
from . import secret as shared_secret
from .errors import (ClientError, CommandFailed, ControllerDisconnected, ControllerNotRunning,
                     ControllerTimeout, ErrorCode, SecretUnavailable, WireError)
from .paths import Paths
from .wire import (BATCH_VERSION, MAX_LINE, Event, Interest, Reply, Request, decode_server_message, encode,
                   reply_from_object)

log = logging.getLogger(__name__)

#: Default seconds to wait for a reply.
DEFAULT_TIMEOUT = 30.0
#: Records per `jobs` request when all_jobs() pages through a controller's jobs: one page is
#: one turn of pcontrol's loop, some 50 ms with 100,000 jobs, while others wait.
JOBS_PAGE = 2000
#: HOST:PORT of a pcontrol TCP listener that the CLI and sched use instead of the local socket.
CONNECT_ENV = "PCONTROL_CONNECT"
#: The secret file to prove over TCP, instead of $SCHED_HOME/secret.
SECRET_FILE_ENV = "PCONTROL_SECRET_FILE"

#: Error codes of a reply with no id that pcontrol sends just before it hangs up.
CLOSING_CODES = frozenset(code.value for code in (ErrorCode.OVERLOADED, ErrorCode.TIMEOUT,
                                                  ErrorCode.FORBIDDEN))

EventCallback = Callable[[Event], Any]

_CLOSED = object()   # sentinel put on the event queue when the connection ends


class Calls:
    """What a connection offers on top of its request(): call() and all_jobs(). Shared by
    ControllerClient (a socket) and pcontrol.inprocess.InProcessClient (the same process)."""

    async def request(self, argv: Sequence[str], *, timeout: float | None = DEFAULT_TIMEOUT) -> Reply:
        raise NotImplementedError

    async def call(self, *argv: str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """Like request(), but return the reply's data and raise CommandFailed if not ok."""
        reply = await self.request(argv, timeout=timeout)
        if not reply.ok:
            raise CommandFailed(reply)
        return reply.data

    async def all_jobs(self, *filters: str, page: int = JOBS_PAGE,
                       timeout: float | None = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
        """Every job record matching `filters` (`-owner X`, `-state S`...), in id order.

        Fetched at most `page` records per request (`jobs ... -limit PAGE -after ID`), so
        pcontrol never builds one huge reply and answers other clients between pages. Only
        an empty page ends it: pcontrol may cut a page short to keep its reply small.
        """
        if page < 1:
            raise ValueError(f"page must be at least 1, got {page}")
        records: list[dict[str, Any]] = []
        after = 0
        while True:
            # no -json: the data is the same list, and a table is cheaper text than its JSON
            batch = await self.call("jobs", *filters, "-limit", str(page), "-after", str(after),
                                    timeout=timeout)
            if not batch:
                return records
            records.extend(batch)
            after = int(batch[-1]["id"])


def _expire(future: asyncio.Future[Reply]) -> None:
    """A request's time is up: its reply's future fails with TimeoutError, as wait_for did."""
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


def batch_request(request_id: int, commands: Sequence[Sequence[str]]) -> Request:
    """Many `job` commands in one request (wire version 2)."""
    return Request(request_id, (), BATCH_VERSION, tuple(tuple(str(a) for a in argv) for argv in commands))


def batch_replies(request: Request, reply: Reply) -> list[Reply] | None:
    """The Replies of a batch's commands, in order, from the batch's reply; None when pcontrol
    is older than batches (it refused the version). Raises CommandFailed."""
    if not reply.ok and reply.error is not None and reply.error.code == ErrorCode.UNSUPPORTED.value:
        return None
    if not reply.ok or not isinstance(reply.data, list) or len(reply.data) != len(request.batch):
        raise CommandFailed(reply)
    try:
        return [reply_from_object(item) for item in reply.data]
    except WireError as exc:
        raise CommandFailed(Reply.failure(request.id, ErrorCode.MALFORMED,
                                          f"malformed batch reply: {exc.message}")) from None


class ControllerClient(Calls):
    """One connection to a pcontrol daemon."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 on_event: EventCallback | None = None, socket_path: str = ""):
        self.socket_path = socket_path
        self._reader = reader
        self._writer = writer
        read_at_most(writer.transport)
        self._turn = TurnLines(self._write_out)
        """Requests made in one loop turn, written together at its end (a scheduler's
        submission and harvest after a job's end: one write, and one wake-up of pcontrol)."""
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._close_reason: str | None = None
        self._refusal: Reply | None = None    # an error reply with no id: why pcontrol hangs up
        self.fence: int | None = None
        """Sent with every request: the fencing token of a pool's leader (pcontrol.adoption)."""
        self.brief = False
        """pcontrol granted `subscribe -brief` on this connection (see subscribe)."""
        self.before_write: Callable[[], None] | None = None
        """Called before each write to pcontrol (a turn's lines): a scheduler writes there the
        records it held that what it sends depends on (its run ledger's count of a job it
        submits)."""
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"pcontrol-client-reader {socket_path}")

    # -- connecting -------------------------------------------------------------------------

    @classmethod
    async def connect(cls, home: str | os.PathLike[str] | None = None, *,
                      socket_path: str | os.PathLike[str] | None = None,
                      tcp: tuple[str, int] | None = None, secret: bytes | None = None,
                      on_event: EventCallback | None = None,
                      timeout: float = 5.0) -> "ControllerClient":
        """Connect to the daemon of `home` ($SCHED_HOME by default) or to `socket_path`.

        With `tcp=(host, port)`, connect to that TCP listener instead and prove `secret`
        (default: the secret of `home`). Raises ControllerNotRunning when nothing listens
        there, ControllerTimeout when the connection (and authentication) does not complete
        within `timeout`, auth.AccessDenied when the server refuses the proof.
        """
        if tcp is not None:
            return await cls._connect_tcp(home, tcp, secret, on_event, timeout)
        path = str(socket_path) if socket_path is not None else str(Paths.for_home(home).socket)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path, limit=MAX_LINE), timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControllerNotRunning(f"pcontrol is not running (no answer on {path})") from exc
        except asyncio.TimeoutError as exc:
            raise ControllerTimeout(f"pcontrol did not accept a connection on {path} "
                                    f"within {timeout:g} s") from exc
        except OSError as exc:
            raise ControllerNotRunning(f"cannot connect to pcontrol at {path}: {exc}") from exc
        return cls(reader, writer, on_event=on_event, socket_path=path)

    @classmethod
    async def _connect_tcp(cls, home: str | os.PathLike[str] | None, address: tuple[str, int],
                           secret: bytes | None, on_event: EventCallback | None,
                           timeout: float) -> "ControllerClient":
        host, port = address
        where = format_address(host, port)
        if secret is None:      # never made up here: a new one could not match the server's
            secret = read_secret_file(shared_secret.secret_path(Paths.for_home(home).home))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_LINE), timeout)
        except ConnectionRefusedError as exc:
            raise ControllerNotRunning(f"pcontrol is not listening on TCP {where}") from exc
        except asyncio.TimeoutError as exc:
            raise ControllerTimeout(f"pcontrol did not accept a connection on TCP {where} "
                                    f"within {timeout:g} s") from exc
        except OSError as exc:
            raise ControllerNotRunning(f"cannot connect to pcontrol at TCP {where}: "
                                       f"{exc}") from exc
        try:
            await auth.prove(reader, writer, secret, max(0.0, deadline - loop.time()))
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, on_event=on_event, socket_path=f"tcp:{where}")

    # -- requests ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def request(self, argv: Sequence[str], *,
                      timeout: float | None = DEFAULT_TIMEOUT) -> Reply:
        """Send one command; return its Reply (ok or not).

        Raises ControllerDisconnected if the connection is or becomes closed, and
        ControllerTimeout if no reply arrives within `timeout` seconds (None: wait forever).
        """
        return await self._exchange(Request(next(self._ids), tuple(str(a) for a in argv)), timeout)

    async def request_batch(self, commands: Sequence[Sequence[str]], *,
                            timeout: float | None = DEFAULT_TIMEOUT) -> list[Reply] | None:
        """Send many `job` commands in one line (wire version 2); their Replies, in order.

        None when this pcontrol is older than batches (it refused the version): send the
        commands one by one instead. Raises like request()."""
        request = batch_request(next(self._ids), commands)
        return batch_replies(request, await self._exchange(request, timeout))

    async def _exchange(self, request: Request, timeout: float | None) -> Reply:
        """Send `request` and wait for the reply with its id (request()'s errors)."""
        if self.closed:
            raise ControllerDisconnected(self._close_reason or "connection closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self._pending[request.id] = future
        expiry: asyncio.TimerHandle | None = None
        try:
            if self.fence is not None:   # a pool's leader: every request carries its token
                request = dataclasses.replace(request, fence=self.fence)
            self._turn.add(encode(request))
            await self._writer.drain()      # for the lines written before this turn's
            # The reply's future itself fails when the time is up: asyncio.wait_for would wrap
            # it in a waiter of its own, which the reply wakes a loop turn later (issue 13).
            if timeout is not None:
                expiry = loop.call_later(timeout, _expire, future)
            return await future
        except asyncio.TimeoutError as exc:
            what = f"a batch of {len(request.batch)}" if request.batch else repr(" ".join(request.argv))
            raise ControllerTimeout(f"pcontrol did not answer {what} within {timeout:g} s") from exc
        except (ConnectionError, BrokenPipeError) as exc:
            raise ControllerDisconnected(f"connection to pcontrol lost: {exc}") from exc
        finally:
            if expiry is not None:
                expiry.cancel()
            self._pending.pop(request.id, None)

    async def subscribe(self, owner: str | None = None, only: Iterable[Interest] | None = None,
                        brief: bool = False) -> Any:
        """Ask for events on this connection (only the jobs of `owner` when given; only the
        events of the interests `only` when given; with `brief`, job events with the short
        record, Job.to_brief). A pcontrol older than `-only` refuses it: then every event is
        asked for, as before, and the caller ignores what it did not want. One older than
        `-brief` sends whole records (`self.brief` says which: True once short ones were
        granted, and then `job -brief` is known there too)."""
        argv = ["subscribe"] + (["-owner", owner] if owner is not None else [])
        if only is None and not brief:
            return await self.call(*argv)
        asked = argv + (["-only", ",".join(sorted(i.value for i in only))] if only is not None else [])
        reply = await self.request(asked + (["-brief"] if brief else []))
        if reply.ok:
            self.brief = brief
            return reply.data
        if brief and 'option "-brief"' in reply.text:  # older than short records: whole ones
            log.info("pcontrol does not know `subscribe -brief`: whole job records")
            return await self.subscribe(owner, only)
        if only is None:
            raise CommandFailed(reply)
        if "unknown event interest alert" in reply.text:  # older than alert events: all but those
            log.info("pcontrol has no alert events: subscribing without them")
            return await self.subscribe(owner, frozenset(only) - {Interest.ALERT}, brief)
        if "-only" not in reply.text:
            raise CommandFailed(reply)
        log.info("pcontrol does not know `subscribe -only` (%s): asking for every event", reply.text)
        return await self.call(*argv)

    # -- events -----------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Yield events as they arrive; ends when the connection closes.

        Only one consumer should iterate; with an on_event callback the queue is not fed.
        """
        while True:
            item = await self._events.get()
            if item is _CLOSED:
                self._events.put_nowait(_CLOSED)   # let a later iterator end too
                return
            yield item

    # -- closing ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection; pending requests fail with ControllerDisconnected."""
        self._turn.flush()
        if not self._writer.is_closing():
            self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, BrokenPipeError):
            pass
        if self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
            try:
                await self._reader_task
            except asyncio.CancelledError:
                pass
        self._finish("connection closed by the client")

    async def wait_closed(self) -> str:
        """Wait until the connection ends; return why."""
        await self._closed.wait()
        return self._close_reason or "closed"

    async def __aenter__(self) -> "ControllerClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # -- internals --------------------------------------------------------------------------

    def _write_out(self, data: bytes) -> None:
        if not self._writer.is_closing():
            if self.before_write is not None:
                self.before_write()
            self._writer.write(data)

    async def _read_loop(self) -> None:
        """Read what pcontrol sends, a chunk at a time, and handle each whole line of it.

        A chunk, not a line, a call: a scheduler gets ~4 lines a controller job, most of
        them several to a chunk, and StreamReader.readuntil costs as much again as decoding
        a short line (issue 13). The start of a line still to end is kept in pieces (joined
        once its newline comes): never more than MAX_LINE bytes of it."""
        reason = "pcontrol closed the connection"
        reader = self._reader
        pieces: list[bytes] = []   # the start of a line whose newline has not come yet
        size = 0
        try:
            while True:
                chunk = await reader.read(READ_BYTES)
                if not chunk:
                    break   # (a line cut short by the end is dropped, as readuntil did)
                if b"\n" not in chunk:
                    pieces.append(chunk)
                    size += len(chunk)
                    if size > MAX_LINE:
                        reason = "pcontrol sent a line longer than the limit"
                        break
                    continue
                if pieces:
                    pieces.append(chunk)
                    chunk = b"".join(pieces)
                    pieces, size = [], 0
                lines = chunk.split(b"\n")
                rest = lines.pop()
                if rest:
                    pieces.append(rest)
                    size = len(rest)
                for line in lines:
                    self._handle_line(line)
                if size > MAX_LINE:
                    reason = "pcontrol sent a line longer than the limit"
                    break
        except (ConnectionError, OSError) as exc:
            reason = f"connection to pcontrol lost: {exc}"
        finally:
            if self._refusal is not None:     # it said why before hanging up
                error = self._refusal.error
                reason += f": {self._refusal.text}" + (f" ({error.code})" if error else "")
            self._finish(reason)

    def _handle_line(self, line: bytes) -> None:
        try:
            message = decode_server_message(line)
        except WireError as exc:
            log.warning("ignoring a malformed line from pcontrol: %s", exc.message)
            return
        if isinstance(message, Event):
            self._deliver(message)
        else:
            self._resolve(message)

    def _resolve(self, reply: Reply) -> None:
        future = self._pending.get(reply.id) if reply.id is not None else None
        if future is None:
            if not reply.ok:
                log.warning("pcontrol error without a matching request: %s", reply.text)
                if reply.id is None and reply.error is not None \
                        and reply.error.code in CLOSING_CODES:
                    self._refusal = reply   # the close follows: it says why
            else:
                log.warning("reply for unknown request id %r", reply.id)
            return
        if not future.done():
            future.set_result(reply)

    def _deliver(self, event: Event) -> None:
        if self._on_event is None:
            self._events.put_nowait(event)
            return
        try:
            self._on_event(event)
        except Exception:   # a callback bug must not kill the reader
            log.exception("event callback failed")

    def _finish(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._close_reason = reason
        self._closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ControllerDisconnected(reason))
        self._pending.clear()
        self._events.put_nowait(_CLOSED)


# -- where the controller is -----------------------------------------------------------------

def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 address as [ADDR]:PORT) of a listener; ValueError saying why not."""
    return parse_host_port(text, lowest_port=1)


def read_secret_file(path: str | os.PathLike[str]) -> bytes:
    """The secret in `path`, with the checks the daemon makes of its own; SecretUnavailable
    saying what is wrong. Never creates one: a new secret could not match the server's."""
    path = Path(path).expanduser()
    try:
        return shared_secret.read_secret(path)     # the daemon's own checks: mode, owner, size
    except FileNotFoundError:
        raise SecretUnavailable(
            f"no secret file {path}: copy the controller's $SCHED_HOME/secret there "
            f"(mode 600) or name a copy with --secret-file / ${SECRET_FILE_ENV}") from None
    except shared_secret.SecretError as exc:
        raise SecretUnavailable(f"cannot use the secret file: {exc}") from None
    except OSError as exc:
        raise SecretUnavailable(f"cannot read the secret file {path}: "
                                f"{exc.strerror or exc}") from None


@dataclass(frozen=True)
class ControllerAddress:
    """Where a front end finds pcontrol: the Unix socket of `home`, or a TCP listener.

    Over TCP the client proves the secret in `secret_file` (default: `home`'s secret).
    """

    home: Path
    tcp: tuple[str, int] | None = None
    secret_file: Path | None = None

    @classmethod
    def local(cls, home: str | os.PathLike[str] | None = None) -> "ControllerAddress":
        return cls(Paths.for_home(home).home)

    @classmethod
    def remote(cls, text: str, home: str | os.PathLike[str] | None = None,
               secret_file: str | os.PathLike[str] | None = None) -> "ControllerAddress":
        """HOST:PORT; ValueError saying what is wrong with `text`."""
        return cls(Paths.for_home(home).home, parse_address(text),
                   Path(secret_file).expanduser() if secret_file else None)

    @classmethod
    def chosen(cls, home: str | os.PathLike[str] | None = None, *, connect: str | None = None,
               secret_file: str | os.PathLike[str] | None = None,
               environ: Mapping[str, str] | None = None) -> "ControllerAddress":
        """`connect` (HOST:PORT) if given, else $PCONTROL_CONNECT if set and not empty, else
        the local socket; the secret file likewise from `secret_file` or
        $PCONTROL_SECRET_FILE. ValueError naming the bad value."""
        environ = os.environ if environ is None else environ
        secret_file = secret_file or environ.get(SECRET_FILE_ENV) or None
        if connect is not None:
            return cls.remote(connect, home, secret_file)
        text = environ.get(CONNECT_ENV, "").strip()
        if not text:
            return cls.local(home)
        try:
            return cls.remote(text, home, secret_file)
        except ValueError as exc:
            raise ValueError(f"${CONNECT_ENV}: {exc}") from None

    @property
    def is_tcp(self) -> bool:
        return self.tcp is not None

    def __str__(self) -> str:
        if self.tcp is None:
            return f"the socket of {self.home}"
        return f"TCP {format_address(*self.tcp)}"

    def secret_path(self) -> Path:
        return self.secret_file or shared_secret.secret_path(self.home)

    async def connect(self, *, on_event: EventCallback | None = None,
                      timeout: float = 5.0) -> ControllerClient:
        """A connected (and, over TCP, admitted) client. Every ClientError it raises names
        the TCP address; a refused proof also names the secret file that was used."""
        if self.tcp is None:
            return await ControllerClient.connect(self.home, on_event=on_event, timeout=timeout)
        where = format_address(*self.tcp)
        try:
            secret = read_secret_file(self.secret_path())
            return await ControllerClient.connect(self.home, tcp=self.tcp, secret=secret,
                                                  on_event=on_event, timeout=timeout)
        except ClientError as exc:
            message = str(exc)
            if where not in message:
                message = f"pcontrol at TCP {where}: {message}"
            if isinstance(exc, auth.AccessDenied) and "wrong proof" in message:
                message += (f" (the proof was made with {self.secret_path()}: is it a copy of "
                            f"that controller's $SCHED_HOME/secret?)")
            if isinstance(exc, CommandFailed):      # carries a reply, not a message
                raise
            raise type(exc)(message) from exc


# -- blocking helpers (CLI, scripts) ---------------------------------------------------------

def run_command(argv: Sequence[str], home: str | os.PathLike[str] | None = None, *,
                timeout: float | None = DEFAULT_TIMEOUT,
                address: ControllerAddress | None = None) -> Reply:
    """Connect, send one command, return its Reply. Blocking; not for use inside a loop.

    `address` (e.g. a TCP listener) replaces `home`'s socket."""
    target = address if address is not None else ControllerAddress.local(home)

    async def once() -> Reply:
        client = await target.connect()
        try:
            return await client.request(argv, timeout=timeout)
        finally:
            await client.close()

    return asyncio.run(once())


def is_running(home: str | os.PathLike[str] | None = None, *, timeout: float = 2.0) -> bool:
    """True when a daemon answers `ping` on home's socket. Blocking."""
    try:
        return run_command(["ping"], home, timeout=timeout).ok
    except (ControllerNotRunning, ControllerTimeout, ControllerDisconnected):
        return False


def socket_path_for(home: str | os.PathLike[str] | None = None) -> Path:
    return Paths.for_home(home).socket
