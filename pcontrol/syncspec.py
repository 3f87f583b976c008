"""What a synchronized run asks for and what it came to: the spec, the result, their text.

    spec = SyncSpec.from_record(data)     # validated; UsageError names what is wrong
    text = result_text(result)            # the table `sync run` and sched's `syncrun` print

The spec travels as JSON from a client (sched's `sync` block, `sched --netjobs`) to
pcontrol's `sync run`; the result comes back as a plain dict (RESULT FIELDS below), which
sched returns as a Tcl dict or as JSON. Times in a result are milliseconds from the run's
instant (`start_ms`) or seconds (`run_time`); outcomes use the job vocabulary (EXIT n,
CRASH SIGNAME, TIMEOUT, DOWN, KILLED).
"""

from __future__ import annotations

import math
import shlex
import signal as signals
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .outcome import Outcome
from .textfmt import table

__all__ = ["MINHOSTS_ALL", "SyncSpec", "SyncTarget", "outcome_text", "percentile", "result_text"]

MINHOSTS_ALL = "all"
LATE_NOTE_MS = 1.0
"""A target that started this many ms past the instant (by its own clock) gets a note."""


@dataclass(frozen=True)
class SyncTarget:
    host: str
    argv: tuple[str, ...]
    timeout: float | None = None          # seconds from the run's instant; None: the block's
    line: int | None = None               # where it was written (for errors), if known
    no_timeout: bool = False              # `-timeout none` of its own: waits even past the block's


@dataclass(frozen=True)
class SyncSpec:
    name: str
    targets: tuple[SyncTarget, ...]
    minhosts: int | None = None           # None: all
    timeout: float | None = None          # None: wait forever
    add_hosts: bool = False               # unknown hosts are added as ssh hosts (NetJobs)
    sequential: bool = False              # the baseline: send go to each target in turn
    lead: float | None = None             # seconds ahead for the instant (None: from rtts)
    where: str = ""                       # "file:line" of the block, for errors

    @property
    def required(self) -> int:
        """How many targets must succeed for the run to succeed."""
        return len(self.targets) if self.minhosts is None else self.minhosts

    def target_timeout(self, target: SyncTarget) -> float | None:
        if target.no_timeout:
            return None
        return target.timeout if target.timeout is not None else self.timeout

    @classmethod
    def from_record(cls, data: Any) -> "SyncSpec":
        if not isinstance(data, dict):
            raise UsageError("a sync spec must be a JSON object")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError("a sync spec needs a name")
        where = str(data.get("where") or "")
        raw_targets = data.get("targets")
        if not isinstance(raw_targets, list) or not raw_targets:
            raise UsageError(f"sync {name}: no targets (give it `target HOST COMMAND...` lines)")
        targets = tuple(_target(name, index, item) for index, item in enumerate(raw_targets, 1))
        minhosts = _minhosts(name, data.get("minhosts", MINHOSTS_ALL), len(targets))
        return cls(name=name, targets=targets, minhosts=minhosts,
                   timeout=_seconds(name, "-timeout", data.get("timeout")),
                   add_hosts=bool(data.get("add_hosts", False)),
                   sequential=bool(data.get("sequential", False)),
                   lead=_seconds(name, "lead", data.get("lead")), where=where)

    def to_record(self) -> dict[str, Any]:
        return {"name": self.name, "minhosts": MINHOSTS_ALL if self.minhosts is None else self.minhosts,
                "timeout": self.timeout, "add_hosts": self.add_hosts, "sequential": self.sequential,
                "lead": self.lead, "where": self.where,
                "targets": [{"host": t.host, "argv": list(t.argv), "timeout": t.timeout, "line": t.line,
                             "no_timeout": t.no_timeout}
                            for t in self.targets]}


def _target(name: str, index: int, item: Any) -> SyncTarget:
    if not isinstance(item, dict):
        raise UsageError(f"sync {name}: target {index} must be an object")
    line = item.get("line") if isinstance(item.get("line"), int) else None
    at = f"sync {name}: target {index}" + (f" (line {line})" if line else "")
    host = item.get("host")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise UsageError(f"{at}: bad host name {host!r}")
    argv = item.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(w, str) for w in argv):
        raise UsageError(f"{at} on {host} has no command")
    if any("\0" in w for w in argv):
        raise UsageError(f"{at}: the command holds a NUL byte")
    return SyncTarget(host, tuple(argv), _seconds(name, f"target {index} -timeout", item.get("timeout")), line,
                      bool(item.get("no_timeout", False)))


def _minhosts(name: str, value: Any, count: int) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() == MINHOSTS_ALL):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"sync {name}: -minhosts must be `all` or a whole number >= 0, got {value!r}")
    if value > count:
        raise UsageError(f"sync {name}: -minhosts {value} is more than its {count} target(s)")
    return value


def _seconds(name: str, what: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"sync {name}: {what} must be a number of seconds >= 0 or none, got {value!r}")
    return float(value)


# -- results -------------------------------------------------------------------------------------
#
# RESULT FIELDS
#   name, verdict ("success" | "failure"), reason, instant (wall clock), lead_ms,
#   succeeded, required, total, skew_ms {max, p95}, sequential,
#   targets: [{index, host, command, start_ms, run_time, outcome, status, signal, reason,
#              late_ms, offset_ms, stdout, stderr}]


def outcome_text(outcome: Outcome | None, status: int | None, sig: int | None) -> str:
    """`EXIT 3`, `CRASH SIGKILL`, `TIMEOUT`... (the job vocabulary)."""
    if outcome is None:
        return "-"
    if outcome is Outcome.EXIT:
        return f"EXIT {status}"
    if outcome is Outcome.CRASH and sig is not None:
        try:
            return f"CRASH {signals.Signals(sig).name}"
        except ValueError:
            return f"CRASH {sig}"
    return outcome.value


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def result_text(result: dict[str, Any], *, output: bool = True) -> str:
    """The table of targets, their output, and the run's line (skew, successes, verdict)."""
    rows = []
    for t in result["targets"]:
        run_time = "-" if t["run_time"] is None else f"{t['run_time']:.3f}"
        note = t["reason"] or ""
        if t.get("late_ms") is not None and t["late_ms"] >= LATE_NOTE_MS and not result.get("sequential"):
            note = f"started {t['late_ms']:.1f} ms after the instant (its go came late)" + (f"; {note}" if note else "")
        rows.append((t["index"], t["host"], _short(shlex.join(t["command"])), _ms(t["start_ms"]),
                     run_time, t["outcome"], note))
    lines = [f"sync {result['name']}" + (" (sequential start)" if result.get("sequential") else ""),
             table(("#", "HOST", "COMMAND", "START MS", "RUN S", "OUTCOME", "NOTE"), rows)]
    if output:
        for t in result["targets"]:
            for stream in ("stdout", "stderr"):
                if t[stream]:
                    lines.append(f"--- {t['index']} {t['host']} {stream}")
                    lines.append(t[stream].rstrip("\n"))
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result: dict[str, Any]) -> str:
    skew = result["skew_ms"]
    skew_text = ("start skew: no target started" if skew["max"] is None else
                 f"start skew: max-min {skew['max']:.3f} ms, p95 {skew['p95']:.3f} ms")
    text = (f"{skew_text}; {result['succeeded']}/{result['total']} succeeded "
            f"(needed {result['required']}); verdict: {result['verdict']}")
    if result.get("reason"):
        text += f" ({result['reason']})"
    return text


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
