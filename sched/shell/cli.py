"""The `sched` command: run scripts, read commands from a pipe, or open the interactive shell.

    sched                      the prompt (psched.shell.repl) when stdin and stdout are terminals,
                               else stdin as a script (lines read, no prompt)
    sched FILE...              run the files in order, then as above (in the background of a
                               terminal, `sched FILE &`, no prompt: it goes on as a script)
    sched -c SCRIPT            run one script (after any FILEs) and leave (once its work is done)
    sched ... -- ARG...        the words after `--` are the script's arguments: $argv, $argc
    sched --args FILE ARG...   FILE is the script, the words after it its arguments (tclsh's
                               `tclsh FILE ARG...`: a `#!/usr/bin/env -S sched --args` line)
    sched --name NAME ...      a second sched on the same $SCHED_HOME, with files of its own
    sched --version | -h

$argv0 is the first FILE as given, else `sched`; $argv is {} and $argc 0 without `--` or
`--args` (psched.lang.scriptargs).

A script (FILEs, then `-c` or a stdin that is not a terminal) that ends with the scheduler
running goes on as if it ended with `wait`. SIGTERM and SIGHUP leave as `quit -force` does, with
status 128 + the signal's number (psched.shell.stopsignals); `exit` in a macro the scheduler
runs leaves once the macro is done (psched.scheduler.eventloop.leave_soon).

A failing script stops with its error (file:line:col, the line, a caret) on stderr and exit
status 1. The process has one asyncio loop (psched.scheduler.eventloop), run the way Tcl runs its event
loop: while sched waits for input (the prompt, the next line of a pipe) and inside commands
that wait; never while a command runs. So the scheduler's work goes on between commands.

Leaving (`quit`, `exit`, the quit checks and exit hooks) and interrupting (Ctrl-C) belong to
psched.shell.session, which this module and psched.shell.repl share.

Below this module and psched.shell.repl nothing prints: they are the only places that write to the
terminal.
"""

from __future__ import annotations

import errno
import io
import os
import sys
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, TextIO

from ..lang.errors import Interrupted, SchedError
from ..scheduler.eventloop import (close_loop, get_loop, run_until, set_code_interrupter, set_interrupt_taker,
                                   take_leaving)
from ..scheduler.extkeys import SCHED_NAME_KEY, SCHEDULER_KEY
from ..lang.interp import Interp
from ..lang.lazylog import lazy_logger, when_loaded
from ..lang.lazylog import load as load_logging
from ..lang.scriptargs import PROGRAM_NAME, set_script_arguments
from ..lang.scripttext import SCRIPT_ERRORS
from .session import ExitStatus, InterruptHandler, QuitRequest, complete_commands, run_exit_hooks
from .longcode import LongCodeWatch, interrupt_running_code
from .stopsignals import StopSignals

if TYPE_CHECKING:
    import argparse

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["main", "run_stream"]


def _lines(stream: TextIO) -> Iterator[str]:
    """Lines of `stream`, read by a daemon thread; the loop runs while sched waits for the next one."""
    loop = get_loop()
    import asyncio  # loaded by get_loop (psched.scheduler.eventloop: not loaded for a `sched -c`)

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
            if getattr(err, "errno", None) != errno.EBADF:  # (EBADF: not open for reading, `nohup`'s stdin)
                log.warning("reading commands stopped: %s", err)
        finally:  # (whatever happened here, the loop waiting for a line hears the end)
            put(None)

    threading.Thread(target=reader, name="sched-stdin", daemon=True).start()
    while (line := run_until(queue.get(), "reading commands", interruptible=False)) is not None:
        yield line


