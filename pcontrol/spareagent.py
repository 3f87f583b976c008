"""A local agent started ahead of need (issue 13), and how a local agent is started: on pipes.

A sched that starts pcontrol itself for its jobs (sched.scheduler.remote) is about to add
`localhost`, whose agent is a local `python -m pclient`: a Python start of its own (~100 ms
of CPU) that would otherwise begin only after pcontrol is ready and the host is added. So
that sched runs `pcontrol serve --spare-local-agent SLOTS`, and `python -m pcontrol` starts
that agent first thing (pcontrol/__main__.py), before its own imports, on pipes exactly as
pcontrol.agentlink starts a local agent: the two start-ups run side by side, and the agent's
hello waits in its output pipe until the host is connected.

    spare = spare_from_argv(sys.argv[1:])     # pcontrol/__main__, before the daemon's imports
    process = spare.take(argv, nice)          # pcontrol.hosts, connecting a local host: the
                                              # spare if it is what that start would run, or None
    pid = spare.discard()                     # not taken (pcontrol.hosts: at the first local
                                              # start, at stop, or after KEEP): end and reap pid

Nothing else changes: the host is added as before (by sched's `host add localhost`, or
from the journal), and the spare is only the process that host's first start would have
made. It is offered to the first local start only; a different command, niceness or a
dead spare is discarded and that start spawns its own. An unclaimed spare is ended after
KEEP seconds. It never got `auth`, so a pcontrol killed -9 leaves it nothing to keep: it
gets EOF on its input and exits.

A local agent runs on two pipes (`start_on_pipes`), not on a pseudo-terminal as an ssh
start does (pcontrol.agentlink): nothing between pcontrol and a local pclient asks a
terminal anything, and a pty's every write goes through the tty layer and a kernel worker
(flush_to_ldisc) before the agent wakes (figure 2 of issue 13: pcontrol.agentlink). Its
stdout and stderr share one pipe, as they share the pty: what a start prints before its
hello (a Python traceback) still explains a failed start.

Light on purpose (os, sys and, for a pty start, tty): it runs before the daemon's imports.
"""

from __future__ import annotations

import functools
import os
import sys
import tty
from collections.abc import Callable, Sequence

__all__ = ["OPTION", "LOCAL_AGENT", "DAEMON_UMASK", "KEEP", "DIMENSIONS", "PipedProcess", "SpareAgent",
           "spare_from_argv", "child_setup", "local_agent_argv", "start_on_pipes"]

#: The `pcontrol serve` option that asks for a spare (its value: the agent's --slots).
OPTION = "--spare-local-agent"
#: The command of a local agent (pcontrol.config.ControllerConfig.local_agent's default).
LOCAL_AGENT: tuple[str, ...] = (sys.executable, "-m", "pclient")
#: The daemon's umask (pcontrol.daemon.serve sets it), which its agents inherit.
DAEMON_UMASK = 0o077
#: Seconds an unclaimed spare is kept.
KEEP = 30.0
#: The pty's size for an agent start on a pty (rows, columns).
DIMENSIONS = (24, 200)


def local_agent_argv(slots: int | None, command: Sequence[str] = LOCAL_AGENT) -> list[str]:
    """The command line of a local agent with `slots` (pcontrol.hosts.HostTable.agent_argv)."""
    return list(command) + (["--slots", str(slots)] if slots else [])


def _raw_terminal() -> None:
    tty.setraw(0)


def child_setup(nice: int, terminal: bool = True) -> None:
    """preexec_fn of an agent start: raw mode (on a pty: `terminal`), then niceness `nice` for
    the child and for its autogroup.

    The child is a session of its own, and Linux's autogroup scheduling shares
    the CPU between sessions before it looks at a process's niceness: so the session's
    autogroup gets the niceness too, else 200 local agents would each weigh as much as
    pcontrol. Either may be refused (no autogroups, no permission): the agent then runs
    as it would have."""
    if terminal:
        _raw_terminal()
    if nice:
        try:
            with open("/proc/self/autogroup", "w", encoding="ascii") as autogroup:
                autogroup.write(str(nice))
        except OSError:
            pass
        try:
            os.nice(nice)
        except OSError:
            pass


def _spare_setup(nice: int) -> None:
    """preexec_fn of the spare: what the daemon's own start would have given it (its umask,
    set by serve after the spare is made), then the usual agent start."""
    os.umask(DAEMON_UMASK)
    child_setup(nice, terminal=False)


