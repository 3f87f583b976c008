"""Keeping every process of a job together, so that the job's kill or timeout ends them all.

jobproc puts each job in a Box and signals the box, never single pids.  Three kinds, chosen once
per process (`containment()`), the best the system gives:

- CGROUP: the job gets its own cgroup v2 directory, made beside the cgroup this process runs in
  (`<mount>/<own cgroup>/pclient.<pid>.<n>`); the job's first process is born inside it, so every
  process it ever starts is inside.  To start it, this process moves itself into the job's
  cgroup, starts the job (subprocess's vfork path: a child inherits its parent's cgroup) and
  moves itself back (`Box.spawning()`; ~50 us per job on Linux 6.x, where a child that joins
  from a `preexec_fn` makes subprocess fork the whole parent instead: ~2 ms of CPU per job in
  a big process, bench/bench_spawn.py).  The move takes the whole process, every thread: while
  it is inside, no other thread may start a process, or that one is born in the job's cgroup
  and dies with the job.  So every start of a process in a program that runs jobs holds
  SPAWN_LOCK (jobproc's starts do; so does sched's start of pcontrol).  Where this process may
  not move itself back out (checked once, on a probe cgroup), the child joins from a
  `preexec_fn` instead, as it always did.  SIGTERM goes to each process listed in
  `cgroup.procs`; SIGKILL is one write of "1" to `cgroup.kill` (Linux >= 5.14; before that the
  listed processes are killed until none is left).  Needs a cgroup2 mount and the right to make
  a directory in our own cgroup: root, or a user whose systemd unit has `Delegate=yes`.
- SUBREAPER: the job runs under a keeper (pclient/keeper.py), a small Python process that is a
  child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphans of the job are re-parented to it and
  it kills everything below itself.  The keeper is forked by this process's keeper server (one
  small Python process, started with the first keeper job), so it is not our child: its end
  comes from a pidfd, its status from a pipe it writes, and it is signalled through the pidfd
  (KeeperBox).  A job's `pid` is its keeper's.  Costs a fork of the server per job (~2-3 ms of
  CPU in all here, against ~25 ms for a Python start) and ~1 MB while the job runs.  Linux >=
  5.3 (pidfd_open); before that, or with PCLIENT_KEEPER_SERVER=no, each keeper is a Python
  started alone, as the job's first process, our child.  The keeper does not carry the job's
  environment (a served one has the server's): a sweep by PCLIENT_AGENT or TOKEN_VAR finds the
  job's program and what it started, and the keeper, which kills what is left when its program
  dies, is left to end by itself.
- GROUP: the job's session and process group, plus a sweep of /proc for processes whose
  environment carries the job's token (PCLIENT_JOB_TOKEN).  A process that calls setsid *and*
  clears its environment escapes; used only where neither of the above works (not Linux).

`PCLIENT_CONTAINMENT=cgroup|subreaper|group` forces a kind (for tests and for operators who
want the keeper although a cgroup could be made); `auto` (the default) picks as above.
The calls here are blocking but short (a few small /proc and cgroupfs reads and writes): jobproc
makes them from its watcher thread, not from an asyncio loop.
"""

from __future__ import annotations

import atexit
import enum
import errno
import itertools
import logging
import os
import select
import signal
import sys
import threading
from typing import Callable, ContextManager, Mapping, Sequence, Union

from .keeper import PROGRAM as KEEPER_PROGRAM
from .keeper import keeper_server, parse_status

__all__ = ["Box", "CannotJoin", "ENDED_STATES", "Kind", "SPAWN_LOCK", "alive", "lives", "process_state", "containment", "find_token_processes", "remove_stale", "TOKEN_VAR"]

log = logging.getLogger(__name__)

TOKEN_VAR = "PCLIENT_JOB_TOKEN"
"""Environment variable that marks every process of a job (the GROUP kind's last resort)."""
CHOICE_VAR = "PCLIENT_CONTAINMENT"
JOIN_VAR = "PCLIENT_CGROUP_JOIN"
"""`child`: a job's first process joins its cgroup itself (a preexec_fn), as before issue 13."""
_PROC = "/proc"
_CGROUP_PREFIX = "pclient."

