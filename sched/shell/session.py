"""Leaving and interrupting, which the `sched` program (psched.shell.cli) and its prompt (psched.shell.repl) share.

- `quit ?-force? ?status?` (alias `exit`) raises QuitRequest, a BaseException that no `catch`
  stops; the CLI and the REPL turn it into the exit status. Before leaving, the quit checks in
  `interp.quit_checks` are asked: each is `(interp) -> str | None`, a reason not to leave yet
  ("3 jobs still out") or None. In a script a reason makes `quit` fail with an error; at the
  prompt (`interp.interactive` is true) the shell asks for confirmation instead. `-force` skips
  the checks.
- However sched leaves, the exit hooks in `interp.exit_hooks` run once, each `(interp) -> None`,
  before the loop closes: that is where the layers below stop what they own (kill local jobs,
  stop an embedded controller).
- Ctrl-C while sched code runs calls `interp.interrupt()` (InterruptHandler): the running script
  stops with "interrupted" at its next command. A command that computes for long (`lsort` of a
  million words, `string map` over a large string) does not reach its next command soon: if the
  interrupt is still unnoticed after ESCALATE_AFTER seconds, it is raised inside the command
  (KeyboardInterrupt, reported as "interrupted"), as a second Ctrl-C does at once. Never while
  the event loop runs: a wait that can be interrupted has its own handler
  (psched.scheduler.eventloop.run_until), and callbacks are never stopped half-way. A child
  program the script is waiting for gets the terminal's SIGINT itself.
- `needs_more(text)`: what is still open at the end of some input (the prompt asks it before
  running what it has); `complete_commands(lines)`: the commands of piped lines, each once it is
  complete (sched's stdin, and an attached prompt's when it is not a terminal).
"""

from __future__ import annotations

import _thread
import signal
import threading
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, Callable, Iterable, Iterator

from ..lang.errors import IncompleteError, QuitRequest, ScriptError
from ..lang.openness import OpenTracker
from ..lang.openness import needs_more as open_at_end
from ..lang.lazylog import lazy_logger
from ..lang.registry import BUILTINS
from ..scheduler.eventloop import loop_running
from .longcode import interrupt_running_code

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["ExitStatus", "QuitRequest", "add_quit_check", "quit_vetoes", "add_exit_hook", "run_exit_hooks",
           "InterruptHandler", "complete_commands", "needs_more"]


class ExitStatus(IntEnum):
    """The exit statuses of `sched`."""

    OK = 0
    SCRIPT_FAILED = 1
    USAGE = 2  # argparse's own
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# --- leaving -----------------------------------------------------------------------------------------


def add_quit_check(interp: Any, check: Callable[[Any], str | None]) -> None:
    """Add a check asked before leaving: it returns a reason to stay, or None."""
    interp.quit_checks.append(check)


def quit_vetoes(interp: Any) -> list[str]:
    """The reasons the quit checks give not to leave now (empty: leaving is fine)."""
    reasons = []
    for check in list(interp.quit_checks):
        try:
            reason = check(interp)
        except Exception:  # a broken check must not trap the user in the shell
            log.exception("quit check %r failed", check)
            continue
        if reason:
            reasons.append(str(reason))
    return reasons


def add_exit_hook(interp: Any, hook: Callable[[Any], None]) -> None:
    """Add a hook run once when sched leaves, however it leaves (quit, Ctrl-D, error, end of script).

    Hooks run in the order added, before the event loop closes (a hook may still use
    psched.scheduler.eventloop.run_until to wait for something, e.g. killed jobs to end).
    """
    interp.exit_hooks.append(hook)


def run_exit_hooks(interp: Any) -> None:
    """Run the exit hooks; one that fails is logged and the others still run."""
    for hook in list(interp.exit_hooks):
        try:
            hook(interp)
        except Exception:
            log.exception("exit hook %r failed", hook)


def cmd_quit(interp: Any, argv: list[str]) -> str:
    args = argv[1:]
    force = bool(args) and args[0] == "-force"
    if force:
        args = args[1:]
    if len(args) > 1:
        raise ScriptError(f'wrong # args: should be "{argv[0]} ?-force? ?status?"')
    try:
        status = int(args[0]) if args else ExitStatus.OK
    except ValueError:
        raise ScriptError(f'expected an integer exit status but got "{args[0]}"') from None
    # At the prompt the shell asks instead; a macro the scheduler runs cannot ask, so it is refused.
    asked_at_prompt = interp.interactive and not loop_running()
    if not force and not asked_at_prompt:
        reasons = quit_vetoes(interp)
        if reasons:
            raise ScriptError(f"not leaving: {'; '.join(reasons)} (use \"{argv[0]} -force\" to leave anyway)")
    raise QuitRequest(status, force)


