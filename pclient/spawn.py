"""Starting a job's process: the cheapest way that gives it its own session and process group
and our output pipes.

    pid, popen = spawn(argv, env, cwd, stdout_fd, stderr_fd)

`os.posix_spawn` (glibc: clone with CLONE_VFORK, then exec) when it can do the whole job, else
`subprocess.Popen` (also vfork-based since Python 3.10, but with more work on our side of it).
Measured in the agent's parent process, per `true` job on a 2-core machine under load:
posix_spawn ~90-100 us of CPU, Popen(vfork) ~160-230 us, Popen(fork) ~700-1000 us.

posix_spawn is used when there is no working directory to change to (Python 3.11 cannot ask
posix_spawn for a chdir), and the child must not inherit descriptors Popen's `close_fds` would
have closed: so once per process, before the first spawn, every descriptor above 2 is made
non-inheritable (descriptors made later by Python are non-inheritable already). The program is
looked up on the PATH of the job's environment, as Popen does; the errors are the OSErrors
Popen would raise (ENOENT for a missing program, EACCES for one not executable...), and the
signals Popen's restore_signals resets (SIGPIPE, which Python ignores; SIGXFSZ) are reset.
Standard library only, like the rest of pclient.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from typing import Mapping, Sequence, Union

__all__ = ["spawn"]

_NEW_SESSION = hasattr(os, "posix_spawn") and hasattr(os, "POSIX_SPAWN_DUP2")
#: What Popen's restore_signals puts back to default in the child (Python ignores SIGPIPE).
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name))
_swept = False


def _sweep_inherited() -> None:
    """Make every descriptor above 2 close on exec (what close_fds=True did per spawn)."""
    global _swept
    _swept = True
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(3, 256)]
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass


def _candidates(program: bytes, env: Mapping[bytes, bytes]) -> list[bytes]:
    if os.path.dirname(program):
        return [program]
    path = env.get(b"PATH")
    dirs = os.get_exec_path({"PATH": os.fsdecode(path)} if path is not None else {})
    return [os.path.join(os.fsencode(d), program) for d in dirs]


def spawn(argv: Sequence[Union[str, bytes]], env: Mapping[bytes, bytes], cwd: Union[str, None],
          stdout_fd: int, stderr_fd: int) -> tuple[int, Union[subprocess.Popen, None]]:
    """Start `argv` in a new session, stdin /dev/null, stdout and stderr on the given
    descriptors; its pid, and the Popen when Popen started it. Raises OSError or ValueError."""
    if cwd is not None or not _NEW_SESSION:
        popen = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout_fd, stderr=stderr_fd,
                                 cwd=cwd, env=env, start_new_session=True)
        return popen.pid, popen
    if not _swept:
        _sweep_inherited()
    args = [os.fsencode(a) for a in argv]
    if any(b"\0" in a for a in args):
        raise ValueError("embedded null byte")
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                   (os.POSIX_SPAWN_DUP2, stderr_fd, 2)]
        first_error = 0
        for path in _candidates(args[0], env):
            try:
                return os.posix_spawn(path, args, env, file_actions=actions, setsid=True,
                                      setsigdef=_DEFAULT_SIGNALS), None
            except OSError as exc:  # like Popen: try the next, report the first real failure
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and not first_error:
                    first_error = exc.errno
        code = first_error or errno.ENOENT
        raise OSError(code, os.strerror(code), os.fsdecode(argv[0]))
    finally:
        os.close(null)
