"""A job's keeper: the child subreaper that holds every process of one job together.

Used by pclient.containment where no cgroup can be made for a job.  Each job runs under a
keeper of its own, which starts the job's program as its only child.  The keeper marks itself a
child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every process the job starts stays below it
whatever it does (setsid, double fork, a cleared environment): an orphan is re-parented to the
keeper, not to init.  Then:

- SIGTERM: SIGTERM to every process below the keeper (the job's kill or timeout begins);
- SIGUSR1: SIGKILL to every process below the keeper (the grace is over);
- when the program's own process ends, by itself or by a signal, everything still below the
  keeper is killed with SIGKILL, again until nothing is left, and the keeper writes how the
  program ended on its STATUS_FD (`X<status>` or `K<signal>`) and exits with the program's
  status (or dies of the program's signal).

If the program cannot be started, the keeper writes `E<errno>` on STATUS_FD (`S<errno>`: it
could not become a subreaper) and exits 127.

The keeper is the string PROGRAM below, run with `python3 -I -S -c PROGRAM`: the agent may itself
run from a bundle in memory (pcontrol.bootstrap), with no file of this module to name.  Standalone
on purpose (run so, it imports nothing of pclient).  It runs in one of two ways:

- served (the usual way): a keeper server, `python3 -I -S -c PROGRAM serve SOCKET_FD`, one per
  process that runs jobs (sched, an agent), started with its first keeper job (`keeper_server()`,
  KeeperServer below) as its child, in a session of its own.  It imports what a keeper needs
  once, then for each job `os.fork()`s the job's keeper: a keeper costs a fork of a small,
  single-threaded process and the pages the keeper then writes (~2-3 ms of CPU in all and ~1 MB
  of its own on the 2-CPU test machine, 2026-12), not a Python start (~25 ms of CPU, ~5-8 MB).
  A request (a length, then marshal of argv, environment, working directory and the file
  argv[0] is known to be) comes over a socketpair with the job's stdout and stderr write ends,
  the write end of its status pipe and the read end of a "go" pipe (SCM_RIGHTS).  The server
  changes to the working directory (a failure is the reply: the job was not started), forks
  with SIGCHLD, SIGTERM and SIGUSR1 blocked (it reaps nothing before it has the child's pidfd;
  the keeper is born with the signals it waits for blocked, so a kill that comes early waits
  for the program), and replies with the keeper's pid and, by SCM_RIGHTS, its pidfd.  The
  keeper sets up the job's session and descriptors, then waits for `g` on the go pipe, which
  the requester writes once it has the reply: a keeper whose server died before replying sees
  the pipe closed and exits without starting anything, so a request made again to a new server
  never runs a job twice.  The keeper is then not the requester's child: the requester learns
  its end from the pidfd (readable once it has ended) and its status from the status pipe
  (nothing written: it was killed with SIGKILL), and signals it through the pidfd, never by a
  pid the server may already have reaped.  The server reaps its keepers (SIGCHLD) and exits
  when the socket reaches EOF (the process that started it is gone); running keepers carry
  on, as they do when that process dies.  A server that dies, or does not answer within
  REPLY_TIMEOUT, is replaced at the next job; one that cannot serve a job (no pidfd) leaves
  that job to a keeper started alone.
- alone (where pidfd_open or the server is not available: Linux < 5.3, or
  PCLIENT_KEEPER_SERVER=no): `python3 -I -S -c PROGRAM STATUS_FD -- PROGRAM ARGS...`, started
  as the job's first process, the requester's child, one Python start per job.

Linux only (prctl, /proc, pidfds).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Mapping, Sequence, Tuple, Union

if TYPE_CHECKING:
    import socket
    import subprocess

__all__ = ["KeeperServer", "PROGRAM", "SERVER_VAR", "keeper_server", "parse_status"]

log = logging.getLogger(__name__)

SERVER_VAR = "PCLIENT_KEEPER_SERVER"
"""`no`: every keeper is started alone, one Python start per job (tests use it to keep that
path tried)."""

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
REPLY = "iii"
"""The server's reply: the keeper's pid, an errno, and where that errno came from (WHERE_*)."""
WHERE_CWD, WHERE_FORK, WHERE_PIDFD, WHERE_REQUEST = 1, 2, 3, 4
LIBC = ctypes.CDLL(None, use_errno=True)


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


def tell(status_fd: int, record: bytes) -> None:
    try:
        os.write(status_fd, record)
    except OSError:
        pass


def end_like(status: int, status_fd: int) -> None:
    """Say how the program ended on STATUS_FD, then end so: its exit status, or death by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        tell(status_fd, b"K%d\n" % sig)
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
    code = os.waitstatus_to_exitcode(status) & 0xFF
    tell(status_fd, b"X%d\n" % code)
    os._exit(code)


