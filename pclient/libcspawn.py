"""posix_spawnp called through libc with ctypes: the GIL let go while the child execs, and the
child's descriptors above 2 closed by the C library, not looked for by us.

    spawner = libc_spawner()       # None where libc lacks posix_spawn_file_actions_addclosefrom_np
    pid = spawner.spawnp(argv, env, out_w, err_w)

pclient.spawn's cheapest path (issue 13). Two costs of os.posix_spawnp go away:
- os.posix_spawnp holds the GIL for the whole call, and glibc's call returns only once the child
  has exec'd (clone(CLONE_VM|CLONE_VFORK)): on a busy machine the child waits for a CPU for
  hundreds of microseconds, even milliseconds, and every other thread of the process (the job
  watcher, which reads the output and notices the ends of the other jobs) waits with it. A ctypes
  call lets the GIL go.
- os.posix_spawnp closes only the close-on-exec descriptors in the child, so pclient.spawn made
  every descriptor of ours close-on-exec before each start: a listing of /proc/self/fd and a
  call per descriptor, each job. glibc >= 2.34 has posix_spawn_file_actions_addclosefrom_np,
  which closes every descriptor from 3 up in the child (close_range): what Popen's close_fds
  does, with nothing to look for in the parent.

envp is handed to C as a table of addresses made once for the strings of this process's own
environment, which every job's environment starts with, and kept while that stays the same;
only the job's own few variables are converted each time (each string ctypes converts costs a
few thousand instructions).

The child gets what pclient.spawn promises: its own session (POSIX_SPAWN_SETSID), SIGPIPE and
SIGXFSZ at their defaults, stdin from /dev/null, stdout and stderr on the given pipe ends, no
other descriptor, the program searched along this process's PATH. Errors are those of
os.posix_spawnp: OSError with the errno of the failed exec and the program as its filename,
ValueError for a NUL byte in an argument or an environment entry, or a variable name holding
"=". Standard library only (ctypes), glibc on Linux only; elsewhere `libc_spawner()` is None.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from typing import Dict, List, Mapping, Sequence, Tuple, Union

from .spawn import environ_bytes

__all__ = ["LibcSpawner", "libc_spawner"]

_POSIX_SPAWN_SETSIGDEF = 0x04
_POSIX_SPAWN_SETSID = 0x80
"""glibc's flag values (spawn.h)."""
_OPAQUE = 1024
"""Bytes given to each of glibc's opaque types (posix_spawnattr_t is 336 on x86_64,
posix_spawn_file_actions_t 80, sigset_t 128): more than any of them needs."""
_ACTION_CACHE = 128
"""File actions kept, one per pair of pipe ends, the least recently used dropped first: descriptor
numbers come back, but not in the same pairs: an agent running 8 `true` jobs at a time made
them anew for 530 of 2,000 jobs (867 with 64 kept, 410 with 256; 1,054 and 1,251 in two runs
keeping the first 64 pairs made for good, as before), issue 13."""
_RESET = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


class _Opaque(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char * _OPAQUE)]


