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
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .output import OutputFile

__all__ = ["Spool", "STREAMS"]

STREAMS = ("stdout", "stderr")
_JOB_WORD = re.compile(r"[0-9A-Za-z._-]{1,64}")


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

