"""The agent's byte stream: stdin and stdout as an asyncio channel.

`claim_stdio()` takes stdin/stdout for the protocol before anything else can
write there: the protocol keeps a private duplicate of stdout and fd 1 is
pointed at stderr (or at /dev/null when stderr is the very stream the
protocol runs on: the terminal of an agent pcontrol starts over ssh, the
pipe of a local one), so a stray print can never corrupt the stream.  A
terminal is put in raw mode with echo off, so long lines pass whole and
nothing is echoed back or translated.

`StdioChannel` reads chunks and writes bytes without blocking the loop; it
falls back to plain blocking calls in an executor for regular files and
other descriptors the event loop cannot poll (e.g. `pclient < script`).
`Channel` is the seam the agent talks through; tests may pass their own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import stat
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from .readsize import READ_BYTES, read_at_most
from .turnlines import TurnLines

__all__ = ["Channel", "ClaimedStdio", "StdioChannel", "claim_stdio"]

log = logging.getLogger(__name__)

CORK_BYTES = 64 * 1024
"""A write this long is not held to the end of the turn (see StdioChannel._turn)."""
CORK_LINES = 64
"""Nor are more lines than this."""


class Channel(Protocol):
    """A byte stream in both directions."""

    async def read_chunk(self) -> bytes:
        """Some bytes, or b"" at end of input."""
        ...

    async def write(self, data: bytes) -> None:
        """Write all of `data`; raises ConnectionError once the reader is gone."""
        ...

    def write_nowait(self, data: bytes) -> None:
        """`write` without waiting for the reader to take it (the bytes are queued, in order
        with those of `write`); raises ConnectionError once the reader is known to be gone."""
        ...

    async def close(self) -> None:
        ...

    # A channel may also have `abort()`: drop unwritten output and let go of the peer at
    # once, so that it sees our end (the agent gives up on a silent controller that way).


@dataclass
class ClaimedStdio:
    """The descriptors the protocol runs on, and how to give the terminal back."""

    in_fd: int
    out_fd: int
    stderr_is_stream: bool
    """stderr is the protocol stream itself (the same terminal or pipe): nothing may be
    logged there."""
    _saved_modes: list[tuple[int, Any]] = field(default_factory=list)

    def restore(self) -> None:
        """Put terminals back in the mode they were in (call once, at exit)."""
        import termios

        for fd, mode in self._saved_modes:
            try:
                termios.tcsetattr(fd, termios.TCSANOW, mode)  # output is flushed already
            except (OSError, termios.error) as exc:
                log.debug("could not restore terminal mode of fd %d: %s", fd, exc)
        self._saved_modes.clear()


def claim_stdio() -> ClaimedStdio:
    """Reserve stdin/stdout for the protocol (see the module docstring)."""
    in_fd = 0
    os.fstat(0)  # stdin and stdout must exist: OSError (EBADF) otherwise
    os.fstat(1)
    try:
        os.fstat(2)
    except OSError:  # stderr closed: fill the gap, or dup() below would hand out fd 2
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 2:
            os.dup2(devnull, 2)
            os.close(devnull)
    out_fd = os.dup(1)
    stderr_is_stream = _same_file(2, out_fd) and _is_stream(2)
    if stderr_is_stream:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    else:
        os.dup2(2, 1)
    claimed = ClaimedStdio(in_fd, out_fd, stderr_is_stream)
    _make_raw(claimed)
    return claimed


def _pollable(fd: int, events: int) -> bool:
    """Whether the event loop can wait on `fd` (not so for regular files, /dev/null...)."""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return False
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(fd, events)
        except (OSError, ValueError):
            return False
    return True


def _is_stream(fd: int) -> bool:
    """A terminal, pipe or socket: what a protocol runs on (not a regular file, which a
    person reads afterwards, log lines and all)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


def _same_file(fd_a: int, fd_b: int) -> bool:
    try:
        return os.path.samestat(os.fstat(fd_a), os.fstat(fd_b))
    except OSError:
        return False


def _make_raw(claimed: ClaimedStdio) -> None:
    try:
        import termios
        import tty
    except ImportError:  # not a POSIX host: no terminals to set up
        return
    for fd in (claimed.in_fd, claimed.out_fd):
        if not os.isatty(fd) or any(_same_file(fd, done) for done, _ in claimed._saved_modes):
            continue
        try:
            mode = termios.tcgetattr(fd)
            tty.setraw(fd, termios.TCSANOW)  # raw: no echo, no line editing, no \n -> \r\n
        except (OSError, termios.error) as exc:
            log.warning("could not put terminal fd %d in raw mode: %s", fd, exc)
            continue
        claimed._saved_modes.append((fd, mode))


