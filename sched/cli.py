"""The `sched` command: run scripts, read commands from a pipe, or open the interactive shell.

    sched                      the prompt (psched.repl) when stdin is a terminal, else stdin as a script
    sched FILE...              run the files in order, then as above
    sched -c SCRIPT            run one script (after any FILEs) and leave
    sched --version | -h

A failing script stops with its error (file:line:col, the line, a caret) on stderr and exit
status 1. The process has one asyncio loop (psched.eventloop), run the way Tcl runs its event
loop: while sched waits for input (the prompt, the next line of a pipe) and inside commands
that wait; never while a command runs. So the scheduler's work goes on between commands.

This module also owns leaving and interrupting, which scripts and the prompt share:

- `quit ?-force? ?status?` (alias `exit`) raises QuitRequest, a BaseException that no `catch`
  stops; the CLI and the REPL turn it into the exit status. Before leaving, the quit checks in
  `interp.extensions["quit_checks"]` are asked: each is `(interp) -> str | None`, a reason not
  to leave yet ("3 jobs still out") or None. In a script a reason makes `quit` fail with an
  error; at the prompt (`interp.extensions["shell.interactive"]` is true) the shell asks for
  confirmation instead. `-force` skips the checks.
- However sched leaves, the exit hooks in `interp.extensions["exit_hooks"]` run once, each
  `(interp) -> None`, before the loop closes: that is where later parts stop what they own
  (kill local jobs, stop an embedded controller).
- Ctrl-C while sched code runs calls `interp.interrupt()` (InterruptHandler): the running script
  stops with "interrupted" at its next command; a second Ctrl-C before that stops it at once. A
  child program the script is waiting for gets the terminal's SIGINT itself.

Below this module and psched.repl nothing prints: they are the only places that write to the
terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, Callable, Iterator, TextIO

from .errors import IncompleteError, SchedError, ScriptError
from .eventloop import close_loop, get_loop, run_until
from .interp import Interp
from .parser import is_complete
from .registry import BUILTINS

log = logging.getLogger(__name__)

__all__ = ["main", "QuitRequest", "QUIT_CHECKS_KEY", "INTERACTIVE_KEY", "EXIT_HOOKS_KEY", "add_quit_check",
           "quit_vetoes", "add_exit_hook", "run_exit_hooks", "InterruptHandler", "run_stream", "needs_more",
           "ExitStatus"]

QUIT_CHECKS_KEY = "quit_checks"
"""Key in `interp.extensions` of the list of quit checks `(interp) -> str | None`."""

INTERACTIVE_KEY = "shell.interactive"
"""Key in `interp.extensions`: true while commands come from the interactive prompt."""

EXIT_HOOKS_KEY = "exit_hooks"
"""Key in `interp.extensions` of the callables `(interp) -> None` run when sched leaves."""


class ExitStatus(IntEnum):
    """The exit statuses of `sched`."""

    OK = 0
    SCRIPT_FAILED = 1
    USAGE = 2  # argparse's own
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# --- leaving -----------------------------------------------------------------------------------------


class QuitRequest(BaseException):
    """`quit` / `exit` was called: leave with `status`. A BaseException so that no `catch` keeps it."""

    def __init__(self, status: int = 0, force: bool = False):
        super().__init__(status)
        self.status = status
        self.force = force


def add_quit_check(interp: Any, check: Callable[[Any], str | None]) -> None:
    """Add a check asked before leaving: it returns a reason to stay, or None."""
    interp.extensions.setdefault(QUIT_CHECKS_KEY, []).append(check)


def quit_vetoes(interp: Any) -> list[str]:
    """The reasons the quit checks give not to leave now (empty: leaving is fine)."""
    reasons = []
    for check in list(interp.extensions.get(QUIT_CHECKS_KEY, ())):
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
    psched.eventloop.run_until to wait for something, e.g. killed jobs to end).
    """
    interp.extensions.setdefault(EXIT_HOOKS_KEY, []).append(hook)


def run_exit_hooks(interp: Any) -> None:
    """Run the exit hooks; one that fails is logged and the others still run."""
    for hook in list(interp.extensions.get(EXIT_HOOKS_KEY, ())):
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
    if not force and not interp.extensions.get(INTERACTIVE_KEY):
        reasons = quit_vetoes(interp)
        if reasons:
            raise ScriptError(f"not leaving: {'; '.join(reasons)} (use \"{argv[0]} -force\" to leave anyway)")
    raise QuitRequest(status, force)


BUILTINS.command("quit ?-force? ?status?", "leave sched; with jobs still out, only with -force (or at the prompt, after asking)")(cmd_quit)
BUILTINS.command("exit ?-force? ?status?", "leave sched (the same as quit)")(cmd_quit)


# --- interrupting ------------------------------------------------------------------------------------


