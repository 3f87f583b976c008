"""Local jobs die with sched, also with a sched killed -9.

A `host LOCAL` job is sched's child, in a cgroup of its own that sched makes beside its own
(`<base>/pclient.<sched pid>.<n>`, pclient.containment). When sched leaves, it kills them itself
(LocalBackend.aclose); a sched killed with SIGKILL, or by the kernel's OOM killer, cannot, and
its jobs would run on, unwatched, with no macro ever to run for them: nobody adopts local jobs.

So with its first local job, sched starts a guard: `sh`, in a session of its own (no terminal
signal reaches it), reading a pipe of which sched holds the only write end (close-on-exec, so
no job holds it). The read returns when sched is gone, whichever way, and the guard kills every
job cgroup of that sched: one write of "1" to its `cgroup.kill` (Linux >= 5.14; before that,
SIGKILL to the processes listed in `cgroup.procs`, a few rounds), then removes the emptied
cgroups. After a normal exit there is nothing left for it to kill. One guard per sched, about a
millisecond to start; a sched that runs no local job starts none.

Where no cgroup can be made, each job runs under a keeper (containment kind SUBREAPER), forked
by this process's keeper server (pclient.keeper): there the server is the guard, told here that
the jobs die with sched: when sched is gone, whichever way, it tells each keeper to kill
everything below it. In a process group (kind GROUP, not Linux) there is no guard.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

from pclient.containment import SPAWN_LOCK, containment
from pclient.keeper import keeper_server

log = logging.getLogger(__name__)

__all__ = ["GUARD_NAME", "ensure_guard"]

GUARD_NAME = "psched-localguard"
"""The guard's $0 (what `ps` shows after `sh -c`)."""

_PROGRAM = r'''
read -r _ || :
for box in "$1"/$2; do
    [ -d "$box" ] || continue
    if [ -e "$box/cgroup.kill" ]; then
        echo 1 > "$box/cgroup.kill" 2>/dev/null
    else
        for round in 1 2 3 4 5; do
            while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$box/cgroup.procs"
        done
    fi
done
for round in 1 2 3 4 5 6 7 8 9 10; do
    left=
    for box in "$1"/$2; do
        [ -d "$box" ] && { rmdir "$box" 2>/dev/null || left=1; }
    done
    [ -z "$left" ] && exit 0
    sleep 0.1
done
'''

_lock = threading.Lock()
_tried = False
_guard: subprocess.Popen | None = None
_write_end: int | None = None


def ensure_guard() -> None:
    """Start this process's guard if it has none yet and its jobs get cgroups (cheap after
    the first call). A guard that cannot be started is logged, and the jobs run without it."""
    global _tried, _guard, _write_end
    if _tried:
        return
    with _lock:
        if _tried:
            return
        _tried = True
        keeper_server().jobs_die_with_us = True  # (jobs under keepers: see the module docstring)
        boxes = containment().own_boxes()
        if boxes is None:
            return
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            with SPAWN_LOCK:   # born in sched's own cgroup, never in a job's
                _guard = subprocess.Popen(
                    ["sh", "-c", _PROGRAM, GUARD_NAME, os.path.dirname(boxes), os.path.basename(boxes)],
                    stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True, close_fds=True, cwd="/")
        except OSError as exc:
            os.close(write_end)
            log.warning("no guard for the local jobs (they would outlive a sched killed -9): %s", exc)
            return
        finally:
            os.close(read_end)
        _write_end = write_end   # held until this process ends: then the guard acts
        log.debug("local jobs guarded by pid %s", _guard.pid)
