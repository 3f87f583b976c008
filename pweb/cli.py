"""`pcontrol web`: the status page, a process of its own beside pcontrol (and a sched server).

    pcontrol [--home DIR] [--connect HOST:PORT [--secret-file FILE]] web
             [--listen HOST:PORT] [--token-file FILE] [--sched-home DIR] [--no-sched]
             [--poll S] [--log-level LEVEL] [--ready-fd FD]

It reads pcontrol (the local socket of $SCHED_HOME, or --connect) and the sched server of
--sched-home (default: the same $SCHED_HOME) as a client, so neither daemon carries HTTP code,
and serves the page on --listen (default 127.0.0.1:8080; port 0: any free port, printed).
An address other than loopback needs --token-file. It runs in the foreground (systemd's
Type=simple; SIGTERM or Ctrl-C stops it). Only this module prints.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from pcontrol.address import format_address, parse_host_port
from pcontrol.client import ControllerAddress

from .access import AccessError, check_bind, read_token
from .app import WebState, make_app
from .feeds import DEFAULT_POLL, ControllerFeed, SchedFeed
from .live import Fanout
from .metrics import Metrics
from .mirror import DEFAULT_KEEP, JobMirror, MirrorListener

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEFAULT_LISTEN = "127.0.0.1:8080"


class _Both:
    """One MirrorListener that tells the metrics and the live updates."""

    def __init__(self, *listeners: MirrorListener):
        self._listeners = listeners

    def job_seen(self, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        for listener in self._listeners:
            listener.job_seen(record, before)

    def hosts_seen(self, records: Sequence[dict[str, Any]]) -> None:
        for listener in self._listeners:
            listener.hosts_seen(records)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcontrol web", description="the read-only status "
                                     "page and /metrics of a pcontrol (and its sched server)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help="where the page listens (default %(default)s; port 0: any free one)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="every request must carry the token in FILE (mode 600); needed "
                             "for any address other than loopback")
    parser.add_argument("--sched-home", default=None, metavar="DIR",
                        help="the $SCHED_HOME whose sched server's tasks are shown "
                             "(default: pcontrol's home)")
    parser.add_argument("--no-sched", action="store_true",
                        help="do not look for a sched server")
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL, metavar="S",
                        help="seconds between reads of the hosts, pcontrol's status and the "
                             "tasks (default %(default)s)")
    parser.add_argument("--keep", type=int, default=DEFAULT_KEEP, metavar="N",
                        help="finished jobs remembered for the page after pcontrol forgets "
                             "them (default %(default)s, and none older than 6 hours)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(home: Path, address: ControllerAddress, argv: Sequence[str]) -> int:
    """Run the page; the exit status."""
    options = _parser().parse_args(list(argv))
    try:
        host, port = parse_host_port(options.listen, lowest_port=0)
    except ValueError as exc:
        print(f"pcontrol web: --listen: {exc}", file=sys.stderr)
        return 2
    if options.poll <= 0:
        print("pcontrol web: --poll must be > 0", file=sys.stderr)
        return 2
    try:
        token = read_token(options.token_file) if options.token_file else None
        check_bind(host, token)
    except AccessError as exc:
        print(f"pcontrol web: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=options.log_level, format=LOG_FORMAT, stream=sys.stderr)
    sched_home = None if options.no_sched else Path(options.sched_home or home).expanduser()
    try:
        return asyncio.run(_serve(address, sched_home, host, port, token, options))
    except OSError as exc:
        print(f"pcontrol web: cannot listen on {format_address(host, port)}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1


async def _serve(address: ControllerAddress, sched_home: Path | None, host: str, port: int,
                 token: str | None, options: argparse.Namespace) -> int:
    metrics = Metrics()
    fanout = Fanout()
    mirror = JobMirror(_Both(metrics, fanout), keep=max(0, options.keep))
    controller = ControllerFeed(address, mirror, metrics, poll=options.poll,
                                on_change=fanout.changed)
    sched = (SchedFeed(sched_home, poll=options.poll, on_change=fanout.changed, listener=metrics)
             if sched_home is not None else None)
    app = make_app(WebState(mirror, controller, sched, metrics, fanout, token))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound = runner.addresses[0]
    where = format_address(bound[0], bound[1])
    print(f"pcontrol web: http://{where}/ (pcontrol: {address}"
          + (f"; sched server of {sched_home}" if sched_home is not None else "") + ")",
          flush=True)
    if options.ready_fd is not None:
        os.write(options.ready_fd, f"{bound[1]}\n".encode())
        os.close(options.ready_fd)
    tasks = [asyncio.create_task(controller.run(), name="pweb-controller")]
    if sched is not None:
        tasks.append(asyncio.create_task(sched.run(), name="pweb-sched"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await _cancel_all(tasks)
        await runner.cleanup()
    return 0


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    """Cancel the feeds and wait for them, cancelling again any that went on: Python 3.11's
    asyncio.wait_for loses a cancellation that comes as its inner request completes (a page
    asked to stop then served on; seen once under load, the SIGTERM waited on for 10 s)."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