class InterruptHandler:
    """SIGINT while sched code runs stops it; between evaluations it does `idle`'s bidding.

    Installed for the whole run (so that a stray SIGINT at the prompt is ignored and one while a
    script waits for input ends it) and again around each evaluation (`running()`), restoring
    what was there before. A command that waits on the loop (`wait`) installs its own handler
    for the wait (psched.eventloop.run_until).
    """

    def __init__(self, interp: Any, idle_raises: bool):
        self.interp = interp
        self.idle_raises = idle_raises  # True: Ctrl-C while idle ends sched; False: ignored (the prompt)
        self.active = False

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.active:
            if self.idle_raises:
                raise KeyboardInterrupt
            return  # at the prompt the terminal is raw and Ctrl-C is a key; a stray SIGINT is ignored
        if self.interp.interrupted:  # the first Ctrl-C was not noticed yet: stop now
            raise KeyboardInterrupt
        self.interp.interrupt()

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
            self.interp.interrupted = False


# --- running text ------------------------------------------------------------------------------------


def needs_more(text: str) -> IncompleteError | None:
    """What is still open at the end of `text` (a block, brace, quote, bracket, a backslash), if anything."""
    stripped = text.rstrip("\r\n")
    if stripped != text and _ends_with_backslash(stripped):
        return IncompleteError("backslash at the end of the line", opener="\\")
    return is_complete(text)


def _ends_with_backslash(text: str) -> bool:
    count = len(text) - len(text.rstrip("\\"))
    return count % 2 == 1


def _lines(stream: TextIO) -> Iterator[str]:
    """Lines of `stream`, read by a daemon thread; the loop runs while sched waits for the next one."""
    loop = get_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: sched is leaving
            return False
        return True

    def reader() -> None:
        try:
            for line in iter(stream.readline, ""):
                if not put(line):
                    return
        except (OSError, ValueError) as err:
            log.warning("reading commands stopped: %s", err)
        put(None)

    threading.Thread(target=reader, name="sched-stdin", daemon=True).start()
    while (line := run_until(queue.get(), "reading commands", interruptible=False)) is not None:
        yield line


def run_stream(interp: Any, stream: TextIO, interrupts: InterruptHandler, file: str = "<stdin>") -> None:
    """Run commands from `stream` as a script, each command or block as soon as it is complete.

    Raises the first SchedError, with positions counted from the stream's first line.
    """
    pending: list[str] = []
    first_line = line_count = 0
    open_block = False  # what is open is a block (keyword), so only a line with `end` can close it
    for line in _lines(stream):
        line_count += 1
        if not pending:
            first_line = line_count
        pending.append(line)
        if open_block and "end" not in line:
            continue
        text = "".join(pending)
        still_open = needs_more(text)
        if still_open is not None:
            open_block = still_open.opener.isidentifier() or "." in still_open.opener
            continue
        pending, open_block = [], False
        _run_text(interp, text, file, first_line, interrupts)
    if pending:
        _run_text(interp, "".join(pending), file, first_line, interrupts)


def _run_text(interp: Any, text: str, file: str, line0: int, interrupts: InterruptHandler) -> str:
    script = interp.read(text, file, line0=line0)  # parse, and the read-time checks
    saved = interp.current_file
    interp.current_file = file
    try:
        with interrupts.running():
            return interp.run_toplevel(script)
    finally:
        interp.current_file = saved


# --- the command ---------------------------------------------------------------------------------------


class _CurrentStderr(logging.StreamHandler):
    """Logs to whatever sys.stderr is at the time (above the prompt while the shell runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("psched")
    except PackageNotFoundError:
        return "unknown"


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sched",
        description="The sched shell: a Tcl-like language that schedules tasks and runs their jobs. "
                    "With no FILE and no -c, commands come from the prompt (a terminal) or from stdin.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="scripts to run in order")
    parser.add_argument("-c", dest="script", metavar="SCRIPT", help="run SCRIPT (after any FILEs) and leave")
    parser.add_argument("--version", action="version", version=f"sched {_version()}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sched` console command; returns the exit status."""
    args = _argument_parser().parse_args(argv)
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("sched: %(levelname)s: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])

    interp = Interp()
    interactive = args.script is None and _is_terminal(sys.stdin)
    interrupts = InterruptHandler(interp, idle_raises=not interactive)
    try:
        with interrupts.installed():
            return _run(interp, args, interrupts, interactive)
    except KeyboardInterrupt:
        print("sched: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    finally:
        run_exit_hooks(interp)
        try:
            close_loop()
        except Exception:  # leaving anyway; say why the loop did not close cleanly
            log.exception("closing the event loop failed")
        _settle_stdout()


def _settle_stdout() -> None:
    """If the reader of stdout has gone (`sched script | head`), drop what is left unwritten
    rather than fail again in the flush at exit (`puts` has reported the broken pipe)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def _run(interp: Any, args: argparse.Namespace, interrupts: InterruptHandler, interactive: bool) -> int:
    try:
        for path in args.files:
            with interrupts.running():
                interp.eval_file(path)
        if args.script is not None:
            with interrupts.running():
                interp.eval(args.script, "-c")
            return ExitStatus.OK
        if interactive:
            from .repl import interact

            return interact(interp, interrupts)
        run_stream(interp, sys.stdin, interrupts)
        return ExitStatus.OK
    except SchedError as err:
        print(err.render(), file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    except QuitRequest as request:
        return request.status


if __name__ == "__main__":
    # `python -m psched.cli`: run the one psched.cli module, not this __main__ copy, so that
    # `quit` raises the QuitRequest that main catches.
    from psched.cli import main as _main

    sys.exit(_main())
