"""A process that finds itself PID 1 (a container's first process: `docker run IMAGE sched FILE`,
`pcontrol serve`, `pclient --pull`) becomes a minimal init first, as tini does.

PID 1 inherits every orphan of its namespace: a job's background process, a process left when
a job's cgroup was killed, a daemon's intermediate child. Its parent must reap it, or it stays a
zombie holding its pid; a task whose jobs leave one a minute would use up the namespace's pids in
weeks, and then nothing could start. sched, pcontrol and the agent reap only their own children
(the jobs they wait for), and a reaper of any child in the same process would take the exit
status of a job or an `exec` before its waiter. So PID 1 forks: the child returns and runs the
program as usual; the parent stays PID 1 and does nothing but reap every process that ends and
pass signals on to the child:

- SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 (`docker stop`, a reload, ...) go to the child. SIGINT,
  SIGQUIT and SIGWINCH too, unless stdin is a terminal: a terminal sends those to its whole
  foreground process group, the child included, which must not get them twice.
- When the child ends, PID 1 exits with its status (128 + N for a child killed by signal N), as
  the program itself would have; the kernel then ends what is left in the namespace.

Elsewhere (os.getpid() != 1) nothing happens: systemd, or the init of the machine, reaps.
Standard library only (the agent uses it).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

__all__ = ["become_init_if_pid1"]

_ALWAYS = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
_FROM_A_TERMINAL = (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH)


def become_init_if_pid1() -> None:
    """Return at once unless this process is PID 1; if it is, return in a child (the program goes
    on there) and stay in the parent as the init until that child ends."""
    if os.getpid() != 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        return
    _serve(child)


def _serve(child: int) -> NoReturn:
    forwarded = _ALWAYS if _stdin_is_a_terminal() else _ALWAYS + _FROM_A_TERMINAL

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in forwarded:
        signal.signal(signum, forward)
    for signum in set(_FROM_A_TERMINAL) - set(forwarded):
        signal.signal(signum, signal.SIG_IGN)  # (the child, in the same group, has it already)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # (cannot be while the child lives; nothing left to wait for)
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def _stdin_is_a_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False