class _SharedLines:
    """The lines of the commands' stream, taken in turn by the shell (the next command) and by
    the script (`gets stdin`, `read stdin`): what a command reads is not run, as in tclsh, which
    reads its commands and a script's `gets stdin` from the same standard input."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._rest = ""  # what a read of fewer characters than a line left of it
        self.lines_read = 0  # lines the script took: the commands after them stand that much lower

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._rest:
            line, self._rest = self._rest, ""
            return line
        return next(self._lines)

    def _take(self) -> str:
        return next(self, "")

    def readline(self, limit: int = -1) -> str:
        line = self._take()
        if 0 <= limit < len(line):
            line, self._rest = line[:limit], line[limit:]
        self.lines_read += line.count("\n")
        return line

    def read(self, count: int | None = None) -> str:
        parts: list[str] = []
        size = 0
        while count is None or size < count:
            line = self._take()
            if not line:
                break
            parts.append(line)
            size += len(line)
        text = "".join(parts)
        if count is not None and len(text) > count:
            text, self._rest = text[:count], text[count:]
        self.lines_read += text.count("\n")
        return text

    def fileno(self) -> int:
        return 0


def run_stream(interp: Any, stream: TextIO, interrupts: InterruptHandler, file: str = "<stdin>") -> None:
    """Run commands from `stream` as a script, each command or block as soon as it is complete;
    the script's `gets stdin` reads the lines after the command it is in (_SharedLines).

    Raises the first SchedError, with positions counted from the stream's first line.
    """
    from ..lang.channels import stdin_reads_from  # (light, and loaded with the first channel anyway)

    lines = _SharedLines(_lines(stream))
    with stdin_reads_from(lines):  # type: ignore[arg-type]
        for text, first_line in complete_commands(lines):
            _run_text(interp, text, file, first_line + lines.lines_read, interrupts)


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


def _log_to_stderr(timestamps: bool) -> None:
    """sched's log: warnings and worse, to whatever sys.stderr is at the time (above the prompt
    while the shell runs). Given to psched.lang.lazylog: it runs when logging is first used."""
    import logging

    class CurrentStderr(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stderr
            super().emit(record)

    handler = CurrentStderr()
    handler.setFormatter(logging.Formatter(("%(asctime)s " if timestamps else "")
                                           + "sched: %(levelname)s: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


PLAIN_DEFAULTS: dict[str, Any] = {
    "files": [], "script": None, "name": None, "serve": False, "foreground": False, "attach": False,
    "stop": False, "log": None, "log_max_bytes": "10M", "log_keep": 5, "listen": None, "connect": None,
    "secret_file": None, "ha": None, "ha_ttl": None, "sites": None, "netjobs": None, "netjobs_verbose": False,
    "netjobs_log": False, "netjobs_simulate": False, "simulate": None, "start": None, "faults": None, "seed": 0,
    "json": False, "job_time": "1"}
"""The options of `sched` with none given, as psched.shell.options' parser gives them (a test
compares the two)."""


def _plain_options(argv: list[str]) -> Any:
    """The options of `sched [FILE...] [-c SCRIPT]`, the common command line, read without
    argparse (start-up, issue 13); None for any other, which psched.shell.options reads.
    An argument that starts with "-", other than that one -c, is left to argparse. (`argv` is
    sched's own words: _script_words has taken the script's arguments off.)"""
    files, script = (argv[:-2], argv[-1]) if argv[-2:-1] == ["-c"] else (argv, None)
    if any(arg.startswith("-") for arg in (files if script is None else [*files, script])):
        return None
    return SimpleNamespace(**dict(PLAIN_DEFAULTS, files=files, script=script))


ARGS_OPTION = "--args"
"""`sched [OPTION...] --args FILE [ARG...]`: FILE is the script and the words after it are its
arguments, as tclsh reads `tclsh FILE ARG...`; for a `#!/usr/bin/env -S sched --args` line,
after which the kernel adds the script's path and the arguments it was run with (the name is
gdb's, whose --args means the same)."""


def _script_words(argv: list[str]) -> tuple[list[str], str | None, list[str] | None]:
    """Split the command line where the script's arguments begin: after the first `--`, or
    after the FILE that follows `--args`, whichever comes first (an option's value is never
    either: argparse refuses a value that starts with "-" unless attached, `--log=--`).

    Returns sched's own words, the FILE of `--args` (else None) and the script's arguments
    (None when neither `--` nor `--args` is given)."""
    for at, word in enumerate(argv):
        if word == "--":
            return argv[:at], None, argv[at + 1:]
        if word == ARGS_OPTION:
            if at + 1 == len(argv):
                _usage_error(f"argument {ARGS_OPTION}: expected FILE, the script, and then its arguments")
            return argv[:at], argv[at + 1], argv[at + 2:]
    return argv, None, None


def _options(argv: list[str]) -> Any:
    """The options of the command line `argv`, plus `arguments`: the script's (None if not given)."""
    own, script_file, arguments = _script_words(argv)
    args = _plain_options(own)
    if args is None:
        from .options import argument_parser  # only for a command line that is not plain (start-up)

        args = argument_parser().parse_args(own)
    if script_file is not None:
        if args.files:
            _usage_error(f"{ARGS_OPTION} FILE: the one FILE is the script, after {ARGS_OPTION}; "
                         f"no FILE goes before it")
        args.files = [script_file]
    args.arguments = arguments
    return args


