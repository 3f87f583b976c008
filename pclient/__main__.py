"""Command line of the agent: `pclient [--slots N] [--host NAME] ...` or `python -m pclient`;
with --pull, of a pull probe instead (pclient.probe).

Parses the options, claims stdin/stdout for the protocol, sets up logging
(stderr or --log FILE, never stdout) and runs the agent until bye or EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Sequence, Union

from .agent import AGENT_NAME, DEFAULT_LEASE, WATCHDOG_MIN_SLACK, run_agent
from .jobproc import DEFAULT_KILL_GRACE
from .logsizes import DEFAULT_KEEP, DEFAULT_MAX_BYTES, size_argument
from .stdio import claim_stdio

LOG_FORMAT = "%(asctime)s pclient[%(process)d] %(levelname)s %(name)s: %(message)s"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pclient",
        description="Host agent: reads the pcontrol agent protocol (JSON lines) on stdin, "
                    "runs the jobs it is sent, reports on stdout.",
    )
    parser.add_argument("--slots", type=_positive_int, default=os.cpu_count() or 1,
                        help="jobs run at once (default: the number of CPUs, %(default)s here)")
    parser.add_argument("--host", help="host name to report (default: socket.gethostname())")
    parser.add_argument("--kill-grace", type=_seconds, default=DEFAULT_KILL_GRACE, metavar="SECONDS",
                        help="wait between SIGTERM and SIGKILL when killing a job (default: %(default)s)")
    parser.add_argument("--lease", type=_seconds, default=DEFAULT_LEASE, metavar="SECONDS",
                        help="after its controller is lost, keep the jobs this long for a successor "
                             "(only for a controller that sent auth; the controller may set it; "
                             "0: end them at once; default: %(default)s)")
    parser.add_argument("--watchdog-slack", type=_seconds, default=None, metavar="SECONDS",
                        help="when the controller sends its heartbeat, give it up once it has been "
                             "silent this long beyond its own DOWN limit (heartbeat x missed), as if "
                             "the connection had ended (default: one heartbeat, at least %g s)"
                             % WATCHDOG_MIN_SLACK)
    parser.add_argument("--log", metavar="FILE",
                        help="append the log to FILE (default: stderr, unless stderr is the protocol's own terminal or pipe)")
    parser.add_argument("--log-max-bytes", type=size_argument, default=DEFAULT_MAX_BYTES, metavar="SIZE",
                        help="with --log: rotate FILE past SIZE (10M, 512k; 0: never; default 10M). "
                             "SIGHUP does not reopen it: for an agent it means its terminal is gone")
    parser.add_argument("--log-keep", type=int, default=DEFAULT_KEEP, metavar="N",
                        help="with --log: rotated files kept (default %(default)s)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    parser.add_argument("--version", action="version", version=AGENT_NAME)
    return parser


def _setup_logging(log_file: Union[str, None], verbosity: int, stderr_is_stream: bool,
                   max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.Handler
    if log_file is not None:
        from .logfile import RotatingLog  # logging's handlers only for --log (start-up, issue 13)

        handler = RotatingLog(log_file, max_bytes, keep)
    elif stderr_is_stream:
        handler = logging.NullHandler()  # stderr would land in the protocol stream
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: Union[Sequence[str], None] = None) -> int:
    if os.getpid() == 1:  # a probe container's first process: a minimal init first (pclient.pidone)
        from .pidone import become_init_if_pid1

        become_init_if_pid1()
    words = list(sys.argv[1:] if argv is None else argv)
    if any(w == "--pull" or w.startswith("--pull=") for w in words):
        from . import probe  # (only a probe loads it: an agent starts without its wire and TLS code)

        return probe.main(words)  # a pull probe (pclient.probe), not an agent on stdin/stdout
    args = build_parser().parse_args(argv)
    try:
        claimed = claim_stdio()
    except OSError as exc:
        print(f"pclient: cannot use stdin/stdout for the protocol: {exc}", file=sys.stderr)
        return 2
    try:
        _setup_logging(args.log, args.verbose, claimed.stderr_is_stream, args.log_max_bytes, args.log_keep)
    except OSError as exc:
        print(f"pclient: cannot open log file: {exc}", file=sys.stderr)
        claimed.restore()
        return 2
    try:
        return asyncio.run(run_agent(claimed, slots=args.slots, host=args.host, kill_grace=args.kill_grace,
                                     lease=args.lease, watchdog_slack=args.watchdog_slack))
    except KeyboardInterrupt:
        return 130
    finally:
        claimed.restore()
        logging.shutdown()


if __name__ == "__main__":
    sys.exit(main())
