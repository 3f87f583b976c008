"""How many jobs each task has made in this run, kept in $SCHED_HOME so a restarted sched goes on.

A sched that leaves with controller jobs still out (`quit -force`, killed, crashed) leaves them
to the next sched on the same home, which adopts them. The jobs it adopts are only those the
controller still holds unharvested, so without more the next sched would not know of the
jobs that had already ended, and a task's `nmax` would not hold across the restart. The
ledger closes that gap:

    ledger = RunLedger(home / "made.log")
    counts = ledger.load()            # {task: made} left by an earlier sched ({} if none)
    ledger.record("work", 17, unsent=key)   # ... the 17th not at the controller yet
    ledger.sent(key)                  # the controller has it (or it ended before reaching it)
    ledger.unsent                     # {key: task} of jobs made but never known sent
    ledger.record("jobs", 3, unsent=key, item="node-a\ta3")   # a sequence's job: which one
    ledger.items("jobs")              # the items of the task's sequence made so far
    ledger.clear()                    # the run ended cleanly: nothing to go on with

A job is counted when it is made, before it is sent; a sched killed between the two would
leave a count for a job that never reached the controller, and the next sched would make one
job too few. So such a job's submit key (the one the controller keeps in the job's
environment, psched.scheduler.remote.SUBMIT_KEY) is recorded with the count, and `sent` clears it.
The next sched drops from the count every key still unsent that the controller does not hold
(`forget_unsent`): each job of the run is then counted exactly once.

A task whose jobs come from a sequence (psched.scheduler.sequences) also needs to know which
jobs were made, not only how many: each is recorded as an item (`["item", task, item, key]`),
dropped again with its count when its key turns out never sent (`["unitem", task, item]`).

Only tasks whose jobs go to the controller are recorded: `host LOCAL` tasks start over with
each sched (their jobs die with it). One sched writes the ledger of its home and name
(psched.scheduler.home: its lock). Each record is one JSON line `[made, task]`; the lines of a
loop turn are written together at its end, or before the link next writes to the controller,
whichever comes first (`flush`), with a single write() in append mode, flushed, so that even
two writers' lines never interleave, and a
sched killed at any moment leaves at worst a torn last line, which `load` skips (the file is an
appendlog.AppendLog). The last line of a task wins. The file is rewritten compactly (atomically)
when it grows past appendlog.COMPACT_AT.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .appendlog import AppendLog

log = logging.getLogger(__name__)

__all__ = ["RunLedger", "LEDGER_NAME"]

LEDGER_NAME = "made.log"

_encode: Callable[[Any], str] | None = None


def _dumps(value: Any) -> str:
    """json.dumps(value), by a C encoder made once (pclient.jsontext), at the first record: one
    of a controller task's, whose backend has loaded pclient by then (three lines a job)."""
    global _encode
    if _encode is None:
        from pclient.jsontext import encoder  # not at import: a script of LOCAL tasks loads no pclient before its first job

        _encode = encoder()
    return _encode(value)


