"""A job's mailbox: the inbox file it may read ($PSCHED_INBOX) and the outbox file it may
write ($PSCHED_OUTBOX), for sched's switchboard of messages between jobs.

    box = Mailbox.open("17", ["probe-router host unreachable"])   # files made; box.env for the job
                                    # (OSError: its messages cannot be written, a full disk)
    lines, note = box.collect()     # once the job has ended: its outbox lines; both files gone

Each job gets two files in a private directory (mode 0700) that this process makes once under
the temporary directory (`psched-mail-<pid>-XXXX`, removed when the process exits if it is
empty; a directory whose owner is dead, killed -9 say, is removed with the job files left in it
by the next process that makes one, `remove_dead_owners`; the owner holds an flock on its
directory for as long as it lives, which tells a live owner in another pid namespace sharing
this temporary directory from a dead one): its inbox `<n>.<job>.in` (the messages delivered to it, one `SENDER TEXT` per line), an empty
file `spare.<n>` when none came, and the name of its outbox `<n>.<job>.out`, which the job
creates if it has something to say: one
`TASK TEXT` line per message.  `collect` reads at most OUTBOX_LIMIT bytes of it (a longer outbox
is cut at a line, and `note` says so), drops blank lines, and removes both files.  (One
directory per process, not per job: a job's mailbox then costs two small file operations
instead of a directory made with a random name and removed tree-wise, issue 13; and an empty
inbox is an earlier job's empty one, given again as it is, SpareInboxes.)  Used by pclient.jobproc for the
agent's jobs and sched's local jobs alike; what the lines mean is sched's business
(psched.scheduler.switchboard).  Standard library only.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import itertools
import logging
import os
import shutil
import stat
import tempfile
import threading
from typing import Dict, Sequence, Tuple, Union

from .containment import lives
from .output import as_text

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
        """Make the job's inbox; a mailbox without files if that fails (logged). An inbox that
        holds messages and cannot be written (a full disk) raises OSError instead, its file
        removed: a job that ran without them would lose them unseen."""
        safe = job_id if job_id.isalnum() else "".join(c if c.isalnum() or c in "._-" else "_" for c in job_id)
        path = made_here = None
        try:
            serial = next(_SERIAL)

            def names(directory: str) -> Tuple[str, str]:
                """The job's stem there, and the name of an inbox made for it (an empty one is
                named as the spare it becomes)."""
                stem = f"{directory}/{serial}.{safe[:40]}"
                return stem, stem + ".in" if inbox else f"{directory}/{SPARE}{serial}"

            directory = _directory(base)
            stem, made = names(directory)
            path = None if inbox else _SPARES.take(directory)
            if path is None:
                path = made
                try:
                    fd = os.open(path, _CREATE, 0o600)
                except FileNotFoundError:  # our directory was removed (a cleaner of /tmp): again
                    stem, path = names(_directory(base, made_again=True))
                    fd = os.open(path, _CREATE, 0o600)
                made_here = path
                try:
                    data = "".join(line + "\n" for line in inbox).encode("utf-8", "replace")
                    while data:
                        data = data[os.write(fd, data):]
                finally:
                    os.close(fd)
        except OSError as exc:
            if made_here is not None:
                _remove(made_here)
            if inbox:
                where = os.path.dirname(path) if path else (base or "the temporary directory")
                raise OSError(exc.errno, f"cannot write its inbox ({len(inbox)} message(s)) in {where}: "
                                         f"{exc.strerror or exc}") from None
            log.warning("job %s: no mailbox: %s", job_id, exc)
            return cls()
        return cls(path, stem + ".out")

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
            data = _read_at_most(self.outbox, OUTBOX_LIMIT + 1)
        except FileNotFoundError:
            data, written = b"", False
        except OSError as exc:  # (it may still exist: removed below all the same)
            data, note = b"", f"cannot read its outbox: {exc.strerror or exc}"
        if len(data) > OUTBOX_LIMIT:
            data = data[:OUTBOX_LIMIT]
            data = data[:data.rfind(b"\n") + 1]
            note = f"its outbox passed {OUTBOX_LIMIT} bytes: the rest was dropped"
        if not _SPARES.keep(self.inbox):
            _remove(self.inbox)
        if written:
            _remove(self.outbox)
        self.inbox = self.outbox = ""
        lines = tuple(line.strip() for line in as_text(data).splitlines() if line.strip())
        return lines, note


class SpareInboxes:
    """Empty inbox files kept for the next jobs' empty inboxes, each given again under its own
    name SPARE<n>: a job then costs no file made and removed (on ext4 each new file searches the
    inode table past the recently removed ones: ~50 us of CPU a job, more after thousands of
    jobs), nor the two renames that gave a spare a job's name and took it back (~8 us of the
    kernel's each, issue 13). An inbox is kept only if it is still what we made it, an empty
    regular file of ours (a job may write to its inbox, or put something else in its place), and
    given again only if it is still there (a cleaner of /tmp may take a file it finds old). At
    most `limit` in each mailbox directory; removed at exit (after a kill -9, with the directory
    by the next process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: Dict[str, list] = {}

    def take(self, directory: str) -> Union[str, None]:
        """A kept inbox of `directory`, still there (None: none kept)."""
        while True:
            with _LOCK:
                kept = self._kept.get(directory)
                spare = kept.pop() if kept else None
            if spare is None:
                return None
            try:
                os.lstat(spare)
            except OSError:
                continue
            return spare

    def keep(self, path: str) -> bool:
        """Keep the ended job's inbox at `path` as a spare, if it may be (False: remove it)."""
        directory, _, _ = path.rpartition("/")
        with _LOCK:
            if len(self._kept.get(directory, ())) >= self.limit:
                return False
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not (stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_nlink == 1
                and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == _EUID):
            return False
        spare = path
        if not path[len(directory) + 1:].startswith(SPARE):  # (a job's inbox, emptied by the job)
            spare = f"{directory}/{SPARE}{next(_SERIAL)}"
            try:
                os.rename(path, spare)
            except OSError:
                return False
        with _LOCK:
            self._kept.setdefault(directory, []).append(spare)
        return True

    def clear(self) -> None:
        with _LOCK:
            kept, self._kept = self._kept, {}
        for spares in kept.values():
            for spare in spares:
                _remove(spare)


SPARE = "spare."
"""Names of the kept inboxes (SpareInboxes) in a mailbox directory."""
SPARE_INBOXES = 64
_SPARES = SpareInboxes(SPARE_INBOXES)
_PREFIX = "psched-mail-"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_SERIAL = itertools.count(1)
_EUID = os.geteuid()
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
                remove_dead_owners(base if base is not None else tempfile.gettempdir())
            made = _DIRECTORIES[base] = _made_and_held(base)
            if len(_DIRECTORIES) == 1:
                atexit.register(_remove_directories)
        return made



_HELD: Dict[Union[str, None], int] = {}
"""The descriptor of our mailbox directory under each base, flocked (LOCK_EX) for this
process's life (closed only when the directory is found gone and made again)."""


def _made_and_held(base: Union[str, None]) -> str:
    """A new mailbox directory of this process under `base`, flocked (`_HELD`) before anyone
    may take it for a dead owner's: another process's `remove_dead_owners` that found it in
    the moment between its making and its lock removes it, so it is made again then."""
    for _ in range(3):
        made = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)
        fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:  # (0: removed meanwhile)
            old = _HELD.get(base)
            _HELD[base] = fd
            if old is not None:
                os.close(old)
            return made
        os.close(fd)
    raise OSError(errno.EAGAIN, "mailbox directory removed as soon as made, three times", base)


