"""The scheduler as a server: `sched --serve FILE...` runs headless, and prompts attach to it.

    sched --serve FILE...               start a server in the background; returns once it is ready
    sched --serve --foreground FILE...  the same in this process (systemd's Type=simple)
    sched --attach                      the prompt on the server (psched.shell.attached)
    sched -c SCRIPT --attach            one script on the server; its status is ours
    sched --stop                        stop the server, as `quit -force` would

Its files are in $SCHED_HOME: `sched.sock` (an owner-only Unix socket: mode 0600 and the peer's
uid checked with SO_PEERCRED, as pcontrol does), `sched.pid` and `sched.log`. With `--listen
HOST:PORT` prompts may also attach over TCP after pcontrol's challenge-response
(psched.shell.serverauth).

The files are loaded through psched.scheduler.reload, and loaded again (`reload`) when a prompt
says `reload`, on SIGHUP (which also reopens the log) and when the flag file $SCHED_HOME/reload
appears (looked for every FLAG_CHECK seconds; removed once the reload is done). SIGHUP and the
flag file queue the reload as a request of nobody's: its answer goes to every prompt and the log.

The server is the interactive shell without a terminal. The one loop (psched.scheduler.eventloop) runs
while it waits for the next request, as the prompt's loop runs while it waits for a key, so the
scheduler does its work between requests; a request is evaluated with the loop stopped, exactly
as a typed command is. Requests from several prompts are served one at a time, in order.

What the interpreter writes goes to the log and to the prompt whose request is running; what it
writes between requests (exit macros, the scheduler's messages) goes to every attached prompt.
Ctrl-C at a prompt is SIGINT to the server, which interrupts the running request only (while
idle the server ignores SIGINT; while the loop runs a macro, SIGINT interrupts that macro:
psched.shell.longcode). SIGTERM and `sched --stop` end it the way `quit -force` does;
`quit` at a prompt asks the quit checks first and the prompt's user confirms.

A server of a pool (`--ha`, psched.shell.ha) listens from the start; while it stands by, its
prompts' requests go on to the leader (psched.shell.harelay, psched.shell.hapool) and only
`sched --stop` is its own.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from pclient.logfile import RotatingLog, parse_size
from pcontrol.address import format_address, parse_host_port
from pcontrol.auth import owner_refusal, peer_uid
from pcontrol.secret import SecretError, load_or_create_secret

from ..lang.errors import SchedError
from ..scheduler.attach import scheduler_of
from ..scheduler.eventloop import get_loop, leave_soon, run_until
from ..scheduler.reload import load_files
from .hapool import join_pool, pool_secret
from .paths import sched_home
from .session import ExitStatus, InterruptHandler, QuitRequest, quit_vetoes
from .serverauth import admit
from .serverwire import (MAX_REQUEST_LINE, Hello, Op, Output, Reply, Request, WireError, decode_request,
                         encode)

log = logging.getLogger(__name__)

__all__ = ["ServerPaths", "Server", "ServerOutput", "launch", "serve", "running_pid", "READY_FD_ENV",
           "INPUT_FILE"]

READY_FD_ENV = "PSCHED_SERVE_READY_FD"
"""The pipe on which a server started by `launch` says it is ready (or why it is not)."""

INPUT_FILE = "<input>"
"""The file name errors give for commands sent by an attached prompt (the same as the prompt's)."""

RELOAD_SCRIPT = "reload"
"""What the server runs when SIGHUP or the flag file asks for a reload."""

FLAG_CHECK = 1.0
"""Seconds between two looks for the flag file $SCHED_HOME/reload (one stat: nothing to save)."""

#: Bytes of output a prompt may leave unread before the server drops it (a stuck terminal
#: must not make the server hold the output of months).
MAX_UNREAD = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServerPaths:
    """The server's files in one $SCHED_HOME."""

    home: Path

    @classmethod
    def for_home(cls, home: Path | None = None) -> "ServerPaths":
        return cls(home if home is not None else sched_home())

    @property
    def socket(self) -> Path:
        return self.home / "sched.sock"

    @property
    def pidfile(self) -> Path:
        return self.home / "sched.pid"

    @property
    def log(self) -> Path:
        return self.home / "sched.log"

    @property
    def reload_flag(self) -> Path:
        return self.home / "reload"


def running_pid(paths: ServerPaths) -> int | None:
    """The pid of the server that answers on the socket, or None when none does."""
    try:
        pid = int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(paths.socket))
        except OSError:
            return None
    return pid


