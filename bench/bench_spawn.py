#!/usr/bin/env python3
"""How a job's process is started (issue 13): the spawn paths that keep a process group of its
own (a new session) and the output pipes, measured against each other in one process.

    .venv/bin/python bench/bench_spawn.py [--jobs 300] [--rounds 3]

CPU per `true` job, in this process (parent) and in the children it started (child: the
vforked child's exec attempts along PATH are counted there), median of alternating rounds:
  Popen(vfork)          subprocess.Popen(start_new_session=True): vfork-based since Python 3.10
                        (pclient.jobproc before issue 13); PATH searched in the child
  Popen(fork)           the same with vfork turned off (the pre-3.10 path)
  posix_spawn, as Popen what posix_spawn must do to give the job what Popen gives it: the PATH
                        of the job's environment searched here, inheritable descriptors above 2
                        made close-on-exec first (Popen's close_fds), SIGPIPE/SIGXFSZ reset
  pclient.spawn         what pclient.jobproc calls now: posix_spawnp (PATH searched in the
                        child) where it gives what Popen gives, else Popen; called through libc
                        (pclient.libcspawn: the GIL let go, the child's descriptors closed by
                        the C library) or, as before, as os.posix_spawnp after making our
                        inheritable descriptors close-on-exec
  posix_spawn, bare     an absolute path and nothing else: the floor, not a usable job start
and, where a cgroup v2 directory can be made here (pclient.containment's CGROUP kind), each job
also in a cgroup of its own, made and removed around it:
  cgroup, child joins   the child writes itself into the job's cgroup.procs from a preexec_fn:
                        subprocess must fork the whole parent (pclient before issue 13)
  cgroup, parent moves  the parent moves itself into the job's cgroup, starts the job with
                        pclient.spawn and moves back (CgroupBox.spawning: pclient.jobproc now),
                        the emptied cgroup kept for the next job (containment's spares)
The parent carries --heap MB of Python objects, as sched or an agent does: fork copies its page
tables, vfork does not.
"""

from __future__ import annotations

import argparse
import errno
import os
import resource
import shutil
import signal
import statistics
import subprocess
import uuid
from collections.abc import Callable

from pclient import spawn
from pclient.containment import CgroupBox, Kind, containment

ENV = dict(os.environb)
TRUE = shutil.which("true") or "/bin/true"
RESET = tuple(getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, n))


def _pipes_then(start: Callable[[int], int]) -> None:
    r, w = os.pipe()
    pid = start(w)
    os.close(w)
    os.waitpid(pid, 0)
    os.close(r)


def popen(vfork: bool) -> Callable[[], None]:
    def run() -> None:
        saved = subprocess._USE_VFORK  # type: ignore[attr-defined]
        subprocess._USE_VFORK = vfork  # type: ignore[attr-defined]
        try:
            def start(w: int) -> int:
                p = subprocess.Popen(["true"], stdin=subprocess.DEVNULL, stdout=w, stderr=w, env=ENV,
                                     start_new_session=True)
                p.returncode = 0  # reaped below
                return p.pid
            _pipes_then(start)
        finally:
            subprocess._USE_VFORK = saved  # type: ignore[attr-defined]
    return run


def _sweep() -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass


def spawn_as_popen() -> None:
    def start(w: int) -> int:
        _sweep()
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, w, 1),
                   (os.POSIX_SPAWN_DUP2, w, 2)]
        for d in os.get_exec_path({"PATH": os.fsdecode(ENV.get(b"PATH", b""))}):
            path = os.path.join(d, "true")
            if not os.path.exists(path):
                continue
            try:
                return os.posix_spawn(path, ["true"], ENV, file_actions=actions, setsid=True, setsigdef=RESET)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    raise
        raise FileNotFoundError("true")
    _pipes_then(start)


def spawn_bare() -> None:
    def start(w: int) -> int:
        actions = [(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)]
        return os.posix_spawn(TRUE, [TRUE], ENV, file_actions=actions, setsid=True)
    _pipes_then(start)


def pclient_spawn(libc: bool) -> Callable[[], None]:
    def run() -> None:
        saved = spawn._SPAWNER[:]
        spawn._STARTS[0] = spawn.LIBC_AFTER  # (past the first starts, made with os.posix_spawnp)
        if not libc:
            spawn._SPAWNER[:] = [None]  # as PCLIENT_LIBC_SPAWN=no: os.posix_spawnp

        def start(w: int) -> int:
            pid, _ = spawn.start(["true"], ENV, w, w)
            return pid
        try:
            _pipes_then(start)
        finally:
            spawn._SPAWNER[:] = saved
    return run


def in_cgroup(child_joins: bool) -> Callable[[], None]:
    def run() -> None:
        box = containment().box(uuid.uuid4().hex)
        assert isinstance(box, CgroupBox)
        if child_joins:
            box._home_fd = None  # the child joins from preexec_fn, as with PCLIENT_CGROUP_JOIN=child

        def start(w: int) -> int:
            with box.spawning():
                pid, popen = spawn.start(["true"], ENV, w, w, preexec=box.preexec)
            if popen is not None:
                popen.returncode = 0  # reaped below
            box.started(pid)
            return pid
        _pipes_then(start)
        box.empty()  # as jobproc does: an emptied cgroup is kept for the next job (a spare)
        box.release()
    return run


def cpu() -> tuple[float, float]:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heap", type=int, default=60, help="MB of Python objects the parent holds")
    args = parser.parse_args()
    heap = [bytearray(1 << 20) for _ in range(args.heap)]  # noqa: F841  (held for the fork's sake)
    runners = [("Popen(vfork)", popen(True)), ("Popen(fork)", popen(False)),
               ("posix_spawn, as Popen", spawn_as_popen),
               ("pclient.spawn, os.posix_spawnp [before]", pclient_spawn(False)),
               ("pclient.spawn, libc [pclient.jobproc]", pclient_spawn(True)),
               ("posix_spawn, bare", spawn_bare)]
    os.environ.setdefault("PCLIENT_CONTAINMENT", "cgroup")
    if containment().kind is Kind.CGROUP:
        runners += [("cgroup, child joins  [before]", in_cgroup(True)),
                    ("cgroup, parent moves [pclient.jobproc]", in_cgroup(False))]
    else:
        print("(no cgroup v2 directory can be made here: the cgroup rows are left out)")
    parent: dict[str, list[float]] = {n: [] for n, _ in runners}
    child: dict[str, list[float]] = {n: [] for n, _ in runners}
    for _ in range(args.rounds):
        for name, run in runners:
            me0, kids0 = cpu()
            for _ in range(args.jobs):
                run()
            me1, kids1 = cpu()
            parent[name].append((me1 - me0) / args.jobs * 1e6)
            child[name].append((kids1 - kids0) / args.jobs * 1e6)
    print(f"bench_spawn: {args.jobs} `true` jobs x {args.rounds} rounds, parent heap {args.heap} MB, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"  {'spawn path':<42} {'parent us/job':>14} {'child us/job':>13} {'total':>8}")
    for name, _ in runners:
        p, c = statistics.median(parent[name]), statistics.median(child[name])
        print(f"  {name:<42} {p:>14.0f} {c:>13.0f} {p + c:>8.0f}")


if __name__ == "__main__":
    main()
