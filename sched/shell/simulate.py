"""`sched --simulate DURATION ... FILE...`: run scripts on virtual time and print what happened.

    sched --simulate 1d tasks.sched                      a day, from now, every job 1 s, exit 0
    sched --simulate 7d --start "2025-03-03 00:00" --faults faults.txt --seed 4 --json tasks.sched
    sched --netjobs CONFIG -s                           a NetJobs file's tests, simulated

The world (psched.scheduler.simulation) is built before the first script runs; the scripts
run as `sched FILE...` runs them (exit and exec macros for real, `exec` recorded), then
virtual time goes on to the end of DURATION whatever the scripts do (a `wait` ends there).
Then the timeline and the summaries go to stdout (text, or JSON lines with --json). A
malformed faults file or a bad option is refused before anything runs (status 2); a failing
script prints its error and the timeline up to then (status 1).
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Any, Callable

from ..lang.clock import local_zone
from ..lang.errors import SchedError
from ..scheduler.eventloop import close_loop
from ..scheduler.simfaults import Faults, parse_faults, parse_span
from ..scheduler.simulation import SimOptions, Simulation
from .session import ExitStatus, run_exit_hooks

__all__ = ["simulate", "options_from"]

NETJOBS_DURATION = 86400.0
"""`sched --netjobs FILE -s` without --simulate: at most a day of virtual time."""

_START_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


class OptionError(ValueError):
    """A bad --simulate option (the message names it)."""


def parse_start(text: str | None, now: float) -> float:
    """--start: `YYYY-MM-DD[ HH:MM[:SS]]` or `HH:MM` (today) in the local zone; None: now."""
    tz = local_zone()
    if text is None:
        return now
    try:
        return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp() if "T" in text or "-" in text \
            else _today_at(text, now)
    except ValueError:
        pass
    for fmt in _START_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=tz).timestamp()
        except ValueError:
            continue
    raise OptionError(f"--start: expected YYYY-MM-DD HH:MM or HH:MM, got '{text}'")


def _today_at(text: str, now: float) -> float:
    hour, _, minute = text.partition(":")
    today = datetime.fromtimestamp(now, local_zone())
    return today.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0).timestamp()


def options_from(duration: str, start: str | None, faults_path: str | None, seed: int, job_time: str,
                 now: float) -> SimOptions:
    """The simulation's options from the command line (OptionError, FaultsError)."""
    try:
        seconds = parse_span(duration)
    except ValueError as exc:
        raise OptionError(f"--simulate: {exc}") from None
    if seconds <= 0:
        raise OptionError("--simulate: the duration must be more than 0")
    try:
        job_seconds = parse_span(job_time) if not job_time.replace(".", "", 1).isdigit() else float(job_time)
    except ValueError as exc:
        raise OptionError(f"--job-time: {exc}") from None
    start_wall = parse_start(start, now)
    faults = Faults()
    if faults_path is not None:
        try:
            with open(faults_path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise OptionError(f"--faults: cannot read {faults_path}: {exc.strerror or exc}") from None
        faults = parse_faults(text, faults_path, start_wall, local_zone())
    return SimOptions(duration=seconds, start_wall=start_wall, tz=local_zone(), faults=faults, seed=seed,
                      job_time=job_seconds)


def simulate(interp: Any, options: SimOptions, script: Callable[[], Any], *, as_json: bool,
             wait_to_end: bool = True) -> int:
    """Run `script` in a simulation and print the timeline; the exit status."""
    logging.getLogger().setLevel(logging.ERROR)  # the real components' warnings are in the timeline
    sim = Simulation(interp, options)
    status: int = ExitStatus.OK
    try:
        status = sim.run(script, wait_to_end=wait_to_end)
    except SchedError as err:
        print(err.render(), file=sys.stderr)
        sim.timeline.finish(sim.sched)
        status = ExitStatus.SCRIPT_FAILED
    finally:
        sim.timeline.over = True
        run_exit_hooks(interp)
        close_loop()
    out = sys.stdout
    if as_json:
        for line in sim.timeline.json_lines():
            out.write(line + "\n")
    else:
        out.write(sim.timeline.text() + "\n")
    out.flush()
    return status
