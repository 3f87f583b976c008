"""A local agent started ahead of need: the embedded default's localhost (issue 13).

A sched that starts pcontrol itself for its jobs (sched.scheduler.remote) is about to add
`localhost`, whose agent is a local `python -m pclient`: a Python start of its own (~100 ms
of CPU) that would otherwise begin only after pcontrol is ready and the host is added. So
that sched runs `pcontrol serve --spare-local-agent SLOTS`, and `python -m pcontrol` starts
that agent first thing (pcontrol/__main__.py), before its own imports, on a pty exactly as
pcontrol.agentlink starts one: the two start-ups run side by side, and the agent's hello
waits in the pty until the host is connected.

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
gets EOF on its pty and exits.

Light on purpose (os, sys, tty and ptyprocess, that one when a spare begins): it runs before the
daemon's imports.
"""

from __future__ import annotations

import functools
import os
import sys
import tty
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ptyprocess

__all__ = ["OPTION", "LOCAL_AGENT", "DAEMON_UMASK", "KEEP", "DIMENSIONS", "SpareAgent",
           "spare_from_argv", "child_setup", "local_agent_argv"]

#: The `pcontrol serve` option that asks for a spare (its value: the agent's --slots).
OPTION = "--spare-local-agent"
#: The command of a local agent (pcontrol.config.ControllerConfig.local_agent's default).
LOCAL_AGENT: tuple[str, ...] = (sys.executable, "-m", "pclient")
#: The daemon's umask (pcontrol.daemon.serve sets it), which its agents inherit.
DAEMON_UMASK = 0o077
#: Seconds an unclaimed spare is kept.
KEEP = 30.0
#: The pty's size for an agent start (rows, columns).
DIMENSIONS = (24, 200)


def local_agent_argv(slots: int | None, command: Sequence[str] = LOCAL_AGENT) -> list[str]:
    """The command line of a local agent with `slots` (pcontrol.hosts.HostTable.agent_argv)."""
    return list(command) + (["--slots", str(slots)] if slots else [])


def _raw_terminal() -> None:
    tty.setraw(0)


def child_setup(nice: int) -> None:
    """preexec_fn of an agent start: raw mode, then niceness `nice` for the child and for its
    autogroup.

    The child is a session of its own (the pty), and Linux's autogroup scheduling shares
    the CPU between sessions before it looks at a process's niceness: so the session's
    autogroup gets the niceness too, else 200 local agents would each weigh as much as
    pcontrol. Either may be refused (no autogroups, no permission): the agent then runs
    as it would have."""
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
    child_setup(nice)


class SpareAgent:
    """One agent process started ahead of need (see the module docstring)."""

    def __init__(self, argv: list[str], nice: int, process: ptyprocess.PtyProcess):
        self.argv = argv
        self.nice = nice
        self.process: ptyprocess.PtyProcess | None = process

    @classmethod
    def begin(cls, slots: int, nice: int = 0) -> "SpareAgent | None":
        """Start a local agent with `slots`; None if it cannot start (a host's own start
        will then say why)."""
        import ptyprocess  # here: sched names OPTION while reading a script (psched.scheduler.earlystart)

        argv = local_agent_argv(slots)
        try:
            process = ptyprocess.PtyProcess.spawn(argv, preexec_fn=functools.partial(_spare_setup, nice),
                                                  dimensions=DIMENSIONS)
        except OSError:
            return None
        return cls(argv, nice, process)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def take(self, argv: Sequence[str], nice: int) -> ptyprocess.PtyProcess | None:
        """The spare, now the caller's, if it is what a local start of `argv` at `nice` would
        run and it is still alive; else None (and it stays here, to be discarded)."""
        process = self.process
        if process is None or list(argv) != self.argv or nice != self.nice or not process.isalive():
            return None
        self.process = None
        return process

    def discard(self) -> int | None:
        """Let go of an unclaimed spare's pty (the agent sees EOF); the pid for the caller to
        end and reap (pcontrol.agentlink.terminate), or None if there is none left."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            process.fileobj.close()
        except OSError:
            pass
        process.closed = True
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
