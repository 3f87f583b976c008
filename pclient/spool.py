"""The agent's spool: the whole output of jobs run with `spool`, kept until the controller drops it.

    spool = Spool.default().of(key)              # $PCLIENT_SPOOL_DIR, else ~/.cache/pclient/spool; per controller
    out, err = spool.files("17")                 # OutputFile destinations for jobproc
    data, eof = spool.read("17", "stdout", offset, size)
    spool.drop("17")

jobproc streams a spooled job's stdout and stderr, every byte, into `<dir>/<key>/<job>.stdout`
and `<dir>/<key>/<job>.stderr`, where `key` names the controller (job ids are a controller's
own: two controllers' agents on one host must not share files) (each replaced at once when the job ends, so a reader never sees half of
one).  The controller reads them back in pieces (`fetch`) and removes them (`drop`) once its
scheduler has them.  The directory is on disk, not in $XDG_RUNTIME_DIR, since outputs may be
large; any agent of the same user on the host can serve a job's files (a successor that took a
survivor's jobs over, for one).  Reads are blocking: the agent calls them through an executor.

A drop can be missed (a crash between forgetting a job and telling its agent, a journal lost, an
older version's leak), so the controller also has the spool swept (`sweep`, at connect and
hourly): the agent lists the jobs of its controller's part that it cannot account for itself,
the controller drops those it does not know either.  The agent alone removes what no controller
can ask for: the `.part` files of a dead agent (jobproc writes a running job's output there and
renames it at the end), the `agent-PID` part of a dead agent that never authenticated, and,
when its controller allows it, another controller's part that no live agent holds and that
nothing has touched for that long (its pcontrol is gone: a home wiped, a new secret).  Every
sweep touches the controller's own part, so a part in use never looks abandoned.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .containment import lives
from .output import OutputFile

__all__ = ["Spool", "STREAMS", "SWEEP_MAX_JOBS", "Swept"]

STREAMS = ("stdout", "stderr")
_JOB = r"[0-9A-Za-z._-]{1,64}"
"""A job's word, as its files are named."""
_JOB_WORD = re.compile(_JOB)
_KEY = re.compile(r"[0-9a-f]{16}")
"""A controller's part (lease.survivor_key)."""
_ANONYMOUS = re.compile(r"agent-([0-9]{1,10})")
"""The part of an agent that never authenticated (a version 1 controller): its pid."""
_FILE = re.compile(rf"(?P<job>{_JOB})\.(?P<stream>stdout|stderr)")
_PART = re.compile(rf"\.(?P<job>{_JOB})\.(?:stdout|stderr)\.pclient-(?P<pid>[0-9]{{1,10}})-[0-9]+\.part")
"""A running job's output as jobproc writes it (pclient.output), renamed when the job ends."""
SWEEP_MAX_JOBS = 10_000
"""Most jobs one sweep lists (the rest wait for the next): a line stays far below MAX_LINE."""


@dataclass
class Swept:
    """What one sweep found and did."""

    jobs: list[str] = field(default_factory=list)
    """Jobs of the controller's part that the agent cannot account for, older than the age."""
    files: int = 0
    """Files removed by the agent itself (dead agents' .part files, abandoned parts)."""
    bytes: int = 0
    parts: list[str] = field(default_factory=list)
    """Other controllers' parts (and dead anonymous agents') removed whole."""
    shared: bool = False
    """Another live agent of this controller's key: its jobs were not listed."""