def _usage_error(message: str) -> NoReturn:
    """Usage, `sched: error: MESSAGE` and exit status 2, as argparse says it."""
    from .options import argument_parser  # only for a command line that is not plain (start-up)

    argument_parser().error(message)


def _take_interrupt(interp: Any) -> bool:
    """A Ctrl-C the interpreter was marked with (for its next command) and nothing took yet:
    True, and the mark is cleared (the wait about to begin ends as interrupted instead)."""
    if not interp.interrupted:
        return False
    interp.interrupted = False
    return True


def _leave_as_sigint_does() -> None:
    """Once everything is cleaned up, end by SIGINT itself, as tclsh and Python do after Ctrl-C:
    a shell running sched in a loop (`for h in ...; do sched probe.sched -- $h; done`) then
    stops too, where an exit status, even 130, tells it that sched handled the signal. Returns
    only if the signal could not end this process (the caller exits with 130)."""
    import signal  # (only on the way out of an interrupted run)

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sched` console command; returns the exit status."""
    if os.getpid() == 1:  # a container's first process: a minimal init first (pclient.pidone)
        from pclient.pidone import become_init_if_pid1

        become_init_if_pid1()
    as_the_program = argv is None  # (a caller in this process, a test, gets the status instead)
    if argv is None:
        argv = sys.argv[1:]
    if sys.stdin is None or sys.stdout is None or sys.stderr is None:
        _standard_streams()
    args = _options(argv)
    status = _main(args)
    if status == ExitStatus.INTERRUPTED and as_the_program:
        _leave_as_sigint_does()
    if args.ha is not None and args.serve:
        from .ha import STEPPED_DOWN, restart_as_standby  # only a server of a pool loads the HA code

        if status == STEPPED_DOWN:
            restart_as_standby()
    return status


def _standard_streams() -> None:
    """Started with descriptor 0, 1 or 2 closed (`sched FILE <&- >&-`; Python then has None for
    that stream): /dev/null on it, so that no file opened later takes its number (a write meant
    for stdout would land in sched.lock or a log), and a stream that reads nothing or writes
    nowhere, as tclsh's `puts` does then (not an internal error at each `puts`)."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:  # closed: the lowest free number is this one
            os.open(os.devnull, os.O_RDWR)
        setattr(sys, name, open(fd, mode, encoding="utf-8", errors="surrogateescape", closefd=False))


def _ha_options(args: argparse.Namespace) -> list[str]:
    if args.ha is None:
        return []
    return ["--ha", args.ha] + ([] if args.ha_ttl is None else ["--ha-ttl", str(args.ha_ttl)])


def _main(args: argparse.Namespace) -> int:
    if args.name is not None:
        from ..scheduler.home import valid_name  # $SCHED_HOME's code, for --name only (start-up)

        if problem := valid_name(args.name):
            _usage_error(f"--name: {problem}")
    if sum((args.serve, args.attach, args.stop)) > 1:
        _usage_error("--serve, --attach and --stop go alone")
    if args.foreground and not args.serve:
        _usage_error("--foreground goes with --serve")
    if args.listen is not None and not args.serve:
        _usage_error("--listen goes with --serve")
    if (args.connect is not None or args.secret_file is not None) and not (args.attach or args.stop):
        _usage_error("--connect and --secret-file go with --attach or --stop")
    if args.secret_file is not None and args.connect is None:
        _usage_error("--secret-file goes with --connect")
    if (args.ha is not None or args.ha_ttl is not None) and not args.serve:
        _usage_error("--ha and --ha-ttl go with --serve")
    if args.ha_ttl is not None and args.ha_ttl < 2:
        _usage_error("--ha-ttl: at least 2 seconds (etcd's shortest lease)")
    if args.arguments is not None and (args.attach or args.stop):
        _usage_error("-- and --args go with FILEs or -c, not with --attach or --stop (a server's scripts "
                     "have the arguments it was started with)")
    if args.arguments is not None and (args.sites is not None or args.netjobs is not None):
        _usage_error("-- and --args do not go with --sites or --netjobs: their scripts take no arguments")
    simulating = args.simulate is not None or args.netjobs_simulate
    if simulating and (args.serve or args.attach or args.stop):
        _usage_error("--simulate goes with FILEs, -c or --netjobs, not with --serve, --attach or --stop")
    if args.netjobs_simulate and args.netjobs is None:
        _usage_error("-s goes with --netjobs")
    if not simulating and (args.start is not None or args.faults is not None or args.json):
        _usage_error("--start, --faults and --json go with --simulate")
    if simulating:
        return _simulate(args)
    if args.attach or args.stop:
        if args.files:
            _usage_error("--attach and --stop take no FILE")
        from . import attached  # the client side only: not the scheduler

        remote = attached.Remote(args.connect, args.secret_file) if args.connect is not None else None
        if args.stop:
            return attached.stop(remote)
        at_terminal = _is_terminal(sys.stdin) and _is_terminal(sys.stdout)  # (the prompt's, as for sched's own)
        piped = sys.stdin if args.script is None and not at_terminal else None
        return attached.attach(args.script, remote=remote, commands=piped)
    if args.serve and not args.foreground:
        if args.script is not None:
            _usage_error("-c goes with --attach, not --serve")
        from .server import launch  # the server's code only when serving (start-up cost)

        listen = ["--listen", args.listen] if args.listen is not None else []
        return launch(args.files, ["--log-max-bytes", args.log_max_bytes, "--log-keep", str(args.log_keep), *listen],
                      _ha_options(args), args.arguments)
    interp = Interp()
    _give_arguments(interp, args)
    if args.name is not None:
        interp.extensions[SCHED_NAME_KEY] = args.name
    interactive = (args.script is None and not args.serve and args.netjobs is None and _is_terminal(sys.stdin)
                   and _in_foreground(sys.stdin)    # (`sched FILE &`: no prompt, which would stop it: SIGTTOU)
                   and _is_terminal(sys.stdout))    # (`sched FILE | tee log`: no prompt drawn into the log)
    if (args.files or args.script is not None) and not args.serve and args.netjobs is None and args.sites is None:
        from ..scheduler.earlystart import EarlyStart  # light: pcontrol only for a script that needs it

        interp.checkers.insert(0, EarlyStart())  # before the scheduler's stand-in loads the scheduler
    when_loaded(lambda: _log_to_stderr(timestamps=args.serve))
    if interactive or args.serve or args.netjobs is not None:
        load_logging()  # the prompt, the server and NetJobs log with plain logging from the start
    # a server ignores SIGINT while idle: it is how attached prompts interrupt a command, and
    # one that arrives just after the command ended must not stop the server
    interrupts = InterruptHandler(interp, idle_raises=not interactive and not args.serve)
    stops = StopSignals(interp)
    set_code_interrupter(lambda: interrupt_running_code(interp))  # SIGINT during a wait reaches a macro
    set_interrupt_taker(lambda: _take_interrupt(interp))  # one just before a wait began ends it
    LongCodeWatch(interp).start()
    try:
        with interrupts.installed(), stops.installed():
            try:
                status = _run(interp, args, interrupts, interactive)
            except QuitRequest as request:  # a signal between two commands
                status = request.status
            left = take_leaving()  # `exit` in a macro as the script ended
            return left.status if isinstance(left, QuitRequest) else status
    except KeyboardInterrupt:
        print("sched: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    finally:
        with stops.installed():  # a signal while leaving is ignored
            stops.received = stops.received or -1
            run_exit_hooks(interp)
        try:
            close_loop()
        except Exception:  # leaving anyway; say why the loop did not close cleanly
            log.exception("closing the event loop failed")
        _settle_stdout()


def _give_arguments(interp: Any, args: argparse.Namespace) -> None:
    """$argv0, $argv and $argc, as tclsh sets them: the first FILE (else `sched`) and the words
    after `--` (or after the FILE of `--args`)."""
    set_script_arguments(interp, args.files[0] if args.files else PROGRAM_NAME, args.arguments or ())


def _simulate(args: argparse.Namespace) -> int:
    """`sched --simulate ...` (and `sched --netjobs FILE -s`): psched.shell.simulate."""
    import time

    from ..scheduler.simfaults import FaultsError  # the simulation's code only when simulating (start-up cost)
    from . import simulate  # the controller's code only when simulating (start-up cost)

    import logging

    logging.basicConfig(level=logging.ERROR, format="sched: %(levelname)s: %(name)s: %(message)s")
    duration = args.simulate or f"{simulate.NETJOBS_DURATION:g}s"
    try:
        options = simulate.options_from(duration, args.start, args.faults, args.seed, args.job_time, time.time())
    except simulate.OptionError as exc:
        _usage_error(str(exc))
    except FaultsError as exc:
        print(exc.render(), file=sys.stderr)
        return ExitStatus.USAGE
    interp = Interp()
    _give_arguments(interp, args)
    if args.name is not None:
        interp.extensions[SCHED_NAME_KEY] = args.name

    def script() -> Any:
        if args.netjobs is not None:
            from .netjobs import run_netjobs_file  # loads the scheduler: only for --netjobs (start-up)

            return run_netjobs_file(interp, args.netjobs, verbose=args.netjobs_verbose, log=False)
        for path in args.files:
            interp.eval_file(path)
        if args.script is not None:
            interp.eval(args.script, "-c")
        return None

    return simulate.simulate(interp, options, script, as_json=args.json, wait_to_end=args.netjobs is None)


def _wait_for_the_work(interp: Any) -> None:
    """A script (files, then `-c` or a stdin that is not a terminal) that ends with the scheduler
    running goes on as if it ended with `wait`: under cron or systemd a script of standing
    tasks and `run` runs until it is stopped (SIGTERM, or `stop` in a macro)."""
    sched = interp.extensions.get(SCHEDULER_KEY)
    if sched is None or not sched.running or sched.finished(None):
        return
    sched.report("the script has ended with the scheduler running: going on until nothing remains to do "
                 "(`stop` in a macro, SIGTERM or Ctrl-C end it)")
    interp.eval("wait", "<end of the script>")


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


def _run_sites(interp: Any, directory: str, interrupts: InterruptHandler) -> int:
    """`sched --sites DIR`: every site's script, then `run` until nothing remains (or a stop)."""
    from .sites import load_sites  # only for --sites: scripts and -c never need it

    try:
        with interrupts.running():
            failed = load_sites(interp, directory)
    except OSError as exc:
        print(f"sched: --sites {directory}: {exc.strerror or exc}", file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    for path, error in failed:
        print(f"sched: site {path} skipped:\n{error}", file=sys.stderr)
    with interrupts.running():
        interp.eval("run", "<sites>")
        _wait_for_the_work(interp)
    return ExitStatus.OK


def _in_foreground(stream: TextIO) -> bool:
    """Whether we are in the foreground of the terminal `stream` is (not `sched FILE &`, whose
    prompt would be stopped by the terminal, and the scheduler with it)."""
    try:
        return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    except (OSError, ValueError):
        return True


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def _run(interp: Any, args: argparse.Namespace, interrupts: InterruptHandler, interactive: bool) -> int:
    if args.serve:
        from .server import serve  # the server's code only when serving (start-up cost)

        ha = None
        if args.ha is not None:
            from .ha import HAServer  # only a server of a pool loads the HA code (and pcontrol.fencing)

            try:
                ha = HAServer(args.ha, args.ha_ttl or 5)
            except ValueError as err:
                print(f"sched: --ha: {err}", file=sys.stderr)
                return ExitStatus.SCRIPT_FAILED
        return serve(interp, args.files, interrupts, log_path=args.log, log_max_bytes=args.log_max_bytes,
                     log_keep=args.log_keep, listen=args.listen, ha=ha)
    if args.netjobs is not None:
        from .netjobs import run_netjobs_file  # loads the scheduler: only for --netjobs (start-up)

        with interrupts.running():
            return run_netjobs_file(interp, args.netjobs, verbose=args.netjobs_verbose, log=args.netjobs_log)
    try:
        if args.sites is not None:
            return _run_sites(interp, args.sites, interrupts)
        for path in args.files:
            with interrupts.running():
                interp.eval_file(path)
        if args.script is not None:
            with interrupts.running():
                interp.eval(args.script, "-c")
            _wait_for_the_work(interp)  # (a -c script is a script: its tasks run, not dropped as it ends)
            return ExitStatus.OK
        if interactive:
            # imported here: the prompt loads prompt_toolkit (~0.1 s), which `sched -c` and scripts never need
            from .repl import interact

            return interact(interp, interrupts)
        if isinstance(sys.stdin, io.TextIOWrapper):  # (a byte not UTF-8 is its Latin-1 character, as in tclsh)
            sys.stdin.reconfigure(errors=SCRIPT_ERRORS)
        if not _is_terminal(sys.stdin) or _in_foreground(sys.stdin):  # (not a terminal we are in the
            run_stream(interp, sys.stdin, interrupts)                  # background of: `sched FILE &`)
        _wait_for_the_work(interp)
        return ExitStatus.OK
    except Interrupted as err:  # Ctrl-C ended the script (main then leaves as SIGINT does)
        print(err.render(), file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except SchedError as err:
        print(err.render(), file=sys.stderr)
        return ExitStatus.SCRIPT_FAILED
    except QuitRequest as request:
        return request.status


if __name__ == "__main__":
    # `python -m psched.shell.cli`: run the one psched.shell.cli module, not this __main__ copy, so that
    # `quit` raises the QuitRequest that main catches.
    from psched.shell.cli import main as _main

    sys.exit(_main())