SPARE_CGROUPS = 64
"""Emptied job cgroups a process keeps for its next jobs (SpareCgroups)."""

SPAWN_LOCK = threading.RLock()
"""Held around every start of a child process in a process that runs jobs (see the module
docstring: while a job starts, this whole process sits in the job's cgroup)."""


class CannotJoin(OSError):
    """This process could not move itself into a job's cgroup to start the job there."""


class Kind(str, enum.Enum):
    """How a job's processes are held together (see the module docstring)."""

    CGROUP = "cgroup"
    SUBREAPER = "subreaper"
    GROUP = "group"


class Box:
    """One job's processes.  `argv`/`preexec`/`pass_fds` say how to start the job inside it."""

    kind = Kind.GROUP

    def __init__(self, token: str) -> None:
        self.token = token
        self.pid: Union[int, None] = None

    def argv(self, argv: tuple) -> tuple:
        return argv

    @property
    def preexec(self) -> Union[Callable[[], None], None]:
        return None

    @property
    def pass_fds(self) -> tuple:
        return ()

    def spawning(self) -> ContextManager[None]:
        """Start the job's first process inside this context (and with `preexec`)."""
        return SPAWN_LOCK

    def started(self, pid: int) -> None:
        self.pid = pid

    def pidfd(self) -> int:
        """A pidfd of the job's first process, for the caller to watch and close (OSError,
        AttributeError: there are no pidfds here)."""
        assert self.pid is not None
        return os.pidfd_open(self.pid)  # type: ignore[attr-defined]

    def main_exited(self) -> None:
        """The job's first process has been reaped (its pid may be reused from now on)."""

    def terminate(self) -> None:
        """SIGTERM to every process of the job."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to every process of the job."""
        self._signal(signal.SIGKILL)

    def leftovers(self) -> None:
        """The job's own process has ended: kill whatever it left."""
        if self.pid is not None:
            _signal_group(self.pid, signal.SIGKILL)

    def empty(self) -> bool:
        """No process of the job is left alive."""
        return not find_token_processes(self.token)

    def release(self) -> None:
        """Forget the box (after `empty()`)."""

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid is not None:
            _signal_group(self.pid, sig)
        for pid in find_token_processes(self.token):
            _signal_pid(pid, sig)