class Standby(Protocol):
    """While a server of a pool stands by, where its prompts' requests go (psched.shell.harelay)."""

    def attached(self, prompt: Any) -> None: ...

    def forward(self, prompt: Any, request: Request) -> None: ...

    def drop(self, prompt: Any) -> None: ...


class PoolGreeting(Protocol):
    """A server of a pool says in each hello who it is in the pool (psched.shell.hapool.PoolView)."""

    def hello_fields(self, standby: bool) -> dict[str, Any]: ...


# --- the attached prompts and where output goes ---------------------------------------------------------


class _Prompt:
    """One attached prompt's connection, as the server writes to it."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.gone = False
        self.signals = False        # on this machine: its Ctrl-C is a signal as well as a message
        self.queued = 0             # its requests waiting for the server
        self.interrupted = False    # Ctrl-C came while one waited: that one is not run

    def send(self, message: Hello | Output | Reply) -> None:
        if self.gone:
            return
        transport = self.writer.transport
        if transport.is_closing():
            self.gone = True
            return
        if transport.get_write_buffer_size() > MAX_UNREAD:
            log.warning("an attached prompt reads nothing: it is dropped")
            self.close()
            return
        self.writer.write(encode(message))

    def close(self) -> None:
        self.gone = True
        self.writer.close()


class ServerOutput(io.TextIOBase):
    """The interpreter's stdout in a server: the log, and the prompts (see the module docstring)."""

    def __init__(self, server: "Server", log_stream: TextIO, rotating: RotatingLog | None = None):
        super().__init__()
        self._server = server
        self._log = log_stream
        self._rotating = rotating

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        try:
            self._log.write(text)
            self._log.flush()
            if self._rotating is not None:
                self._rotating.check()
        except (OSError, ValueError):
            pass
        self._server.publish(text)
        return len(text)

    def flush(self) -> None:
        try:
            self._log.flush()
        except (OSError, ValueError):
            pass


# --- the server ----------------------------------------------------------------------------------------