BUILTINS.command("quit ?-force? ?status?", "leave sched; with jobs still out, only with -force (or at the prompt, after asking)")(cmd_quit)
BUILTINS.command("exit ?-force? ?status?", "leave sched (the same as quit)")(cmd_quit)


# --- interrupting ------------------------------------------------------------------------------------


ESCALATE_AFTER = 0.3
"""Seconds a Ctrl-C may wait for the running script to reach its next command before it is
raised inside the command that computes."""


def _loop_running() -> bool:
    return loop_running()


class InterruptHandler:
    """SIGINT while sched code runs stops it; between evaluations it does `idle`'s bidding.

    Installed for the whole run (so that a stray SIGINT at the prompt is ignored and one while a
    script waits for input ends it) and again around each evaluation (`running()`), restoring
    what was there before. A command that waits on the loop (`wait`) installs its own handler
    for the wait (psched.scheduler.eventloop.run_until).
    """

    def __init__(self, interp: Any, idle_raises: bool):
        self.interp = interp
        self.idle_raises = idle_raises  # True: Ctrl-C while idle ends sched; False: ignored (the prompt)
        self.active = False
        self._escalation: threading.Timer | None = None
        self._escalating = False  # the SIGINT now handled comes from the escalation, not the user

    def __call__(self, signum: int, frame: Any) -> None:
        escalated, self._escalating = self._escalating, False
        if not self.active:
            if interrupt_running_code(self.interp):
                return  # a macro the loop runs (a server's, or one while a prompt waits for a line)
            if self.idle_raises and not escalated:
                raise KeyboardInterrupt
            return  # at the prompt the terminal is raw and Ctrl-C is a key; a stray SIGINT is ignored
        if self.interp.interrupted:  # the first Ctrl-C was not noticed yet: stop now
            if escalated and _loop_running():
                return  # a wait or a callback: they end by themselves or have their own handler
            raise KeyboardInterrupt
        if escalated:
            return  # noticed meanwhile
        self.interp.interrupt()
        self._cancel_escalation()
        self._escalation = threading.Timer(ESCALATE_AFTER, self._escalate)
        self._escalation.daemon = True
        self._escalation.start()

    def _escalate(self) -> None:
        """In the timer's thread: the interrupt is still unnoticed, deliver it inside the command."""
        # Only through this handler: a wait's own handler (run_until) has noticed it already.
        if self.active and self.interp.interrupted and signal.getsignal(signal.SIGINT) is self:
            self._escalating = True
            _thread.interrupt_main(signal.SIGINT)

    def _cancel_escalation(self) -> None:
        if self._escalation is not None:
            self._escalation.cancel()
            self._escalation = None

    @contextmanager
    def installed(self) -> Iterator["InterruptHandler"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around one evaluation: Ctrl-C interrupts the interpreter."""
        self.interp.interrupted = False
        self.active = True
        try:
            with self.installed():
                yield
        finally:
            self.active = False
            self._cancel_escalation()
            self.interp.interrupted = False


# --- what is still open ---------------------------------------------------------------------------------


def needs_more(text: str, tracker: OpenTracker | None = None) -> IncompleteError | None:
    """What is still open at the end of `text` (a block, brace, quote, bracket, a backslash), if anything.

    A `tracker` that saw the text's beginning before looks only at what was added
    (psched.lang.openness).
    """
    return open_at_end(text, tracker)


def complete_commands(lines: Iterable[str]) -> Iterator[tuple[str, int]]:
    """Each command (or block) of `lines` as soon as it is complete, with the number of its
    first line; what is left open at the end comes last, as it is (its error is the parser's)."""
    pending: list[str] = []
    first = count = 0
    tracker = OpenTracker()  # looks at each line of a long block once
    for line in lines:
        count += 1
        if not pending:
            first = count
        pending.append(line)
        text = "".join(pending)
        if needs_more(text, tracker) is not None:
            continue
        pending = []
        yield text, first
    if pending:
        yield "".join(pending), first
