"""The prompt attached to a sched server, and the one-shot commands that talk to it.

    attach(one_script=None) -> exit status      `sched --attach` / `sched -c SCRIPT --attach`
    stop() -> exit status                       `sched --stop`

The attached prompt is the interactive shell (psched.repl.Shell: history, completion of the
language's commands, highlighting, multi-line blocks, the validator) whose commands run in the
server instead of here. What the server writes between commands (exit macros, its messages)
appears above the prompt. Ctrl-C while a command runs sends SIGINT to the server, which
interrupts that command only. `detach` or Ctrl-D leaves the server running; `quit` stops it,
after asking when its quit checks object (jobs still out).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcontrol.address import format_address, parse_host_port
from pcontrol.secret import SecretError, read_secret, secret_path

from ..lang.interp import Interp
from ..scheduler.eventloop import get_loop, run_until
from .repl import Shell
from .session import ExitStatus, InterruptHandler
from .server import ServerPaths, running_pid
from .serverauth import Refused, prove
from .serverwire import (MAX_REQUEST_LINE, Hello, Op, Output, Reply, Request, ServerMessage, WireError,
                         decode_server_message, encode)

__all__ = ["ServerLink", "ServerGone", "AttachedShell", "Remote", "attach", "stop", "DETACH"]

DETACH = "detach"
"""What typed alone at an attached prompt leaves it, the server running on."""


class ServerGone(Exception):
    """The server closed the connection (it stopped, or was killed)."""


class ServerLink:
    """One connection to the server: requests with ids, replies matched to them, output passed on."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: Hello,
                 on_output: Any, where: str | None = None):
        self.where = where          # HOST:PORT over TCP; None: the Unix socket (the server's pid is ours to signal)
        self.reader = reader
        self.writer = writer
        self.pid = hello.pid
        self.home = hello.home
        self.on_output = on_output
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self.gone = asyncio.get_running_loop().create_future()
        self._reading = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, paths: ServerPaths, on_output: Any) -> "ServerLink":
        reader, writer = await asyncio.open_unix_connection(str(paths.socket), limit=MAX_REQUEST_LINE)
        first = decode_server_message(await reader.readline() or b"{}")
        if isinstance(first, Reply):
            raise ServerGone(first.text)
        if not isinstance(first, Hello):
            raise ServerGone("the server did not greet")
        return cls(reader, writer, first, on_output)

    @classmethod
    async def connect_tcp(cls, address: tuple[str, int], secret: bytes, on_output: Any) -> "ServerLink":
        reader, writer = await asyncio.open_connection(*address, limit=MAX_REQUEST_LINE)
        try:
            hello = await prove(reader, writer, secret)
        except (Refused, asyncio.TimeoutError) as err:
            writer.close()
            raise ServerGone(str(err) or "no answer to the authentication") from None
        return cls(reader, writer, hello, on_output, format_address(*address))

    def interrupt(self) -> None:
        """Ctrl-C: interrupt the request under way in the server."""
        if self.where is None:
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        elif not self.writer.is_closing():
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

    async def request(self, op: Op, script: str = "", force: bool = False) -> Reply:
        if self.gone.done():
            raise ServerGone(self.gone.result())
        request = Request(next(self._ids), op, script, force)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = waiter
        self.writer.write(encode(request))
        await self.writer.drain()
        return await waiter

    def close(self) -> None:
        self._reading.cancel()
        self.writer.close()


def _print_output(output: Output) -> None:
    sys.stdout.write(output.text)   # looked up each time: above the prompt while one is shown
    sys.stdout.flush()


def _print_own_output(output: Output) -> None:
    """A one-shot command shows what its own request wrote, not the server's background chatter."""
    if output.id:
        _print_output(output)


@dataclass(frozen=True)
class Remote:
    """A server reached over TCP (`--connect HOST:PORT`), and the secret file to prove."""

    address: str
    secret_file: str | None = None


def _connect(paths: ServerPaths, on_output: Any = _print_output, remote: Remote | None = None) -> ServerLink | None:
    if remote is not None:
        return _connect_tcp(paths, on_output, remote)
    if running_pid(paths) is None:
        print(f"sched: no server runs in {paths.home} (start one with: sched --serve FILE...)",
              file=sys.stderr)
        return None
    try:
        return run_until(ServerLink.connect(paths, on_output), "attaching", interruptible=False)
    except (OSError, ServerGone, WireError) as err:
        print(f"sched: cannot attach to the server in {paths.home}: {err}", file=sys.stderr)
        return None


