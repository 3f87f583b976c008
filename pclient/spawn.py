"""Starting a job's first process: the cheapest call that gives it what subprocess.Popen would.

    pid, popen = start(argv, env, out_w, err_w, cwd=None, preexec=None, pass_fds=())

The job gets a session (and process group) of its own, stdin from /dev/null, stdout and stderr on
the given pipes, SIGPIPE and SIGXFSZ back at their defaults, no descriptor of ours above 2, and
the program searched along its environment's PATH, all as `Popen(..., start_new_session=True)`
gives them.  Where it can, `start` uses posix_spawnp (glibc: clone(CLONE_VM|CLONE_VFORK) and
exec, the PATH search in the child): ~95 us of the parent's CPU a job where Popen takes ~225 us,
both vfork-based (bench/bench_spawn.py).  `popen` is then None.  With glibc >= 2.34 it is called
through ctypes (pclient.libcspawn: the GIL let go while the child execs, the child's descriptors
closed by the C library) from a process's LIBC_AFTER-th start on; elsewhere, and before, as
os.posix_spawnp.  Popen is used when posix_spawn
cannot say it: a working directory (Python 3.11 has no chdir file action), a `preexec` or
`pass_fds` (the keeper, a cgroup joined from the child), a PATH in the job's environment other
than ours (posix_spawnp searches ours), or a pipe end that is itself 0, 1 or 2.

Our descriptors: Popen closes every descriptor above 2 in the child (close_fds), and so does
pclient.libcspawn (posix_spawn_file_actions_addclosefrom_np); os.posix_spawn closes only the
close-on-exec ones.  For that one: Python makes its descriptors close-on-exec unless told
otherwise, so `start` makes the few that are not (inherited from whoever started us, or made
inheritable on purpose, like a ready pipe) close-on-exec before it spawns: they then stay out of
every child, which is what every start of a process in this project asks for anyway (close_fds).

os.posix_spawnp holds the GIL while the child execs (Popen's vfork lets it go since 3.11.6, and
so does the ctypes call): other threads wait those few hundred microseconds, or milliseconds on
a busy machine, where the child waits for a CPU before its exec.

A failure to start raises OSError (errno: ENOENT no such program, EACCES not executable, ...)
or ValueError (a NUL byte in an argument), from either call.  Standard library only.
"""

from __future__ import annotations

import itertools
import os
import signal
import stat
import subprocess
import time
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Sequence, Tuple, Union

__all__ = ["LIBC_VAR", "environ_bytes", "start"]

if TYPE_CHECKING:
    from .libcspawn import LibcSpawner

LIBC_VAR = "PCLIENT_LIBC_SPAWN"
"""`no`: never posix_spawnp through libc (pclient.libcspawn); os.posix_spawnp or Popen instead
(tests use it to keep those paths tried)."""

_FD_DIR = "/proc/self/fd"
_RESET = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))
_STDIN = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0) if hasattr(os, "posix_spawnp") else None
_HAS_FD_DIR: list = []
"""Whether _FD_DIR can be listed here, once known (a stat a job otherwise)."""


def start(argv: Sequence[str], env: Mapping[bytes, bytes], out_w: int, err_w: int,
          cwd: Union[str, None] = None, preexec: Union[Callable[[], None], None] = None,
          pass_fds: Tuple[int, ...] = ()) -> Tuple[int, Union[subprocess.Popen, None]]:
    """Start `argv` (see the module docstring); its pid, and the Popen if Popen started it."""
    ours = _environ_data()
    if cwd is None and preexec is None and not pass_fds and out_w > 2 and err_w > 2 \
            and env.get(b"PATH") == (ours if ours is not None else os.environb).get(b"PATH"):
        spawner = _libc_spawner() if _STARTS[0] >= LIBC_AFTER else None
        _STARTS[0] += 1
        if spawner is not None:
            return _along_path(lambda file: spawner.spawnp(argv, env, out_w, err_w, file), argv, env), None
        if _STDIN is not None and _fd_dir_listed():
            _no_inheritable_fds()
            options = dict(setsid=True, setsigdef=_RESET,
                           file_actions=[_STDIN, (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)])
            return _along_path(lambda file: os.posix_spawn(file, list(argv), env, **options) if file is not None
                               else os.posix_spawnp(argv[0], list(argv), env, **options), argv, env), None
    popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, cwd=cwd,
                             env=env, start_new_session=True, preexec_fn=preexec, pass_fds=pass_fds)
    return popen.pid, popen


def _along_path(call: Callable[[Union[bytes, None]], int], argv: Sequence[str], env: Mapping[bytes, bytes]) -> int:
    """`call(file)` with the file PROGRAMS knows argv[0] to be, else `call(None)` (posix_spawnp's
    own search); a start of a known file that fails is made again with the search, which then
    says what fails (and PROGRAMS forgets the file)."""
    name = argv[0]
    file = PROGRAMS.find(name, env.get(b"PATH")) if "/" not in name else None
    if file is not None:
        try:
            return call(file)
        except OSError:
            PROGRAMS.forget(name)
    return call(None)