class KeeperBox(Box):
    """The job under a keeper process (pclient/keeper.py); `pid` is the keeper's.

    Served (`start_served`): the keeper was forked by this process's keeper server, so it is not
    our child; `served` is then true, its end is told by its pidfd (`ended`) and its status by
    its status pipe (`exit_code`), and it is signalled through the pidfd.  Alone: the keeper is
    the job's first process, started by the caller with `argv` and `pass_fds`, our child."""

    kind = Kind.SUBREAPER

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.status_r, self.status_w = os.pipe()
        self._pidfd = -1  # served: the keeper's pidfd, from its server (never a bare pid: the server reaps it)
        self._record: Union[bytes, None] = None

    @property
    def served(self) -> bool:
        return self._pidfd >= 0

    def argv(self, argv: tuple) -> tuple:
        return (sys.executable, "-I", "-S", "-c", KEEPER_PROGRAM, str(self.status_w), "--", *argv)

    @property
    def pass_fds(self) -> tuple:
        return (self.status_w,)

    def start_served(self, argv: Sequence[str], env: Mapping[bytes, bytes], out_w: int, err_w: int,
                     cwd: Union[str, None], file: Union[bytes, None] = None) -> Union[int, None]:
        """Start the job under a keeper forked by this process's keeper server: the keeper's pid,
        or None where there is no server (start a keeper alone then).  OSError as a start's.
        `file`: what argv[0] is along the job's PATH, if known (KeeperServer.start)."""
        started = keeper_server().start(argv, env, cwd, out_w, err_w, self.status_w, file)
        if started is None:
            return None
        pid, self._pidfd = started
        return pid

    def pidfd(self) -> int:
        if self._pidfd >= 0:
            return os.dup(self._pidfd)
        return super().pidfd()

    def started(self, pid: int) -> None:
        super().started(pid)
        self._close_write_end()

    def _close_write_end(self) -> None:
        if self.status_w >= 0:
            os.close(self.status_w)
            self.status_w = -1

    def ended(self) -> bool:
        """Served: whether the keeper has ended (its pidfd is readable)."""
        return self._pidfd_readable(0)

    def wait_ended(self) -> None:
        """Served: block until the keeper has ended."""
        while not self._pidfd_readable(None):
            pass

    def _pidfd_readable(self, timeout: Union[int, None]) -> bool:
        poll = select.poll()
        poll.register(self._pidfd, select.POLLIN)
        return bool(poll.poll(timeout))

    def exit_code(self) -> int:
        """Served, once the keeper has ended: its exit code as subprocess gives it (-N: killed
        by signal N), from what it wrote on its status pipe; nothing there: it was SIGKILLed."""
        told = parse_status(self._status_record())
        if told is None:
            return -signal.SIGKILL
        kind, value = told
        if kind == "X":
            return value
        if kind == "K":
            return -value
        return 127  # E, S: the program was not started

    def _status_record(self) -> bytes:
        """What the keeper wrote on its status pipe (read once, when it has ended)."""
        if self._record is None:
            chunks = []
            try:
                os.set_blocking(self.status_r, False)
                while True:
                    data = os.read(self.status_r, 64)
                    if not data:
                        break
                    chunks.append(data)
            except OSError:
                pass
            self._record = b"".join(chunks)
        return self._record

    def start_error(self) -> Union[OSError, None]:
        """Once the keeper has exited: the reason it could not start the program, if so."""
        told = parse_status(self._status_record())
        if told is not None and told[0] in ("E", "S"):
            return OSError(told[1], os.strerror(told[1]))
        return None

    def main_exited(self) -> None:
        self.pid = None  # the keeper is gone, and everything below it with it

    def terminate(self) -> None:
        self._signal_keeper(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_keeper(signal.SIGUSR1)

    def _signal_keeper(self, sig: signal.Signals) -> None:
        if self.pid is None:
            return
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except (ProcessLookupError, PermissionError):
                pass
        else:
            _signal_pid(self.pid, sig)

    def leftovers(self) -> None:
        pass  # the keeper kills them itself before it exits

    def empty(self) -> bool:
        return True  # once the keeper has exited, nothing of the job is left

    def release(self) -> None:
        self._close_write_end()
        for fd in (self.status_r, self._pidfd):
            if fd >= 0:
                os.close(fd)
        self.status_r = self._pidfd = -1


class CgroupBox(Box):
    """The job in a cgroup v2 directory of its own.

    With `home_fd` (this process's own cgroup.procs, open for writing) the job is started by
    moving this process into the job's cgroup and back (`spawning`); without it, by the child
    joining from `preexec`, which costs subprocess its vfork.
    """

    kind = Kind.CGROUP

    def __init__(self, token: str, path: str, home_fd: Union[int, None] = None,
                 spare: Union["SpareCgroups", None] = None, fds: Union[tuple[int, int], None] = None) -> None:
        """A new cgroup at `path`, or, with `fds` (its cgroup.procs open for writing and its
        cgroup.events for reading), an empty one that an earlier job left to `spare`."""
        super().__init__(token)
        self.path = path
        self._home_fd = home_fd
        self._spare = spare
        self._holds_us = False  # we could not move back out: never cgroup.kill, never signal us
        self._seen_empty = False  # no process of the job is left (checked): nothing can join again
        if fds is None:
            os.mkdir(path)
            procs_fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                events_fd = os.open(os.path.join(path, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                events_fd = -1  # (read by name, each time)
            fds = (procs_fd, events_fd)
        self._procs_fd, self._events_fd = fds

    @property
    def preexec(self) -> Union[Callable[[], None], None]:
        if self._home_fd is not None:
            return None
        fd = self._procs_fd

        def join() -> None:  # runs in the child between fork and exec: no locks, no allocation to speak of
            os.write(fd, b"0")

        return join

    def spawning(self) -> ContextManager[None]:
        return SPAWN_LOCK if self._home_fd is None else self

    def __enter__(self) -> None:
        """`with box.spawning()` with home_fd: SPAWN_LOCK held and this process moved into the
        job's cgroup (a plain context, not a generator's: it runs once a job)."""
        SPAWN_LOCK.acquire()
        try:
            os.write(self._procs_fd, b"0")
        except OSError as exc:
            SPAWN_LOCK.release()
            raise CannotJoin(exc.errno, f"cannot move into {self.path}: {exc.strerror}") from None

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._leave()
        finally:
            SPAWN_LOCK.release()

    def _leave(self) -> None:
        assert self._home_fd is not None
        for _ in range(2):
            try:
                os.write(self._home_fd, b"0")
                return
            except OSError as exc:
                error = exc
        self._holds_us = True
        log.error("cgroup %s: cannot move this process back out (%s): its job is signalled process "
                  "by process from now on", self.path, error)

    def _close_procs(self) -> None:
        for fd in (self._procs_fd, self._events_fd):
            if fd >= 0:
                os.close(fd)
        self._procs_fd = self._events_fd = -1

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                found = [int(line) for line in f if line.strip()]
        except OSError:
            return []
        if self._holds_us:
            me = os.getpid()
            return [pid for pid in found if pid != me]
        return found

    def terminate(self) -> None:
        if self.pid is not None:
            _signal_group(self.pid, signal.SIGTERM)
        for pid in self.pids():
            _signal_pid(pid, signal.SIGTERM)

    def kill(self) -> None:
        if not self._holds_us:
            try:
                with open(os.path.join(self.path, "cgroup.kill"), "w") as f:
                    f.write("1")
                return
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    log.warning("cgroup %s: cgroup.kill failed: %s", self.path, exc)
        for pid in self.pids():  # a kernel before 5.14: no cgroup.kill
            _signal_pid(pid, signal.SIGKILL)

    def leftovers(self) -> None:
        if not self.empty():
            self.kill()

    def empty(self) -> bool:
        if self._seen_empty:
            return True
        if self._holds_us:
            return not self.pids()
        try:
            if self._events_fd >= 0:  # (re-read from its start: no open and close a look)
                events = os.pread(self._events_fd, 256, 0)
            else:
                with open(os.path.join(self.path, "cgroup.events"), "rb") as f:
                    events = f.read()
        except OSError:
            return not self.pids()
        self._seen_empty = b"populated 0" in events
        return self._seen_empty

    def release(self) -> None:
        """Keep the emptied cgroup for the next job (SpareCgroups), else remove it."""
        if self._procs_fd >= 0 and self._seen_empty and not self._holds_us and self._spare is not None \
                and self._spare.keep(self.path, (self._procs_fd, self._events_fd)):
            self._procs_fd = self._events_fd = -1
            return
        self._close_procs()
        try:
            os.rmdir(self.path)
        except OSError as exc:
            log.warning("cgroup %s: could not remove it: %s", self.path, exc)


class SpareCgroups:
    """Emptied job cgroups kept for the next jobs, each with its cgroup.procs open: a job
    then costs no mkdir, open and rmdir of a cgroup (the kernel's set-up and RCU-deferred
    tear-down of one, ~50 us of CPU here and some in its workers; its cgroup.events stays open
    too, read again with pread). At most `limit`; those left at exit are removed (after a
    kill -9, `remove_stale` of the next process removes them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._kept: list[tuple[str, tuple[int, int]]] = []
        self._exit_hook = False

    def keep(self, path: str, fds: tuple[int, int]) -> bool:
        with self._lock:
            if len(self._kept) >= self.limit:
                return False
            self._kept.append((path, fds))
            if not self._exit_hook:
                atexit.register(self.clear)
                self._exit_hook = True
            return True

    def take(self) -> Union[tuple[str, tuple[int, int]], None]:
        with self._lock:
            return self._kept.pop() if self._kept else None

    def clear(self) -> None:
        """Remove every kept cgroup."""
        with self._lock:
            kept, self._kept = self._kept, []
        for path, fds in kept:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
            try:
                os.rmdir(path)
            except OSError as exc:
                log.debug("cgroup %s: could not remove it: %s", path, exc)


class _Containment:
    """Makes boxes of the kind chosen for this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kind: Union[Kind, None] = None
        self._cgroup_base: Union[str, None] = None
        self._home_fd: Union[int, None] = None  # our own cgroup.procs, when we may move back into it
        self._serial = itertools.count(1)
        self._spare = SpareCgroups(SPARE_CGROUPS)

    def reset(self) -> None:
        """Forget the choice: the next box chooses again (tests switch PCLIENT_CONTAINMENT and
        PCLIENT_CGROUP_JOIN so)."""
        with self._lock:
            self._kind = None
            self._spare.clear()
            keeper_server().stop()
            if self._home_fd is not None:
                os.close(self._home_fd)
                self._home_fd = None

    @property
    def kind(self) -> Kind:
        kind = self._kind
        if kind is not None:  # (chosen: each job asks, no lock then)
            return kind
        with self._lock:
            if self._kind is None:
                self._kind = self._choose()
                log.info("job containment: %s%s", self._kind.value,
                         f" (under {self._cgroup_base})" if self._kind is Kind.CGROUP else "")
            return self._kind

    def own_boxes(self) -> Union[str, None]:
        """With cgroups: the glob pattern of every job cgroup this process makes
        (`<base>/pclient.<pid>.*`, spares included); else None."""
        if self.kind is not Kind.CGROUP:
            return None
        assert self._cgroup_base is not None
        return os.path.join(self._cgroup_base, f"{_CGROUP_PREFIX}{os.getpid()}.*")

    def box(self, token: str) -> Box:
        """A new box for one job, of this process's kind."""
        kind = self.kind
        if kind is Kind.CGROUP:
            assert self._cgroup_base is not None
            spare = self._spare.take()
            if spare is not None:
                return CgroupBox(token, spare[0], self._home_fd, self._spare, fds=spare[1])
            path = os.path.join(self._cgroup_base, f"{_CGROUP_PREFIX}{os.getpid()}.{next(self._serial)}")
            try:
                return CgroupBox(token, path, self._home_fd, self._spare)
            except OSError as exc:
                log.warning("cannot make cgroup %s (%s); this job runs under a keeper", path, exc)
                return self._fallback(token)
        if kind is Kind.SUBREAPER:
            return KeeperBox(token)
        return Box(token)

    def _fallback(self, token: str) -> Box:
        return KeeperBox(token) if _can_subreap() else Box(token)

    def give_up_cgroups(self, reason: str) -> None:
        """A cgroup could be made but not joined: use the next kind from now on."""
        with self._lock:
            if self._kind is Kind.CGROUP:
                self._kind = Kind.SUBREAPER if _can_subreap() else Kind.GROUP
                log.warning("job containment: cgroups unusable (%s); now %s", reason, self._kind.value)

    def _choose(self) -> Kind:
        wanted = os.environ.get(CHOICE_VAR, "auto").strip().lower() or "auto"
        if wanted not in ("auto", *(k.value for k in Kind)):
            log.warning("%s=%r is not auto, cgroup, subreaper or group; using auto", CHOICE_VAR, wanted)
            wanted = "auto"
        if wanted in ("auto", Kind.CGROUP.value):
            base = _usable_cgroup_base()
            if base is not None:
                self._cgroup_base = base
                self._home_fd = _can_move_self(base)
                return Kind.CGROUP
            if wanted == Kind.CGROUP.value:
                log.warning("%s=cgroup but no cgroup can be made here; trying a keeper", CHOICE_VAR)
        if wanted in ("auto", Kind.CGROUP.value, Kind.SUBREAPER.value) and _can_subreap():
            return Kind.SUBREAPER
        return Kind.GROUP


_CONTAINMENT = _Containment()


def containment() -> _Containment:
    """This process's box maker."""
    return _CONTAINMENT


# -- finding what the system gives -------------------------------------------------------------


def cgroup2_mount() -> Union[str, None]:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified in hybrid mode)."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split()[4]
    except OSError:
        pass
    return None


def own_cgroup() -> Union[str, None]:
    """This process's cgroup v2 path ("/" at the root), from /proc/self/cgroup."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip() or "/"
    except OSError:
        pass
    return None


def _usable_cgroup_base() -> Union[str, None]:
    mount, own = cgroup2_mount(), own_cgroup()
    if mount is None or own is None:
        return None
    base = os.path.join(mount, own.lstrip("/"))
    probe = os.path.join(base, f"{_CGROUP_PREFIX}{os.getpid()}.probe")
    try:
        os.mkdir(probe)
    except FileExistsError:
        pass
    except OSError as exc:
        log.debug("no cgroup here: cannot make %s: %s", probe, exc)
        return None
    try:
        usable = os.access(os.path.join(probe, "cgroup.procs"), os.W_OK)
    finally:
        try:
            os.rmdir(probe)
        except OSError:
            pass
    remove_stale(base, _CGROUP_PREFIX, ".")
    return base if usable else None


def _can_move_self(base: str) -> Union[int, None]:
    """Our own cgroup.procs open for writing, if we may move into a cgroup under `base` and back.

    Tried on a probe cgroup, with SPAWN_LOCK held (no process is started meanwhile).
    `PCLIENT_CGROUP_JOIN=child` skips it: the child joins its cgroup itself (tests use it to
    keep that path tried).
    """
    if os.environ.get(JOIN_VAR, "").strip().lower() == "child":
        return None
    probe = os.path.join(base, f"{_CGROUP_PREFIX}{os.getpid()}.move")
    try:
        home_fd = os.open(os.path.join(base, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        log.debug("cannot open %s/cgroup.procs: %s; jobs join their cgroup themselves", base, exc)
        return None
    moved = False
    with SPAWN_LOCK:
        try:
            os.mkdir(probe)
            try:
                with open(os.path.join(probe, "cgroup.procs"), "w") as f:
                    f.write("0")
                moved = True
                os.write(home_fd, b"0")
                moved = False
                return home_fd
            finally:
                if not moved:
                    os.rmdir(probe)
        except OSError as exc:
            if moved:  # in and not out: stay in the probe, away from every job's cgroup
                log.error("moved into %s but cannot move back (%s)", probe, exc)
            else:
                log.debug("cannot move this process to %s and back: %s; jobs join their cgroup "
                          "themselves", probe, exc)
    os.close(home_fd)
    return None


def remove_stale(base: str, prefix: str, separator: str, spare: Union[str, None] = None) -> None:
    """Remove the empty directories named PREFIX<pid><separator>... in `base` whose process is
    dead (killed -9, say): job cgroups here, sync gate directories in pclient.syncstart (pclient.mailbox
    removes a dead owner's mailbox directory with its files: remove_dead_owners). A directory
    that is not empty (processes or a job's files still in it) stays: rmdir fails, as it should.
    With `spare`, the files in it whose names start so (the dead process's spares) go first."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        owner = name[len(prefix):].split(separator, 1)[0]
        if not name.startswith(prefix) or not owner.isdigit() or alive(int(owner)):
            continue
        path = os.path.join(base, name)
        if spare is not None:
            _remove_spares(path, spare)
        try:
            os.rmdir(path)
        except OSError:
            pass


def _remove_spares(directory: str, spare: str) -> None:
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(spare):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _can_subreap() -> bool:
    return sys.platform.startswith("linux") and bool(sys.executable)


def alive(pid: int) -> bool:
    """Whether a process `pid` exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # (OverflowError: no pid is that large)
        return False
    except PermissionError:
        return True
    return True


def process_state(pid: int) -> Union[bytes, None]:
    """The state letter of process `pid` in /proc/PID/stat (b"R", b"S", b"Z" ...); None where it
    cannot be read (the process is gone, or there is no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


ENDED_STATES = (b"Z", b"X")
"""process_state's letters of a process that has ended (a zombie not yet reaped, or dead)."""


def lives(pid: int) -> bool:
    """Whether process `pid` may still be running: it exists and is not a zombie (where there
    is no /proc to tell, existing is enough)."""
    if not alive(pid):
        return False
    state = process_state(pid)
    if state is None:  # gone since (with /proc), or no /proc: alive
        return not os.path.isdir("/proc/self")
    return state not in ENDED_STATES


# -- signalling ------------------------------------------------------------------------------------


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def find_token_processes(token: str) -> list[int]:
    """Pids of live processes whose environment carries TOKEN_VAR=token.

    Linux only (reads /proc/<pid>/environ of our own processes); elsewhere
    it finds nothing.  Zombies have no environment and are not reported.
    Blocking but cheap: call it from a thread, not from an asyncio loop.
    """
    needle = f"{TOKEN_VAR}={token}\0".encode()
    me = os.getpid()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone, or not ours
            continue
        if needle in environ:
            found.append(int(name))
    return found
