"""Synchronized runs as the scheduler knows them: the `sync` block's definition and its result.

    sync fio4k -minhosts 3 -timeout 5m -log /var/log/fio
      target node1 ./fio.sh 4k
      target -timeout 30s node2 ./fio.sh 4k
    end

A `sync` block (psched.scheduler.commands.sync) makes a SyncDef and keeps it in the
interpreter's table (`sync_defs`); `syncrun NAME`, a task's `sync NAME` directive
(psched.scheduler.syncjobs) and `sched --netjobs` (psched.shell.netjobs) turn one into the spec pcontrol's `sync run` takes
(pcontrol.syncspec) and read the result back. Durations are NetJobs': seconds, or a number
with s, m or h, or `none` (wait forever). The pure parts here take no clock.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..lang.tcllist import join_list
from .timing import duration_seconds

__all__ = ["DurationError", "SyncDef", "SyncTargetDef", "parse_duration", "parse_minhosts",
           "result_dict", "sync_defs", "write_run_log"]



class DurationError(ValueError):
    """A duration or -minhosts value that cannot be read; the message says what was expected."""


def parse_duration(text: str, what: str = "-timeout") -> float | None:
    """Seconds, from `90`, `90s`, `5m`, `1.5h`, `1h30m` (timing.duration_seconds) or `none`
    (None: no limit)."""
    word = text.strip()
    if word.lower() == "none":
        return None
    seconds = duration_seconds(word)
    if seconds is None:
        raise DurationError(f"{what} expects seconds, a number with s, m or h (330s, 5m, 2h, 1h30m) "
                            f"or none, got '{text}'")
    if not math.isfinite(seconds):
        raise DurationError(f"{what} is too large: '{text}'")
    return seconds


def parse_minhosts(text: str) -> int | None:
    """`all` (None) or a whole number >= 0."""
    word = text.strip()
    if word.lower() == "all":
        return None
    if not word.isdigit():
        raise DurationError(f"-minhosts expects all or a whole number >= 0, got '{text}'")
    return int(word)


@dataclass(frozen=True)
class SyncTargetDef:
    host: str
    argv: tuple[str, ...]
    timeout: float | None = None       # None here: the block's timeout
    timeout_set: bool = False          # `-timeout none` on the target overrides the block's
    line: int | None = None


@dataclass
class SyncDef:
    name: str
    targets: list[SyncTargetDef] = field(default_factory=list)
    minhosts: int | None = None        # None: all
    timeout: float | None = None
    log_dir: str | None = None
    where: str = ""                    # file:line of the block
    add_hosts: bool = False            # NetJobs: a target host pcontrol lacks is added (ssh)

    def to_spec(self) -> dict[str, Any]:
        """The JSON spec of pcontrol's `sync run` (pcontrol.syncspec.SyncSpec)."""
        targets = [{"host": t.host, "argv": list(t.argv), "timeout": t.timeout,
                    "no_timeout": t.timeout_set and t.timeout is None, "line": t.line}
                   for t in self.targets]
        return {"name": self.name, "minhosts": "all" if self.minhosts is None else self.minhosts,
                "timeout": self.timeout, "targets": targets, "add_hosts": self.add_hosts,
                "where": self.where}


def sync_defs(interp: Any) -> dict[str, SyncDef]:
    """The interpreter's sync definitions by name (made on first use)."""
    table = interp.extensions.get("sync_defs")
    if table is None:
        table = interp.extensions["sync_defs"] = {}
    return table


# -- results --------------------------------------------------------------------------------------


def result_dict(result: dict[str, Any]) -> str:
    """pcontrol's result as a Tcl dict: the run's fields, `skew_max_ms`/`skew_p95_ms`, and
    `targets`, a list with one dict per target (host, command, start_ms, run_time, outcome,
    status, signal, reason, late_ms, offset_ms, stdout, stderr)."""
    skew = result.get("skew_ms") or {}
    pairs = [("name", result["name"]), ("verdict", result["verdict"]), ("reason", result.get("reason") or ""),
             ("succeeded", result["succeeded"]), ("required", result["required"]), ("total", result["total"]),
             ("skew_max_ms", skew.get("max")), ("skew_p95_ms", skew.get("p95")),
             ("instant", result.get("instant")), ("lead_ms", result.get("lead_ms")),
             ("targets", join_list(_target_dict(t) for t in result["targets"]))]
    return _tcl_dict(pairs)


def _target_dict(target: dict[str, Any]) -> str:
    keys = ("index", "host", "start_ms", "run_time", "outcome", "status", "signal", "reason",
            "late_ms", "offset_ms", "stdout", "stderr")
    pairs = [(k, target.get(k)) for k in keys]
    pairs.insert(2, ("command", join_list(target["command"])))
    return _tcl_dict(pairs)


def _tcl_dict(pairs: list[tuple[str, Any]]) -> str:
    words: list[str] = []
    for key, value in pairs:
        words.append(key)
        words.append("" if value is None else str(value))
    return join_list(words)


def write_run_log(directory: str, name: str, text: str, now: float | None = None) -> str:
    """One timestamped log file per run (NAME-YYYYmmdd-HHMMSS[-N].log); its path."""
    now = time.time() if now is None else now
    os.makedirs(directory, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = os.path.join(directory, f"{name}-{stamp}")
    path, n = base + ".log", 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}.log"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# sync {name} at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}\n")
        fh.write(text if text.endswith("\n") else text + "\n")
    return path
