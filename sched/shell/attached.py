"""The prompt attached to a sched server, and the one-shot commands that talk to it.

    attach(one_script=None) -> exit status      `sched --attach` / `sched -c SCRIPT --attach`
    stop() -> exit status                       `sched --stop`

The attached prompt is the interactive shell (psched.repl.Shell: history, completion of the
language's commands, highlighting, multi-line blocks, the validator) whose commands run in the
server instead of here. What the server writes between commands (exit macros, its messages)
appears above the prompt. Ctrl-C while a command runs sends SIGINT to the server, which
interrupts that command only. `detach` or Ctrl-D leaves the server running; `quit` stops it,
after asking when its quit checks object (jobs still out).

A server of a pool (sched --serve --ha) may be attached to on any member: a standby carries the
commands on to the leader (psched.shell.harelay) and says when the leader changes. When the
member the prompt is attached to goes away, the prompt stays: its next command reaches another
member of the pool (the TCP addresses the server named in its hello, or `--connect A,B,C`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pcontrol.address import parse_host_port
from pcontrol.secret import SecretError, read_secret, secret_path

from ..lang.interp import Interp
from ..scheduler.eventloop import get_loop, run_until
from .repl import Shell
from .server import ServerPaths, running_pid
from .serverlink import ServerGone, ServerLink, ServerSilent
from .serverwire import Op, Output, Reply, WireError
from .session import ExitStatus, InterruptHandler, complete_commands

__all__ = ["AttachedShell", "Remote", "PoolDialer", "attach", "stop", "DETACH"]

DETACH = "detach"
"""What typed alone at an attached prompt leaves it, the server running on."""


def _print_output(output: Output) -> None:
    sys.stdout.write(output.text)   # looked up each time: above the prompt while one is shown
    sys.stdout.flush()


def _print_own_output(output: Output) -> None:
    """A one-shot command shows what its own request wrote, not the server's background chatter."""
    if output.id:
        _print_output(output)


@dataclass(frozen=True)
class Remote:
    """A server reached over TCP (`--connect HOST:PORT[,HOST:PORT...]`: the members of a pool,
    tried in turn), and the secret file to prove."""

    address: str
    secret_file: str | None = None

    @property
    def addresses(self) -> list[str]:
        return [part.strip() for part in self.address.split(",") if part.strip()]


def _read_secret(paths: ServerPaths, secret_file: str | None) -> bytes | None:
    path = Path(secret_file).expanduser() if secret_file else secret_path(paths.home)
    try:
        return read_secret(path)      # the server's own checks of it: owner-only, 32 bytes
    except FileNotFoundError:
        print(f"sched: no secret file {path}: copy the server's $SCHED_HOME/secret there (mode 600) "
              f"or name a copy with --secret-file", file=sys.stderr)
    except (SecretError, OSError) as err:
        print(f"sched: cannot use the secret file {path}: {err}", file=sys.stderr)
    return None


def _connect(paths: ServerPaths, on_output: Any = _print_output, remote: Remote | None = None,
             silence_raises: bool = False) -> ServerLink | None:
    """The link to the server, or None (why said). `silence_raises`: a local server that does
    not greet (a long macro holds its loop) raises ServerSilent, for `--stop` to act on."""
    if remote is not None:
        secret = _read_secret(paths, remote.secret_file)
        if secret is None:
            return None
        return _connect_tcp(remote.addresses, secret, on_output)
    if running_pid(paths) is None:
        print(f"sched: no server runs in {paths.home} (start one with: sched --serve FILE...)",
              file=sys.stderr)
        return None
    try:
        return run_until(ServerLink.connect(paths.socket, on_output), "attaching", interruptible=False)
    except (OSError, ServerGone, WireError) as err:
        if silence_raises and isinstance(err, ServerSilent):
            raise
        busy = f" (is it busy in a long macro? its log, {paths.log}, says)" if isinstance(err, ServerSilent) else ""
        print(f"sched: cannot attach to the server in {paths.home}: {err}{busy}", file=sys.stderr)
        return None


