"""The `sched` command: run scripts, read commands from a pipe, or open the interactive shell.

    sched                      the prompt (psched.shell.repl) when stdin is a terminal, else stdin as a script
    sched FILE...              run the files in order, then as above
    sched -c SCRIPT            run one script (after any FILEs) and leave
    sched --name NAME ...      a second sched on the same $SCHED_HOME, with files of its own
    sched --version | -h

A script (FILEs, then a stdin that is not a terminal) that ends with the scheduler running
goes on as if it ended with `wait`. SIGTERM and SIGHUP leave as `quit -force` does, with
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

import argparse
import logging
import os
import sys
import threading
from typing import Any, Iterator, TextIO

from ..lang.errors import SchedError
from ..scheduler.eventloop import close_loop, get_loop, run_until, take_leaving
from ..scheduler.extkeys import SCHED_NAME_KEY, SCHEDULER_KEY
from ..lang.interp import Interp
from ..lang.openness import OpenTracker
from .session import ExitStatus, InterruptHandler, QuitRequest, needs_more, run_exit_hooks
from .stopsignals import StopSignals

log = logging.getLogger(__name__)

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
    tracker = OpenTracker()  # looks at each line of a long block once
    for line in _lines(stream):
        line_count += 1
        if not pending:
            first_line = line_count
        pending.append(line)
        text = "".join(pending)
        if needs_more(text, tracker) is not None:
            continue
        pending = []
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


class _VersionAction(argparse.Action):
    """`--version`: the installed version, looked up only when asked (importlib.metadata costs
    ~10 ms of every start-up otherwise)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        parser._print_message(f"sched {_version()}\n", sys.stdout)
        parser.exit()


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sched",
        description="The sched shell: a Tcl-like language that schedules tasks and runs their jobs. "
                    "With no FILE and no -c, commands come from the prompt (a terminal) or from stdin.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="scripts to run in order")
    parser.add_argument("-c", dest="script", metavar="SCRIPT", help="run SCRIPT (after any FILEs) and leave")
    parser.add_argument("--name", metavar="NAME",
                        help="run as the sched named NAME: its own lock, run ledger, harvest log and owner "
                             "at the controller, so that it may run beside the sched of the same $SCHED_HOME")
    server = parser.add_argument_group("server mode (psched.shell.server)")
    server.add_argument("--serve", action="store_true",
                        help="run the FILEs in a scheduler server in the background; its socket, pid file "
                             "and log are in $SCHED_HOME; `reload`, SIGHUP or the file $SCHED_HOME/reload "
                             "make it read them again")
    server.add_argument("--foreground", action="store_true", help="with --serve: serve in this process")
    server.add_argument("--attach", action="store_true",
                        help="the prompt on the running server (with -c: run SCRIPT there and leave)")
    server.add_argument("--stop", action="store_true", help="stop the running server, as quit -force does")
    server.add_argument("--log", metavar="FILE", default=None,
                        help="with --serve: log (and the server's output) to FILE, rotated by size; "
                             "SIGHUP reopens it (--serve in the background: $SCHED_HOME/sched.log)")
    server.add_argument("--log-max-bytes", metavar="SIZE", default="10M",
                        help="rotate the log past SIZE (10M, 512k; 0: never)")
    server.add_argument("--log-keep", metavar="N", type=int, default=5, help="rotated logs kept")
    server.add_argument("--listen", metavar="HOST:PORT",
                        help="with --serve: prompts may also attach over TCP, proving the secret of "
                             "$SCHED_HOME/secret (the challenge-response of pcontrol's --listen); port 0: any")
    server.add_argument("--connect", metavar="HOST:PORT[,...]",
                        help="with --attach or --stop: the server listening there (sched --serve --listen); "
                             "several: the first that answers (the members of a pool)")
    server.add_argument("--secret-file", metavar="FILE",
                        help="with --connect: the server's secret (default: $SCHED_HOME/secret)")
    server.add_argument("--ha", metavar="URL", default=None,
                        help="with --serve: serve only while leading the pool of schedulers elected through "
                             "etcd at URL (http://HOST:PORT[,...]/POOL; psched.shell.ha)")
    server.add_argument("--ha-ttl", metavar="SECONDS", type=int, default=None,
                        help="with --ha: the leader's lease, the longest a dead leader stays unreplaced (default 5)")
    parser.add_argument("--sites", metavar="DIR",
                        help="load every DIR/*.sched (one per site, its tasks named SITE.TASK; a file with an "
                             "error is reported and skipped), then run the scheduler until stopped")
    parser.add_argument("--netjobs", metavar="CONFIG",
                        help="run a NetJobs configuration file (its tests in order, as sync runs) and leave")
    parser.add_argument("-v", dest="netjobs_verbose", action="store_true", help="with --netjobs: show progress and the full tables")
    parser.add_argument("-l", dest="netjobs_log", action="store_true",
                        help="with --netjobs: a timestamped log per test, beside the configuration file")
    parser.add_argument("-s", dest="netjobs_simulate", action="store_true",
                        help="with --netjobs: simulate the tests (as --simulate does) instead of running them")
    sim = parser.add_argument_group("simulation (psched.shell.simulate; see docs/operators.md)")
    sim.add_argument("--simulate", metavar="DURATION",
                     help="run the FILEs with the real scheduler and controller on virtual time for DURATION "
                          "(90s, 8h, 7d, 1h30m), with simulated hosts and jobs: nothing is started, no socket "
                          "opened, nothing written to $SCHED_HOME; print the timeline and a summary per task "
                          "and per host")
    sim.add_argument("--start", metavar="TIME", help="with --simulate: the virtual start, YYYY-MM-DD HH:MM or HH:MM "
                                                      "(today); default: now")
    sim.add_argument("--faults", metavar="FILE", help="with --simulate: what jobs, exec, hosts and the controller "
                                                      "do (job/exec/host/controller rules; docs/operators.md)")
    sim.add_argument("--seed", metavar="N", type=int, default=0,
                     help="with --simulate: the seed of every random draw (job times from ranges, retry jitter)")
    sim.add_argument("--json", action="store_true", help="with --simulate: JSON lines instead of the tables")
    sim.add_argument("--job-time", metavar="S", default="1",
                     help="with --simulate: how long a job runs unless the faults file says (default 1 s)")
    parser.add_argument("--version", action=_VersionAction)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sched` console command; returns the exit status."""
    parser = _argument_parser()
    args = parser.parse_args(argv)
    status = _main(parser, args)
    if args.ha is not None and args.serve:
        from .ha import STEPPED_DOWN, restart_as_standby  # only a server of a pool loads the HA code

        if status == STEPPED_DOWN:
            restart_as_standby()
    return status


def _ha_options(args: argparse.Namespace) -> list[str]:
    if args.ha is None:
        return []
    return ["--ha", args.ha] + ([] if args.ha_ttl is None else ["--ha-ttl", str(args.ha_ttl)])


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.name is not None:
        from ..scheduler.home import valid_name  # $SCHED_HOME's code, for --name only (start-up)

        if problem := valid_name(args.name):
            parser.error(f"--name: {problem}")
    if sum((args.serve, args.attach, args.stop)) > 1:
        parser.error("--serve, --attach and --stop go alone")
    if args.foreground and not args.serve:
        parser.error("--foreground goes with --serve")
    if args.listen is not None and not args.serve:
        parser.error("--listen goes with --serve")
    if (args.connect is not None or args.secret_file is not None) and not (args.attach or args.stop):
        parser.error("--connect and --secret-file go with --attach or --stop")
    if args.secret_file is not None and args.connect is None:
        parser.error("--secret-file goes with --connect")
    if (args.ha is not None or args.ha_ttl is not None) and not args.serve:
        parser.error("--ha and --ha-ttl go with --serve")
    if args.ha_ttl is not None and args.ha_ttl < 2:
        parser.error("--ha-ttl: at least 2 seconds (etcd's shortest lease)")
    simulating = args.simulate is not None or args.netjobs_simulate
    if simulating and (args.serve or args.attach or args.stop):
        parser.error("--simulate goes with FILEs, -c or --netjobs, not with --serve, --attach or --stop")
    if args.netjobs_simulate and args.netjobs is None:
        parser.error("-s goes with --netjobs")
    if not simulating and (args.start is not None or args.faults is not None or args.json):
        parser.error("--start, --faults and --json go with --simulate")
    if simulating:
        return _simulate(parser, args)
    if args.attach or args.stop:
        if args.files:
            parser.error("--attach and --stop take no FILE")
        from . import attached  # the client side only: not the scheduler

        remote = attached.Remote(args.connect, args.secret_file) if args.connect is not None else None
        return attached.stop(remote) if args.stop else attached.attach(args.script, remote=remote)
    if args.serve and not args.foreground:
        if args.script is not None:
            parser.error("-c goes with --attach, not --serve")
        from .server import launch  # the server's code only when serving (start-up cost)

        listen = ["--listen", args.listen] if args.listen is not None else []
        return launch(args.files, ["--log-max-bytes", args.log_max_bytes, "--log-keep", str(args.log_keep), *listen],
                      _ha_options(args))
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(("%(asctime)s " if args.serve else "")
                                           + "sched: %(levelname)s: %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])

    interp = Interp()
    if args.name is not None:
        interp.extensions[SCHED_NAME_KEY] = args.name
    interactive = args.script is None and not args.serve and args.netjobs is None and _is_terminal(sys.stdin)
    # a server ignores SIGINT while idle: it is how attached prompts interrupt a command, and
    # one that arrives just after the command ended must not stop the server
    interrupts = InterruptHandler(interp, idle_raises=not interactive and not args.serve)
    stops = StopSignals()
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


def _simulate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`sched --simulate ...` (and `sched --netjobs FILE -s`): psched.shell.simulate."""
    import time

    from ..scheduler.simfaults import FaultsError  # the simulation's code only when simulating (start-up cost)
    from . import simulate  # the controller's code only when simulating (start-up cost)

    logging.basicConfig(level=logging.ERROR, format="sched: %(levelname)s: %(name)s: %(message)s")
    duration = args.simulate or f"{simulate.NETJOBS_DURATION:g}s"
    try:
        options = simulate.options_from(duration, args.start, args.faults, args.seed, args.job_time, time.time())
    except simulate.OptionError as exc:
        parser.error(str(exc))
    except FaultsError as exc:
        print(exc.render(), file=sys.stderr)
        return ExitStatus.USAGE
    interp = Interp()
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
    """A script (files, then a stdin that is not a terminal) that ends with the scheduler
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
            return ExitStatus.OK
        if interactive:
            # imported here: the prompt loads prompt_toolkit (~0.1 s), which `sched -c` and scripts never need
            from .repl import interact

            return interact(interp, interrupts)
        run_stream(interp, sys.stdin, interrupts)
        _wait_for_the_work(interp)
        return ExitStatus.OK
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