class Server:
    """Listens on the socket and serves the attached prompts' requests one at a time."""

    def __init__(self, interp: Any, interrupts: InterruptHandler, paths: ServerPaths,
                 log_file: RotatingLog | None = None, tcp: tuple[str, int] | None = None,
                 secret: bytes | None = None):
        if tcp is not None and not secret:
            raise ValueError("a TCP listener needs the secret")
        self.interp = interp
        self.tcp = tcp
        self.secret = secret
        self.tcp_addresses: list[tuple[str, int]] = []
        self._tcp_listener: asyncio.AbstractServer | None = None
        self.log_file = log_file
        self.interrupts = interrupts
        self.paths = paths
        self.prompts: set[_Prompt] = set()
        self.current: _Prompt | None = None     # whose request is running
        self.current_id = 0
        self._requests: asyncio.Queue[tuple[_Prompt | None, Request]] = asyncio.Queue()
        self._listener: asyncio.AbstractServer | None = None
        self._flag_check: asyncio.TimerHandle | None = None
        self._flag_seen = False     # the flag file's reload is queued or running
        self._reload_reasons: list[str] = []     # who asked for the reloads queued
        self.relay: Standby | None = None
        """A server of a pool: where its prompts' requests go while it stands by."""
        self.standing_by = False
        self.pool: PoolGreeting | None = None

    # -- output ---------------------------------------------------------------------------------------

    def publish(self, text: str) -> None:
        if not text:
            return
        message = Output(text, self.current_id)
        targets = [self.current] if self.current is not None else list(self.prompts)
        for prompt in targets:
            prompt.send(message)

    # -- the socket -----------------------------------------------------------------------------------

    async def listen(self) -> None:
        path = self.paths.socket
        if path.exists() or path.is_symlink():
            path.unlink()               # left by a server that was killed: running_pid said none answers
        self._listener = await asyncio.start_unix_server(self._serve_prompt, path=str(path),
                                                         limit=MAX_REQUEST_LINE)
        os.chmod(path, 0o600)
        if self.tcp is not None:
            self._tcp_listener = await asyncio.start_server(self._serve_tcp_prompt, *self.tcp,
                                                            limit=MAX_REQUEST_LINE)
            self.tcp_addresses = [sock.getsockname()[:2] for sock in self._tcp_listener.sockets]
        # SIGTERM is the CLI's (psched.shell.stopsignals): it ends the server as `quit -force`;
        # SIGHUP, which would do the same, reopens the log and reloads here (as nginx does)
        loop = get_loop()
        loop.add_signal_handler(signal.SIGHUP, self._hang_up)
        self._flag_check = loop.call_later(FLAG_CHECK, self._check_flag)

    def _hang_up(self) -> None:
        if self.log_file is not None:
            self.log_file.reopen()
            log.info("SIGHUP: log reopened")
        self._queue_reload("SIGHUP")

    def _check_flag(self) -> None:
        """The flag file $SCHED_HOME/reload asks for a reload; it is removed once done."""
        if self.paths.reload_flag.exists() and not self._flag_seen:
            self._flag_seen = True
            self._queue_reload(f"the flag file {self.paths.reload_flag}")
        self._flag_check = get_loop().call_later(FLAG_CHECK, self._check_flag)

    def _queue_reload(self, why: str) -> None:
        self._reload_reasons.append(why)
        self._requests.put_nowait((None, Request(0, Op.EVAL, RELOAD_SCRIPT)))

    def _reloaded(self, reply: Reply) -> None:
        """A reload asked by a signal or the flag file is done: say how it went to every prompt
        and the log, and remove the flag file."""
        why = self._reload_reasons.pop(0) if self._reload_reasons else "?"
        self.publish_line(f"sched: {time.strftime('%Y-%m-%d %H:%M:%S')} {why}: {reply.text}")
        if self._flag_seen:
            self._flag_seen = False
            try:
                self.paths.reload_flag.unlink()
            except FileNotFoundError:
                pass

    def publish_line(self, text: str) -> None:
        self.interp.stdout.write(text + "\n")
        self.interp.stdout.flush()

    async def _serve_prompt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refusal = owner_refusal(peer_uid(writer), os.geteuid())
        if refusal is not None:
            self._refuse(writer, refusal)
            return
        # the client signals a server on its machine that is not in a pool (serverlink.interrupt)
        await self._serve_admitted(reader, writer, signals=self.pool is None)

    async def _serve_tcp_prompt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.secret is not None
        refusal = await admit(reader, writer, self.secret)
        if refusal is not None:
            self._refuse(writer, f"{refusal}; closing", writer.get_extra_info("peername"))
            return
        await self._serve_admitted(reader, writer)

    @staticmethod
    def _refuse(writer: asyncio.StreamWriter, refusal: str, peer: Any = None) -> None:
        log.warning("refused a prompt%s: %s", f" from {peer}" if peer else "", refusal)
        writer.write(encode(Reply(0, False, refusal)))
        writer.close()

    async def _serve_admitted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              signals: bool = False) -> None:
        prompt = _Prompt(writer)
        prompt.signals = signals
        self.prompts.add(prompt)
        fields = self.pool.hello_fields(self.standing_by) if self.pool is not None else {}
        prompt.send(Hello(pid=os.getpid(), home=str(self.paths.home), **fields))
        if self.standing_by and self.relay is not None:
            self.relay.attached(prompt)
        try:
            while not prompt.gone:
                try:
                    line = await reader.readline()
                except ValueError:      # longer than MAX_REQUEST_LINE
                    prompt.send(Reply(0, False, f"request longer than {MAX_REQUEST_LINE} bytes"))
                    break
                if not line:
                    break
                try:
                    request = decode_request(line)
                except WireError as err:
                    prompt.send(Reply(0, False, f"malformed request: {err}"))
                    continue
                if self.standing_by and request.op is Op.STOP:
                    self._stop_standby(prompt, request)
                    continue
                if self.standing_by and self.relay is not None:
                    self.relay.forward(prompt, request)     # to the leader, in order
                    continue
                if request.op is Op.INTERRUPT:
                    # read while the loop runs, so while the request waits (`wait`): Ctrl-C for it
                    if self.current is prompt:
                        if not prompt.signals:
                            os.kill(os.getpid(), signal.SIGINT)
                    elif prompt.queued:     # sent right after its request: before it began
                        prompt.interrupted = True
                    continue
                prompt.queued += 1
                self._requests.put_nowait((prompt, request))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self.relay is not None:
                self.relay.drop(prompt)
            self.prompts.discard(prompt)
            if self.current is prompt:
                self.current = None
            prompt.close()

    @staticmethod
    def _stop_standby(prompt: _Prompt, request: Request) -> None:
        """`sched --stop` stops a standby (its prompts' other requests go to the leader)."""
        prompt.send(Reply(request.id, True, "stopping", leaving=True, status=ExitStatus.OK))
        leave_soon(QuitRequest(ExitStatus.OK, force=True))

    def serve_later(self, prompt: Any, request: Request) -> None:
        """A request this server serves once it is ready (a standby's relay, once it leads)."""
        prompt.queued += 1
        self._requests.put_nowait((prompt, request))

    # -- serving ----------------------------------------------------------------------------------------

    def serve_forever(self) -> int:
        """Serve requests until one stops the server; returns the exit status."""
        while True:
            prompt, request = run_until(self._requests.get(), "serving", interruptible=False)
            if prompt is not None:
                prompt.queued -= 1
                if prompt.gone:
                    continue
                if prompt.interrupted:
                    prompt.interrupted = False
                    prompt.send(Reply(request.id, False, "interrupted"))
                    continue
            status = self.handle(prompt, request)
            if status is not None:
                return status

    def handle(self, prompt: _Prompt | None, request: Request) -> int | None:
        """Carry out one request; the exit status when the server is to stop."""
        def answer(reply: Reply) -> None:
            if prompt is not None:
                prompt.send(reply)
            elif request.script == RELOAD_SCRIPT:
                self._reloaded(reply)

        if request.op is Op.STOP or (request.op is Op.QUIT and request.force):
            answer(Reply(request.id, True, "stopping", leaving=True, status=ExitStatus.OK))
            return ExitStatus.OK
        if request.op is Op.QUIT:
            return self._quit(request, answer, ExitStatus.OK)
        self.current, self.current_id = prompt, request.id
        self.interp.interactive = True
        try:
            with self.interrupts.running():
                result = self.interp.eval(request.script, INPUT_FILE, request.line)
        except SchedError as err:
            answer(Reply(request.id, False, err.render()))
            return None
        except KeyboardInterrupt:
            answer(Reply(request.id, False, "interrupted"))
            return None
        except QuitRequest as quit_request:
            if quit_request.force:
                answer(Reply(request.id, True, "stopping", leaving=True, status=quit_request.status))
                return quit_request.status
            return self._quit(request, answer, quit_request.status)
        finally:
            self.interp.interactive = False
            self.current, self.current_id = None, 0
            self.interp.stdout.flush()
        answer(Reply(request.id, True, result))
        return None

    def _quit(self, request: Request, answer: Any, status: int) -> int | None:
        reasons = quit_vetoes(self.interp)
        if reasons:
            answer(Reply(request.id, False, "not stopping the server: " + "; ".join(reasons),
                         vetoes=tuple(reasons)))
            return None
        answer(Reply(request.id, True, "stopping", leaving=True, status=status))
        return status

    def close(self) -> None:
        """Stop listening, say goodbye to the prompts (their connections close) and remove the files."""
        loop = get_loop()
        try:
            loop.remove_signal_handler(signal.SIGHUP)
        except (ValueError, RuntimeError):
            pass
        if self._flag_check is not None:
            self._flag_check.cancel()
        for listener in (self._listener, self._tcp_listener):
            if listener is not None:
                listener.close()
        for prompt in list(self.prompts):
            prompt.close()
        if not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(asyncio.sleep(0))   # let the last replies and closes go out
        for path in (self.paths.socket, self.paths.pidfile):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


