"""Starting a host's agent and talking to it: the connect state machine and the live link.

Start: the agent command (ssh ... pclient) runs under pexpect on a pseudo-terminal, a local
pclient on two pipes (`pipes`: the transport is chosen here, at the start, and nothing after
it differs), and `connect_agent` waits for one of a few named outcomes (ConnectOutcome):
the agent's hello line, or one of the ways ssh and shells fail. Anything but the hello ends
the attempt with a ConnectFailure whose reason is in words, for `check host`. A start may
also print lines of its own before the hello, answered through the `PreHandshake` seam
(pcontrol.bootstrap's loader asks for the agent's code, or says why it cannot run one);
those are the only writes before the hello. The spawn
itself runs in a worker thread (see _spawn): on a loaded machine waiting for the child's
exec takes 50-150 ms, which the loop would otherwise stand still for.

Why a pty for ssh and not pipes (pexpect's PopenSpawn): ssh talks to /dev/tty for password
and host-key questions; on a pty those prompts reach us and become named outcomes instead of
ssh reading the terminal of whoever started the daemon. PopenSpawn also reads through a
helper thread, so its fds could not be handed to the event loop afterwards. The pty's line
discipline (echo, CR/LF mapping, 4096-byte canonical lines, ^C/^D/^S as signals) would mangle
protocol lines, so the child puts its terminal in raw mode before exec (`preexec_fn`):
nothing ever goes through cooked mode, whether or not the agent also sets raw mode (the code
the loader asks for is sent as one line of base64 all the same).

Why pipes for a local agent: no ssh, so nothing asks a terminal anything, and a pty costs
CPU at every write: it goes through the tty layer and a kernel worker (flush_to_ldisc)
before the reader wakes, ~7 us more than a pipe's (a line each way: 23-36 us of CPU on a
pty, 10-15 us on pipes, half of the difference in the kworker). In figure 2 (issue 13), 16
alternating pairs at load 12-15: kworker time 0.035 ms a job less, and sched, pcontrol and
the agent together ~0.13 ms a job less (paired medians; single runs spread more than that).
The child's stdin is one pipe, its stdout and stderr share the other (as they share a pty,
so what it says before its hello still explains a failed start); pexpect reads them as an
fdspawn (`_PipeSpawn`), and it is forked and exec'd by pcontrol.spareagent.start_on_pipes,
the start of the spare agent too. We see the agent's end as EOF (on a pty: EIO), and it sees
ours as EOF on its input (on a pty: that and SIGHUP), which it takes as it takes a hang-up.

Link: after the hello, pexpect's read transport is kept but given our own protocol (line
splitting, bounded), and writes go through an asyncio write transport on a dup of the fd
of the child's input (the pty's one fd, or the input pipe), so no read or write ever blocks
the loop. pexpect.spawn.close() sleeps and may signal synchronously, so `_LoopSpawn.close`
(and `_PipeSpawn.close`) only release the fds; ending and reaping the process is done here
without blocking (pidfd readiness, or a short poll where pidfd is missing).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pexpect
import ptyprocess
from pexpect.fdpexpect import fdspawn

from pclient import protocol as agent_protocol
from pclient.fdlimit import note_descriptor
from pclient.readsize import read_at_most
from pclient.turnlines import TurnLines

from .spareagent import DIMENSIONS, PipedProcess, child_setup, start_on_pipes
from .sshfail import PROMPTS, ConnectOutcome, classify, explain

log = logging.getLogger(__name__)

#: How many bytes of pre-handshake output we keep to explain a failure.
_NOISE_KEPT = 2000


#: What ends the wait for the hello while the start runs: the hello itself, or a question that
#: waits for an answer. Everything else is judged on the whole output once the start has ended
#: (pcontrol.sshfail), so a failure is named by ssh's decisive message, not the first found.
_PATTERNS: list[tuple[ConnectOutcome, bytes]] = [
    (ConnectOutcome.HANDSHAKE, rb'\{[^\r\n]*"type"\s*:\s*"hello"[^\r\n]*\r?\n'),
] + PROMPTS


@dataclass(frozen=True)
class PreludeReply:
    """What to do about a line the start printed before its hello (see PreHandshake)."""

    send: bytes = b""                  #: write this to the start's input, then wait on
    failure: str | None = None         #: give up: the start fails with this reason


class PreHandshake(Protocol):
    """Lines a start may print before the hello, and the answers (pcontrol.bootstrap's
    loader asks for the agent's code this way)."""

    pattern: bytes
    """A regex matching one whole such line."""

    def answer(self, line: bytes) -> PreludeReply: ...


#: The outcome slot of a PreHandshake line (never an outcome of the start itself).
_PRELUDE = object()


class ConnectFailure(Exception):
    """An agent start that did not reach the handshake."""

    def __init__(self, outcome: ConnectOutcome, reason: str):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


# -- processes -------------------------------------------------------------------------------

async def wait_exit(pid: int, timeout: float | None) -> bool:
    """Wait until child `pid` has exited and reap it. False if still alive at `timeout`."""
    loop = asyncio.get_running_loop()
    if _reap(pid):
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:
        deadline = None if timeout is None else loop.time() + timeout
        while deadline is None or loop.time() < deadline:
            await asyncio.sleep(0.02)
            if _reap(pid):
                return True
        return False
    exited = loop.create_future()
    loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
    try:
        await asyncio.wait_for(exited, timeout)
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return _reap(pid)


def _reap(pid: int) -> bool:
    """Non-blocking waitpid: True if the child is gone (reaped now or before)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


async def terminate(pid: int, grace: float) -> None:
    """SIGTERM the child's process group (waking it if stopped), SIGKILL after `grace`."""
    if _reap(pid):
        return
    _signal_group(pid, signal.SIGTERM)
    _signal_group(pid, signal.SIGCONT)
    if await wait_exit(pid, grace):
        return
    log.warning("agent process %d ignored SIGTERM for %.1f s; killing it", pid, grace)
    _signal_group(pid, signal.SIGKILL)
    await wait_exit(pid, None)


# -- starting --------------------------------------------------------------------------------

#: Seconds the loop waits for a spawn's fork, never for its exec (see _spawn), and the
#: spawns in flight from which it does not wait at all (the worker threads may be busy).
FORK_WAIT = 0.05
FORK_WAIT_SPAWNS = 2


class _InFlight:
    """Spawns in flight in this process: counted up by the loop's thread, down by the
    worker thread that did the spawn (even if the loop is gone by then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, number: int) -> None:
        with self._lock:
            self.count += number


_in_flight = _InFlight()

#: The worker thread's `forked` event while it spawns (see _SignallingPty).
_forking = threading.local()


class _SignallingPty(ptyprocess.PtyProcess):
    """A PtyProcess that sets its spawning thread's `forked` event when it is made:
    ptyprocess makes it in the parent right after the fork, before it waits for the exec."""

    def __init__(self, pid: int, fd: int):
        super().__init__(pid, fd)
        forked = getattr(_forking, "event", None)
        if forked is not None:
            forked.set()


class _LoopSpawn(pexpect.spawn):
    """pexpect.spawn whose close() only releases the pty fd (never sleeps or signals)."""

    @property
    def input_fd(self) -> int:
        """Where the child's input is written: the pty, which it also reads from."""
        return self.child_fd

    def _spawnpty(self, args: list, **kwargs) -> ptyprocess.PtyProcess:
        return _SignallingPty.spawn(args, **kwargs)

    def close(self, force: bool = True) -> None:
        if self.closed:
            return
        try:
            self.ptyproc.fileobj.close()
        except OSError:
            pass
        self.ptyproc.fd = -1
        self.ptyproc.closed = True
        self.child_fd = -1
        self.closed = True


class _PipeSpawn(fdspawn):
    """A local agent on pipes (pcontrol.spareagent.start_on_pipes) as pexpect sees it: expect
    reads its output pipe; its input pipe is `input_fd`. close() releases both (never signals)."""

    def __init__(self, argv: Sequence[str], process: PipedProcess):
        super().__init__(process.output_fd, timeout=None, encoding=None)
        self.process = process
        self.pid = process.pid
        self.input_fd = process.input_fd
        self.name = f"<agent {argv[0]} pid {process.pid}>"

    def close(self) -> None:
        if self.closed:
            return
        self.process.close()
        self.child_fd = -1
        self.closed = True


#: A started agent command as pexpect sees it.
_Child = _LoopSpawn | _PipeSpawn


def _line_around(text: bytes, start: int, end: int) -> str:
    """The whole output line holding text[start:end], decoded, stripped."""
    line_start = max(text.rfind(b"\n", 0, start), text.rfind(b"\r", 0, start)) + 1
    ends = [i for i in (text.find(b"\n", end), text.find(b"\r", end)) if i >= 0]
    line_end = min(ends) if ends else len(text)
    return text[line_start:line_end].decode("utf-8", "replace").strip()


def _last_lines(text: bytes, count: int = 3) -> str:
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    return " | ".join(lines[-count:])


def _spawn_child(argv: Sequence[str], env: dict[str, str] | None, forked: threading.Event,
                 nice: int = 0, pipes: bool = False) -> _Child:
    """Fork and exec the agent command on a pty, or on pipes (blocking: run in a worker
    thread); sets `forked` once the process exists (or the spawn failed before it did)."""
    _forking.event = forked
    try:
        if pipes:
            process = start_on_pipes(argv, env, functools.partial(child_setup, nice, terminal=False),
                                     forked=lambda pid: forked.set())
            return _PipeSpawn(argv, process)
        return _LoopSpawn(argv[0], list(argv[1:]), timeout=None, encoding=None,
                          preexec_fn=functools.partial(child_setup, nice), env=env,
                          dimensions=DIMENSIONS)
    finally:
        _forking.event = None
        forked.set()
        _in_flight.add(-1)


async def _spawn(argv: Sequence[str], env: dict[str, str] | None, nice: int = 0,
                 pipes: bool = False) -> _Child:
    """Start the agent command; ConnectFailure (NOT_FOUND) if it cannot start.

    The parent side of a spawn waits until the child has exec'd (it reads an exec-error
    pipe): tens of milliseconds on a loaded machine, for which the loop must
    not stand still. So the spawn runs in a worker thread, and the loop waits (blocking,
    at most FORK_WAIT) only for its fork: when this returns to the loop the process
    exists, as it did when the whole spawn ran here, so a stop or a delete right after
    `host add` finds it. The pty's fd is attached to the loop afterwards, from the loop's
    own thread (expect_list with async_=True).

    That wait is skipped while other spawns are in flight (200 hosts added at once): the
    executor's threads may all be busy then, and the loop would wait for nothing.

    If we are cancelled meanwhile, the thread still finishes its spawn: we wait for it and
    end the process it started before giving up (or, cancelled again, leave that to a
    done callback)."""
    loop = asyncio.get_running_loop()
    forked = threading.Event()
    busy = _in_flight.count >= FORK_WAIT_SPAWNS
    spawning = loop.run_in_executor(None, _spawn_child, argv, env, forked, nice, pipes)
    _in_flight.add(1)
    if not busy:
        forked.wait(FORK_WAIT)
    try:
        child = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        await _end_spawn(spawning)
        raise
    except pexpect.ExceptionPexpect as exc:
        raise ConnectFailure(ConnectOutcome.NOT_FOUND,
                             f"cannot start {argv[0]!r}: {exc}") from None
    except OSError as exc:        # the exec failed (the child passes its error on)
        raise ConnectFailure(ConnectOutcome.NOT_FOUND,
                             f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    note_descriptor(max(child.child_fd, child.input_fd))  # (hundreds of hosts: more open files allowed)
    return child


async def _end_spawn(spawning: "asyncio.Future[_Child]") -> None:
    """A cancelled start: wait for the thread's spawn, then end the process it started."""
    try:
        await asyncio.shield(spawning)
    except asyncio.CancelledError:
        spawning.add_done_callback(_abandon_spawned)
        raise
    except Exception:          # it did not start: nothing to end
        return
    _abandon_spawned(spawning)


def _abandon_spawned(spawning: "asyncio.Future[_Child]") -> None:
    """End the process of a finished spawn that nobody wants any more."""
    if spawning.cancelled() or spawning.exception() is not None:
        return
    _abandon_now(spawning.result())


async def connect_agent(name: str, argv: Sequence[str], *, timeout: float,
                        env: dict[str, str] | None = None,
                        on_message: Callable[["AgentLink", agent_protocol.Message], None],
                        on_lost: Callable[["AgentLink", str], None],
                        nice: int = 0, prelude: PreHandshake | None = None,
                        pipes: bool = False, started: PipedProcess | None = None) -> "AgentLink":
    """Start the agent command and wait for its hello; raise ConnectFailure otherwise.

    `nice` (0 to 19) lowers the priority of the command (a local agent and its jobs, or
    the local ssh) and of its session's autogroup, so it does not take pcontrol's CPU.
    `prelude` answers the lines the command prints before the hello (the agent's loader);
    all of it, transfers included, within `timeout`. `pipes`: start it on pipes, not on a
    pty (a local agent: nothing on its way asks a terminal anything). `started`: the process
    of this very command, started already on pipes (pcontrol.spareagent), whose hello may be
    waiting in its output pipe."""
    if not 0 <= nice <= 19:
        raise ValueError(f"agent niceness must be 0 to 19, got {nice}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    child = _PipeSpawn(argv, started) if started is not None else await _spawn(argv, env, nice, pipes)
    outcomes: list = [outcome for outcome, _ in _PATTERNS] + [ConnectOutcome.EOF,
                                                              ConnectOutcome.TIMEOUT]
    patterns: list = [re.compile(p) for _, p in _PATTERNS] + [pexpect.EOF, pexpect.TIMEOUT]
    if prelude is not None:
        outcomes.insert(0, _PRELUDE)
        patterns.insert(0, re.compile(prelude.pattern))
    try:
        while True:
            index = await child.expect_list(patterns, async_=True,
                                            timeout=max(0.0, deadline - loop.time()))
            outcome = outcomes[index]
            if outcome is not _PRELUDE:
                break
            assert prelude is not None
            reply = prelude.answer(child.after)
            if reply.failure is not None:
                await _abandon(child)
                raise ConnectFailure(ConnectOutcome.NOT_FOUND, reply.failure)
            if reply.send:
                await _send_before_hello(child, reply.send, deadline)
    except (OSError, pexpect.ExceptionPexpect) as exc:
        outcome = ConnectOutcome.EOF
        log.debug("%s: agent start failed: %s", name, exc)
    except asyncio.TimeoutError:
        outcome = ConnectOutcome.TIMEOUT
    except asyncio.CancelledError:
        _abandon_now(child)
        raise
    before = child.before if isinstance(child.before, bytes) else b""
    if outcome is ConnectOutcome.HANDSHAKE:
        try:
            hello = agent_protocol.decode(child.after)
        except agent_protocol.ProtocolError as exc:
            await _abandon(child)
            raise ConnectFailure(ConnectOutcome.EOF,
                                 f"bad handshake from the agent: {exc.reason}") from None
        if not isinstance(hello, agent_protocol.Hello):
            await _abandon(child)
            raise ConnectFailure(ConnectOutcome.EOF, "bad handshake: not a hello message")
        if not (agent_protocol.MIN_PROTOCOL_VERSION <= hello.version
                <= agent_protocol.PROTOCOL_VERSION):
            await _abandon(child)
            raise ConnectFailure(ConnectOutcome.EOF,
                                 f"agent speaks protocol {hello.version}, pcontrol speaks "
                                 f"{agent_protocol.MIN_PROTOCOL_VERSION} to "
                                 f"{agent_protocol.PROTOCOL_VERSION}")
        if before.strip():
            log.info("%s: agent said before its hello: %s", name, _last_lines(before[-_NOISE_KEPT:]))
        link = AgentLink(name, child, hello, on_message, on_lost)
        await link.attach(loop)
        return link
    quiet = outcome in (ConnectOutcome.EOF, ConnectOutcome.TIMEOUT)
    decisive = classify(before[-_NOISE_KEPT:]) if quiet else None
    if decisive is not None:  # named by the decisive thing it said (pcontrol.sshfail)
        outcome, reason = decisive.outcome, decisive.reason
    else:
        reason = _failure_reason(outcome, child, before, timeout, argv)
    await _abandon(child)
    raise ConnectFailure(outcome, reason)


async def _send_before_hello(child: _Child, data: bytes, deadline: float) -> None:
    """Write `data` to the start's input without blocking the loop, and wait until the
    pty or pipe has taken all of it (asyncio.TimeoutError at `deadline`)."""
    loop = asyncio.get_running_loop()
    flushed: asyncio.Future = loop.create_future()

    class _Flushed(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not flushed.done():
                flushed.set_result(exc)

    pipe = os.fdopen(os.dup(child.input_fd), "wb", buffering=0)
    transport, _ = await loop.connect_write_pipe(_Flushed, pipe)
    transport.write(data)
    transport.close()          # after what is buffered is written
    try:
        error = await asyncio.wait_for(flushed, max(0.0, deadline - loop.time()))
    except asyncio.TimeoutError:
        transport.abort()
        raise
    if error is not None:
        raise OSError(f"writing to the agent's start failed: {error}")


def _failure_reason(outcome: ConnectOutcome, child: _Child, before: bytes,
                    timeout: float, argv: Sequence[str]) -> str:
    if outcome is ConnectOutcome.TIMEOUT:
        said = _last_lines(before[-_NOISE_KEPT:])
        return f"no handshake within {timeout:g} s" + (f" (output: {said})" if said else "")
    if outcome is ConnectOutcome.EOF:
        said = _last_lines(before[-_NOISE_KEPT:])
        return (f"{os.path.basename(argv[0])} exited before the handshake"
                + (f": {said}" if said else " without output"))
    after = child.after if isinstance(child.after, bytes) else b""
    rest = child.buffer if isinstance(child.buffer, bytes) else b""
    text = before[-_NOISE_KEPT:] + after + rest[:200]
    start = len(before[-_NOISE_KEPT:])
    line = _line_around(text, start, start + len(after))
    return f"{explain(outcome)}: {line}" if line else explain(outcome)


def _abandon_now(child: _Child) -> None:
    """Cancelled mid-start (pcontrol stopping): close and SIGKILL at once; SIGKILL ends the
    process promptly, so reaping it here does not hold the loop."""
    transport_pair = getattr(child, "async_pw_transport", None)
    if transport_pair:
        transport_pair[1].close()
    child.close()
    if child.pid:
        _signal_group(child.pid, signal.SIGKILL)
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass


async def _abandon(child: _Child) -> None:
    """Close a failed start's pty or pipes and end its process without blocking the loop."""
    transport_pair = getattr(child, "async_pw_transport", None)
    if transport_pair:
        transport_pair[1].close()
    child.close()
    if child.pid:
        await terminate(child.pid, grace=1.0)


# -- the live link ---------------------------------------------------------------------------

class _LineReader(asyncio.Protocol):
    """Split the agent's output into lines; bounded by the protocol's MAX_LINE."""

    def __init__(self, link: "AgentLink"):
        self._link = link
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > agent_protocol.MAX_LINE:
                    if not self._discarding:
                        self._link.line_too_long()
                    self._discarding = True
                    self._buffer.clear()
                return
            line = bytes(self._buffer[:end + 1])
            del self._buffer[:end + 1]
            if self._discarding:
                self._discarding = False
                continue
            self._link.line_received(line)

    def data_received(self, data: bytes) -> None:
        self.feed(data)

    def eof_received(self) -> bool:
        self._link.lost("the agent closed its output (EOF)")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None or (isinstance(exc, OSError) and exc.errno == errno.EIO):
            self._link.lost("the agent connection closed (EOF)")
        else:
            self._link.lost(f"the agent connection failed: {exc}")


#: Seconds a link whose writes broke waits for the agent's EOF on the read side, reading what
#: the agent wrote before it went (see AgentLink.write_failed).
WRITE_FAILED_GRACE = 1.0


class _WriteSide(asyncio.Protocol):
    def __init__(self, link: "AgentLink"):
        self._link = link

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._link.write_failed(f"writing to the agent failed: {exc}")


@dataclass
class LinkStats:
    lines_in: int = 0
    lines_out: int = 0
    bad_lines: int = 0


class AgentLink:
    """A connected agent: send messages, receive them through `on_message`."""

    def __init__(self, name: str, child: _Child, hello: agent_protocol.Hello,
                 on_message: Callable[["AgentLink", agent_protocol.Message], None],
                 on_lost: Callable[["AgentLink", str], None]):
        self.name = name
        self.hello = hello
        self.pid: int = child.pid
        self._child = child
        self._on_message = on_message
        self._on_lost = on_lost
        self._read_transport: asyncio.ReadTransport | None = None
        self._write_transport: asyncio.WriteTransport | None = None
        self._lost_reason: str | None = None
        self._closing_reason: str | None = None
        self._lost_event = asyncio.Event()
        self._write_failure: asyncio.TimerHandle | None = None
        self._turn = TurnLines(self._write_out)
        """Lines sent this loop turn, written together at its end: one write, and one wake-up
        of the agent, for the runs and acks a turn sends it."""
        self.stats = LinkStats()
        self.authed = False
        """We sent `auth`: the agent keeps its jobs for a lease if we go away."""

    @property
    def is_open(self) -> bool:
        return self._lost_reason is None

    @property
    def agent_is_child(self) -> bool:
        """The agent itself is the process we started (a local pclient, no ssh between):
        its exit is then known for sure."""
        return self.hello.pid == self.pid

    async def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take over pexpect's read transport and open a write transport on a dup of the
        child's input fd."""
        reader = _LineReader(self)
        pattern_waiter, transport = self._child.async_pw_transport
        transport.set_protocol(reader)
        read_at_most(transport)
        self._read_transport = transport
        write_file = os.fdopen(os.dup(self._child.input_fd), "wb", buffering=0)
        self._write_transport, _ = await loop.connect_write_pipe(
            lambda: _WriteSide(self), write_file)
        leftover = self._child.buffer
        if leftover:
            reader.feed(leftover)
        if self.is_open:
            transport.resume_reading()

    def send(self, message: agent_protocol.Message) -> bool:
        """Queue one message; False if the link is already closed."""
        if not self.is_open or self._write_transport is None \
                or self._write_transport.is_closing():
            return False
        self._turn.add(agent_protocol.encode(message))
        self.stats.lines_out += 1
        return True

    def _write_out(self, data: bytes) -> None:
        if self._write_transport is not None and not self._write_transport.is_closing():
            self._write_transport.write(data)

    def write_buffer_size(self) -> int:
        pending = self._turn.held_bytes()
        return pending + (self._write_transport.get_write_buffer_size() if self._write_transport else 0)

    # -- incoming ---------------------------------------------------------------------------

    def line_received(self, line: bytes) -> None:
        self.stats.lines_in += 1
        try:
            message = agent_protocol.decode(line)
        except agent_protocol.ProtocolError as exc:
            self.stats.bad_lines += 1
            log.warning("%s: ignoring a bad line from the agent (%s): %s",
                        self.name, exc.reason, exc.excerpt)
            return
        try:
            self._on_message(self, message)
        except Exception:      # a controller bug must not break the link
            log.exception("%s: handling %s failed", self.name, type(message).__name__)

    def line_too_long(self) -> None:
        self.stats.bad_lines += 1
        log.warning("%s: the agent sent a line longer than %d bytes; discarding it",
                    self.name, agent_protocol.MAX_LINE)

    # -- ending -----------------------------------------------------------------------------

    def write_failed(self, reason: str) -> None:
        """Writing broke (EPIPE: the agent is gone). What it wrote before it went may still
        be in the read pipe, its last reports among them: read on to its EOF, which is
        already there when the agent has exited, and call the link lost only if that EOF
        does not come within WRITE_FAILED_GRACE."""
        if self._lost_reason is not None or self._write_failure is not None:
            return
        if self._read_transport is None or self._read_transport.is_closing():
            self.lost(reason)
            return
        loop = asyncio.get_running_loop()
        self._write_failure = loop.call_later(WRITE_FAILED_GRACE, self.lost, reason)

    def lost(self, reason: str) -> None:
        """The connection broke (or we closed it); report once."""
        if self._lost_reason is not None:
            return
        if self._write_failure is not None:
            self._write_failure.cancel()
        self._lost_reason = self._closing_reason or reason
        self._lost_event.set()
        self._close_transports()
        try:
            self._on_lost(self, self._lost_reason)
        except Exception:
            log.exception("%s: on_lost handler failed", self.name)

    def _close_transports(self) -> None:
        self._turn.flush()      # what was sent goes as far as it went before a close
        if self._write_transport is not None and not self._write_transport.is_closing():
            self._write_transport.abort()
        if self._read_transport is not None and not self._read_transport.is_closing():
            self._read_transport.close()
        self._child.close()

    async def close(self, *, reason: str, grace: float = 3.0, polite: bool = True) -> None:
        """End the agent: `bye` first when polite, then hang up and terminate the process.

        After a bye the agent reports its jobs ended and exits; we read until its EOF so no
        report is lost, then reap it. `reason` is what on_lost will be told.
        """
        if self._closing_reason is None:
            self._closing_reason = reason
        if polite and self.is_open and self.send(agent_protocol.Bye()):
            try:
                await asyncio.wait_for(self._lost_event.wait(), grace)
            except asyncio.TimeoutError:
                log.warning("%s: the agent did not end %.1f s after bye", self.name, grace)
        self.lost(reason)
        await terminate(self.pid, grace)

    def hang_up(self, reason: str) -> None:
        """Close our end without bye or signals: an authenticated agent keeps its jobs for
        its lease, waiting for a successor. Reap the process with `wait_gone()`."""
        if self._closing_reason is None:
            self._closing_reason = reason
        self.lost(reason)

    async def wait_gone(self, timeout: float | None) -> bool:
        """Wait for the process we started to exit, and reap it; False on timeout."""
        return await wait_exit(self.pid, timeout)
