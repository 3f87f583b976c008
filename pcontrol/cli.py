"""The `pcontrol` command line.

    pcontrol [--home DIR] start [SERVE OPTIONS]   start the daemon in the background
    pcontrol [--home DIR] serve [SERVE OPTIONS]   run it in the foreground (systemd)
    pcontrol [--home DIR] stop ?-kill? ?-force?   stop it (running jobs go on under their
                                                  agents' lease; -kill: end every job); with
                                                  jobs out it refuses unless -force
    pcontrol [--home DIR] web [WEB OPTIONS]       the read-only status page and /metrics, a
                                                  process of its own reading pcontrol as a
                                                  client (pweb.cli; --connect works too)
    pcontrol agent-bundle FILE                    write the agent as one file (a zipapp) that
                                                  runs with `python3 FILE ...` (no daemon needed)
    pcontrol [--home DIR] COMMAND ...             run one controller command, print the result
    pcontrol [--home DIR]                         interactive prompt (on a terminal), or one
                                                  command per line from stdin

Every client use (COMMAND, the prompt, stdin lines, `stop`) may go to a remote pcontrol's
TCP listener instead of the local socket: `--connect HOST:PORT` before the command, or
$PCONTROL_CONNECT (empty: the local socket). Over TCP the client proves the secret of
$SCHED_HOME, or of `--secret-file FILE` ($PCONTROL_SECRET_FILE); `stop` becomes the
`shutdown` command, and `start` / `serve` always run pcontrol on this machine.

Exit status 0 when the command succeeded, 1 when it was refused or pcontrol is not running
(2 for a usage error of the command line itself). Only this module and repl.py print.

A client command loads only the client face (pcontrol.client): the daemon's modules (the
controller, its server, the command table, alerts, the agent bundle) are loaded by the verbs
that use them (start, serve, help, agent-bundle), so that `pcontrol COMMAND` costs what talking
to pcontrol needs -- scripts and probes' checks call it often.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .client import ControllerAddress, run_command
from .errors import ClientError, CommandError, ControllerNotRunning
from .launch import mark_stopped, start, stop
from .paths import Paths
from .spareagent import OPTION as SPARE_OPTION
from .warmstart import OPTION as GO_OPTION
from .spareagent import SpareAgent

if TYPE_CHECKING:
    from .controller import ControllerConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

USAGE = """usage: pcontrol [--home DIR] start|serve|stop [options]
       pcontrol [--home DIR] [--connect HOST:PORT] web [--listen HOST:PORT] [--token-file FILE]
                                           (the status page and /metrics; web --help)
       pcontrol agent-bundle FILE          (the agent as one file: python3 FILE ...)
       pcontrol --version                  (this pcontrol's version and the protocols it speaks)
       pcontrol [--home DIR] [--connect HOST:PORT [--secret-file FILE]] COMMAND ...
                                           (see `pcontrol help`)
       pcontrol [--home DIR] [--connect HOST:PORT [--secret-file FILE]]
                                           (interactive prompt)
--connect (or $PCONTROL_CONNECT) talks to a remote pcontrol's TCP listener, proving the
secret of $SCHED_HOME or of --secret-file (or $PCONTROL_SECRET_FILE)."""

DAEMON_VERBS = {"start", "serve", "stop"}
#: Options before the command, each with a value (`--opt VALUE` or `--opt=VALUE`).
LEADING_OPTIONS = ("--home", "--connect", "--secret-file")


def _serve_parser(prog: str) -> argparse.ArgumentParser:
    from pclient.logfile import DEFAULT_KEEP, DEFAULT_MAX_BYTES, size_argument
    from .controller import ControllerConfig

    parser = argparse.ArgumentParser(prog=prog, description="pcontrol daemon options",
                                     allow_abbrev=False)  # (each option is kept by name: _settled_options)
    defaults = ControllerConfig()
    parser.add_argument("--heartbeat", type=float, default=defaults.heartbeat, metavar="S",
                        help="seconds between agent pings (default %(default)s)")
    parser.add_argument("--missed", type=int, default=defaults.missed_heartbeats, metavar="N",
                        help="missed pings that make a host DOWN (default %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=defaults.connect_timeout,
                        metavar="S", help="seconds for an agent's handshake (default %(default)s)")
    parser.add_argument("--retry-min", type=float, default=defaults.retry_min, metavar="S",
                        help="first retry of a DOWN host (default %(default)s)")
    parser.add_argument("--retry-max", type=float, default=defaults.retry_max, metavar="S",
                        help="longest retry backoff (default %(default)s)")
    parser.add_argument("--retention", type=float, default=defaults.retention, metavar="S",
                        help="seconds a harvested job is kept (default %(default)s)")
    parser.add_argument("--keep-unowned", type=float, default=defaults.unowned_retention,
                        metavar="S", help="seconds a finished job without an owner is kept "
                                          "when nobody harvests it (default %(default)s)")
    parser.add_argument("--spool-abandon", type=float, default=defaults.spool_abandon, metavar="S",
                        help="seconds after which a host's agent removes the spooled outputs of "
                             "another controller that nothing has touched since and no live "
                             "agent holds (a pcontrol that is gone); 0: never (default %(default)s)")
    parser.add_argument("--lease", type=float, default=defaults.lease, metavar="S",
                        help="seconds an agent keeps its jobs after losing pcontrol, for the "
                             "next one to take over (default %(default)s)")
    parser.add_argument("--grace", type=float, default=defaults.reconcile_grace, metavar="S",
                        help="seconds a job whose agent is out of reach waits for a report "
                             "before it ends DOWN (default: the lease plus 60)")
    parser.add_argument("--stable-after", type=float, default=defaults.stable_after, metavar="S",
                        help="a host up this long is no longer flapping; one that goes down "
                             "sooner is retried with growing backoff (default %(default)s)")
    parser.add_argument("--agent-nice", type=int, default=defaults.agent_nice, metavar="N",
                        help="niceness (0-19) of the agents pcontrol starts, and so of local "
                             "hosts' jobs: keeps pcontrol responsive when many local agents "
                             "share its CPUs (default %(default)s)")
    parser.add_argument("--remote-agent", default=defaults.remote_agent, metavar="CMD",
                        help="an agent installed on the ssh hosts to try first (e.g. pclient); "
                             "where it is missing or of another build pcontrol sends its own "
                             "(default: always send its own)")
    parser.add_argument("--slurm-poll", type=float, default=defaults.slurm_poll, metavar="S",
                        help="seconds between the squeue polls of a Slurm host")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--listen", type=_listen_address, default=None, metavar="HOST:PORT",
                        help="also serve TCP clients that prove the secret in $SCHED_HOME "
                             "(off by default; the traffic is not encrypted)")
    parser.add_argument("--pull-listen", type=_listen_address, default=None, metavar="HOST:PORT",
                        help="listen for pull probes' check-ins (hosts added with -pull)")
    parser.add_argument("--pull-interval", type=float, default=defaults.pull_interval, metavar="S",
                        help="seconds until a probe with nothing to run checks in again")
    parser.add_argument("--pull-grace", type=float, default=defaults.pull_grace, metavar="S",
                        help="a run time not reported within this (plus the job's timeout) is missed")
    parser.add_argument("--misses", type=int, default=defaults.pull_misses, metavar="N",
                        help="missed run times in a row that send an alert")
    parser.add_argument("--skew-threshold", type=float, default=defaults.skew_threshold, metavar="S",
                        help="clock offset past which a host is SKEWED (and an alert goes out)")
    parser.add_argument("--alerts", default=None, metavar="FILE",
                        help="mail settings for alerts (JSON: host, port, from, to, starttls, user, password_file)")
    parser.add_argument("--log-file", default=None, metavar="FILE",
                        help="log to FILE, rotated by size (pcontrol start logs to "
                             "$SCHED_HOME/pcontrol.log); SIGHUP then reopens it, for logrotate")
    parser.add_argument("--log-max-bytes", type=size_argument, default=DEFAULT_MAX_BYTES, metavar="SIZE",
                        help="rotate the log file past SIZE (10M, 512k; 0: never; default 10M)")
    parser.add_argument("--log-keep", type=int, default=DEFAULT_KEEP, metavar="N",
                        help="rotated log files kept (default %(default)s)")
    parser.add_argument(SPARE_OPTION, type=_slots, default=None, metavar="SLOTS",
                        help="start a local agent with SLOTS slots ahead of need, for the first "
                             "local host (localhost) to use (the sched shell's embedded default)")
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _slots(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a number of slots (1 or more), got {text!r}")
    return int(text)


def _config(options: argparse.Namespace) -> ControllerConfig:
    from .controller import ControllerConfig

    for name in ("heartbeat", "connect_timeout", "slurm_poll"):
        if getattr(options, name) <= 0:
            raise SystemExit(f"pcontrol: --{name.replace('_', '-')} must be > 0")
    for name in ("lease", "grace", "stable_after", "keep_unowned", "spool_abandon"):
        value = getattr(options, name)
        if value is not None and not 0 <= value < float("inf"):
            raise SystemExit(f"pcontrol: --{name.replace('_', '-')} must be a number >= 0")
    if not 0 <= options.agent_nice <= 19:
        raise SystemExit("pcontrol: --agent-nice must be from 0 to 19")
    return ControllerConfig(heartbeat=options.heartbeat, missed_heartbeats=max(1, options.missed),
                            connect_timeout=options.connect_timeout,
                            retry_min=options.retry_min, retry_max=options.retry_max,
                            retention=options.retention,
                            unowned_retention=options.keep_unowned, lease=options.lease,
                            reconcile_grace=options.grace, stable_after=options.stable_after,
                            agent_nice=options.agent_nice, remote_agent=options.remote_agent,
                            slurm_poll=options.slurm_poll, pull_listen=options.pull_listen,
                            alerts=_alerts_file(options.alerts), pull_interval=options.pull_interval,
                            pull_grace=options.pull_grace, pull_misses=max(1, options.misses),
                            skew_threshold=options.skew_threshold,
                            spool_abandon=options.spool_abandon or None)


def _alerts_file(path: str | None) -> str | None:
    """The mail settings file, checked now so that a bad one stops `serve` with its reason."""
    if path is None:
        return None
    from .alerts import AlertError, MailSettings

    try:
        MailSettings.load(path)
    except AlertError as exc:
        raise SystemExit(f"pcontrol: --alerts: {exc}") from None
    return os.path.abspath(path)


def main(argv: Sequence[str] | None = None, spare: SpareAgent | None = None) -> int:
    """`spare`: the local agent that `python -m pcontrol serve --spare-local-agent` started
    before its imports (pcontrol.spareagent)."""
    if os.getpid() == 1:  # a container's first process: a minimal init first (pclient.pidone)
        from pclient.pidone import become_init_if_pid1

        become_init_if_pid1()
    try:
        return _main(argv, spare)
    except BrokenPipeError:  # `pcontrol jobs | head`: the reader has gone; nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail again
        return 1


def _main(argv: Sequence[str] | None, spare: SpareAgent | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if args[:1] == ["--version"]:
        # (loaded only for --version: the metadata look-up costs every other verb ~10 ms)
        from pclient.protocol import AGENT_VERSION, PROTOCOL_VERSION

        from .version import package_version
        from .wire import WIRE_VERSION

        print(f"pcontrol {package_version()} (wire {WIRE_VERSION}; agents: pclient {AGENT_VERSION}, "
              f"protocol {PROTOCOL_VERSION})")
        return 0
    try:
        options = _leading_options(args)
    except ValueError as exc:
        print(f"pcontrol: {exc}", file=sys.stderr)
        return 2
    paths = Paths.for_home(options.get("home"))
    verb = args[0] if args else None
    if verb == "agent-bundle":
        return _agent_bundle(args[1:])
    if verb in ("start", "serve"):
        if "connect" in options:
            print(f"pcontrol: --connect is for client commands; `{verb}` runs pcontrol on "
                  "this machine", file=sys.stderr)
            return 2
        return _daemon_verb(paths, verb, args[1:], spare)
    try:
        address = ControllerAddress.chosen(paths.home, connect=options.get("connect"),
                                           secret_file=options.get("secret-file"))
    except ValueError as exc:
        print(f"pcontrol: --connect: {exc}" if "connect" in options else f"pcontrol: {exc}",
              file=sys.stderr)
        return 2
    if verb == "web":
        # loaded only for `web`: aiohttp and prometheus_client cost nothing to the other verbs
        from pweb.cli import main as web_main
        return web_main(paths.home, address, args[1:])
    if verb is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            if address.is_tcp:
                return _run_remote_prompt(paths, address)
            from .repl import run_prompt
            return run_prompt(paths)
        return _run_lines(paths, sys.stdin, address)
    if verb == "stop":
        if address.is_tcp:
            return _remote_stop(paths, address, args[1:])
        return _daemon_verb(paths, verb, args[1:])
    return _run_one(paths, args, address)


def _agent_bundle(rest: list[str]) -> int:
    if len(rest) != 1 or rest[0].startswith("-"):
        print("pcontrol: usage: pcontrol agent-bundle FILE", file=sys.stderr)
        return 2
    from .bootstrap import write_zipapp

    try:
        bundle = write_zipapp(rest[0])
    except OSError as exc:
        print(f"pcontrol: agent-bundle: cannot write {rest[0]}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(f"{rest[0]}: pclient agent, build {bundle.build[:12]}, sha256 {bundle.sha256}, "
          f"{len(bundle.data)} bytes; run it with python3 {rest[0]} ...")
    return 0


def _leading_options(args: list[str]) -> dict[str, str]:
    """Take --home, --connect, --secret-file off the front of `args` (in place)."""
    options: dict[str, str] = {}
    while args and args[0].split("=", 1)[0] in LEADING_OPTIONS:
        word = args.pop(0)
        name, sep, value = word.partition("=")
        if not sep:
            if not args:
                raise ValueError(f"{name} needs a value")
            value = args.pop(0)
        if not value:
            raise ValueError(f"{name} needs a value, got an empty one")
        options[name[2:]] = value
    return options


def _listen_address(text: str) -> tuple[str, int]:
    from .server import parse_listen

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _daemon_verb(paths: Paths, verb: str, rest: list[str], spare: SpareAgent | None = None) -> int:
    if verb == "stop":
        flags = _stop_flags(rest)
        if flags is None:
            return 2
        outcome = stop(paths, kill="kill" in flags, force="force" in flags)
        if outcome.ok:     # on purpose: schedulers must not start it again by themselves
            mark_stopped(paths, "pcontrol stop")
    else:
        options = _serve_parser(f"pcontrol {verb}").parse_args(rest)
        config = _config(options)
        rest, kept = _settled_options(rest)
        if verb == "serve":
            from pclient.logfile import RotatingLog
            from .daemon import serve

            log_file = None
            if options.log_file is not None:
                log_file = RotatingLog(options.log_file, options.log_max_bytes, options.log_keep,
                                       follow_fds=(1, 2))
            logging.basicConfig(level=options.log_level, format=LOG_FORMAT,
                                handlers=[log_file if log_file is not None else logging.StreamHandler(sys.stderr)])
            if spare is None and options.spare_local_agent is not None:
                spare = SpareAgent.begin(options.spare_local_agent)
            try:
                return serve(paths, config, ready_fd=options.ready_fd, listen=options.listen,
                             log_file=log_file, spare=spare, remember=kept)
            except ValueError as exc:      # socket path too long
                print(f"pcontrol: {exc}", file=sys.stderr)
                return 1
        try:
            outcome = start(paths, rest)
        except ValueError as exc:
            print(f"pcontrol: {exc}", file=sys.stderr)
            return 1
    print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


#: `serve` options of one start, not settings of the daemon: not kept for the next start.
_ONE_START = frozenset({"--ready-fd", SPARE_OPTION, GO_OPTION})
#: `serve` options naming a file: made absolute, since the daemon runs in $HOME
#: (pcontrol.warmstart.spawn_serve), not where `pcontrol start` was typed.
_FILE_OPTIONS = frozenset({"--alerts", "--log-file"})


def _settled_options(rest: list[str]) -> tuple[list[str], list[str]]:
    """`serve` options as given (parsed already: each `--name VALUE` or `--name=VALUE`), with
    file names made absolute; and those of them that are the daemon's settings, which it
    keeps for a scheduler that starts it again (pcontrol.launch.remembered_options)."""
    given: list[str] = []
    kept: dict[str, str] = {}      # each option once, with its last value (argparse's)
    words = iter(rest)
    for word in words:
        name, eq, value = word.partition("=")
        if not name.startswith("--"):
            given.append(word)
            continue
        if not eq:
            value = next(words, "")
        if name in _FILE_OPTIONS:
            value = os.path.abspath(value)
        given += [name, value]
        if name not in _ONE_START:
            kept.pop(name, None)
            kept[name] = value
    return given, [word for pair in kept.items() for word in pair]


def _stop_flags(rest: list[str]) -> set[str] | None:
    flags = {word.lstrip("-") for word in rest}
    if not flags <= {"kill", "force"} or not all(w.startswith("-") for w in rest):
        print("pcontrol: usage: pcontrol stop ?-kill? ?-force?", file=sys.stderr)
        return None
    return flags


def _remote_stop(paths: Paths, address: ControllerAddress, rest: list[str]) -> int:
    """`stop` of a remote pcontrol: its `shutdown` command (the pid file is over there)."""
    flags = _stop_flags(rest)
    if flags is None:
        return 2
    return _run_one(paths, ["shutdown"] + [f"-{flag}" for flag in sorted(flags)], address)


def _run_one(paths: Paths, argv: list[str], address: ControllerAddress | None = None) -> int:
    if argv[0] == "help":      # answered from the table: works without a daemon
        from .verbs import TABLE

        try:
            print(asyncio.run(TABLE.run(None, argv)).text)
            return 0
        except CommandError as exc:
            print(f"pcontrol: {exc.message}", file=sys.stderr)
            return 1
    address = address or ControllerAddress.local(paths.home)
    try:
        reply = run_command(argv, address=address)
    except ControllerNotRunning as exc:
        if address.is_tcp:
            print(f"pcontrol: {exc}", file=sys.stderr)
        else:
            print(f"pcontrol: pcontrol is not running in {paths.home} "
                  "(start it with `pcontrol start`)", file=sys.stderr)
        return 1
    except ClientError as exc:
        print(f"pcontrol: {exc}", file=sys.stderr)
        return 1
    if reply.ok:
        if reply.text:
            print(reply.text, end="" if reply.text.endswith("\n") else "\n")
        return 0
    print(f"pcontrol: {reply.text}", file=sys.stderr)
    return 1


def _run_lines(paths: Paths, stream: "object",
               address: ControllerAddress | None = None) -> int:
    """One command per input line (scripts, pipes); exit 1 if any failed."""
    status = 0
    for line in stream:  # type: ignore[attr-defined]
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"pcontrol: {exc}: {line}", file=sys.stderr)
            status = 1
            continue
        if _run_one(paths, words, address) != 0:
            status = 1
    return status


def _run_remote_prompt(paths: Paths, address: ControllerAddress) -> int:
    """The interactive prompt, talking to a remote pcontrol over TCP."""
    from .repl import Prompt

    class RemotePrompt(Prompt):
        """repl.Prompt with the connection made to `address`; `start` is refused (pcontrol
        starts on its own machine) and `stop` is its `shutdown` command."""

        async def connect(self, quiet: bool = False) -> bool:
            if self.client is not None and not self.client.closed:
                return True
            try:
                self.client = await address.connect()
            except ClientError as exc:
                if not quiet:
                    print(f"cannot reach pcontrol: {exc}", file=sys.stderr)
                self.client = None
                return False
            await self.refresh_hosts()
            return True

        async def run_line(self, line: str) -> bool:
            verb = line.split()[0] if line.split() else ""
            if verb == "start":
                print(f"pcontrol at {address} starts on its own machine, not from here",
                      file=sys.stderr)
                return True
            if verb == "stop":
                line = "shutdown" + line.strip()[len("stop"):]
            return await super().run_line(line)

    return asyncio.run(RemotePrompt(paths).loop())


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