def remove_dead_owners(base: str) -> None:
    """Remove the mailbox directories in `base` whose process is dead (killed -9, say), with the
    inbox, outbox and spare files left in them: else every killed agent leaves one behind.

    Only directories of our own user (never a link), and never a live process's: the pid in the
    name must be gone or a zombie (`owner_lives`), and the directory's flock free (`_unheld`:
    a live owner holds it, also one in another pid namespace, where its pid means nothing
    here). The free lock is taken and kept while the directory is removed."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    me = os.geteuid()
    for entry in entries:
        owner = entry.name[len(_PREFIX):].split("-", 1)[0]
        if not entry.name.startswith(_PREFIX) or not owner.isdigit():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != me or owner_lives(int(owner)):
            continue
        fd = _unheld(entry.path)
        if fd is None:
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)  # (what cannot go stays for the next one)
        finally:
            os.close(fd)


def _unheld(path: str) -> Union[int, None]:
    """A descriptor of directory `path` holding its flock, None while another process holds it
    (or the directory cannot be opened: it stays)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def owner_lives(pid: int) -> bool:
    """Whether process `pid` may still own its mailbox directory: it is alive and not a zombie.

    A pid taken since by another process keeps the directory (until that one ends): telling
    that apart needs the process's start time against the directory's change time, and the
    first comes from boot time as the wall clock now reads it, so a clock stepped forward (NTP
    after a VM's pause, say) would make a live owner look younger than its directory and lose
    its jobs' files. A leftover directory costs nothing; a live one removed costs messages."""
    return lives(pid)


def _read_at_most(path: str, limit: int) -> bytes:
    """The first `limit` bytes of the file (os calls: no file object for the usual absent one)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)


def _remove_directories() -> None:
    """At exit: our mailbox directories, unless a job that outlives us still has its files there."""
    _SPARES.clear()
    for made in _DIRECTORIES.values():
        try:
            os.rmdir(made)
        except OSError:
            pass
