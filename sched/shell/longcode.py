"""Interpreted code that holds the loop: said when it runs long, and interrupted on request.

    watch = LongCodeWatch(interp); watch.start()   # the CLI, for any run that may schedule
    interrupt_running_code(interp)                 # SIGINT: psched.shell.session, psched.scheduler.eventloop
    interrupt_after_grace(interp)                  # SIGTERM/SIGHUP's stop: psched.shell.stopsignals

While a macro (task.exec, task.exit), an `after` script or a reload's files run from the loop
(Scheduler.busy_with), sched's one loop does nothing else: no job's end is handled, no task makes
jobs, no prompt answers and an attached prompt cannot connect. A macro that never ends (a
`while` whose `incr` was forgotten) would hold it for good, deaf to Ctrl-C and to systemd's
stop (the loop that would act on them never turns), and a sched killed for it would run that
exit macro again at its next start ($job_rerun), and hang again. So:

- LongCodeWatch, a thread, looks every CHECK seconds and says in the log when such code has
  run WARN_AFTER seconds (again every REPEAT), and how to interrupt it; at ALERT_AFTER it also
  sends an alert through the controller this sched uses, if any (pcontrol's log, its mail
  settings, as `alert` in a macro does), once for that run: a served sched held for a minute is
  an operator's business even when nobody reads its log.
- SIGINT (`kill -INT PID`, Ctrl-C at the prompt or during a `wait`) interrupts it at its next
  command (or inside an `exec`): it ends with the error "interrupted", reported as any error of
  a macro; an exit macro so ended has had its run and is not run again.
- A stop (SIGTERM, SIGHUP) gives it STOP_GRACE seconds to end by itself, then interrupts it
  the same way, so that the stop goes on as usual.

Both times are seconds, 10 by default, set by $PSCHED_MACRO_WARN and $PSCHED_STOP_GRACE.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from typing import Any

from ..lang.lazylog import lazy_logger
from ..scheduler.extkeys import SCHEDULER_KEY

log = lazy_logger(__name__)

__all__ = ["LongCodeWatch", "interrupt_running_code", "interrupt_after_grace", "WARN_AFTER", "STOP_GRACE"]

WARN_VAR = "PSCHED_MACRO_WARN"
GRACE_VAR = "PSCHED_STOP_GRACE"


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


WARN_AFTER = _seconds(WARN_VAR, 10.0)
STOP_GRACE = _seconds(GRACE_VAR, 10.0)
REPEAT = 60.0
ALERT_AFTER = 6 * WARN_AFTER
CHECK = min(2.0, WARN_AFTER / 4)


def running_code(interp: Any) -> tuple[str, float] | None:
    """(what, since) of the interpreted code a callback of the loop runs now, or None."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    return None if sched is None else sched.running_code


def interrupt_running_code(interp: Any, why: str = "SIGINT") -> bool:
    """In the main thread (a signal handler): interrupt the code the loop runs, if any; True if
    there was some. May raise Interrupted at once (code inside an `exec`)."""
    code = running_code(interp)
    if code is None:
        return False
    what, since = code
    log.warning("%s: interrupting %s (it had run %.0f s)", why, what, time.monotonic() - since)
    interp.interrupt()
    return True


def interrupt_after_grace(interp: Any) -> None:
    """sched is stopping: if the loop runs interpreted code, interrupt it (SIGINT, delivered in
    the main thread) unless it has ended within STOP_GRACE seconds."""
    code = running_code(interp)
    if code is None:
        return

    def overdue() -> None:
        if running_code(interp) is code:
            log.warning("stopping: %s has not ended %g s after the stop", code[0], STOP_GRACE)
            _thread.interrupt_main(signal.SIGINT)

    timer = threading.Timer(STOP_GRACE, overdue)
    timer.daemon = True
    timer.start()


class LongCodeWatch:
    """A thread that says when the loop's interpreted code has run long (see the module)."""

    def __init__(self, interp: Any) -> None:
        self.interp = interp

    def start(self) -> None:
        threading.Thread(target=self._run, name="sched-longcode", daemon=True).start()

    def _run(self) -> None:
        said_for: tuple[str, float] | None = None
        alerted_for: tuple[str, float] | None = None
        next_say = 0.0
        while True:
            time.sleep(CHECK)
            code = running_code(self.interp)
            if code is None:
                continue
            ran = time.monotonic() - code[1]
            if code is not said_for and ran >= WARN_AFTER:
                said_for, next_say = code, ran + REPEAT
                self._say(code[0], ran)
            elif code is said_for and ran >= next_say:
                next_say += REPEAT
                self._say(code[0], ran)
            if code is not alerted_for and ran >= ALERT_AFTER:
                alerted_for = code
                self._alert(code[0], ran)

    def _alert(self, what: str, ran: float) -> None:
        """The alert, through the controller this sched uses (this thread's own connection:
        the loop is held); nothing when there is none or it does not answer."""
        sched = self.interp.extensions.get(SCHEDULER_KEY)
        if sched is None:
            return
        from ..scheduler.attach import controller_in_use  # loaded by then: the scheduler exists
        from pcontrol.client import run_command  # (the same)
        import socket  # only to name this machine in an alert (3 ms of start-up otherwise)

        address = controller_in_use(sched)
        if address is None:
            return
        subject = f"sched on {socket.gethostname()} held by {what}"
        body = (f"{what} has run {ran:.0f} s and is still running. sched (pid {os.getpid()}) does nothing "
                f"else until it ends: no job's end is handled, no task makes jobs, no prompt answers. "
                f"`kill -INT {os.getpid()}` on that machine interrupts it.")
        try:
            run_command(["alert", subject, body], address=address, timeout=10.0)
        except Exception as exc:  # noqa: BLE001 - the log has said it already; the alert is extra
            log.info("alert about %s not sent: %s", what, exc)

    @staticmethod
    def _say(what: str, ran: float) -> None:
        text = (f"{what} has run {ran:.0f} s and is still running: sched does nothing else until it ends (no "
                f"job's end is handled, no task makes jobs, no prompt answers); `kill -INT {os.getpid()}` "
                f"interrupts it")
        real = sys.__stderr__
        if sys.stderr is not real and real is not None:
            # the prompt's stand-in for stderr, which writes only when the held loop turns: to
            # the terminal itself (the prompt does not answer anyway)
            try:
                real.write(f"\r\nsched: WARNING: {text}\r\n")
                real.flush()
                return
            except (OSError, ValueError):
                pass
        log.warning("%s", text)