def keep(status_fd: int, program: list, env, file=None) -> None:
    """Be the keeper of `program` (started with environment `env`; `file`: the file its name
    was found to be along its PATH, tried first); never returns."""
    os.set_inheritable(status_fd, False)
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        tell(status_fd, b"S%d\n" % ctypes.get_errno())
        os._exit(127)
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    try:
        main_pid = None
        if file is not None:
            try:
                main_pid = os.posix_spawn(file, program, env, setsigmask=(),
                                          setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
            except OSError:
                pass  # (the search below says why)
        if main_pid is None:
            main_pid = os.posix_spawnp(program[0], program, env, setsigmask=(),
                                       setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    except OSError as exc:
        tell(status_fd, b"E%d\n" % (exc.errno or 0))
        os._exit(127)
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
                end_like(main_status, status_fd)
            signal_all(signal.SIGKILL)
        info = signal.sigtimedwait(WATCHED, RETRY_INTERVAL if main_status is not None else 3600)
        if info is None:
            continue
        if info.si_signo == signal.SIGTERM:
            signal_all(signal.SIGTERM)
        elif info.si_signo == signal.SIGUSR1:
            signal_all(signal.SIGKILL)


# -- the server ----------------------------------------------------------------------------------


KEEPERS = set()
"""Pids of the keepers this server forked and has not reaped yet (zombies at worst: never a
pid reused by another process)."""


def reap(signum, frame) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        KEEPERS.discard(pid)


def receive(sock):
    """The next request: (payload, descriptors), or None at EOF."""
    head, fds, _, _ = socket.recv_fds(sock, 65536, 8, socket.MSG_CMSG_CLOEXEC)
    if not head:
        for fd in fds:
            os.close(fd)
        return None
    data = bytearray(head)
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "little"):
        more = sock.recv(65536)
        if not more:
            for fd in fds:
                os.close(fd)
            return None
        data += more
    return bytes(data[4:]), fds


def become_keeper(sock, argv, env, file, out_w, err_w, status_w, go_r) -> None:
    """In the forked child: set up the job's session and descriptors, wait for the go, keep.
    Born with WATCHED blocked: a kill that comes before the program is started waits for it."""
    try:
        sock.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        path = env.get(b"PATH")  # posix_spawnp searches our own PATH: make it the job's
        if path is None:
            os.unsetenv(b"PATH")
        else:
            os.putenv(b"PATH", path)
        if os.read(go_r, 1) != b"g":
            os._exit(0)  # the requester never had our pid: nothing is started
        os.close(go_r)
        keep(status_w, list(argv), env, file)
    except OSError as exc:  # (the job's descriptors or session could not be set up)
        tell(status_w, b"E%d\n" % (exc.errno or 0))
    finally:
        os._exit(127)


def fork_keeper(sock, payload: bytes, fds: list):
    """Start one job's keeper; the reply and the keeper's pidfd (or None)."""
    if len(fds) != 4:
        return struct.pack(REPLY, 0, 22, WHERE_REQUEST), None
    out_w, err_w, status_w, go_r = fds
    try:
        argv, env, cwd, file = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return struct.pack(REPLY, 0, 22, WHERE_REQUEST), None
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError as exc:
            return struct.pack(REPLY, 0, exc.errno or 0, WHERE_CWD), None
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)  # no reaping before the pidfd; a keeper born deaf
    try:
        try:
            pid = os.fork()
        except OSError as exc:
            return struct.pack(REPLY, 0, exc.errno or 0, WHERE_FORK), None
        if pid == 0:
            become_keeper(sock, argv, env, file, out_w, err_w, status_w, go_r)
        KEEPERS.add(pid)  # (SIGCHLD still blocked: reap cannot have run for it yet)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as exc:  # the child waits for a go that will not come
            return struct.pack(REPLY, 0, exc.errno or 0, WHERE_PIDFD), None
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
    return struct.pack(REPLY, pid, 0, 0), pidfd


