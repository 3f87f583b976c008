"""Room for more open files: the soft RLIMIT_NOFILE raised to the hard one when it is near.

    note_descriptor(fd)     # a descriptor just made; the limit is raised when fd nears it

A process that runs many jobs at once holds a few descriptors for each (its output pipes, its
pidfd, its cgroup's files), so a few hundred jobs reach the soft limit that systemd and most
shells give (1024) long before the hard one (systemd: 524288). systemd's advice is that a
program that does not use select() raise its own soft limit to the hard one; we do, but only
when it is needed (a descriptor numbered within MARGIN of the soft limit: descriptors take the
lowest free number, so the number says how many are open): the jobs started until then keep
the soft limit they were given; those started later inherit the raised one, as they would from
a shell that ran `ulimit -n` (glibc's posix_spawn cannot set a child's limits, and a window
with our own limit lowered around each start would refuse descriptors to our other threads).

Told once in the log. Where the hard limit is reached all the same, a start fails with EMFILE
(its reason says so). Standard library only (pclient).
"""

from __future__ import annotations

import logging
import sys
from typing import List, Union

__all__ = ["MARGIN", "note_descriptor", "open_files_limit", "raise_soft_limit"]

log = logging.getLogger(__name__)

MARGIN = 64
"""How near the soft limit a descriptor's number may come before the limit is raised."""
CAP = 1 << 20
"""The most the soft limit is raised to where the hard one is unlimited."""

_NEAR: List[int] = []
"""The descriptor number from which to look again (the soft limit less MARGIN), once known."""


def note_descriptor(fd: int) -> None:
    """A descriptor just made: raise the soft limit when `fd` is within MARGIN of it."""
    if _NEAR and fd < _NEAR[0]:
        return
    import resource  # (with the first job only: a process that starts none never needs it)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= _ceiling(hard):
        _NEAR[:] = [sys.maxsize]  # (nothing to raise: never looked at again)
    elif fd >= soft - MARGIN:
        _NEAR[:] = [sys.maxsize]  # (raised, or cannot be: once either way)
        raise_soft_limit(None, f"{fd} files open")
    else:
        _NEAR[:] = [soft - MARGIN]


def raise_soft_limit(wanted: Union[int, None], why: str) -> Union[int, None]:
    """Raise this process's soft limit of open files to `wanted` (None: to the hard limit, at
    most CAP), never past the hard one nor lower than it is; the soft limit then (None:
    unlimited). `why` goes into the log line that says so, or that it could not."""
    import resource  # (see note_descriptor)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    ceiling = _ceiling(hard)
    target = ceiling if wanted is None else min(wanted, ceiling)
    if soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("%s: the limit of open files (%d) cannot be raised to %d: %s", why, soft, target, exc)
        return soft
    log.info("%s: the limit of open files raised from %d to %d; processes started from now on "
             "inherit it", why, soft, target)
    return target


def _ceiling(hard: int) -> int:
    """The most the soft limit may be raised to under `hard`."""
    import resource  # (loaded by the caller already)

    return CAP if hard == resource.RLIM_INFINITY else min(hard, CAP)


def open_files_limit() -> str:
    """This process's soft limit of open files, as words (for a reason)."""
    import resource  # (only when a start failed for want of descriptors)

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return "unlimited open files" if soft == resource.RLIM_INFINITY else f"{soft} open files"