def _connect_tcp(addresses: list[str], secret: bytes, on_output: Any) -> ServerLink | None:
    """The first of `addresses` that lets us in; each failure said."""
    for text in addresses:
        try:
            address = parse_host_port(text)
        except ValueError as err:
            print(f"sched: --connect {text}: {err}", file=sys.stderr)
            continue
        try:
            return run_until(ServerLink.connect_tcp(address, secret, on_output), "attaching", interruptible=False)
        except (OSError, asyncio.TimeoutError) as err:
            print(f"sched: no server listens on TCP {text}: {getattr(err, 'strerror', None) or err or 'no answer'}",
                  file=sys.stderr)
        except (ServerGone, WireError) as err:
            print(f"sched: cannot attach to the server at {text}: {err}", file=sys.stderr)
    return None


class PoolDialer:
    """Where an attached prompt goes when its server is gone: the other members of its pool
    (sched --serve --ha), over TCP with the pool's secret (every member holds the same one).
    A standby carries the prompt's commands on to the leader (psched.shell.harelay), so any
    member that answers will do."""

    def __init__(self, paths: ServerPaths, remote: Remote | None):
        self.paths = paths
        self.remote = remote
        self.secret: bytes | None = None
        self.known: list[str] = list(remote.addresses) if remote is not None else []

    def learn(self, link: ServerLink) -> None:
        """The members the server named in its hello (the newest list first)."""
        self.known = list(dict.fromkeys([*link.hello.pool, *self.known]))

    def others(self, link: ServerLink) -> list[str]:
        """The members to try once `link` is gone: the one it reached goes last (it may be back)."""
        return [a for a in self.known if a != link.where] + ([link.where] if link.where in self.known else [])

    def dial(self, link: ServerLink, on_output: Any) -> ServerLink | None:
        if self.secret is None:
            self.secret = _read_secret(self.paths, self.remote.secret_file if self.remote else None)
            if self.secret is None:
                return None
        found = _connect_tcp(self.others(link), self.secret, on_output)
        if found is not None:
            self.learn(found)
        return found


def call(link: ServerLink, op: Op, script: str = "", force: bool = False, line: int = 1) -> Reply:
    """One request, waited for with the loop running; Ctrl-C meanwhile interrupts it in the server."""
    loop = get_loop()
    loop.add_signal_handler(signal.SIGINT, link.interrupt)
    try:
        return run_until(link.request(op, script, force, line), "waiting for the server", interruptible=False)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _greeting(link: ServerLink) -> str:
    where = f" at {link.where}" if link.where else ""
    text = f"attached to the server in {link.home}{where} (pid {link.pid})"
    hello = link.hello
    if hello.standby:
        text += f", a standby of its pool: commands go on to the leader ({hello.leader or 'none seen yet'})"
    elif hello.member:
        text += f", the leader of its pool ({hello.leader})"
    return text