class LibcSpawner:
    """posix_spawnp through libc (see the module docstring); one per process."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        self._spawnp = libc.posix_spawnp
        self._spawnp.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._spawnp.restype = ctypes.c_int
        self._spawn = libc.posix_spawn
        self._spawn.argtypes = self._spawnp.argtypes
        self._spawn.restype = ctypes.c_int
        self._attr = _Opaque()
        sigset = _Opaque()
        _check(libc.posix_spawnattr_init(ctypes.byref(self._attr)))
        _check(libc.sigemptyset(ctypes.byref(sigset)))
        for sig in _RESET:
            _check(libc.sigaddset(ctypes.byref(sigset), int(sig)))
        _check(libc.posix_spawnattr_setsigdefault(ctypes.byref(self._attr), ctypes.byref(sigset)))
        _check(libc.posix_spawnattr_setflags(ctypes.byref(self._attr),
                                             ctypes.c_short(_POSIX_SPAWN_SETSIGDEF | _POSIX_SPAWN_SETSID)))
        self._lock = threading.Lock()
        self._spawning = threading.Lock()  # (held around a start: the file actions it uses stay)
        self._actions: Dict[Tuple[int, int], _Opaque] = {}  # (in the order last used)
        self._ours: Union[_Ours, None] = None

    def spawnp(self, argv: Sequence[str], env: Mapping[bytes, bytes], out_w: int, err_w: int,
               file: Union[bytes, None] = None) -> int:
        """Start argv (see the module docstring); the child's pid. With `file`, that file is run
        (posix_spawn, no search: pclient.spawn.ProgramPaths found it)."""
        args = [os.fsencode(arg) for arg in argv]
        if b"\0" in b"".join(args):  # (C would cut them there)
            raise ValueError("embedded null byte")
        c_argv = (ctypes.c_char_p * (len(args) + 1))(*args)
        strings, c_env = self._environment(env)
        pid = ctypes.c_int(0)
        with self._spawning:  # (one start at a time all the same: pclient.containment.SPAWN_LOCK)
            actions = self._file_actions(out_w, err_w)
            err = (self._spawnp if file is None else self._spawn)(
                ctypes.byref(pid), args[0] if file is None else file, ctypes.byref(actions),
                ctypes.byref(self._attr), c_argv, c_env)
        del strings  # (kept until here: c_env points into them)
        if err:
            raise OSError(err, os.strerror(err), argv[0])
        return pid.value

    def _environment(self, env: Mapping[bytes, bytes]) -> Tuple[object, bytes]:
        """envp for `env`: the table of its strings' addresses, and what keeps them alive.

        A job's environment is this process's plus a few variables of its own, at the end (a
        dict keeps the order of insertion): the strings of ours are converted once and kept with
        the table of their addresses (a ctypes array of 40 c_char_p made each time cost ~100k
        instructions a job), the job's own ones each time. Anything else (a variable of ours
        given another value, say) is converted whole."""
        items = list(env.items())
        with self._lock:
            ours = self._ours
            begins_so = ours is not None and items[:len(ours.items)] == ours.items
            if not begins_so:
                current = environ_bytes()  # (ours changed? then kept anew for the next jobs)
                if ours is None or current != ours.source:
                    ours = self._ours = _Ours(current)
                    begins_so = items[:len(ours.items)] == ours.items
        if begins_so and ours.table is not None:
            array, table = _table([_entry(name, value) for name, value in items[len(ours.items):]])
            return (ours.array, array), ours.table + table
        return _table([_entry(name, value) for name, value in items])

    def _file_actions(self, out_w: int, err_w: int) -> _Opaque:
        """stdin from /dev/null, the pipe ends on 1 and 2, everything from 3 up closed: kept for
        the next starts with the same pipe ends (_ACTION_CACHE; made anew, they cost five calls
        into C, each letting the GIL go, and glibc a getrlimit for each descriptor it checks).
        With self._spawning held."""
        key = (out_w, err_w)
        actions = self._actions.pop(key, None)
        if actions is None:
            actions = self._new_file_actions(out_w, err_w)
            if len(self._actions) >= _ACTION_CACHE:
                oldest = self._actions.pop(next(iter(self._actions)))
                self._libc.posix_spawn_file_actions_destroy(ctypes.byref(oldest))
        self._actions[key] = actions  # (last: the most recently used)
        return actions

    def _new_file_actions(self, out_w: int, err_w: int) -> _Opaque:
        libc = self._libc
        actions = _Opaque()
        _check(libc.posix_spawn_file_actions_init(ctypes.byref(actions)))
        _check(libc.posix_spawn_file_actions_addopen(ctypes.byref(actions), 0, os.fsencode(os.devnull),
                                                     os.O_RDONLY, 0))
        _check(libc.posix_spawn_file_actions_adddup2(ctypes.byref(actions), out_w, 1))
        _check(libc.posix_spawn_file_actions_adddup2(ctypes.byref(actions), err_w, 2))
        _check(libc.posix_spawn_file_actions_addclosefrom_np(ctypes.byref(actions), 3))
        return actions


def _entry(name: bytes, value: bytes) -> bytes:
    if b"=" in name or not name:
        raise ValueError("illegal environment variable name")
    if b"\0" in name or b"\0" in value:  # (C would cut them there)
        raise ValueError("embedded null byte")
    return name + b"=" + value


def _table(strings: List[bytes]) -> Tuple[ctypes.Array, bytes]:
    """A C array of pointers to the strings, NULL after them (argv or envp for posix_spawnp), as
    bytes; and the ctypes array it was copied from, which keeps the strings alive."""
    array = (ctypes.c_char_p * (len(strings) + 1))(*strings)
    return array, bytes(array)


class _Ours:
    """This process's environment as envp strings, converted once (LibcSpawner._environment)."""

    def __init__(self, source: Dict[bytes, bytes]) -> None:
        self.source = source
        self.items = list(source.items())
        self.table: Union[bytes, None] = None  # (None: not convertible; converted whole each time, raising there)
        self.array: Union[ctypes.Array, None] = None
        try:
            self.array, table = _table([_entry(name, value) for name, value in self.items])
        except ValueError:
            return
        self.table = table[:-ctypes.sizeof(ctypes.c_char_p)]  # (without its NULL)


def _check(err: int) -> None:
    if err:
        raise OSError(err, os.strerror(err))


def libc_spawner() -> Union[LibcSpawner, None]:
    """A LibcSpawner, or None where the C library cannot do it (pclient.spawn keeps the
    process's one)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if hasattr(libc, "posix_spawn_file_actions_addclosefrom_np") and hasattr(libc, "posix_spawnp"):
            return LibcSpawner(libc)
    except (OSError, AttributeError):
        pass
    return None
