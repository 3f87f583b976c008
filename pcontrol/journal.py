"""The journal: hosts and jobs in SQLite ($SCHED_HOME/pcontrol.db), so a restart keeps them.

The controller marks objects dirty as they change; the journal writes them in batches of at
most `batch_rows` rows (and `batch_bytes` bytes), one transaction each, one batch per
event-loop turn (scheduled with call_soon). So a burst of 200 job changes costs one commit,
not 200, and a burst of 100,000 (a restart that kills every job, a flood of submissions)
is written over many turns, each a few milliseconds, with the loop serving clients in
between. WAL mode with synchronous=NORMAL keeps a commit to a write() of the log.

Checkpoints (copying the log into the database, and the fsyncs that go with them) are the
one part of a write that waits for the disk: SQLite's automatic checkpoint ran inside a
commit every 1,000 pages and held the loop for 30-50 ms. So the automatic checkpoint is
off, and a checkpoint runs in a worker thread on a connection of its own whenever about
`checkpoint_bytes` of log have been written since the last one; the loop's writes go on
meanwhile. A checkpoint that raced writes leaves the log's end uncopied, and SQLite
starts the log afresh only after a checkpoint that copied all of it: so once the log
passes `wal_pause_bytes`, the next checkpoint runs with the write turns waiting (the loop
does not wait: it serves clients and agents, and what they change waits in the dirty set
and the outbox a few tens of milliseconds longer), which bounds the log.

Every change gets a sequence number. Dirty objects are written in the order they first
became dirty (each with its latest state), so after any batch every change numbered up to
`durable_seq` is on disk: the outbox (outbox.py) tells nobody of a change before that.

A change that nobody waits for is marked `lazy`: a harvest (its owner keeps its own record
of it for sched's HARVEST_DURABLE, 30 s), the deletion of a job forgotten `retention` s
after it (lost to a kill -9, it is forgotten again after the restart). It does not take a
write of its own but goes with the next one, or LAZY_WRITE s after at the latest, or at
once when someone waits for it (`write_soon`: the outbox queues something after it). In a
stream of jobs that is a commit fewer for most harvests, and for most forgotten jobs.

A failing write (full disk, read-only file, I/O error) is kept as `failure`; the batch is
rolled back, nothing dirty is dropped, and the write is retried with backoff (retry_min
doubling up to retry_max) until it works again. Meanwhile the controller refuses new jobs.

Rows of forgotten jobs are deleted; the file uses incremental auto-vacuum and gives freed
pages back to the file system a bounded step at a time once a quarter of it is free, and
the write-ahead log is truncated after checkpoints (journal_size_limit), so the files do
not grow without end.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from pclient import jsontext

from .model import Host, Job

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: Rows written per transaction (and per loop turn); 10-20 us each, so a few ms a batch.
BATCH_ROWS = 250
#: Bytes (records and outputs) after which a batch ends early: a job's output may be 2 MiB.
BATCH_BYTES = 1024 * 1024
#: Bytes of log between two checkpoints (SQLite's own default is 1,000 pages, ~4 MiB),
#: estimated as a page per row (a changed row rewrites its page) plus the bytes written.
CHECKPOINT_BYTES = 16 * 1024 * 1024
PAGE_BYTES = 4096
#: Bytes of log from which a checkpoint holds the writes until it has copied it all.
WAL_PAUSE_BYTES = 16 * 1024 * 1024
#: Seconds before the first retry of a failed write, and the longest wait between retries.
RETRY_MIN = 0.5
RETRY_MAX = 10.0
#: Free pages are given back once they are this share of the file (and at least VACUUM_MIN).
VACUUM_SHARE = 0.25
VACUUM_MIN_PAGES = 256
#: Pages given back per step (one step per loop turn).
VACUUM_STEP_PAGES = 2000
#: Bytes the write-ahead log is cut back to after a checkpoint.
WAL_SIZE_LIMIT = 16 * 1024 * 1024
#: Seconds a lazy change (nobody waits for it) waits at most for a write to go with.
LAZY_WRITE = 0.5

#: A row's record as json.dumps writes it, by a C encoder made once (pclient.jsontext).
_encode = jsontext.encoder()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta  (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs  (id INTEGER PRIMARY KEY, state TEXT NOT NULL, owner TEXT,
                                  record TEXT NOT NULL, stdout TEXT, stderr TEXT);
"""