class AttachedShell(Shell):
    """The interactive shell whose commands run in the server. A member of a pool that goes away
    leaves the prompt on: its next command goes to another member (PoolDialer)."""

    def __init__(self, link: ServerLink, interrupts: InterruptHandler, dialer: PoolDialer | None = None,
                 **kwargs: Any):
        super().__init__(interrupts.interp, interrupts, **kwargs)
        self.dialer = dialer
        self.link = link
        self._follow(link)

    def _follow(self, link: ServerLink) -> None:
        self.link = link
        if self.dialer is not None:
            self.dialer.learn(link)
        link.gone.add_done_callback(lambda gone: self._server_gone(link, gone.result()))

    def _can_redial(self, link: ServerLink) -> bool:
        return self.dialer is not None and bool(self.dialer.others(link))

    def _server_gone(self, link: ServerLink, reason: str) -> None:
        if link is not self.link:
            return
        if self._can_redial(link):
            assert self.dialer is not None
            print(f"sched: the server{' at ' + link.where if link.where else ''} (pid {link.pid}) has gone "
                  f"({reason}); your next command goes to the leader through another member of the pool "
                  f"({', '.join(self.dialer.others(link))})", file=sys.stderr)
            return
        app = self.session.app
        if app.is_running:
            app.exit(exception=EOFError())

    def _redial(self) -> bool:
        """The server is gone: reach another member of the pool; False when none answers."""
        old = self.link
        assert self.dialer is not None
        link = self.dialer.dial(old, _print_output)
        if link is None:
            print("sched: no member of the pool answers; try again, or `detach`", file=sys.stderr)
            return False
        old.close()
        self._follow(link)
        print(f"sched: {_greeting(link)}", file=sys.stderr)
        return True

    def execute(self, text: str) -> int | None:
        if not text.strip():
            return None
        if text.strip() == DETACH:
            return ExitStatus.OK
        if self.link.gone.done() and self._can_redial(self.link) and not self._redial():
            return None
        try:
            reply = call(self.link, Op.EVAL, text)
            if reply.vetoes and self.ask(f"{'; '.join(reply.vetoes)}: really stop the server?"):
                reply = call(self.link, Op.QUIT, force=True)
        except ServerGone as err:
            print(f"sched: {err}", file=sys.stderr)
            return None if self._can_redial(self.link) else ExitStatus.SCRIPT_FAILED
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
           remote: Remote | None = None, commands: TextIO | None = None) -> int:
    """`sched --attach` (the prompt) or `sched -c SCRIPT --attach` (one script); over TCP with
    `remote`. `commands`: a stream that is not a terminal (`echo status | sched --attach`, cron),
    whose commands run in the server one by one, each as soon as it is complete, as a `-c`
    script does: only their own output, no prompt, and the first error ends it (status 1)."""
    paths = ServerPaths.for_home()
    link = _connect(paths, _print_output if one_script is None and commands is None else _print_own_output, remote)
    if link is None:
        return ExitStatus.SCRIPT_FAILED
    try:
        if one_script is not None:
            status = _run_one(link, one_script)
            return ExitStatus.OK if status is None else status
        if commands is not None:
            return _run_commands(link, commands)
        interrupts = InterruptHandler(Interp(), idle_raises=False)
        with interrupts.installed():
            print(f"sched: {_greeting(link)}; `{DETACH}` or Ctrl-D leaves it running", file=sys.stderr)
            shell = AttachedShell(link, interrupts, PoolDialer(paths, remote), input=input, output=output)
            try:
                return shell.run()
            finally:
                link = shell.link
    finally:
        link.close()


def _run_one(link: ServerLink, script: str, line: int = 1) -> int | None:
    """Run `script` (its first line: `line`) in the server, its result printed; None, or the
    status to leave with (an error: 1; a `quit` in it: its status)."""
    try:
        reply = call(link, Op.EVAL, script, line=line)
    except ServerGone as err:
        print(f"sched: {err}", file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    if not reply.ok:
        print(reply.text, file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    if reply.leaving:
        return reply.status if reply.status is not None else ExitStatus.OK
    if reply.text:
        print(reply.text)
    return None


def _run_commands(link: ServerLink, commands: TextIO) -> int:
    """The commands of `commands`, each run as soon as it is complete (`_run_one`); `detach`
    alone on a line ends them."""
    for text, line in complete_commands(commands):
        if text.strip() == DETACH:
            break
        if text.strip() and (status := _run_one(link, text, line)) is not None:
            return status
    return ExitStatus.OK


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


def _stop_by_signal(paths: ServerPaths, silence: ServerSilent) -> int:
    """`sched --stop` of a local server that does not answer (a long macro holds its loop):
    SIGTERM, which stops it the same way (psched.shell.stopsignals: the macro is interrupted
    after its grace); wait until it is gone."""
    pid = running_pid(paths)
    if pid is None:
        print(f"sched: the server in {paths.home} has stopped meanwhile", file=sys.stderr)
        return ExitStatus.OK
    ended = _process_end(pid)
    print(f"sched: the server (pid {pid}) does not answer ({silence}): sending it SIGTERM", file=sys.stderr)
    try:
        os.kill(pid, signal.SIGTERM)
        run_until(asyncio.wait_for(ended, 120), "stopping", interruptible=False)
    except ProcessLookupError:
        pass
    except asyncio.TimeoutError:
        print(f"sched: stopping the server: pid {pid} still runs 120 s after SIGTERM", file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    print(f"sched: server stopped (pid {pid})", file=sys.stderr)
    return ExitStatus.OK


def stop(remote: Remote | None = None) -> int:
    """`sched --stop`: stop the server as `quit -force` does, and wait until it is gone (over
    TCP: until it closes the connection)."""
    paths = ServerPaths.for_home()
    try:
        link = _connect(paths, _print_own_output, remote, silence_raises=True)
    except ServerSilent as err:  # a macro holds its loop: what the request would do, by signal
        return _stop_by_signal(paths, err)
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
