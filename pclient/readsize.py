"""How many bytes our streams read at a time: READ_BYTES, not asyncio's 256 KiB.

asyncio's socket and pipe transports read `max_size` (256 KiB) bytes a call: each read
allocates a 256 KiB bytes object, which glibc's malloc serves by mmap (it is above the
128 KiB mmap threshold), shrinks to the bytes read by mremap and frees by munmap. A job
through the controller is a few short reads on each side (its submit, its events, the
agent's reports), so that was ~4 mmap, mremap and munmap a job in pcontrol, ~3 in the
scheduler beside it and ~2 in the agent, whose munmaps also cost TLB shootdowns across its
threads (issue 13). A 64 KiB read is served from malloc's heap, and a burst of large output
is read in a few more calls, each of them still large. Used by pcontrol (its clients, its
agents' ptys and pipes, the ControllerClient sched uses) and by the agent (its stdin, a successor's
socket, its jobs' output pipes). Standard library only.

`max_size` is the read size of CPython's selector transports (a class attribute, read at
every read); on a transport without one (another event loop) setting it is harmless.
"""

from __future__ import annotations

import asyncio

__all__ = ["READ_BYTES", "read_at_most"]

#: Bytes read per call: below glibc's mmap threshold (128 KiB).
READ_BYTES = 64 * 1024


def read_at_most(transport: asyncio.BaseTransport, size: int = READ_BYTES) -> None:
    """Make `transport` read at most `size` bytes a call."""
    transport.max_size = size  # type: ignore[attr-defined]