#: A dirty object: ("job", id), ("host", name) or ("meta", key).
_Key = tuple[str, Union[int, str]]


@dataclass
class Loaded:
    """What a journal held when opened."""

    hosts: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    next_job_id: int = 1


class JournalError(Exception):
    """The journal cannot be used; the message says why and what to do about it."""


def _remedy(path: Path) -> str:
    return (f"restore it from a backup, or move it aside to start with an empty controller "
            f"(mv {path} {path}.bad, with its -wal and -shm files if there are any)")


def damaged(path: Path, why: object) -> JournalError:
    """The error for a journal that cannot be read, with the way out."""
    return JournalError(f"journal {path} is damaged ({why}): pcontrol will not start over it and "
                        f"forget its hosts and jobs; {_remedy(path)}")


class JournalFailed(Exception):
    """A change could not be written (the journal's `failure` says why)."""


@dataclass
class _Dirty:
    """One object to write: its latest state (None: delete its row) and the number of the
    first change not yet on disk."""

    first_seq: int
    value: Any


#: Upper bounds (seconds) of the journal's write-time tally (status -json, the web's /metrics).
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class WriteTimes:
    """How long the journal's transactions took: counts by upper bound, cumulative as
    Prometheus histograms are, and their sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(WRITE_BUCKETS) + 1)     # the last: above every bound
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(WRITE_BUCKETS, seconds)] += 1  # the first bound >= seconds
        self.total += seconds

    def summary(self) -> dict[str, Any]:
        running, buckets = 0, []
        for bound, count in zip((*WRITE_BUCKETS, "+Inf"), self.counts):
            running += count
            buckets.append([bound, running])
        return {"buckets": buckets, "sum": round(self.total, 6), "count": running}


class Journal:
    def __init__(self, path: Path | str, *, batch_rows: int = BATCH_ROWS,
                 batch_bytes: int = BATCH_BYTES, checkpoint_bytes: int = CHECKPOINT_BYTES,
                 wal_pause_bytes: int = WAL_PAUSE_BYTES,
                 retry_min: float = RETRY_MIN, retry_max: float = RETRY_MAX):
        self.path = Path(path)
        self.batch_rows = max(1, batch_rows)
        self.batch_bytes = max(1, batch_bytes)
        self.retry_min = retry_min
        self.retry_max = retry_max
        self._refuse_empty()
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise damaged(self.path, exc) from None
        self._checkpoints = _Checkpointer(self.path, checkpoint_bytes, wal_pause_bytes,
                                          self._checkpointed)
        self._dirty: dict[_Key, _Dirty] = {}     # in order of first change
        self.seq = 0
        """The number of the last change."""
        self._next_job_id: int | None = None   # written with the next deletion of a job's row
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._lazy = False         # _handle is the LAZY_WRITE timer of lazy changes
        self._retry_delay = retry_min
        self._vacuum_due = False
        self.failure: str | None = None
        self.failed_since: float | None = None    # loop time of the first failed write
        self.commits = 0
        self.write_times = WriteTimes()
        self.on_written: list[Callable[[], None]] = []
        """Called after every write attempt, good or bad (the outbox releases or fails)."""

    def _refuse_empty(self) -> None:
        """A journal that exists with no bytes was cut short (a full disk, a failed copy):
        SQLite would take it for a new one, and pcontrol would start with no hosts and no
        jobs while their agents still run them. A journal pcontrol creates is never left
        empty: the file and its schema are written before anything else."""
        try:
            empty = self.path.stat().st_size == 0
        except FileNotFoundError:
            return
        if empty:
            raise JournalError(f"journal {self.path} is empty (0 bytes): it was cut short (a full disk? "
                               f"a copy that failed?); pcontrol will not start over it and forget its "
                               f"hosts and jobs; {_remedy(self.path)}")

    def _setup(self) -> None:
        db = self._db
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            fresh = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            if not fresh:        # a journal from before: convert it once
                log.info("journal %s: switching to incremental vacuum", self.path)
                db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        db.execute("PRAGMA wal_autocheckpoint=0")      # _Checkpointer does it, off the loop
        db.executescript(_SCHEMA)
        version = self._meta("schema")
        if version is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(version) != SCHEMA_VERSION:
            raise JournalError(f"journal {self.path} has schema {version}; "
                               f"this pcontrol reads {SCHEMA_VERSION}")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> Loaded:
        """The hosts and jobs on disk; JournalError (with the remedy) when they cannot be read."""
        try:
            return self._load()
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
            raise damaged(self.path, exc) from None

    def _load(self) -> Loaded:
        loaded = Loaded()
        for (record,) in self._db.execute("SELECT record FROM hosts ORDER BY rowid"):
            loaded.hosts.append(json.loads(record))
        for record, stdout, stderr in self._db.execute(
                "SELECT record, stdout, stderr FROM jobs ORDER BY id"):
            data = json.loads(record)
            data["stdout"], data["stderr"] = stdout or "", stderr or ""
            loaded.jobs.append(Job.from_record(data))
        stored = self._meta("next_job_id")
        highest = max((job.id for job in loaded.jobs), default=0)
        loaded.next_job_id = max(int(stored) if stored else 1, highest + 1)
        self._next_job_id = loaded.next_job_id   # the highest row may go before a submission
        return loaded

    def row_count(self) -> int:
        """Job rows on disk (for tests and tools)."""
        return self._db.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def file_pages(self) -> tuple[int, int]:
        """(pages in the file, free pages among them)."""
        return (self._db.execute("PRAGMA page_count").fetchone()[0],
                self._db.execute("PRAGMA freelist_count").fetchone()[0])

    def size(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                total += os.stat(path).st_size
            except OSError:
                pass
        return total

    # -- changes ----------------------------------------------------------------------------

    def job_changed(self, job: Job, *, lazy: bool = False) -> None:
        """`lazy`: nobody waits for this change (see the module docstring)."""
        self._mark(("job", job.id), job, lazy)

    def job_forgotten(self, job_id: int, *, lazy: bool = False) -> None:
        """`lazy`: nobody waits for this deletion (see the module docstring)."""
        self._mark(("job", job_id), None, lazy)

    def host_changed(self, host: Host) -> None:
        self._mark(("host", host.name), host)

    def host_forgotten(self, name: str) -> None:
        self._mark(("host", name), None)

    def next_job_id_changed(self, value: int) -> None:
        """The next job id. Written only beside a job row's deletion, in its transaction: `load`
        takes the highest id on disk plus one when that is more, so the stored value matters
        only once the job of the highest id given out has no row (it was written at every turn
        with a submission before: a row per commit that nothing read)."""
        self._next_job_id = value

    def _mark(self, key: _Key, value: Any, lazy: bool = False) -> None:
        self.seq += 1
        entry = self._dirty.get(key)
        if entry is None:
            self._dirty[key] = _Dirty(self.seq, value)
        else:
            entry.value = value
        if lazy:
            self._schedule_lazy()
        else:
            self._schedule()

    def first_unwritten(self, kind: str, key: int | str) -> int | None:
        """The number of the first change of this object not yet on disk (None: none)."""
        entry = self._dirty.get((kind, key))
        return entry.first_seq if entry else None

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    @property
    def backlog(self) -> int:
        """Objects waiting to be written."""
        return len(self._dirty)

    @property
    def write_due(self) -> bool:
        """A write is scheduled for the next loop turn, and will call `on_written` (not
        while failing: a retry may be seconds away; nor while a checkpoint holds the
        writes; nor when only lazy changes wait)."""
        return self._handle is not None and not self._lazy and self.failure is None

    @property
    def durable_seq(self) -> int:
        """Every change numbered up to this is on disk."""
        for entry in self._dirty.values():
            return entry.first_seq - 1
        return self.seq

    # -- writing ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._handle is not None:
            if not self._lazy:
                return       # a write (or, while failing, a retry) is already due
            self._cancel_due()   # lazy changes go with this write, now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:      # no loop (tools, tests): write at once
            self.flush()
            return
        self._handle = loop.call_soon(self._write_turn)

    def _cancel_due(self) -> None:
        """No write, retry or lazy timer due any more."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._lazy = None, False

    def _schedule_lazy(self) -> None:
        if self._handle is not None:
            return           # a write, a retry or the lazy timer is already due
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._handle, self._lazy = loop.call_later(LAZY_WRITE, self._write_turn), True

    def write_soon(self) -> None:
        """Someone waits for the changes made so far: lazy ones too are written next turn."""
        if self._lazy:
            self._schedule()

    def _write_turn(self) -> None:
        """One batch; the next turn does the next (or a timer retries a failed one)."""
        self._handle, self._lazy = None, False
        if self._checkpoints.holding_writes:
            return               # _checkpointed schedules the next turn
        if self._dirty:
            self.write_batch()
        elif self._vacuum_due:
            self._vacuum_step()
        loop = asyncio.get_running_loop()
        if self.failure is not None:
            self._handle = loop.call_later(self._retry_delay, self._write_turn)
            self._retry_delay = min(self.retry_max, self._retry_delay * 2)
        elif self._dirty or self._vacuum_due:
            self._handle = loop.call_soon(self._write_turn)
        for callback in list(self.on_written):
            callback()

    def _checkpointed(self) -> None:
        """A checkpoint in the worker thread is over: writing goes on."""
        if self._dirty or self._vacuum_due:
            self._schedule()

    def write_batch(self) -> bool:
        """Write the oldest dirty objects, at most `batch_rows` of them and not much more
        than `batch_bytes`, in one transaction. True if it worked."""
        if not self._dirty:
            return True
        batch: list[_Key] = []
        size = 0
        jobs, gone_jobs, hosts, gone_hosts, meta = [], [], [], [], []
        room, most_bytes = self.batch_rows, self.batch_bytes
        for dirty_key, entry in self._dirty.items():
            if not room or size >= most_bytes:
                break
            room -= 1
            batch.append(dirty_key)
            kind, key = dirty_key
            value = entry.value
            if kind == "job":
                if value is None:
                    gone_jobs.append((key,))
                else:
                    record = _encode(value.to_row())
                    size += len(record) + len(value.stdout) + len(value.stderr)
                    jobs.append((value.id, value.state._value_, value.owner, record,
                                 value.stdout, value.stderr))
            elif kind == "host":
                if value is None:
                    gone_hosts.append((key,))
                else:
                    hosts.append((value.name, _encode(host_config(value))))
            else:
                meta.append((key, value))
        if gone_jobs and self._next_job_id is not None:
            meta.append(("next_job_id", str(self._next_job_id)))
        db = self._db
        began = time.perf_counter()
        try:
            db.execute("BEGIN")
            if jobs:
                db.executemany("INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?)", jobs)
            if gone_jobs:
                db.executemany("DELETE FROM jobs WHERE id = ?", gone_jobs)
            if hosts:
                db.executemany("INSERT OR REPLACE INTO hosts VALUES (?,?)", hosts)
            if gone_hosts:
                db.executemany("DELETE FROM hosts WHERE name = ?", gone_hosts)
            if meta:
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?,?)", meta)
            db.execute("COMMIT")
        except (sqlite3.Error, OverflowError, ValueError) as exc:  # (a value SQLite cannot hold: the same)
            self._failed(exc)
            return False
        self.write_times.add(time.perf_counter() - began)
        if len(batch) == len(self._dirty):
            self._dirty.clear()
        else:
            for key in batch:
                del self._dirty[key]
        self.commits += 1
        self._checkpoints.written(size + PAGE_BYTES * len(batch))
        if self.failure is not None:
            log.warning("journal %s: writes work again (%d objects still to write)",
                        self.path, len(self._dirty))
            self.failure = None
            self.failed_since = None
        self._retry_delay = self.retry_min
        if gone_jobs or gone_hosts:
            self._vacuum_due = True
        return True

    def _failed(self, exc: Exception) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        if self.failure is None:
            self._retry_delay = self.retry_min
            log.error("journal write to %s failed: %s; refusing new jobs until writes work "
                      "again (%d objects kept to write)", self.path, exc, len(self._dirty))
            try:
                self.failed_since = asyncio.get_running_loop().time()
            except RuntimeError:
                self.failed_since = 0.0
        self.failure = f"journal write failed: {exc}"

    def _vacuum_step(self) -> None:
        """Give free pages back to the file system, a bounded step at a time."""
        try:
            pages, free = self.file_pages()
            if free < max(VACUUM_MIN_PAGES, pages * VACUUM_SHARE):
                self._vacuum_due = False
                return
            # executescript steps the pragma to the end; execute() would free one page.
            self._db.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});")
            log.debug("journal: gave back up to %d of %d free pages", VACUUM_STEP_PAGES, free)
            if free <= VACUUM_STEP_PAGES:
                self._vacuum_due = False
        except sqlite3.Error as exc:
            log.warning("journal: incremental vacuum failed: %s", exc)
            self._vacuum_due = False

    def vacuum(self) -> None:
        """Give back every free page now (tools, tests)."""
        self._db.executescript("PRAGMA incremental_vacuum;")
        self._vacuum_due = False

    def flush(self) -> None:
        """Write everything dirty now, batch after batch (stops at the first failure)."""
        self._cancel_due()
        while self._dirty:
            if not self.write_batch():
                break
        if self.failure is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._handle = loop.call_later(self._retry_delay, self._write_turn)
        for callback in list(self.on_written):
            callback()

    def close(self) -> None:
        self.flush()
        self._cancel_due()
        if self._dirty:
            log.error("journal %s closed with %d changes unwritten: %s", self.path,
                      len(self._dirty), self.failure)
        self._checkpoints.close()
        self._db.close()      # the last connection to close checkpoints what is left