class _WriteProtocol(asyncio.Protocol):
    """Flow control for the output pipe: `drain()` waits while the pipe is full."""

    def __init__(self) -> None:
        self._paused = False
        self._waiters: list[asyncio.Future[None]] = []
        self._lost: Union[BaseException, None] = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Union[Exception, None]) -> None:
        self._lost = exc if exc is not None else BrokenPipeError("output closed")
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def wait_closed(self) -> None:
        while self._lost is None:
            await self._wait()

    async def drain(self) -> None:
        while self._paused and self._lost is None:
            await self._wait()
        if self._lost is not None:
            raise ConnectionError(f"output closed: {self._lost}")


class StdioChannel:
    """A Channel over two file descriptors (normally the ones claim_stdio returns)."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in_fd = in_fd
        self._out_fd = out_fd
        self._reader: Union[asyncio.StreamReader, None] = None
        self._read_transport: Union[asyncio.ReadTransport, None] = None
        self._writer: Union[asyncio.WriteTransport, None] = None
        self._write_protocol: Union[_WriteProtocol, None] = None
        self._nonblocking: list[int] = []
        self._turn = TurnLines(self._write_out, max_lines=CORK_LINES, max_bytes=CORK_BYTES)
        """Lines written this loop turn, written together at its end: one write, and one
        wake-up of the controller, for the several reports a busy turn makes."""

    @classmethod
    async def open(cls, in_fd: int, out_fd: int) -> StdioChannel:
        channel = cls(in_fd, out_fd)
        await channel._connect()
        return channel

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if _pollable(self._in_fd, selectors.EVENT_READ):
            reader = asyncio.StreamReader(limit=READ_BYTES, loop=loop)
            in_pipe = os.fdopen(self._in_fd, "rb", buffering=0, closefd=False)
            if os.get_blocking(self._in_fd):
                self._nonblocking.append(self._in_fd)
            self._read_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader, loop=loop), in_pipe)
            read_at_most(self._read_transport)
            self._reader = reader
        else:
            log.debug("stdin cannot be polled (a regular file?); reading it in a thread")
        if _pollable(self._out_fd, selectors.EVENT_WRITE):
            out_pipe = os.fdopen(self._out_fd, "wb", buffering=0, closefd=False)
            if os.get_blocking(self._out_fd):
                self._nonblocking.append(self._out_fd)
            self._writer, self._write_protocol = await loop.connect_write_pipe(_WriteProtocol, out_pipe)
        else:
            log.debug("stdout cannot be polled (a regular file?); writing it directly")

    async def read_chunk(self) -> bytes:
        if self._reader is not None:
            return await self._reader.read(READ_BYTES)
        return await asyncio.get_running_loop().run_in_executor(None, os.read, self._in_fd, READ_BYTES)

    async def write(self, data: bytes) -> None:
        self.write_nowait(data)
        if self._write_protocol is not None:
            await self._write_protocol.drain()  # (a big write went at once: the pipe's flow control holds us here)

    def write_nowait(self, data: bytes) -> None:
        if self._writer is None:
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._out_fd, view):]
                except OSError as exc:
                    raise ConnectionError(f"output closed: {exc}") from exc
            return
        if self._writer.is_closing():
            raise ConnectionError("output closed")
        self._turn.add(data)

    def _write_out(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def abort(self) -> None:
        """Give the peer up: drop unwritten output and close both descriptors, so the other
        end (ssh, a relay) sees our end. The descriptor numbers stay taken (by /dev/null)."""
        self._turn.flush()  # what was written goes as far as it went before an abort
        if self._writer is not None and not self._writer.is_closing():
            self._writer.abort()
        if self._read_transport is not None:
            self._read_transport.close()
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
        except OSError as exc:
            log.warning("cannot open %s to close the connection: %s", os.devnull, exc)
            return
        for fd in (self._in_fd, self._out_fd):
            try:
                os.dup2(devnull, fd)
            except OSError as exc:
                log.warning("cannot close fd %d: %s", fd, exc)
        os.close(devnull)

    async def close(self) -> None:
        """Flush and let go of both descriptors (they stay open)."""
        self._turn.flush()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()  # flushes what is buffered first
            assert self._write_protocol is not None
            try:
                await asyncio.wait_for(self._write_protocol.wait_closed(), 5.0)
            except asyncio.TimeoutError:
                log.warning("output not flushed after 5 s; giving up")
                self._writer.abort()
        if self._read_transport is not None:
            self._read_transport.close()
        for fd in self._nonblocking:  # hand a shared terminal back as we found it
            try:
                os.set_blocking(fd, True)
            except OSError:
                pass
        self._nonblocking.clear()
