"""A job's mailbox: the inbox file it may read ($PSCHED_INBOX) and the outbox file it may
write ($PSCHED_OUTBOX), for sched's switchboard of messages between jobs.

    box = Mailbox.open("17", ["probe-router host unreachable"])   # files made; box.env for the job
    lines, note = box.collect()     # once the job has ended: its outbox lines; both files gone

Each job gets a private directory (mode 0700) under the temporary directory holding `inbox`
(the messages delivered to it, one `SENDER TEXT` per line; empty when none) and the name of
`outbox`, which the job creates if it has something to say: one `TASK TEXT` line per message.
`collect` reads at most OUTBOX_LIMIT bytes of it (a longer outbox is cut at a line, and `note`
says so), drops blank lines, and removes the directory.  Used by pclient.jobproc for the
agent's jobs and sched's local jobs alike; what the lines mean is sched's business
(psched.scheduler.switchboard).  Standard library only.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Sequence, Tuple, Union

__all__ = ["INBOX_VAR", "OUTBOX_VAR", "OUTBOX_LIMIT", "Mailbox"]

log = logging.getLogger(__name__)

INBOX_VAR = "PSCHED_INBOX"
OUTBOX_VAR = "PSCHED_OUTBOX"
OUTBOX_LIMIT = 64 * 1024
"""Bytes of a job's outbox that are read; the rest is dropped (and said)."""


class Mailbox:
    """One job's inbox and outbox files (see the module docstring)."""

    def __init__(self, directory: Union[str, None]):
        self.directory = directory
        self.inbox = os.path.join(directory, "inbox") if directory else ""
        self.outbox = os.path.join(directory, "outbox") if directory else ""

    @classmethod
    def open(cls, job_id: str, inbox: Sequence[str] = (), base: Union[str, None] = None) -> "Mailbox":
        """Make the job's directory and inbox; a mailbox without files if that fails (logged)."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in job_id)[:40]
        try:
            directory = tempfile.mkdtemp(prefix=f"psched-mail-{safe}-", dir=base)
            with open(os.path.join(directory, "inbox"), "w", encoding="utf-8", errors="replace") as fh:
                fh.writelines(line + "\n" for line in inbox)
        except OSError as exc:
            log.warning("job %s: no mailbox: %s", job_id, exc)
            return cls(None)
        return cls(directory)

    @property
    def env(self) -> dict:
        """The variables that name the files (none when the mailbox could not be made)."""
        if not self.directory:
            return {}
        return {INBOX_VAR: self.inbox, OUTBOX_VAR: self.outbox}

    def collect(self) -> Tuple[Tuple[str, ...], Union[str, None]]:
        """The outbox's lines (blank ones dropped), and why some were not read (None: all were)."""
        if not self.directory:
            return (), None
        note = None
        try:
            with open(self.outbox, "rb") as fh:
                data = fh.read(OUTBOX_LIMIT + 1)
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            data, note = b"", f"cannot read its outbox: {exc.strerror or exc}"
        if len(data) > OUTBOX_LIMIT:
            data = data[:OUTBOX_LIMIT]
            data = data[:data.rfind(b"\n") + 1]
            note = f"its outbox passed {OUTBOX_LIMIT} bytes: the rest was dropped"
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        lines = tuple(line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip())
        return lines, note