class PipedProcess:
    """An agent started on pipes (start_on_pipes): its pid, and our ends of its input and of
    its output (stdout and stderr both)."""

    def __init__(self, pid: int, output_fd: int, input_fd: int):
        self.pid = pid
        self.output_fd = output_fd
        self.input_fd = input_fd

    def isalive(self) -> bool:
        """Not exited (reaps it if it has)."""
        try:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return done != self.pid

    def close(self) -> None:
        """Let go of both pipes (once): the agent sees EOF on its input."""
        for fd in (self.output_fd, self.input_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.output_fd = self.input_fd = -1


def start_on_pipes(argv: Sequence[str], env: dict[str, str] | None = None,
                   preexec: Callable[[], None] | None = None,
                   forked: Callable[[int], None] | None = None) -> PipedProcess:
    """Fork and exec `argv` (searched along PATH, env's if given) in a session of its own, its
    stdin on one pipe and its stdout and stderr on another, all its other descriptors closed,
    after `preexec` in the child; `forked(pid)` is called in the parent right after the fork.
    Returns once the child has exec'd; OSError if it could not (the child says why through a
    close-on-exec pipe, as ptyprocess does for a pty)."""
    to_child, ours_in = os.pipe()
    ours_out, from_child = os.pipe()
    errors_r, errors_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (to_child, ours_in, ours_out, from_child, errors_r, errors_w):
            os.close(fd)
        raise
    if pid == 0:  # the child: nothing here may return
        try:
            os.setsid()
            os.dup2(to_child, 0)
            os.dup2(from_child, 1)
            os.dup2(from_child, 2)
            top = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
            os.closerange(3, errors_w)
            os.closerange(errors_w + 1, min(top, 1 << 20))
            if preexec is not None:
                preexec()
            if env is None:
                os.execvp(argv[0], list(argv))
            else:
                os.execvpe(argv[0], list(argv), env)
        except BaseException as exc:  # whatever stopped it: said to the parent, then exit
            try:
                number = exc.errno if isinstance(exc, OSError) and exc.errno else 0
                reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or repr(exc)
                os.write(errors_w, f"{number}:{reason}".encode("utf-8", "replace"))
            finally:
                os._exit(127)
    if forked is not None:
        forked(pid)
    for fd in (to_child, from_child, errors_w):
        os.close(fd)
    try:
        said = b""
        while True:  # EOF once the child has exec'd (or exited)
            part = os.read(errors_r, 4096)
            if not part:
                break
            said += part
    finally:
        os.close(errors_r)
    if said:
        os.close(ours_in)
        os.close(ours_out)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        number, _, reason = said.decode("utf-8", "replace").partition(":")
        raise OSError(int(number) if number.isdigit() else 0, reason)
    return PipedProcess(pid, ours_out, ours_in)


class SpareAgent:
    """One agent process started ahead of need (see the module docstring)."""

    def __init__(self, argv: list[str], nice: int, process: PipedProcess):
        self.argv = argv
        self.nice = nice
        self.process: PipedProcess | None = process

    @classmethod
    def begin(cls, slots: int, nice: int = 0) -> "SpareAgent | None":
        """Start a local agent with `slots`; None if it cannot start (a host's own start
        will then say why)."""
        argv = local_agent_argv(slots)
        try:
            process = start_on_pipes(argv, preexec=functools.partial(_spare_setup, nice))
        except OSError:
            return None
        return cls(argv, nice, process)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def take(self, argv: Sequence[str], nice: int) -> PipedProcess | None:
        """The spare, now the caller's, if it is what a local start of `argv` at `nice` would
        run and it is still alive; else None (and it stays here, to be discarded)."""
        process = self.process
        if process is None or list(argv) != self.argv or nice != self.nice or not process.isalive():
            return None
        self.process = None
        return process

    def discard(self) -> int | None:
        """Let go of an unclaimed spare's pipes (the agent sees EOF); the pid for the caller to
        end and reap (pcontrol.agentlink.terminate), or None if there is none left."""
        process, self.process = self.process, None
        if process is None:
            return None
        process.close()
        return process.pid


def spare_from_argv(argv: Sequence[str]) -> SpareAgent | None:
    """Start the spare that `pcontrol ... serve ... --spare-local-agent SLOTS` asks for, before
    the command line is parsed (pcontrol.cli parses it again, and refuses a bad value)."""
    words = list(argv)
    if "serve" not in words:
        return None
    rest = words[words.index("serve") + 1:]
    value = None
    for i, word in enumerate(rest):
        if word == OPTION and i + 1 < len(rest):
            value = rest[i + 1]
        elif word.startswith(OPTION + "="):
            value = word.partition("=")[2]
    if value is None or not value.isdigit() or int(value) < 1:
        return None
    return SpareAgent.begin(int(value))