# --- starting one --------------------------------------------------------------------------------------


def serve(interp: Any, files: list[str], interrupts: InterruptHandler, *, log_path: str | None = None,
          log_max_bytes: str = "10M", log_keep: int = 5, listen: str | None = None, ha: Any = None) -> int:
    """`sched --serve --foreground FILE...`: run the files, then serve until stopped.

    With `log_path`, logging and the interpreter's output go to that file, rotated by size.
    With `listen` (HOST:PORT, port 0: any free one) prompts may also attach over TCP, proving
    the secret of $SCHED_HOME (psched.shell.serverauth). With `ha` (psched.shell.ha.HAServer),
    the files run only once this server leads its pool; until then it answers as a standby."""
    paths = ServerPaths.for_home()
    ready_fd = _ready_fd()
    other = running_pid(paths)
    if other is not None:
        return _not_ready(ready_fd, f"sched: a server already runs in {paths.home} (pid {other})")
    tcp = secret = None
    if listen is not None:
        try:
            tcp = parse_host_port(listen, lowest_port=0)
            secret = load_or_create_secret(paths.home)
        except (ValueError, OSError, SecretError) as err:
            return _not_ready(ready_fd, f"sched: --listen {listen}: {err}")
    log_file = None
    if log_path is not None:
        try:
            log_file = RotatingLog(log_path, parse_size(log_max_bytes), log_keep, follow_fds=(1, 2))
        except (OSError, ValueError) as err:
            return _not_ready(ready_fd, f"sched: cannot log to {log_path}: {err}")
        logging.getLogger().addHandler(log_file)
        log_file.setFormatter(logging.Formatter("%(asctime)s sched: %(levelname)s: %(name)s: %(message)s"))
        for handler in list(logging.getLogger().handlers):
            if handler is not log_file:
                logging.getLogger().removeHandler(handler)
    server = Server(interp, interrupts, paths, log_file, tcp, secret)
    interp.stdout = ServerOutput(server, sys.stdout, log_file)
    # The scheduler's own messages (a job that timed out, a host lost) go where exit macros'
    # output goes: every attached prompt and the log, not only the log (its stderr).
    scheduler_of(interp).on_message = lambda text: server.publish_line(f"sched: {text}")
    if ha is not None:
        try:
            _stand_by(server, ha, interp, ready_fd)
        except OSError as err:
            return _not_ready(ready_fd, f"sched: cannot listen: {err.strerror or err}")
        ready_fd = None
    try:
        with interrupts.running():
            load_files(interp, [os.path.abspath(f) for f in files])  # first runs spread: psched.scheduler.reload
    except SchedError as err:
        return _not_ready(ready_fd, err.render())
    except QuitRequest as request:
        return request.status
    if ha is not None:
        ha.take_over(interp)    # listening since it stood by
    else:
        try:
            run_until(server.listen(), "listening", interruptible=False)
        except OSError as err:
            return _not_ready(ready_fd, f"sched: cannot listen: {err.strerror or err}")
    try:
        paths.pidfile.write_text(f"{os.getpid()}\n")
        tcp_text = "".join(f"; on TCP {format_address(*a)}" for a in server.tcp_addresses)
        log.warning("serving %s in %s (pid %d)%s", " ".join(files) or "no files", paths.home, os.getpid(), tcp_text)
        if ready_fd is not None:
            os.write(ready_fd, f"ready{tcp_text}\n".encode())
            os.close(ready_fd)
        return server.serve_forever()
    finally:
        server.close()


