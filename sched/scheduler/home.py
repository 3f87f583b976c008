"""The scheduler's own files in $SCHED_HOME, and the lock that makes it the only sched there.

    home = SchedHome.locate(name)      # $SCHED_HOME (default ~/.sched); name None or `--name NAME`
    home.acquire()                     # the lock, or HomeBusy naming the pid that holds it
    home.ledger_path, home.harvest_path                  # psched.scheduler.runledger, psched.scheduler.remote
    job_id = home.job_ids.next()       # unique across restarts of sched on this home and name
    home.marks.launched("backup", wall) / home.marks.last("backup")   # -exec spacing, kept
    home.release()                     # when sched leaves (the OS releases it if sched dies)

One sched per home and name. Two scheds on one home would share the run ledger, the harvest
log and the owner id at the controller: each would run the other's exit macros and count the
other's jobs. So the first sched that needs the home (`run`, a `controller` command, a
controller job) takes an exclusive `flock` on `sched.lock` and writes its pid there; a second
one is refused with a message naming that pid, unless it runs under another name
(`sched --name NAME`): then every file below has the name in it (`made-NAME.log`, ...) and
its owner id at the controller differs, so the two never meet. The lock is the kernel's:
a sched killed with SIGKILL leaves no stale lock. Within one process (tests make several
interpreters) the lock is shared, not refused.

Files (for the default name; with a name, `NAME` is inserted before the extension):
    sched.lock       the lock; its text is the holder's pid
    made.log         the run ledger (psched.scheduler.runledger)
    harvested.log    controller jobs whose exit macro began (+KEY) and ended (KEY) (psched.scheduler.remote)
    switchboard.log  messages waiting for a task's next job (psched.scheduler.switchboard)
    jobids           the first job id not yet handed out
    marks.json       each task's last launch (wall time), for `-exec` spacing across restarts
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from pathlib import Path

from pcontrol.paths import Paths

from ..lang.errors import TaskError
from .appendlog import WriteTrouble
from pclient.replacefile import replace_file

log = logging.getLogger(__name__)

__all__ = ["SchedHome", "HomeBusy", "JobIds", "TaskMarks", "valid_name"]

ID_BLOCK = 1000
"""Job ids are reserved in blocks (one small file write per block); a crash skips the rest."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# lock files this process holds: path -> (open file, holders)
_held: dict[Path, list] = {}


class HomeBusy(TaskError):
    """Another sched holds this home (under this name)."""


def valid_name(name: str) -> str | None:
    """Why `name` cannot name a sched (None: it can)."""
    if _NAME.match(name):
        return None
    return f'"{name}" cannot name a sched: use letters, digits, "_", "." and "-" (at most 64, not starting with "." or "-")'


