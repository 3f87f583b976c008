"""Surviving a lost controller: the per-user socket where a surviving agent waits for a
successor, and the successor's side that finds survivors and takes their jobs over.

    controller A --stdio--> agent 1 (runs jobs)       A dies: agent 1 keeps its jobs for a
                                                      lease and listens on its socket
    controller B --stdio--> agent 2 --socket--> agent 1
                                                      agent 2 proves the token, agent 1
                                                      reports (resumed, ended...) to it;
                                                      agent 2 forwards to B and B's acks
                                                      and kills back; agent 1 exits once
                                                      all it had is reported and acked

Running jobs cannot change parent, so the survivor keeps running them and the successor
proxies: the survivor serves the ordinary agent protocol on the socket, as if the
successor were its controller. Only a successor that answers the survivor's challenge
with HMAC-SHA256(token, nonce) is served; the token comes from the controller's `auth`
(derived from its secret), so only a controller with the same secret can take jobs over.

Sockets live in one directory per user, owner-only (0700 dir, 0600 sockets, and the peer's
uid is checked with SO_PEERCRED both ways): $PCLIENT_RUNTIME_DIR, else
$XDG_RUNTIME_DIR/pclient, else /tmp/pclient-<uid>. A survivor's socket is
<key>-<pid>.sock where key = sha256(token, host name)[:16]: agents of other controllers
or other host names never look at it. It gets that name only once it listens, so a
successor that finds one refusing connections may remove it as a dead agent's.

Beside it, every authenticated agent holds an flock on <key>-<pid>.agent for as long as it
lives (`AgentPresence`), connected or not: the kernel drops the lock when the process
dies, however it dies. A successor told that its controller still awaits jobs it cannot
find asks `live_agents` whether any other agent of the key is alive: while one is, it may
yet learn that it was left and offer its jobs; when none is, those jobs are gone.
Standard library only.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import socket
import stat
import struct
from pathlib import Path
from typing import Callable, Union

from .containment import ENDED_STATES, process_state
from .protocol import (
    MAX_LINE,
    Challenge,
    Error,
    Message,
    ProtocolError,
    Resumed,
    Takeover,
    decode,
    encode,
)
from .readsize import READ_BYTES, read_at_most

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "AgentPresence",
    "SocketChannel",
    "SurvivorLink",
    "SurvivorListener",
    "find_survivors",
    "kill_orphans",
    "live_agents",
    "live_agents_of",
    "peer_uid",
    "runtime_dir",
    "survivor_key",
    "survivor_socket_problem",
    "takeover_proof",
]

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 5.0
"""Seconds either side waits for the other's handshake line."""
RUNTIME_ENV = "PCLIENT_RUNTIME_DIR"
MAX_SOCKET_PATH = 107
"""Bytes a Unix socket's path may have on Linux (sizeof(sun_path) - 1)."""


class LeaseError(Exception):
    """The socket directory cannot be used safely (wrong owner, loose mode)."""


def survivor_key(token: str, name: str) -> str:
    """What a survivor's socket is named by: its controller's token and its host name."""
    return hashlib.sha256(token.encode() + b"\0" + name.encode("utf-8", "replace")).hexdigest()[:16]