class Spool:
    """A directory of spooled job outputs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def default(cls) -> "Spool":
        explicit = os.environ.get("PCLIENT_SPOOL_DIR")
        if explicit:
            return cls(Path(explicit))
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(Path(cache) / "pclient" / "spool")

    def of(self, key: str) -> "Spool":
        """The part of the spool that belongs to one controller."""
        if not _JOB_WORD.fullmatch(key) or key.startswith("."):
            raise ValueError(f"not a spool key: {key!r}")
        return Spool(self.directory / key)

    def path(self, job: str, stream: str) -> Path:
        if not _JOB_WORD.fullmatch(job) or job.startswith(".") or stream not in STREAMS:
            raise ValueError(f"no spool file for job {job!r} stream {stream!r}")
        return self.directory / f"{job}.{stream}"

    def files(self, job: str) -> tuple[OutputFile, OutputFile]:
        """Where jobproc writes the job's two streams (the directory is made if need be);
        ValueError or OSError when the job cannot be spooled here."""
        out, err = self.path(job, "stdout"), self.path(job, "stderr")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return (OutputFile(str(out)), OutputFile(str(err)))

    def read(self, job: str, stream: str, offset: int, size: int) -> tuple[bytes, bool]:
        """Up to `size` bytes from `offset`, and whether the stream ends after them."""
        if offset < 0 or size < 1:
            raise ValueError(f"offset must be >= 0 and size >= 1, got {offset} and {size}")
        with open(self.path(job, stream), "rb") as f:
            total = os.fstat(f.fileno()).st_size
            f.seek(offset)
            data = f.read(size)
        return data, offset + len(data) >= total

    def drop(self, job: str) -> None:
        for stream in STREAMS:
            try:
                self.path(job, stream).unlink()
            except (OSError, ValueError):
                pass

    def clear(self) -> None:
        """Remove this part of the spool, files and folder (an anonymous agent's, as it exits)."""
        for name, _ in _entries(self.directory):
            try:
                (self.directory / name).unlink()
            except OSError:
                pass
        try:
            self.directory.rmdir()
        except OSError:
            pass

    def sweep(self, key: str, *, accounted: set[str], sole: bool, age: float,
              abandon: float | None, live: Callable[[str], set[int]],
              now: Callable[[], float] = time.time) -> Swept:
        """Sweep the spool for the controller of part `key` (blocking: call it through an
        executor).  Lists the jobs with files in that part that are not `accounted` for and
        whose files are older than `age` s (only when `sole`: no other live agent of the key,
        which could hold jobs of its own); removes the `.part` files there of dead writers
        older than `age`; and with `abandon` (seconds), removes the parts of other controllers
        whose newest file is older than that, and anonymous parts of dead agents, when no
        live agent holds them (`live(key)`: the pids of the live agents of a key)."""
        swept = Swept(shared=not sole)
        mine = self.directory / key
        try:
            os.utime(mine)               # in use: never abandoned in another controller's eyes
        except OSError:
            pass
        agents = live(key) | {os.getpid()}
        newest: dict[str, float] = {}
        for name, stat in _entries(mine):
            part = _PART.fullmatch(name)
            if part is not None:
                pid = int(part["pid"])
                if pid not in agents and not _alive(pid) and now() - stat.st_mtime >= age:
                    _remove(mine / name, stat, swept)
                continue
            match = _FILE.fullmatch(name)
            if match is None or match["job"].startswith(".") or match["job"] in accounted:
                continue
            newest[match["job"]] = max(newest.get(match["job"], 0.0), stat.st_mtime)
        if sole:
            old = sorted(job for job, mtime in newest.items() if now() - mtime >= age)
            swept.jobs = old[:SWEEP_MAX_JOBS]
        if abandon is not None:
            for other in _others(self.directory, key):
                self._sweep_other(other, abandon, live, now, swept)
        return swept

    def _sweep_other(self, name: str, abandon: float, live: Callable[[str], set[int]],
                     now: Callable[[], float], swept: Swept) -> None:
        """Remove another part whole if nobody can ask for it any more."""
        anonymous = _ANONYMOUS.fullmatch(name)
        if anonymous is not None:
            if _alive(int(anonymous[1])):
                return
        elif live(name):
            return
        directory = self.directory / name
        entries = _entries(directory)
        try:
            touched = max([os.stat(directory).st_mtime] + [stat.st_mtime for _, stat in entries])
        except OSError:
            return
        if now() - touched < abandon:
            return
        for file_name, stat in entries:
            part = _PART.fullmatch(file_name)
            if part is not None and _alive(int(part["pid"])):
                return                  # written by a live process after all
        for file_name, stat in entries:
            _remove(directory / file_name, stat, swept)
        try:
            directory.rmdir()
        except OSError:
            return
        swept.parts.append(name)


def _entries(directory: Path) -> list[tuple[str, os.stat_result]]:
    """The regular files of a directory and their stat (none if it cannot be read)."""
    found = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_file(follow_symlinks=False):
                    found.append((entry.name, stat))
    except OSError:
        pass
    return found


def _others(root: Path, key: str) -> list[str]:
    """The other parts of the spool: controllers' keys and anonymous agents' (nothing else)."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(name for name in names if name != key
                  and (_KEY.fullmatch(name) or _ANONYMOUS.fullmatch(name)) and (root / name).is_dir())


def _remove(path: Path, stat: os.stat_result, swept: Swept) -> None:
    try:
        path.unlink()
    except OSError:
        return
    swept.files += 1
    swept.bytes += stat.st_size


def _alive(pid: int) -> bool:
    """Whether process `pid` may be alive (containment.lives; a pid of 0, which no writer has,
    counts as alive: its files are left alone)."""
    return pid <= 0 or lives(pid)