class ProgramPaths:
    """Which file execvp would run for a program named without a slash, remembered per PATH.

    posix_spawnp searches PATH in the child, between the clone and the exec, while the parent
    (glibc's CLONE_VFORK) waits: with the program in the last of nine directories, eight failed
    execve calls, ~70-110 us of that wait a job on this machine (bench/bench_spawn.py).  So the
    file found is remembered with what was looked at before it, and a start execs it directly
    while those directories are as they were: for each earlier directory of PATH its device,
    inode and modification time (a name that appears in, or is moved into, a directory changes
    its time), or that it did not exist.  That costs a stat a directory in the parent instead
    of an execve each in the waiting child.  Nothing is remembered (the search is left to
    posix_spawnp) where the answer could differ from execvp's: a PATH with an empty or relative
    entry (the working directory's), an earlier directory that holds the name all the same (not
    executable, say, or unreadable), a name found that is not a regular executable file, or an
    earlier directory changed less than RACY_NS ago (file systems stamp times from a coarse
    clock: a name added in the same tick would leave the time as it was, so such a time is not
    trusted; git's "racy clean" rule).  A start of the remembered file that fails is made again
    with posix_spawnp's search (pclient.spawn._along_path).  Thread-safe as dict operations are:
    two threads may look a name up twice."""

    RACY_NS = 2_000_000_000
    LIMIT = 256

    def __init__(self) -> None:
        self._known: Dict[Tuple[str, bytes], Tuple[bytes, Tuple[Tuple[bytes, object], ...]]] = {}

    def find(self, name: str, path: Union[bytes, None]) -> Union[bytes, None]:
        """The file execvp would run for `name` along `path`, or None: let posix_spawnp search."""
        if not path or not name:
            return None
        known = self._known.get((name, path))
        if known is not None:
            file, before = known
            if all(_dir_key(folder) == key for folder, key in before):
                return file
            del self._known[(name, path)]
        found = _search(os.fsencode(name), path, time.time_ns() - self.RACY_NS)
        if found is not None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[(name, path)] = found
            return found[0]
        return None

    def forget(self, name: str) -> None:
        for key in [key for key in self._known if key[0] == name]:
            self._known.pop(key, None)


def _dir_key(folder: bytes) -> object:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _search(name: bytes, path: bytes, settled_ns: int) -> Union[Tuple[bytes, Tuple[Tuple[bytes, object], ...]], None]:
    """ProgramPaths' search: the file and the earlier directories' keys, or None (see there)."""
    before = []
    looked = set()
    for folder in path.split(b":"):
        if not folder.startswith(b"/"):
            return None
        if folder in looked:              # (a directory named twice: its first look stands)
            continue
        looked.add(folder)
        key = _dir_key(folder)            # (before the name's lookup: a later change shows)
        if key is not None and key[2] >= settled_ns:
            return None
        file = folder.rstrip(b"/") + b"/" + name
        try:
            st = os.stat(file)
        except (FileNotFoundError, NotADirectoryError):
            before.append((folder, key))
            continue
        except OSError:
            return None
        if stat.S_ISREG(st.st_mode) and os.access(file, os.X_OK):
            return file, tuple(before)
        return None
    return None


PROGRAMS = ProgramPaths()
"""This process's one (pclient.spawn.start's)."""


LIBC_AFTER = 8
"""Starts made with os.posix_spawnp before pclient.libcspawn is loaded: ctypes costs ~6 ms to
import (~20 under load), more than it saves a process that starts only a few jobs (an agent's
or a script's first job comes no later for it)."""
_STARTS = [0]
_SPAWNER: list = []


def _libc_spawner() -> "Union[LibcSpawner, None]":
    """pclient.libcspawn's spawner, if this C library has one (ctypes loaded now, on first use)."""
    if not _SPAWNER:
        if os.environ.get(LIBC_VAR, "").strip().lower() == "no":
            _SPAWNER.append(None)
        else:
            from .libcspawn import libc_spawner
            _SPAWNER.append(libc_spawner())
    return _SPAWNER[0]


def _fd_dir_listed() -> bool:
    if not _HAS_FD_DIR:
        _HAS_FD_DIR.append(os.path.isdir(_FD_DIR))
    return _HAS_FD_DIR[0]


def _no_inheritable_fds() -> None:
    """Make our descriptors above 2 close-on-exec (what Popen's close_fds gives the child)."""
    for name in os.listdir(_FD_DIR):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:  # the directory's own descriptor, closed by now
                pass


def environ_bytes() -> dict:
    """A copy of this process's environment, names and values as bytes.

    On POSIX CPython os.environ keeps exactly that dict (`_data`), kept up to date as the
    environment changes: copying it is one C-level copy, where dict(os.environb) decodes and
    encodes every variable again (~40 us a job with a few dozen variables).
    """
    data = _environ_data()
    return dict(data) if data is not None else dict(os.environb)


_ENVIRON_DATA: list = []


def _environ_data() -> Union[dict, None]:
    """os.environ's own dict of bytes (POSIX CPython; the same dict all along), else None;
    found out once."""
    if not _ENVIRON_DATA:
        data = getattr(os.environ, "_data", None)
        usable = isinstance(data, dict) and all(type(k) is bytes for k in itertools.islice(data, 1))
        _ENVIRON_DATA.append(data if usable else None)
    return _ENVIRON_DATA[0]