def _stand_by(server: Server, ha: Any, interp: Any, ready_fd: int | None) -> None:
    """A server of a pool listens at once, carrying its prompts' requests on to the leader
    (psched.shell.harelay), until it leads; it says where it listens in the pool's list of
    members (psched.scheduler.hamembers) until it stops."""
    server.standing_by = True
    run_until(server.listen(), "listening", interruptible=False)   # OSError: the caller says so
    view, relay = join_pool(ha, interp, server.tcp_addresses,
                            lambda: server.secret or pool_secret(server.paths.home), server.serve_later)
    server.pool, server.relay = view, relay
    server.paths.pidfile.write_text(f"{os.getpid()}\n")
    if ready_fd is not None:  # `sched --serve` returns: this one stands by
        os.write(ready_fd, b"standby\n")
        os.close(ready_fd)
    try:
        lead = ha.stand_by(interp)
    except BaseException:
        server.close()
        raise
    server.standing_by = False
    relay.leading(view.leader_text() or lead.describe())


def _ready_fd() -> int | None:
    text = os.environ.pop(READY_FD_ENV, "")
    return int(text) if text.isdigit() else None


def _not_ready(ready_fd: int | None, message: str) -> int:
    print(message, file=sys.stderr)
    if ready_fd is not None:
        os.write(ready_fd, b"error\n" + message.encode("utf-8", "replace") + b"\n")
        os.close(ready_fd)
    return ExitStatus.SCRIPT_FAILED


