"""Helpers for the hostile-input tests: a real pcontrol daemon in a child process (with its
memory and descriptors read from /proc), an in-process server with chosen limits and an
optional TCP listener, and raw connections that send exactly the bytes a test wants.

Every wait is bounded (WAIT); none sleeps to let something happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcontrol.controller import Controller, ControllerConfig
from pcontrol.journal import Journal
from pcontrol.paths import Paths
from pcontrol.secret import load_or_create_secret
from pcontrol.server import ControlServer, ServerLimits

HERE = Path(__file__).resolve().parent
WAIT = 15.0      # upper bound of any single wait; tests normally finish far sooner
PING = b'{"id": 1, "argv": ["ping"]}\n'


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def short_home() -> str:
    # Unix socket paths are limited to ~107 bytes: keep the home short, under /tmp.
    return tempfile.mkdtemp(dir="/tmp", prefix="ph")


# -- raw connections -------------------------------------------------------------------------

async def open_unix(path: str | os.PathLike[str]) -> tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_unix_connection(str(path), limit=64 * 1024 * 1024), WAIT)


async def read_json(reader: asyncio.StreamReader, timeout: float = WAIT) -> dict[str, Any]:
    """The next line the server sent, decoded; AssertionError if none within `timeout`."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no line from the server within {timeout} s") from None
    assert line.endswith(b"\n"), f"connection ended instead of a line: {line[:200]!r}"
    return json.loads(line)


async def read_eof(reader: asyncio.StreamReader, timeout: float = WAIT) -> bytes:
    """Everything until the server closes; AssertionError if it does not within `timeout`."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the server did not close within {timeout} s") from None
    except ConnectionError:       # reset, or our own unsent writes hit the closed end
        return b""


async def exchange(path: str | os.PathLike[str], line: bytes) -> dict[str, Any]:
    """One line on a fresh connection, its first reply."""
    reader, writer = await open_unix(path)
    try:
        writer.write(line)
        await writer.drain()
        return await read_json(reader)
    finally:
        writer.close()


async def ping(path: str | os.PathLike[str]) -> None:
    reply = await exchange(path, PING)
    assert reply["ok"] is True and reply["text"] == "pong", reply


# -- a daemon in a child process -------------------------------------------------------------

@dataclass
class Daemon:
    """A `pcontrol serve` child process; see limited_daemon.py."""

    home: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def paths(self) -> Paths:
        return Paths.for_home(self.home)

    @property
    def socket(self) -> str:
        return str(self.paths.socket)

    def status_kib(self, field: str) -> int:
        """A memory field of /proc/PID/status (VmRSS, VmHWM) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.paths.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def daemon(limits: dict[str, Any] | None = None, serve_args: tuple[str, ...] = ()) -> Any:
    """Start a daemon in a fresh home; yield it once it is ready; stop it and clean up."""
    home = short_home()
    Paths.for_home(home).ensure_home()
    read_end, write_end = os.pipe()
    log_file = open(Path(home) / "pcontrol.log", "ab")
    env = dict(os.environ, SCHED_HOME=home)
    process = subprocess.Popen(
        [sys.executable, str(HERE / "limited_daemon.py"), json.dumps(limits or {}),
         "--home", home, "serve", "--ready-fd", str(write_end), "--log-level", "DEBUG",
         *serve_args],
        stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
        pass_fds=(write_end,), start_new_session=True)
    os.close(write_end)
    handle = Daemon(home, process)
    try:
        readable, _, _ = select.select([read_end], [], [], WAIT)
        ready = bool(readable) and b"ready" in os.read(read_end, 64)
        assert ready, f"daemon did not become ready; log:\n{handle.log_text()}"
        yield handle
    finally:
        os.close(read_end)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT)
        log_file.close()
        shutil.rmtree(home, ignore_errors=True)


# -- a server in this process ----------------------------------------------------------------

@dataclass
class Served:
    paths: Paths
    controller: Controller
    server: ControlServer
    secret: bytes | None

    @property
    def socket(self) -> str:
        return str(self.paths.socket)

    @property
    def tcp(self) -> tuple[str, int]:
        return self.server.tcp_addresses[0]


@contextlib.asynccontextmanager
async def served(home: str, limits: ServerLimits | None = None,
                 listen: tuple[str, int] | None = None) -> AsyncIterator[Served]:
    """A controller and its server in this process (TCP too when `listen` is given)."""
    paths = Paths.for_home(home)
    paths.ensure_home()
    journal = Journal(paths.journal)
    controller = Controller(journal, ControllerConfig(heartbeat=0.2, retry_min=60.0,
                                                      retry_max=120.0))
    secret = load_or_create_secret(home) if listen is not None else None
    server = ControlServer(controller, paths.socket, listen=listen, secret=secret,
                           limits=limits)
    await controller.start()
    await server.start()
    try:
        yield Served(paths, controller, server, secret)
    finally:
        await server.close()
        await controller.stop()
        journal.close()