def serve(sock_fd: int, die: bool) -> None:
    """`die`: the jobs die with the requester (sched's local jobs): at the end of the socket,
    each keeper is told to kill everything below it (SIGUSR1), as for the job's SIGKILL."""
    import gc
    gc.disable()  # a request makes no cycles; a forked keeper then touches fewer shared pages
    sock = socket.socket(fileno=sock_fd)
    signal.signal(signal.SIGCHLD, reap)
    while True:
        request = receive(sock)
        if request is None:
            if die:
                for pid in list(KEEPERS):
                    try:
                        os.kill(pid, signal.SIGUSR1)
                    except OSError:
                        pass
            os._exit(0)  # our requester is gone; without `die`, its running keepers carry on
        payload, fds = request
        try:
            reply, pidfd = fork_keeper(sock, payload, fds)
        finally:
            for fd in fds:
                os.close(fd)
        try:
            if pidfd is None:
                sock.sendall(reply)
            else:
                socket.send_fds(sock, [reply], [pidfd])
        except OSError:
            os._exit(0)
        finally:
            if pidfd is not None:
                os.close(pidfd)


if sys.argv[1] == "serve":
    import marshal
    import socket
    import struct
    serve(int(sys.argv[2]), sys.argv[3:] == ["die"])
else:
    keep(int(sys.argv[1]), sys.argv[3:], os.environ)