def launch(files: list[str], log_options: list[str] = (), ha_options: list[str] = (),
           arguments: list[str] | None = None) -> int:
    """`sched --serve FILE... [-- ARG...]`: start the server in the background and return once it
    is ready. The server's working directory is ours: it reads the files as given, and its
    $argv0 is the first of them as given (psched.lang.scriptargs)."""
    paths = ServerPaths.for_home()
    other = running_pid(paths)
    if other is not None:
        print(f"sched: a server already runs in {paths.home} (pid {other}); "
              f"attach with: sched --attach", file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    read_end, write_end = os.pipe()
    env = dict(os.environ, **{READY_FD_ENV: str(write_end)})
    argv = [sys.executable, "-m", "psched", "--serve", "--foreground", "--log", str(paths.log), *log_options,
            *ha_options, *[f if not f.startswith("-") else os.path.join(".", f) for f in files],  # (`--args -f`)
            *([] if arguments is None else ["--", *arguments])]
    with open(paths.log, "ab") as log_file:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                 pass_fds=(write_end,), env=env, start_new_session=True)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        said = ready.read().decode("utf-8", "replace")
    if said.startswith("standby"):
        print(f"sched: standing by in its pool (pid {child.pid}): it runs {' '.join(files) or 'no files'} and "
              f"serves once it leads; log {paths.log}", file=sys.stderr)
        return ExitStatus.OK
    if said.startswith("ready"):
        tcp_text = said[len("ready"):].strip()
        print(f"sched: serving {' '.join(files) or 'no files'} in {paths.home} (pid {child.pid}){tcp_text}; "
              f"log {paths.log}; attach with: sched --attach", file=sys.stderr)
        return ExitStatus.OK
    status = child.wait()
    reason = said.partition("\n")[2].strip() or f"it exited with status {status}; see {paths.log}"
    print(f"sched: the server did not start: {reason}", file=sys.stderr)
    return ExitStatus.SCRIPT_FAILED
