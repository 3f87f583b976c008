"""SIGTERM and SIGHUP end sched the way `quit -force` does (systemd's stop, `timeout`, a closed
terminal): no new jobs, local jobs killed and recorded KILLED with their exit macros run,
controller jobs left for the next sched, ledgers written. The exit status is 128 + the
signal's number (143 for SIGTERM, 129 for SIGHUP), as a shell reports a job a signal ended.
A server (psched.shell.server) takes SIGHUP over: there it reopens the log and reloads the files.

    with StopSignals(interp).installed():     # around the whole run of the CLI
        ...

How the signal reaches the code that is running: while the event loop runs (a `wait`, the
prompt, reading a script from a pipe) the handler hands a forced QuitRequest to
psched.scheduler.eventloop.leave_soon, which ends that wait; while the interpreter runs a command the
handler raises the QuitRequest at once (no `catch` stops it; a program `exec` waits for is
killed as Python's subprocess does on any exception). Either way the CLI's exit hooks then do
the stopping. A macro the loop runs when the signal comes gets psched.shell.longcode's
STOP_GRACE to end, then is interrupted (one that never ends would keep the loop from leaving).
A second signal while sched is already leaving is ignored. SIGINT keeps its own
handling (psched.shell.session.InterruptHandler): it interrupts the command or wait under way, and a
script so interrupted ends through the same exit hooks.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..lang.errors import QuitRequest
from ..lang.lazylog import lazy_logger
from ..scheduler.eventloop import get_loop, leave_soon, loop_running
from .longcode import interrupt_after_grace

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["StopSignals", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """The handler of SIGTERM and SIGHUP for one run of sched."""

    def __init__(self, interp: Any) -> None:
        self.interp = interp
        self.received: int | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            log.warning("%s while leaving: ignored", signal.Signals(signum).name)
            return
        self.received = signum
        request = QuitRequest(128 + signum, force=True)
        if loop_running():  # (no loop made, nor asyncio loaded, here: a signal handler)
            # asyncio's own structures may be half-way through a change here: act from the loop
            get_loop().call_soon_threadsafe(leave_soon, request)
            interrupt_after_grace(self.interp)  # (a macro the loop runs now: it must end)
        else:
            raise request

    @contextmanager
    def installed(self) -> Iterator["StopSignals"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
