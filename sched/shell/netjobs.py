"""`sched --netjobs FILE`: NetJobs configuration files, run unchanged as sync runs.

    test0:                                  a test block: a label and a colon
    -generaltimeout: none                   optional, before the targets: seconds, s/m/h, none
    -minhosts: all                          optional, before the targets: all or N >= 0
    localhost: "echo 'hello, world'"        TARGET: "COMMAND" (run by /bin/sh, as NetJobs did)
    -timeout: 1s                            optional, after a target line: that target's limit
    end

`#` starts a comment line; white space around the colons and at the ends of lines is free;
blank lines are ignored. `parse_netjobs` reads the whole file before anything runs and
raises NetJobsError naming the file, the line, the column and what was expected.
`run_netjobs` runs each test in order as a sync run (psched.scheduler.syncjobs; a target host that is
not a pcontrol host yet is added as an ssh host), prints each target's output as NetJobs
did, followed by our skew line; -v prints the progress and the full table, -l writes a
timestamped log per test beside the configuration file.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from pcontrol.syncspec import result_text, summary_line

from ..lang.errors import FileFormatError
from ..scheduler.attach import controller_of, scheduler_of
from ..scheduler.eventloop import run_until
from ..scheduler.syncdefs import DurationError, SyncDef, SyncTargetDef, parse_duration, parse_minhosts, write_run_log
from ..scheduler.syncjobs import SyncFailed, run_sync

__all__ = ["NetJobsError", "parse_netjobs", "run_netjobs", "run_netjobs_file"]

_LABEL = re.compile(r"[A-Za-z0-9_.-]+")


class NetJobsError(FileFormatError):
    """A malformed NetJobs file: where, and what was expected."""


@dataclass
class _Open:
    sync: SyncDef
    line: int
    has_target: bool = False


def parse_netjobs(text: str, path: str = "<netjobs>") -> list[SyncDef]:
    """The tests of a NetJobs configuration, in order (NetJobsError if it is malformed)."""
    tests: list[SyncDef] = []
    current: _Open | None = None
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())

        def fail(message: str, column: int = 1) -> NetJobsError:
            return NetJobsError(path, number, indent + column, message, raw)

        if not line or line.startswith("#"):
            continue
        if current is None:
            label, colon, rest = line.partition(":")
            label = label.strip()
            if not colon or rest.strip() or not _LABEL.fullmatch(label):
                raise fail('expected a test label followed by a colon (like "test0:")'
                           + (f", got {line!r}" if line != "end" else ", got `end` outside a test"))
            if label in seen:
                raise fail(f"test label {label!r} is used twice")
            seen.add(label)
            current = _Open(SyncDef(label, add_hosts=True, where=f"{path}:{number}"), number)
            continue
        if line == "end":
            if not current.sync.targets:
                raise fail(f"test {current.sync.name} (line {current.line}) has no targets: "
                           'expected lines like TARGET: "COMMAND" before `end`')
            if current.sync.minhosts is not None and current.sync.minhosts > len(current.sync.targets):
                raise fail(f"test {current.sync.name}: -minhosts {current.sync.minhosts} is more than "
                           f"its {len(current.sync.targets)} target(s)")
            tests.append(current.sync)
            current = None
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if colon:
            after = line.index(":") + 1
            value_column = after + len(line[after:]) - len(line[after:].lstrip()) + 1
        else:
            raise fail('expected "KEY: VALUE": a target line (TARGET: "COMMAND"), an option '
                       "(-generaltimeout:, -minhosts:, -timeout:) or `end`")
        if key.startswith("-"):
            _option(current, key, value, fail, value_column)
            continue
        if not key or any(c.isspace() for c in key):
            raise fail(f"bad target {key!r}: expected a host name or address before the colon")
        if len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise fail('expected the command in quotation marks: TARGET: "COMMAND"', value_column)
        command = value[1:-1]
        if not command.strip():
            raise fail(f"target {key} has no command", value_column)
        current.sync.targets.append(SyncTargetDef(key, ("/bin/sh", "-c", command), line=number))
        current.has_target = True
    if current is not None:
        raise NetJobsError(path, current.line, 1, f"test {current.sync.name} opened at line "
                           f"{current.line} has no `end`")
    if not tests:
        raise NetJobsError(path, 1, 1, 'no tests: expected a test block ("test0:" ... "end")')
    return tests


def _option(current: _Open, key: str, value: str, fail: Callable[..., NetJobsError], column: int) -> None:
    sync = current.sync
    try:
        if key == "-generaltimeout":
            if current.has_target:
                raise fail("-generaltimeout must come before the targets of its test")
            sync.timeout = parse_duration(value, key)
        elif key == "-minhosts":
            if current.has_target:
                raise fail("-minhosts must come before the targets of its test")
            sync.minhosts = parse_minhosts(value)
        elif key == "-timeout":
            if not sync.targets:
                raise fail("-timeout belongs after a target line (TARGET: \"COMMAND\")")
            last = sync.targets[-1]
            sync.targets[-1] = SyncTargetDef(last.host, last.argv, parse_duration(value, key), True, last.line)
        else:
            raise fail(f"unknown option {key}: expected -generaltimeout, -minhosts or -timeout")
    except DurationError as err:
        raise fail(str(err), column) from None


def run_netjobs(path: str, run: Callable[[SyncDef], dict[str, Any]], out: TextIO, *,
                verbose: bool = False, log: bool = False) -> bool:
    """Run every test of the file in order; True if every verdict was success.

    `run` performs one sync run (the CLI hands in one through its controller link)."""
    with open(path, encoding="utf-8") as fh:
        tests = parse_netjobs(fh.read(), path)
    all_ok = True
    for sync in tests:
        if verbose:
            out.write(f"{sync.name}: starting {len(sync.targets)} target(s) on "
                      f"{len({t.host for t in sync.targets})} host(s)\n")
        result = run(sync)
        if verbose and result.get("added_hosts"):
            out.write(f"{sync.name}: added pcontrol host(s) {', '.join(result['added_hosts'])} "
                      "(ssh NAME pclient; localhost: a local agent)\n")
        out.write(netjobs_text(result, verbose=verbose) + "\n")
        if log:
            directory = os.path.dirname(os.path.abspath(path))
            written = write_run_log(directory, sync.name, result_text(result, output=True))
            if verbose:
                out.write(f"{sync.name}: log {written}\n")
        out.flush()
        all_ok = all_ok and result["verdict"] == "success"
    return all_ok


def netjobs_text(result: dict[str, Any], *, verbose: bool = False) -> str:
    """A test's results as NetJobs printed them (each target's output), and our skew line."""
    lines = [f"{result['name']}:"]
    if verbose:
        lines.append(result_text(result, output=False))
    for t in result["targets"]:
        command = t["command"][-1] if t["command"][:2] == ["/bin/sh", "-c"] else " ".join(t["command"])
        start = "" if t["start_ms"] is None else f", start {t['start_ms']:+.3f} ms"
        lines.append(f'{t["host"]}: "{command}" -> {t["outcome"]}{start}'
                     + (f" ({t['reason']})" if t["reason"] else ""))
        for stream in ("stdout", "stderr"):
            text = t[stream].rstrip("\n")
            if text:
                lines.extend("    " + out for out in text.splitlines())
    if not verbose:          # the table of -v ends with it already
        lines.append(summary_line(result))
    return "\n".join(lines)


def run_netjobs_file(interp: Any, path: str, *, verbose: bool = False, log: bool = False) -> int:
    """`sched --netjobs FILE`: the exit status (0: every test succeeded; 1: one failed or the
    file could not be read or run; the reason on stderr)."""
    link = controller_of(scheduler_of(interp))

    def run(sync: SyncDef) -> dict[str, Any]:
        return run_until(run_sync(link, sync), f"sync {sync.name}")

    try:
        ok = run_netjobs(path, run, sys.stdout, verbose=verbose, log=log)
    except NetJobsError as err:
        print(f"sched: {err.render()}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"sched: cannot read {path}: {err.strerror or err}", file=sys.stderr)
        return 1
    except SyncFailed as err:
        print(f"sched: {err}", file=sys.stderr)
        return 1
    finally:
        run_until(link.aclose(), "closing the controller link")
    return 0 if ok else 1