'''

REPLY_TIMEOUT = 30.0
"""Seconds a request may wait for the server's reply before the server is given up (killed; the
request is made again to a new one)."""
_REPLY_SIZE = 12
"""struct.calcsize("iii") of PROGRAM's REPLY: pid, errno, where."""
_WHERE_CWD, _WHERE_FORK = 1, 2
"""PROGRAM's WHERE_CWD and WHERE_FORK: the job's start failed (anything else: the server's own)."""


def parse_status(record: bytes) -> Union[Tuple[str, int], None]:
    """What a keeper wrote on its status pipe: ("E", errno) it could not start the program,
    ("S", errno) it could not become a subreaper, ("X", status) the program exited so,
    ("K", signal) the program died of it; None for nothing or anything else."""
    line = record.split(b"\n", 1)[0]
    kind, value = line[:1], line[1:]
    if kind in (b"E", b"S", b"X", b"K") and value.isdigit():
        return kind.decode(), int(value)
    return None


class KeeperServer:
    """This process's keeper server (see the module docstring), started with the first job that
    asks for a keeper and again after it died.  `start` is synchronous, one job at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usable: Union[bool, None] = None
        self._sock: Union["socket.socket", None] = None
        self._process: Union["subprocess.Popen[bytes]", None] = None
        self.starts = 0
        """How many servers this process has started (tests)."""
        self.jobs_die_with_us = False
        """The keepers' jobs die with this process, however it ends (sched's local jobs; set
        before the first job): a server that loses its requester kills them (the guard of
        psched.scheduler.localguard does it for jobs in cgroups). An agent's jobs outlive it."""

    @property
    def pid(self) -> Union[int, None]:
        """The running server's pid, if one was started (tests)."""
        return self._process.pid if self._process is not None else None

    def usable(self) -> bool:
        """Whether keepers can be served here (pidfds, SCM_RIGHTS helpers, not turned off)."""
        if self._usable is None:
            self._usable = _can_serve()
        return self._usable

    def start(self, argv: Sequence[str], env: Mapping[bytes, bytes], cwd: Union[str, None],
              out_w: int, err_w: int, status_w: int, file: Union[bytes, None] = None
              ) -> Union[Tuple[int, int], None]:
        """Start a job's keeper through the server: its pid and a pidfd of it (ours to close).
        None: no server here (the caller starts a keeper alone).  OSError: the job could not be
        started (a bad working directory, no fork); `filename` is `cwd` for the former.  `file`:
        what argv[0] is along the job's PATH, if known (pclient.spawn.PROGRAMS), started without
        a search (the search is made if that fails)."""
        if not self.usable():
            return None
        import marshal  # (with the first served keeper only: sched's start-up loads neither)
        import socket

        try:
            where = os.path.join(os.getcwd(), cwd) if cwd is not None else os.getcwd()
        except OSError:  # our own directory is gone: the server's stays as it is
            where = cwd if cwd is not None and os.path.isabs(cwd) else None
        payload = marshal.dumps((tuple(argv), env if type(env) is dict else dict(env), where, file))
        message = len(payload).to_bytes(4, "little") + payload
        with self._lock:
            for attempt in (1, 2):
                sock = self._connected(socket)
                if sock is None:
                    return None
                go_r, go_w = os.pipe()
                try:
                    try:
                        reply, pidfd = self._ask(socket, sock, message, (out_w, err_w, status_w, go_r))
                    finally:
                        os.close(go_r)
                except (OSError, EOFError) as exc:  # the server died: any keeper it made sees go_w close
                    os.close(go_w)
                    log.warning("the keeper server (pid %s) is gone (%s); starting another", self.pid, exc)
                    self._lost(broken=True)
                    if attempt == 2:
                        return None
                    continue
                pid, error, whence = _unpack(reply)
                if error or pidfd is None:
                    os.close(go_w)  # (a keeper it forked waits for a go that will not come)
                    if pidfd is not None:
                        os.close(pidfd)
                    if whence in (_WHERE_CWD, _WHERE_FORK):  # as a start of the job would fail
                        raise OSError(error, os.strerror(error), cwd if whence == _WHERE_CWD else None)
                    log.warning("the keeper server cannot serve (%s); this job's keeper starts alone",
                                os.strerror(error) if error else "no pidfd in its reply")
                    return None
                try:
                    os.write(go_w, b"g")
                except OSError:
                    pass  # the keeper is gone already: its pidfd and its status pipe tell the rest
                finally:
                    os.close(go_w)
                return pid, pidfd
        return None

    def _connected(self, socket_module) -> Union["socket.socket", None]:
        """The socket to the running server, starting one if need be (None: it cannot start)."""
        if self._sock is not None:
            return self._sock
        import subprocess  # (with the first served keeper only: sched's start-up does without it)

        ours, theirs = socket_module.socketpair(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", PROGRAM, "serve", str(theirs.fileno()),
                 *(["die"] if self.jobs_die_with_us else [])],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)
        except (OSError, subprocess.SubprocessError) as exc:
            ours.close()
            log.warning("cannot start a keeper server (%s); each keeper job starts its own", exc)
            self._usable = False
            return None
        finally:
            theirs.close()
        self.starts += 1
        log.debug("keeper server started (pid %d)", self._process.pid)
        ours.settimeout(REPLY_TIMEOUT)
        self._sock = ours
        return ours

    @staticmethod
    def _ask(socket_module, sock: "socket.socket", message: bytes, fds: tuple) -> Tuple[bytes, Union[int, None]]:
        """Send one request with `fds`; the reply and the descriptor that came with it."""
        sent = socket_module.send_fds(sock, [message], list(fds), socket_module.MSG_NOSIGNAL)
        if sent < len(message):
            sock.sendall(message[sent:], socket_module.MSG_NOSIGNAL)
        reply, pidfd = b"", None
        while len(reply) < _REPLY_SIZE:
            data, got, _, _ = socket_module.recv_fds(sock, _REPLY_SIZE - len(reply), 1, socket_module.MSG_CMSG_CLOEXEC)
            if not data:
                for fd in got:
                    os.close(fd)
                raise EOFError("no reply")
            reply += data
            for fd in got:
                if pidfd is None:
                    pidfd = fd
                else:
                    os.close(fd)
        return reply, pidfd

    def _lost(self, broken: bool) -> None:
        """Forget the server and reap it: it has died or stopped answering (`broken`: it is
        killed, in case it only hangs), or we let it go (it exits at the end of its socket).
        Either way the keepers it forked carry on."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        process, self._process = self._process, None
        if process is None:
            return
        if broken:
            try:
                process.kill()
            except OSError:
                pass
        import subprocess  # (loaded already: the server was started with it)

        try:
            process.wait(timeout=REPLY_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("keeper server pid %d does not exit; leaving it", process.pid)

    def stop(self) -> None:
        """Let the server go (it exits; keepers it made carry on); the next job starts another."""
        with self._lock:
            self._lost(broken=False)
            self._usable = None


def _unpack(reply: bytes) -> Tuple[int, int, int]:
    return (int.from_bytes(reply[0:4], sys.byteorder, signed=True),
            int.from_bytes(reply[4:8], sys.byteorder, signed=True),
            int.from_bytes(reply[8:12], sys.byteorder, signed=True))


def _can_serve() -> bool:
    if os.environ.get(SERVER_VAR, "").strip().lower() in ("no", "0", "false", "off"):
        return False
    import signal  # (once: whether pidfd_send_signal exists)
    import socket

    if not (hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal") and hasattr(socket, "send_fds")
            and hasattr(socket, "MSG_CMSG_CLOEXEC")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        log.info("no pidfds here (%s): each keeper job starts its own keeper", exc)
        return False
    return True


_SERVER = KeeperServer()


def keeper_server() -> KeeperServer:
    """This process's keeper server (started with the first job that asks for it)."""
    return _SERVER
