"""A job's mailbox: the inbox file it may read ($PSCHED_INBOX) and the outbox file it may
write ($PSCHED_OUTBOX), for sched's switchboard of messages between jobs.

    box = Mailbox.open("17", ["probe-router host unreachable"])   # files made; box.env for the job
    lines, note = box.collect()     # once the job has ended: its outbox lines; both files gone

Each job gets two files in a private directory (mode 0700) that this process makes once under
the temporary directory (`psched-mail-<pid>-XXXX`, removed when the process exits if it is
empty, or by the next one if it was killed): its inbox `<n>.<job>.in` (the messages delivered to it, one `SENDER TEXT` per line; empty when none) and
the name of its outbox `<n>.<job>.out`, which the job creates if it has something to say: one
`TASK TEXT` line per message.  `collect` reads at most OUTBOX_LIMIT bytes of it (a longer outbox
is cut at a line, and `note` says so), drops blank lines, and removes both files.  (One
directory per process, not per job: a job's mailbox then costs two small file operations
instead of a directory made with a random name and removed tree-wise, issue 13.)  Used by pclient.jobproc for the
agent's jobs and sched's local jobs alike; what the lines mean is sched's business
(psched.scheduler.switchboard).  Standard library only.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import tempfile
import threading
from typing import Dict, Sequence, Tuple, Union

from .containment import remove_stale

__all__ = ["INBOX_VAR", "OUTBOX_VAR", "OUTBOX_LIMIT", "Mailbox"]

log = logging.getLogger(__name__)

INBOX_VAR = "PSCHED_INBOX"
OUTBOX_VAR = "PSCHED_OUTBOX"
OUTBOX_LIMIT = 64 * 1024
"""Bytes of a job's outbox that are read; the rest is dropped (and said)."""


class Mailbox:
    """One job's inbox and outbox files (see the module docstring)."""

    def __init__(self, inbox: str = "", outbox: str = ""):
        self.inbox = inbox
        self.outbox = outbox

    @classmethod
    def open(cls, job_id: str, inbox: Sequence[str] = (), base: Union[str, None] = None) -> "Mailbox":
        """Make the job's inbox; a mailbox without files if that fails (logged)."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in job_id)[:40]
        try:
            stem = os.path.join(_directory(base), f"{next(_SERIAL)}.{safe}")
            try:
                fd = os.open(stem + ".in", _CREATE, 0o600)
            except FileNotFoundError:  # our directory was removed (a cleaner of /tmp): again
                stem = os.path.join(_directory(base, made_again=True), os.path.basename(stem))
                fd = os.open(stem + ".in", _CREATE, 0o600)
            try:
                data = "".join(line + "\n" for line in inbox).encode("utf-8", "replace")
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("job %s: no mailbox: %s", job_id, exc)
            return cls()
        return cls(stem + ".in", stem + ".out")

    @property
    def env(self) -> dict:
        """The variables that name the files (none when the mailbox could not be made)."""
        if not self.inbox:
            return {}
        return {INBOX_VAR: self.inbox, OUTBOX_VAR: self.outbox}

    def collect(self) -> Tuple[Tuple[str, ...], Union[str, None]]:
        """The outbox's lines (blank ones dropped), and why some were not read (None: all were)."""
        if not self.inbox:
            return (), None
        note = None
        written = True
        try:
            with open(self.outbox, "rb") as fh:
                data = fh.read(OUTBOX_LIMIT + 1)
        except FileNotFoundError:
            data, written = b"", False
        except OSError as exc:  # (it may still exist: removed below all the same)
            data, note = b"", f"cannot read its outbox: {exc.strerror or exc}"
        if len(data) > OUTBOX_LIMIT:
            data = data[:OUTBOX_LIMIT]
            data = data[:data.rfind(b"\n") + 1]
            note = f"its outbox passed {OUTBOX_LIMIT} bytes: the rest was dropped"
        for path in (self.inbox, self.outbox) if written else (self.inbox,):
            _remove(path)
        self.inbox = self.outbox = ""
        lines = tuple(line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip())
        return lines, note


_PREFIX = "psched-mail-"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_SERIAL = itertools.count(1)
_LOCK = threading.Lock()
_DIRECTORIES: Dict[Union[str, None], str] = {}
"""This process's mailbox directory under each base (None: the temporary directory)."""


def _directory(base: Union[str, None], made_again: bool = False) -> str:
    """This process's directory under `base`, made on first use (again with `made_again`, when
    it is found gone: not looked for at each job, a stat a job)."""
    with _LOCK:
        made = _DIRECTORIES.get(base)
        if made is None or (made_again and not os.path.isdir(made)):
            if made is None:
                remove_stale(base if base is not None else tempfile.gettempdir(), _PREFIX, "-")
            made = _DIRECTORIES[base] = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)
            if len(_DIRECTORIES) == 1:
                atexit.register(_remove_directories)
        return made



def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def _remove_directories() -> None:
    """At exit: our mailbox directories, unless a job that outlives us still has its files there."""
    for made in _DIRECTORIES.values():
        try:
            os.rmdir(made)
        except OSError:
            pass
