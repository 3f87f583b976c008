"""The client side of a sched server's socket: one connection, its greeting, requests with ids.

    link = await ServerLink.connect(socket_path, on_output)             # $SCHED_HOME/sched.sock
    link = await ServerLink.connect_tcp((host, port), secret, on_output) # sched --serve --listen
    reply = await link.request(Op.EVAL, "status")                       # a serverwire.Reply
    link.gone                                                           # a future: why it closed

Every client of a server goes through here: the attached prompt and `sched --stop`
(psched.shell.attached), the page's feed of tasks (pweb.feeds.SchedFeed) and a standby relaying
its prompts to the leader of its pool (psched.shell.harelay). The server's first message is
checked in one place (`read_hello`): a `hello`, or a `reply` that says why the server refused
us. Output the server writes between replies goes to `on_output`; a reply that matches no
request (an error reply with id 0) is passed on as output.

This module loads neither the scheduler nor the prompt (pweb imports it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from pathlib import Path
from typing import Callable

from pcontrol.address import format_address

from .serverauth import AUTH_TIMEOUT, Refused, prove
from .serverwire import (MAX_REQUEST_LINE, Hello, Op, Output, Reply, Request, ServerMessage, WireError,
                         decode_server_message, encode)

__all__ = ["ServerLink", "ServerGone", "ServerSilent", "read_hello"]


class ServerGone(Exception):
    """The server closed the connection (it stopped, or was killed), or refused us; the text says why."""


class ServerSilent(ServerGone):
    """The server took the connection but did not greet in time: its loop is held (a long
    macro: psched.shell.longcode says so in its log)."""


async def read_hello(reader: asyncio.StreamReader, timeout: float = AUTH_TIMEOUT) -> Hello:
    """The server's greeting; ServerGone saying why there is none (its refusal, or a closed line)."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except asyncio.TimeoutError:
        raise ServerSilent(f"the server did not greet within {timeout:g} s") from None
    except (ValueError, ConnectionError) as err:
        raise ServerGone(f"the connection broke before the server greeted: {err}") from None
    if not line:
        raise ServerGone("the server closed the connection before greeting")
    try:
        first = decode_server_message(line)
    except WireError as err:
        raise ServerGone(f"the server's greeting is not of this protocol: {err}") from None
    if isinstance(first, Reply):
        raise ServerGone(f"the server refused the connection: {first.text}")
    if not isinstance(first, Hello):
        raise ServerGone("the server did not greet")
    return first


class ServerLink:
    """One connection to the server: requests with ids, replies matched to them, output passed on."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: Hello,
                 on_output: Callable[[Output], None], where: str | None = None):
        self.where = where          # HOST:PORT over TCP; None: the Unix socket (the server's pid is ours to signal)
        self.reader = reader
        self.writer = writer
        self.hello = hello
        self.pid = hello.pid
        self.home = hello.home
        self.on_output = on_output
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self.gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reading = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, socket_path: Path, on_output: Callable[[Output], None]) -> "ServerLink":
        """Over the owner-only Unix socket of a $SCHED_HOME (OSError when nothing listens)."""
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=MAX_REQUEST_LINE)
        try:
            hello = await read_hello(reader)
        except ServerGone:
            writer.close()
            raise
        return cls(reader, writer, hello, on_output)

    @classmethod
    async def connect_tcp(cls, address: tuple[str, int], secret: bytes,
                          on_output: Callable[[Output], None]) -> "ServerLink":
        """Over TCP, proving the secret (OSError when nothing listens; ServerGone when refused)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address, limit=MAX_REQUEST_LINE),
                                                AUTH_TIMEOUT)
        try:
            await prove(reader, writer, secret)
            hello = await read_hello(reader)
        except (Refused, asyncio.TimeoutError) as err:
            writer.close()
            raise ServerGone(str(err) or "no answer to the authentication") from None
        except ServerGone:
            writer.close()
            raise
        return cls(reader, writer, hello, on_output, format_address(*address))

    @property
    def relayed(self) -> bool:
        """The server is a standby of a pool: our requests go on to the leader."""
        return self.hello.standby

    def interrupt(self) -> None:
        """Ctrl-C: interrupt the request under way in the server (a signal on this machine, and a
        message: a member of a pool may carry the request to another)."""
        if self.where is None and not self.hello.member:
            try:   # the signal stops a command busy in the server, which reads no message then
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        # the message also reaches a request the server has not begun (a signal then is ignored)
        if not self.writer.is_closing():
            self.writer.write(encode(Request(0, Op.INTERRUPT)))

    async def _read(self) -> None:
        reason = "the server closed the connection"
        try:
            while line := await self.reader.readline():
                message: ServerMessage = decode_server_message(line)
                if isinstance(message, Output):
                    self.on_output(message)
                elif isinstance(message, Reply):
                    waiter = self._waiting.pop(message.id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                    elif not message.ok:
                        self.on_output(Output(message.text + "\n"))
        except (ConnectionError, WireError, ValueError) as err:
            reason = f"the connection to the server broke: {err}"
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ServerGone(reason))
        if not self.gone.done():
            self.gone.set_result(reason)

    async def request(self, op: Op, script: str = "", force: bool = False, line: int = 1) -> Reply:
        if self.gone.done():
            raise ServerGone(self.gone.result())
        request = Request(next(self._ids), op, script, force, line)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = waiter
        try:
            self.writer.write(encode(request))
            await self.writer.drain()
        except ConnectionError as err:
            self._waiting.pop(request.id, None)
            raise ServerGone(f"the connection to the server broke: {err}") from None
        return await waiter

    def close(self) -> None:
        """Hang up (`gone` stays as it is: nobody went away); requests waiting end with ServerGone."""
        self._reading.cancel()
        self.writer.close()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ServerGone("the connection was closed here"))
        self._waiting.clear()
