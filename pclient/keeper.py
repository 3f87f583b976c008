"""A job's keeper: the child subreaper that holds every process of one job together.

Used by pclient.containment where no cgroup can be made for a job.  jobproc starts it as the
job's first process, and it starts the job's program as its only child:

    python3 -I -S -c PROGRAM STATUS_FD -- PROGRAM ARGS...

The program is the string PROGRAM below, run with `python3 -I -S -c PROGRAM`: the agent may
itself run from a bundle in memory (pcontrol.bootstrap), with no file of this module to name.

The keeper marks itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every process the
job starts stays below it whatever it does (setsid, double fork, a cleared environment): an
orphan is re-parented to the keeper, not to init.  Then:

- SIGTERM: SIGTERM to every process below the keeper (the job's kill or timeout begins);
- SIGUSR1: SIGKILL to every process below the keeper (the grace is over);
- when the program's own process ends, by itself or by a signal, everything still below the
  keeper is killed with SIGKILL, again until nothing is left, and the keeper exits with the
  program's status (or dies of the program's signal), so its parent sees the program's end.

If the program cannot be started, the keeper writes `E<errno>` on STATUS_FD and exits 127.
Standalone on purpose (run with -I -S, it imports nothing of pclient): it costs one Python
start per job, which is why a cgroup is preferred where there is one.
Linux only (prctl, /proc).
"""

PROGRAM = r'''
import ctypes
import os
import resource
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR1}
RETRY_INTERVAL = 0.02
"""While the program is gone but processes are left, how often to kill them again."""
GIVE_UP = 10.0
"""After the program is gone, how long to keep killing what is left before exiting anyway
(a process stuck in the kernel, in state D, dies only when its call returns)."""


def descendants(root: int) -> list:
    """Pids of every live process below `root` (from the parent links in /proc)."""
    children: dict = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def signal_all(sig: int) -> None:
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end_like(status: int) -> None:
    """Exit as the program did: its exit status, or death by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the program's core, if any, is its own
        except (OSError, ValueError):
            pass
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main(argv: list) -> None:
    status_fd = int(argv[1])
    program = argv[3:]
    os.set_inheritable(status_fd, False)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        os.write(status_fd, b"S%d\n" % ctypes.get_errno())
        os._exit(127)
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    try:
        main_pid = os.posix_spawnp(program[0], program, os.environ, setsigmask=(),
                                   setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except OSError as exc:
        os.write(status_fd, b"E%d\n" % (exc.errno or 0))
        os._exit(127)
    os.close(status_fd)
    main_status = None
    give_up_at = 0.0
    while True:
        left = True
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                left = False
                break
            if pid == 0:
                break
            if pid == main_pid:
                main_status = status
                give_up_at = time.monotonic() + GIVE_UP
        if main_status is not None:
            if not left or time.monotonic() > give_up_at:
                end_like(main_status)
            signal_all(signal.SIGKILL)
        info = signal.sigtimedwait(WATCHED, RETRY_INTERVAL if main_status is not None else 3600)
        if info is None:
            continue
        if info.si_signo == signal.SIGTERM:
            signal_all(signal.SIGTERM)
        elif info.si_signo == signal.SIGUSR1:
            signal_all(signal.SIGKILL)


main(sys.argv)
'''

if __name__ == "__main__":
    exec(compile(PROGRAM, "pclient-keeper", "exec"))
