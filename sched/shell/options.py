"""The command line of `sched`: its argparse parser, and `--version`.

    argument_parser() -> argparse.ArgumentParser     every option, its help and its default

psched.shell.cli reads the common command line, `sched [FILE...] [-c SCRIPT]`, without it
(PLAIN_DEFAULTS there): argparse, with the shutil and gettext it loads and the building of this
parser, is about a tenth of the instructions of a `sched -c` start-up (issue 13). Any other
command line, an error and `-h` come here. The script's arguments (after `--`, or after the FILE
of `--args`) are split off by psched.shell.cli before either reads the rest: `--args` is here
for `-h` only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["argument_parser"]


class _VersionAction(argparse.Action):
    """`--version`: the installed version, looked up only when asked (importlib.metadata costs
    ~10 ms of every start-up otherwise)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        from pcontrol.version import package_version  # (only when asked: see there)

        parser._print_message(f"sched {package_version()}\n", sys.stdout)
        parser.exit()


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sched",
        usage="%(prog)s [OPTION ...] [FILE ...] [-c SCRIPT] [-- ARG ...]\n"
              "       %(prog)s [OPTION ...] --args FILE [ARG ...]",
        description="The sched shell: a Tcl-like language that schedules tasks and runs their jobs. "
                    "With no FILE and no -c, commands come from the prompt (a terminal) or from stdin. "
                    "The script's arguments, the words after -- (or after the FILE of --args), are its "
                    "$argv (a list) and $argc; $argv0 is the first FILE as given, else 'sched'.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="scripts to run in order")
    parser.add_argument("-c", dest="script", metavar="SCRIPT", help="run SCRIPT (after any FILEs) and leave")
    parser.add_argument("--args", action="store_true", default=argparse.SUPPRESS,
                        help="the last option: FILE, the word after it, is the script and every word after FILE "
                             "is one of its arguments, as `tclsh FILE ARG...` reads them; for a first line "
                             "`#!/usr/bin/env -S sched --args` (-- is then an argument like any other)")
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