class RunLedger:
    """An append-only file of per-task job counts (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._counts: dict[str, int] = {}
        self.unsent: dict[str, str] = {}  # submit key -> task
        self._items: dict[str, dict[str, str | None]] = {}  # task -> {item: its submit key}
        self._file = AppendLog(self.path, "[made, task]")

    def load(self) -> dict[str, int]:
        """The counts an earlier sched left (and start keeping ours on top of them)."""
        counts: dict[str, int] = {}
        unsent: dict[str, str] = {}
        items: dict[str, dict[str, str | None]] = {}
        try:
            for number, line in self._file.replay():
                try:
                    record = json.loads(line)
                    if record[0] == "unsent" and len(record) == 3:
                        unsent[str(record[2])] = str(record[1])
                        continue
                    if record[0] == "sent" and len(record) == 2:
                        unsent.pop(str(record[1]), None)
                        continue
                    if record[0] == "item" and len(record) == 4:
                        items.setdefault(str(record[1]), {})[str(record[2])] = record[3]
                        continue
                    if record[0] == "unitem" and len(record) == 3:
                        items.get(str(record[1]), {}).pop(str(record[2]), None)
                        continue
                    made, task = record
                    if isinstance(made, int) and isinstance(task, str) and made >= 0:
                        counts[task] = made
                        continue
                except (ValueError, TypeError, IndexError, KeyError):
                    pass
                self._file.skip(number)
        except OSError as exc:
            log.warning("cannot read %s: %s; task counts start from 0", self.path, exc)
            counts, unsent, items = {}, {}, {}
        self._counts = dict(counts)
        self.unsent = dict(unsent)
        self._items = items
        return counts

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def items(self, task: str) -> list[str]:
        """The items (sequence jobs) task `task` has made in this run, in the order made."""
        return list(self._items.get(task, ()))

    def forget_unsent(self, held: set[str]) -> dict[str, int]:
        """Drop the jobs recorded unsent that the controller does not hold (`held`: the submit
        keys of every job it has of ours): they were never sent. Returns how many per task."""
        dropped: dict[str, int] = {}
        for key, task in list(self.unsent.items()):
            if key in held:
                self.sent(key)
                continue
            dropped[task] = dropped.get(task, 0) + 1
            made = max(0, self._counts.get(task, 0) - 1)
            lines = [_dumps(["sent", key]), _dumps([made, task])]
            task_items = self._items.get(task, {})
            for item in [i for i, k in task_items.items() if k == key]:  # made, never sent: to make again
                del task_items[item]
                lines.append(_dumps(["unitem", task, item]))
            self._write(*lines)
            self._counts[task] = made
            del self.unsent[key]
        return dropped

    def record(self, task: str, made: int, unsent: str | None = None, item: str | None = None) -> None:
        """Task `task` has made `made` jobs in this run (the last not sent yet: `unsent` is its
        key; `item`: which job of its sequence it is)."""
        if self._counts.get(task) == made and unsent is None and item is None:
            return
        self._counts[task] = made
        lines = [_dumps([made, task])]
        if unsent is not None:
            self.unsent[unsent] = task
            lines.append(_dumps(["unsent", task, unsent]))  # one write() with the count
        if item is not None:
            self._items.setdefault(task, {})[item] = unsent
            lines.append(_dumps(["item", task, item, unsent]))
        self._write(*lines)

    def sent(self, key: str) -> None:
        """The job of submit key `key` is at the controller (or ended without reaching it)."""
        if self.unsent.pop(key, None) is not None:
            self._write(_dumps(["sent", key]))

    def _write(self, *lines: str) -> None:
        # Held to the end of the loop turn: the jobs made and sent in one turn cost one write().
        # A count not written yet is of a job not sent yet (the link flushes the ledger before
        # every write to the controller), and a `sent` not written yet is of a job the
        # controller still holds (the ledger is flushed before its harvest too): a crash that
        # loses them loses nothing forget_unsent would not put right.
        try:
            self._file.hold(lines)
            if self._file.full:
                self.compact()
        except OSError as exc:  # the count lives on in memory; only a restart would miss it
            if self._file.failed():
                log.warning("cannot write %s: %s", self.path, exc)

    def flush(self) -> None:
        """Write the lines held now: something that depends on them is about to leave (a job
        to the controller; a harvest, after which it may forget the job)."""
        try:
            self._file.flush()
        except OSError as exc:
            if self._file.failed():
                log.warning("cannot write %s: %s", self.path, exc)

    def compact(self) -> None:
        """Rewrite the file with one line per task (atomically: a crash keeps the old file)."""
        self._file.rewrite([_dumps([made, task]) for task, made in self._counts.items()]
                           + [_dumps(["unsent", task, key]) for key, task in self.unsent.items()]
                           + [_dumps(["item", task, item, key]) for task, made_items in self._items.items()
                              for item, key in made_items.items()])

    def clear(self) -> None:
        """The run ended with nothing left out: the next sched starts afresh."""
        self._counts.clear()
        self.unsent.clear()
        self._items.clear()
        try:
            self._file.remove()
        except OSError as exc:
            log.warning("cannot remove %s: %s; the next sched will go on from its counts", self.path, exc)

    def close(self) -> None:
        self._file.close()