def takeover_proof(token: str, nonce: str) -> str:
    """The answer a successor gives to a survivor's challenge."""
    return hmac.new(token.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def runtime_dir(create: bool = True) -> Path:
    """The per-user socket directory, made 0700 if missing; LeaseError if it is unsafe."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        path = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "pclient"
    else:
        path = Path("/tmp") / f"pclient-{os.getuid()}"
    if create:
        try:
            path.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise LeaseError(f"cannot create the socket directory {path}: {exc}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise LeaseError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise LeaseError(f"{path} belongs to uid {st.st_uid}, not to us ({os.getuid()})")
    if st.st_mode & 0o077:
        raise LeaseError(f"{path} is open to others (mode {st.st_mode & 0o777:o}); it must be 0700")
    return path


def _socket_paths(directory: Path, key: str) -> tuple[Path, Path]:
    """This process's survivor socket for `key` in `directory`, and the draft name it is bound
    under first (SurvivorListener.start)."""
    path = directory / f"{key}-{os.getpid()}.sock"
    return path, directory / f".{path.name}.new"


def survivor_socket_problem(token: str, name: str, *, directory: Union[Path, None] = None) -> Union[str, None]:
    """Why this agent could not wait for a successor (its survivor socket's path is longer than
    a Unix socket's may be), or None. Told at `auth`, when the agent starts: else it shows only
    once the controller is lost, as the jobs end for want of a socket."""
    try:
        directory = directory or runtime_dir(create=False)
    except (LeaseError, OSError):
        return None      # said where it matters (the presence mark, the listener)
    _, draft = _socket_paths(directory, survivor_key(token, name))
    size = len(os.fsencode(draft))
    if size <= MAX_SOCKET_PATH:
        return None
    return (f"this agent's jobs cannot outlive its controller: its survivor socket ({draft}) would be "
            f"{size} bytes, a Unix socket's path may have {MAX_SOCKET_PATH}: give PCLIENT_RUNTIME_DIR "
            f"a shorter directory")


def peer_uid(sock: Union[socket.socket, None]) -> Union[int, None]:
    """The uid at the other end of a connected Unix socket (SO_PEERCRED), if known."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


def _same_user(writer: asyncio.StreamWriter) -> bool:
    uid = peer_uid(writer.get_extra_info("socket"))
    return uid is None or uid == os.getuid()


async def _read_message(reader: asyncio.StreamReader, timeout: float) -> Message:
    """One line from the peer, decoded; raises ProtocolError, EOFError or TimeoutError."""
    line = await asyncio.wait_for(reader.readline(), timeout)
    if not line.endswith(b"\n"):
        raise EOFError("the peer closed the connection")
    return decode(line)


def _new_reader() -> asyncio.StreamReader:
    return asyncio.StreamReader(limit=MAX_LINE + 2)


class SocketChannel:
    """A Channel (see pclient.stdio) over a connected stream socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        read_at_most(writer.transport)

    async def read_chunk(self) -> bytes:
        try:
            return await self._reader.read(READ_BYTES)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self.write_nowait(data)
        await self._writer.drain()

    def write_nowait(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionError("the successor's socket is closed")
        self._writer.write(data)

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        except (OSError, asyncio.TimeoutError):
            pass


# -- the survivor's side ---------------------------------------------------------------------


class SurvivorListener:
    """Listens on <dir>/<key>-<pid>.sock and hands an authenticated successor's
    connection to `on_successor` (a SocketChannel); refuses wrong tokens."""

    def __init__(self, token: str, name: str, *, directory: Union[Path, None] = None,
                 is_free: Callable[[], bool] = lambda: True, fence: Union[int, None] = None) -> None:
        self._token = token
        self._fence = fence  # our controller's fencing token: a successor's may not be lower
        self._directory = directory
        self.path: Union[Path, None] = None
        self._key = survivor_key(token, name)
        self._is_free = is_free
        self._server: Union[asyncio.AbstractServer, None] = None
        self.successors: "asyncio.Queue[SocketChannel]" = asyncio.Queue()
        self.refused = 0

    async def start(self) -> Path:
        directory = self._directory or runtime_dir()
        path, draft = _socket_paths(directory, self._key)
        # Bound and listening under a draft name before it gets its own: a successor refused
        # by a socket under that name takes it for a dead agent's and removes it, and one that
        # looked between our bind and our listen did so (the survivor then lost its socket and,
        # with it, its lease and the outcomes it held). The rename replaces a dead agent's
        # socket of our pid.
        try:
            draft.unlink()
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._accept, path=str(draft), limit=MAX_LINE + 2)
        finally:
            os.umask(old_umask)
        try:
            os.chmod(draft, 0o600)
            os.replace(draft, path)
        except OSError:
            await self.close()
            try:
                draft.unlink()
            except FileNotFoundError:
                pass
            raise
        self.path = path
        log.info("waiting for a successor on %s", path)
        return path

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.path = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            accepted = await self._handshake(reader, writer)
        except (OSError, EOFError, asyncio.TimeoutError, ProtocolError) as exc:
            log.warning("a would-be successor failed its handshake: %s", exc)
            accepted = False
        if accepted:
            self.successors.put_nowait(SocketChannel(reader, writer))
        else:
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if not _same_user(writer):
            log.warning("refused a connection from another user")
            self.refused += 1
            return False
        nonce = secrets.token_hex(16)
        writer.write(encode(Challenge(nonce=nonce, pid=os.getpid())))
        await writer.drain()
        answer = await _read_message(reader, HANDSHAKE_TIMEOUT)
        if not isinstance(answer, Takeover):
            raise ProtocolError(f"expected a takeover message, got {answer.TYPE!r}")
        expected = takeover_proof(self._token, nonce).encode()
        if not hmac.compare_digest(answer.proof.encode("utf-8", "replace"), expected):
            log.warning("refused a takeover by pid %d: wrong token", answer.pid)
            self.refused += 1
            writer.write(encode(Error(reason="takeover refused: wrong token")))
            await writer.drain()
            return False
        if self._fence is not None and (answer.fence is None or answer.fence < self._fence):
            log.warning("refused a takeover by pid %d: fencing token %s is lower than ours (%d)",
                        answer.pid, answer.fence, self._fence)
            self.refused += 1
            writer.write(encode(Error(reason=f"takeover refused: fencing token {answer.fence} is lower than {self._fence}")))
            await writer.drain()
            return False
        if not self._is_free() or self._server is None:
            writer.write(encode(Error(reason="takeover refused: already taken over")))
            await writer.drain()
            return False
        log.info("taken over by pid %d", answer.pid)
        return True


# -- the successor's side --------------------------------------------------------------------


class SurvivorLink:
    """A connection to one survivor that accepted our takeover."""

    def __init__(self, path: Path, pid: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, report: Resumed) -> None:
        self.path = path
        self.pid = pid
        self.report = report
        self._reader = reader
        self._writer = writer

    def __repr__(self) -> str:
        return f"<SurvivorLink pid={self.pid}>"

    @classmethod
    async def connect(cls, path: Path, token: str, fence: Union[int, None] = None) -> "SurvivorLink":
        """Connect, check the peer, prove the token, read its `resumed`.

        Raises ConnectionRefusedError / FileNotFoundError for a stale socket, and
        PermissionError, ProtocolError, EOFError or TimeoutError when refused.
        """
        reader = _new_reader()
        loop = asyncio.get_running_loop()
        transport, _ = await asyncio.wait_for(
            loop.create_unix_connection(lambda: asyncio.StreamReaderProtocol(reader), str(path)),
            HANDSHAKE_TIMEOUT)
        protocol = transport.get_protocol()
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            if not _same_user(writer):
                raise PermissionError(f"{path} is served by another user")
            challenge = await _read_message(reader, HANDSHAKE_TIMEOUT)
            if not isinstance(challenge, Challenge):
                raise ProtocolError(f"expected a challenge, got {challenge.TYPE!r}")
            writer.write(encode(Takeover(proof=takeover_proof(token, challenge.nonce), pid=os.getpid(), fence=fence)))
            await writer.drain()
            report = await _read_message(reader, HANDSHAKE_TIMEOUT)
            if isinstance(report, Error):
                raise PermissionError(report.reason)
            if not isinstance(report, Resumed):
                raise ProtocolError(f"expected resumed, got {report.TYPE!r}")
        except BaseException:
            writer.close()
            raise
        return cls(path, challenge.pid, reader, writer, report)

    def send(self, msg: Message) -> None:
        if not self._writer.is_closing():
            self._writer.write(encode(msg))

    async def read_line(self) -> bytes:
        """The survivor's next line, or b"" once it has closed."""
        try:
            return await self._reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""
        except asyncio.LimitOverrunError:
            log.error("survivor pid %d sent an over-long line; dropping it", self.pid)
            return b""

    def close(self) -> None:
        self._writer.close()


async def find_survivors(token: str, name: str, fence: Union[int, None] = None) -> list[SurvivorLink]:
    """Take over every survivor of a controller with this token, for host `name` (with our
    controller's fencing token, if it has one: pclient.fencing)."""
    try:
        directory = runtime_dir(create=False)
    except FileNotFoundError:
        return []
    except (LeaseError, OSError) as exc:
        log.error("not looking for survivors: %s", exc)
        return []
    key = survivor_key(token, name)
    links = []
    for path in sorted(directory.glob(f"{key}-*.sock")):
        if path.name == f"{key}-{os.getpid()}.sock":
            continue
        try:
            link = await SurvivorLink.connect(path, token, fence)
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing the stale socket %s", path)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        except (OSError, EOFError, asyncio.TimeoutError, ProtocolError) as exc:
            log.warning("could not take over the survivor at %s: %s", path, exc)
            continue
        log.info("took over survivor pid %d: %d running, %d finished", link.pid,
                 len(link.report.running), len(link.report.finished))
        links.append(link)
    return links


# -- which agents of a key are alive ---------------------------------------------------------

PRESENCE_SUFFIX = ".agent"


class AgentPresence:
    """This agent's mark on the host: <dir>/<key>-<pid>.agent, flock'ed while we live.

    The descriptor is not inherited by jobs (os.open makes it close-on-exec), so the lock
    goes with this process and no other."""

    def __init__(self, token: str, name: str, *, directory: Union[Path, None] = None) -> None:
        self._key = survivor_key(token, name)
        self._directory = directory
        self._fd: Union[int, None] = None
        self.path: Union[Path, None] = None

    def claim(self) -> Path:
        """Create and lock the mark; LeaseError or OSError if the directory is unusable."""
        directory = self._directory or runtime_dir()
        path = directory / f"{self._key}-{os.getpid()}{PRESENCE_SUFFIX}"
        # Locked before it gets its name, so nobody ever sees it unlocked (and takes a
        # live agent for a dead one); the rename replaces a dead agent's mark of our pid.
        draft = directory / f".{path.name}.new"
        fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(draft, path)
        except OSError:
            os.close(fd)
            raise
        self._fd, self.path = fd, path
        _sweep_dead_marks(directory)
        return path

    def release(self) -> None:
        if self._fd is None:
            return
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = self.path = None


def live_agents(token: str, name: str, *, exclude: set[int], directory: Union[Path, None] = None) -> list[int]:
    """Pids of the agents of this key that are alive (hold their mark's lock), except
    `exclude`. Marks left by dead agents are removed on the way."""
    return live_agents_of(survivor_key(token, name), exclude=exclude, directory=directory)


def live_agents_of(key: str, *, exclude: set[int], directory: Union[Path, None] = None) -> list[int]:
    """live_agents by the key itself (the spool sweep knows other controllers' keys, never
    their tokens)."""
    try:
        directory = directory or runtime_dir(create=False)
    except FileNotFoundError:
        return []
    alive = []
    for path in sorted(directory.glob(f"{key}-*{PRESENCE_SUFFIX}")):
        word = path.name[len(key) + 1: -len(PRESENCE_SUFFIX)]
        if not word.isdigit() or int(word) in exclude:
            continue
        if _lock_is_held(path):
            alive.append(int(word))
    return alive


#: At most this many marks are checked per sweep (the rest wait for later agents).
SWEEP_LIMIT = 200


def _sweep_dead_marks(directory: Path) -> None:
    """Remove the marks that agents killed without a chance to clean up left behind (of
    any key): nobody holds their lock."""
    for index, path in enumerate(directory.glob(f"*{PRESENCE_SUFFIX}")):
        if index >= SWEEP_LIMIT:
            break
        _lock_is_held(path)


def _lock_is_held(path: Path) -> bool:
    """Whether a live process holds the flock on `path`; a mark nobody holds is removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError as exc:   # cannot tell: count it alive (its jobs wait out the grace)
            log.warning("cannot check the agent mark %s: %s", path, exc)
            return True
        try:   # its agent is dead; remove the mark unless a new agent reused the name
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        except OSError:
            pass
        return False
    finally:
        os.close(fd)


# -- orphans of agents that were killed ------------------------------------------------------

_AGENT_VAR_B = b"PCLIENT_AGENT="


def _is_live_agent(pid: int) -> bool:
    state = process_state(pid)
    return state is not None and state not in ENDED_STATES


def kill_orphans(key: str, keep: set[int]) -> list[int]:
    """SIGKILL every process of ours marked (PCLIENT_AGENT=<key>:<pid>) as the job of an
    agent with this key that is dead; agents in `keep` and live ones are left alone.

    Linux only (reads /proc/<pid>/environ); elsewhere it finds nothing.  Blocking:
    call it through run_in_executor.
    """
    needle = _AGENT_VAR_B + key.encode() + b":"
    me = os.getpid()
    killed = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        start = environ.find(needle)
        if start < 0 or (start > 0 and environ[start - 1] != 0):
            continue
        end = environ.find(b"\0", start)
        owner = environ[start + len(needle): end if end >= 0 else None]
        if not owner.isdigit():
            continue
        agent = int(owner)
        if agent in keep or _is_live_agent(agent):
            continue
        try:
            os.kill(int(name), 9)
            killed.append(int(name))
        except (ProcessLookupError, PermissionError):
            pass
    return killed
