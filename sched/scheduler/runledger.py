"""How many jobs each task has made in this run, kept in $SCHED_HOME so a restarted sched goes on.

A sched that leaves with controller jobs still out (`quit -force`, killed, crashed) leaves them
to the next sched on the same home, which adopts them. The jobs it adopts are only those the
controller still holds unharvested, so without more the next sched would not know of the
jobs that had already ended, and a task's `nmax` would not hold across the restart. The
ledger closes that gap:

    ledger = RunLedger(home / "made.log")
    counts = ledger.load()            # {task: made} left by an earlier sched ({} if none)
    ledger.record("work", 17)         # task `work` has now made 17 jobs (one line, flushed)
    ledger.clear()                    # the run ended cleanly: nothing to go on with

Each record is one JSON line `[made, task]`, written with a single write() and flushed, so a
sched killed at any moment leaves at worst a torn last line, which `load` skips. The last line
of a task wins. The file is rewritten compactly (atomically) when it grows past COMPACT_AT.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

__all__ = ["RunLedger", "LEDGER_NAME"]

LEDGER_NAME = "made.log"
COMPACT_AT = 1 << 20  # bytes


class RunLedger:
    """An append-only file of per-task job counts (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._counts: dict[str, int] = {}
        self._fh: IO[str] | None = None
        self._size = 0

    def load(self) -> dict[str, int]:
        """The counts an earlier sched left (and start keeping ours on top of them)."""
        counts: dict[str, int] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            log.warning("cannot read %s: %s; task counts start from 0", self.path, exc)
            text = ""
        for number, line in enumerate(text.splitlines(), 1):
            try:
                made, task = json.loads(line)
                if isinstance(made, int) and isinstance(task, str) and made >= 0:
                    counts[task] = made
                    continue
            except (ValueError, TypeError):
                pass
            log.warning("%s:%d: skipping a line that is not [made, task] (a torn write?)", self.path, number)
        self._counts = dict(counts)
        return counts

    def record(self, task: str, made: int) -> None:
        """Task `task` has made `made` jobs in this run."""
        if self._counts.get(task) == made:
            return
        self._counts[task] = made
        line = json.dumps([made, task]) + "\n"
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
                self._size = self._fh.tell()
            self._fh.write(line)
            self._fh.flush()
            self._size += len(line)
            if self._size > COMPACT_AT:
                self.compact()
        except OSError as exc:  # the count lives on in memory; only a restart would miss it
            log.warning("cannot write %s: %s", self.path, exc)

    def compact(self) -> None:
        """Rewrite the file with one line per task (atomically: a crash keeps the old file)."""
        self.close()
        tmp = self.path.with_name(self.path.name + ".new")
        with open(tmp, "w", encoding="utf-8") as fh:
            for task, made in self._counts.items():
                fh.write(json.dumps([made, task]) + "\n")
        os.replace(tmp, self.path)

    def clear(self) -> None:
        """The run ended with nothing left out: the next sched starts afresh."""
        self.close()
        self._counts.clear()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s; the next sched will go on from its counts", self.path, exc)

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