def _connect_tcp(paths: ServerPaths, on_output: Any, remote: Remote) -> ServerLink | None:
    try:
        address = parse_host_port(remote.address)
    except ValueError as err:
        print(f"sched: --connect {remote.address}: {err}", file=sys.stderr)
        return None
    path = Path(remote.secret_file).expanduser() if remote.secret_file else secret_path(paths.home)
    try:
        secret = read_secret(path)      # the server's own checks of it: owner-only, 32 bytes
    except FileNotFoundError:
        print(f"sched: no secret file {path}: copy the server's $SCHED_HOME/secret there (mode 600) "
              f"or name a copy with --secret-file", file=sys.stderr)
        return None
    except (SecretError, OSError) as err:
        print(f"sched: cannot use the secret file {path}: {err}", file=sys.stderr)
        return None
    try:
        return run_until(ServerLink.connect_tcp(address, secret, on_output), "attaching", interruptible=False)
    except OSError as err:
        print(f"sched: no server listens on TCP {remote.address}: {err.strerror or err}", file=sys.stderr)
    except (ServerGone, WireError) as err:
        print(f"sched: cannot attach to the server at {remote.address}: {err}", file=sys.stderr)
    return None


def call(link: ServerLink, op: Op, script: str = "", force: bool = False) -> Reply:
    """One request, waited for with the loop running; Ctrl-C meanwhile interrupts it in the server."""
    loop = get_loop()
    loop.add_signal_handler(signal.SIGINT, link.interrupt)
    try:
        return run_until(link.request(op, script, force), "waiting for the server", interruptible=False)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


class AttachedShell(Shell):
    """The interactive shell whose commands run in the server."""

    def __init__(self, link: ServerLink, interrupts: InterruptHandler, **kwargs: Any):
        super().__init__(interrupts.interp, interrupts, **kwargs)
        self.link = link
        link.gone.add_done_callback(self._server_gone)

    def _server_gone(self, _: Any) -> None:
        app = self.session.app
        if app.is_running:
            app.exit(exception=EOFError())

    def execute(self, text: str) -> int | None:
        if not text.strip():
            return None
        if text.strip() == DETACH:
            return ExitStatus.OK
        try:
            reply = call(self.link, Op.EVAL, text)
            if reply.vetoes and self.ask(f"{'; '.join(reply.vetoes)}: really stop the server?"):
                reply = call(self.link, Op.QUIT, force=True)
        except ServerGone as err:
            print(f"sched: {err}", file=sys.stderr)
            return ExitStatus.SCRIPT_FAILED
        if reply.vetoes:
            return None
        if not reply.ok:
            print(reply.text, file=sys.stderr)
        elif reply.leaving:
            print(f"sched: the server stops (pid {self.link.pid})", file=sys.stderr)
            return reply.status if reply.status is not None else ExitStatus.OK
        elif reply.text:
            print(reply.text)
        return None

    def may_leave(self, force: bool) -> bool:
        return True                 # Ctrl-D detaches: the server runs on


def attach(one_script: str | None = None, *, input: Any = None, output: Any = None,
           remote: Remote | None = None) -> int:
    """`sched --attach` (the prompt) or `sched -c SCRIPT --attach` (one script); over TCP with `remote`."""
    paths = ServerPaths.for_home()
    link = _connect(paths, _print_output if one_script is None else _print_own_output, remote)
    if link is None:
        return ExitStatus.SCRIPT_FAILED
    try:
        if one_script is not None:
            try:
                reply = call(link, Op.EVAL, one_script)
            except ServerGone as err:
                print(f"sched: {err}", file=sys.stderr)
                return ExitStatus.SCRIPT_FAILED
            if not reply.ok:
                print(reply.text, file=sys.stderr)
                return ExitStatus.SCRIPT_FAILED
            if reply.text and not reply.leaving:
                print(reply.text)
            return reply.status if reply.leaving and reply.status is not None else ExitStatus.OK
        interrupts = InterruptHandler(Interp(), idle_raises=False)
        with interrupts.installed():
            where = f" at {link.where}" if link.where else ""
            print(f"sched: attached to the server in {link.home}{where} (pid {link.pid}); "
                  f"`{DETACH}` or Ctrl-D leaves it running", file=sys.stderr)
            return AttachedShell(link, interrupts, input=input, output=output).run()
    finally:
        link.close()


def _process_end(pid: int) -> "asyncio.Future[None]":
    """A future done when process `pid` has ended (a pidfd: no polling)."""
    loop = get_loop()
    ended: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        ended.set_result(None)
        return ended

    def on_end() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not ended.done():
            ended.set_result(None)
    loop.add_reader(fd, on_end)
    return ended


def stop(remote: Remote | None = None) -> int:
    """`sched --stop`: stop the server as `quit -force` does, and wait until it is gone (over
    TCP: until it closes the connection)."""
    paths = ServerPaths.for_home()
    link = _connect(paths, _print_own_output, remote)
    if link is None:
        return ExitStatus.SCRIPT_FAILED
    try:
        # opened before asking: the pid cannot be reused meanwhile
        ended = _process_end(link.pid) if link.where is None else link.gone
        reply = call(link, Op.STOP)
        run_until(asyncio.wait_for(ended, 120), "stopping", interruptible=False)
    except (ServerGone, asyncio.TimeoutError) as err:
        print(f"sched: stopping the server: {err}", file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    finally:
        link.close()
    print(f"sched: server stopped (pid {link.pid}): {reply.text}", file=sys.stderr)
    return ExitStatus.OK
