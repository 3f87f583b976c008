"""The journal: hosts and jobs in SQLite ($SCHED_HOME/pcontrol.db), so a restart keeps them.

The controller marks objects dirty as they change; the journal writes every dirty object in
one transaction per event-loop turn (scheduled with call_soon), so a burst of 2,000 job
changes costs one commit, not 2,000. WAL mode with synchronous=NORMAL keeps a commit to a
write() of the log; the loop is blocked only for that. A failing write (full disk) is kept
as `failure`; the controller then refuses new jobs rather than accept what it cannot keep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Host, Job

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta  (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs  (id INTEGER PRIMARY KEY, state TEXT NOT NULL, owner TEXT,
                                  record TEXT NOT NULL, stdout TEXT, stderr TEXT);
"""


@dataclass
class Loaded:
    """What a journal held when opened."""

    hosts: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    next_job_id: int = 1


class JournalError(Exception):
    pass


class Journal:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        version = self._meta("schema")
        if version is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(version) != SCHEMA_VERSION:
            raise JournalError(f"journal {self.path} has schema {version}; "
                               f"this pcontrol reads {SCHEMA_VERSION}")
        self._dirty_jobs: dict[int, Job] = {}
        self._gone_jobs: set[int] = set()
        self._dirty_hosts: dict[str, Host] = {}
        self._gone_hosts: set[str] = set()
        self._next_job_id: int | None = None
        self._flush_handle: asyncio.Handle | None = None
        self.failure: str | None = None
        self.commits = 0

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- reading ----------------------------------------------------------------------------

    def load(self) -> Loaded:
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
        return loaded

    # -- writing ----------------------------------------------------------------------------

    def job_changed(self, job: Job) -> None:
        self._gone_jobs.discard(job.id)
        self._dirty_jobs[job.id] = job
        self._schedule()

    def job_forgotten(self, job_id: int) -> None:
        self._dirty_jobs.pop(job_id, None)
        self._gone_jobs.add(job_id)
        self._schedule()

    def host_changed(self, host: Host) -> None:
        self._gone_hosts.discard(host.name)
        self._dirty_hosts[host.name] = host
        self._schedule()

    def host_forgotten(self, name: str) -> None:
        self._dirty_hosts.pop(name, None)
        self._gone_hosts.add(name)
        self._schedule()

    def next_job_id_changed(self, value: int) -> None:
        self._next_job_id = value
        self._schedule()

    def _schedule(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:      # no loop (tools, tests): write at once
            self.flush()
            return
        self._flush_handle = loop.call_soon(self.flush)

    @property
    def dirty(self) -> bool:
        return bool(self._dirty_jobs or self._gone_jobs or self._dirty_hosts
                    or self._gone_hosts or self._next_job_id is not None)

    def flush(self) -> None:
        """Write everything dirty in one transaction."""
        self._flush_handle = None
        if not self.dirty:
            return
        jobs = [(job.id, job.state.value, job.owner, json.dumps(job.to_record()),
                 job.stdout, job.stderr) for job in self._dirty_jobs.values()]
        hosts = [(host.name, json.dumps(_host_config(host)))
                 for host in self._dirty_hosts.values()]
        try:
            with self._db:
                self._db.execute("BEGIN")
                if jobs:
                    self._db.executemany("INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?)",
                                         jobs)
                if self._gone_jobs:
                    self._db.executemany("DELETE FROM jobs WHERE id = ?",
                                         [(i,) for i in self._gone_jobs])
                if hosts:
                    self._db.executemany("INSERT OR REPLACE INTO hosts VALUES (?,?)", hosts)
                if self._gone_hosts:
                    self._db.executemany("DELETE FROM hosts WHERE name = ?",
                                         [(n,) for n in self._gone_hosts])
                if self._next_job_id is not None:
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_job_id', ?)",
                                     (str(self._next_job_id),))
        except sqlite3.Error as exc:
            if self.failure is None:
                log.error("journal write to %s failed: %s", self.path, exc)
            self.failure = f"journal write failed: {exc}"
            return
        self.failure = None
        self.commits += 1
        self._dirty_jobs.clear()
        self._gone_jobs.clear()
        self._dirty_hosts.clear()
        self._gone_hosts.clear()
        self._next_job_id = None

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()
        self._db.close()


def _host_config(host: Host) -> dict[str, Any]:
    """What of a host survives a restart: its configuration, not its connection."""
    return {"name": host.name, "slots": host.slots, "connect": host.connect,
            "enabled": host.enabled, "added": host.added}