class SchedHome:
    """One sched's files in $SCHED_HOME (see the module docstring)."""

    def __init__(self, path: Path, name: str | None = None):
        self.path = Path(path)
        self.name = name
        self._held = False
        self._ids: JobIds | None = None
        self._marks: TaskMarks | None = None

    @classmethod
    def locate(cls, name: str | None = None) -> "SchedHome":
        return cls(Paths.for_home(None).home, name)

    def file(self, stem: str, suffix: str = "") -> Path:
        tail = f"-{self.name}" if self.name else ""
        return self.path / f"{stem}{tail}{suffix}"

    @property
    def lock_path(self) -> Path:
        return self.file("sched", ".lock")

    @property
    def ledger_path(self) -> Path:
        return self.file("made", ".log")

    @property
    def harvest_path(self) -> Path:
        return self.file("harvested", ".log")

    @property
    def switchboard_path(self) -> Path:
        return self.file("switchboard", ".log")

    @property
    def held(self) -> bool:
        return self._held

    # --- the lock --------------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lock (once; again is a no-op). HomeBusy when another process holds it."""
        if self._held:
            return
        path = Path(os.path.abspath(self.lock_path))
        entry = _held.get(path)
        if entry is None:
            try:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fh = open(path, "a+", encoding="utf-8")
            except OSError as exc:
                raise TaskError(f"cannot use {self.path} as this sched's home: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                fh.close()
                raise HomeBusy(self._busy_message(holder)) from None
            fh.seek(0)
            fh.truncate()
            try:
                os.write(fh.fileno(), f"{os.getpid()}\n".encode())  # (unbuffered: nothing left to fail at close)
            except OSError as exc:  # (a full disk) the lock holds all the same; only the pid is not said
                log.warning("cannot write this sched's pid in %s: %s; a second sched on this home "
                            "is refused without it", path, exc.strerror or exc)
            entry = _held[path] = [fh, 0]
        entry[1] += 1
        self._held = True
        self._lock_key = path

    def _busy_message(self, holder: str) -> str:
        who = f'sched "{self.name}"' if self.name else "a sched"
        return (f"{who} already runs on {self.path} (pid {holder}, lock {self.lock_path}): one sched per "
                f"$SCHED_HOME; stop that one, set another SCHED_HOME, or give this one its own name: "
                f"sched --name NAME")

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        entry = _held.get(self._lock_key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _held[self._lock_key]
            try:
                entry[0].close()  # closing the file releases the flock
            except OSError:
                pass
        if self._ids is not None:
            self._ids = None

    # --- job ids and task marks ------------------------------------------------------------------

    @property
    def job_ids(self) -> "JobIds":
        if self._ids is None:
            self._ids = JobIds(self.file("jobids"))
        return self._ids

    @property
    def marks(self) -> "TaskMarks":
        if self._marks is None:
            self._marks = TaskMarks(self.file("marks", ".json"))
        return self._marks


class JobIds:
    """Job ids that never repeat on one home and name: the next free one is kept in a file,
    reserved a block at a time."""

    def __init__(self, path: Path):
        self.path = path
        self._next = 0
        self._limit = 0  # ids below this are reserved for us
        self._trouble = WriteTrouble(path)  # failing: the file does not say so yet, written at the next id

    def next(self) -> int:
        if self._next >= self._limit:
            self._reserve()
        elif self._trouble.failing:
            self._write()
        number = self._next
        self._next += 1
        return number

    def _write(self) -> None:
        try:
            _write_atomically(self.path, f"{self._limit}\n")
        except OSError as exc:
            if self._trouble.failed():
                log.warning("cannot write %s: %s; tried again at each job id until it can (the "
                            "next sched may repeat these ids if it starts before)", self.path, exc)
            return
        self._trouble.worked()

    def _reserve(self) -> None:
        start = 1
        try:
            start = max(1, int(self.path.read_text(encoding="utf-8").strip() or 1))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): job ids go on from this sched's own", self.path, exc)
        start = max(start, self._next)
        self._next, self._limit = start, start + ID_BLOCK
        self._write()


class TaskMarks:
    """Each task's last launch as wall time, so that `-exec` spacing holds across a restart
    (as systemd's Persistent= does for timers). Written only for tasks with an exec period."""

    def __init__(self, path: Path):
        self.path = path
        self._marks: dict[str, float] | None = None
        self._trouble = WriteTrouble(path)

    def _load(self) -> dict[str, float]:
        if self._marks is None:
            self._marks = {}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._marks = {str(k): float(v) for k, v in data.items()}
            except FileNotFoundError:
                pass
            except (OSError, ValueError, AttributeError, TypeError) as exc:
                log.warning("cannot read %s (%s): tasks' last launches are forgotten", self.path, exc)
        return self._marks

    def last(self, task: str) -> float | None:
        return self._load().get(task)

    def launched(self, task: str, wall: float) -> None:
        marks = self._load()
        marks[task] = wall
        try:
            _write_atomically(self.path, json.dumps(marks, sort_keys=True) + "\n")
        except OSError as exc:  # (the whole file is written at each launch: the next one has these)
            if self._trouble.failed():
                log.warning("cannot write %s: %s (said once until it works again)", self.path, exc)
            return
        self._trouble.worked()


def _write_atomically(path: Path, text: str) -> None:
    replace_file(path, text, dir_mode=0o700)