def host_config(host: Host) -> dict[str, Any]:
    """What of a host survives a restart: its configuration, not its connection."""
    return {"name": host.name, "slots": host.slots, "connect": host.connect,
            "slurm": host.slurm, "enabled": host.enabled, "added": host.added,
            "pull": host.pull}


class _Checkpointer:
    """Runs SQLite's checkpoints in a worker thread on a connection of its own (see the
    module docstring), calling `done` in the loop after each; inline when there is no
    event loop (tools, tests)."""

    def __init__(self, path: Path, every: int, pause_above: int, done: Callable[[], None]):
        self.path = path
        self.every = max(1, every)
        self.pause_above = pause_above
        self.unchecked = 0            # bytes written since the last checkpoint began
        self.runs = 0
        self.exclusive = False
        """The log passed pause_above: the next checkpoint holds the writes."""
        self._done = done
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: concurrent.futures.Future | None = None
        self._running_exclusive = False
        self._local = threading.local()

    @property
    def running(self) -> bool:
        return self._running is not None and not self._running.done()

    @property
    def holding_writes(self) -> bool:
        return self.running and self._running_exclusive

    def written(self, size: int) -> None:
        self.unchecked += size
        if self.unchecked >= self.every and not self.running:
            self._start()

    def _start(self) -> None:
        self.unchecked = 0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:          # no loop: nothing to keep free
            self._checkpoint()
            return
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="pcontrol-checkpoint")
        self._running_exclusive = self.exclusive
        self._running = self._executor.submit(self._checkpoint)
        self._running.add_done_callback(lambda _: self._wake(loop))

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        """(worker thread) Tell the loop the checkpoint is over."""
        try:
            loop.call_soon_threadsafe(self._finished)
        except RuntimeError:          # the loop is closed: pcontrol is stopping
            pass

    def _finished(self) -> None:
        self._running = None
        if self.exclusive and not self._running_exclusive:
            self._start()             # the log is too long: copy it all, writes held
        self._done()

    def _checkpoint(self) -> None:
        """PASSIVE: copy what no reader still needs, without waiting for anyone; note
        whether the log left behind is too long."""
        try:
            db = getattr(self._local, "db", None)
            if db is None:
                db = self._local.db = sqlite3.connect(str(self.path), isolation_level=None)
            busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.runs += 1
            # `frames` counts the log from its start: past the limit, SQLite has not been
            # able to start it afresh (writes kept coming as checkpoints ended).
            self.exclusive = frames * PAGE_BYTES >= self.pause_above
            log.debug("journal checkpoint: %d of %d log frames copied%s", copied, frames,
                      " (busy)" if busy else "")
        except sqlite3.Error as exc:
            log.warning("journal %s: checkpoint failed: %s (retried after the next "
                        "writes)", self.path, exc)

    def _close_connection(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def close(self) -> None:
        """Wait for a checkpoint under way, then close the worker's connection."""
        if self._executor is not None:
            self._executor.submit(self._close_connection)
            self._executor.shutdown(wait=True)
            self._executor = None
        self._close_connection()
