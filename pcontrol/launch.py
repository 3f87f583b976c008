"""Starting and stopping the daemon from another process: `pcontrol start` and `stop`, and the
sched shell's embedded default (psched.scheduler.remote), which starts the pcontrol of its
$SCHED_HOME when a job needs one.

Light on purpose: it knows the daemon only through its pid file, its ready pipe, its socket
and its `stopped` mark, and imports none of the controller, its journal or the agent code
(pcontrol.daemon, ~150 ms of imports), which a process that only starts or stops a daemon
never runs; nor logging or dataclasses, which sched, reading a script that will need pcontrol,
has not loaded yet when it imports this (psched.scheduler.earlystart). `start` runs `pcontrol
serve` detached (new session, output to the log) and waits until it reports ready through a
pipe (or dies, in which case the end of the log says why); `stop` asks over the socket and
waits until the pid file's lock is released.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import time
from typing import TYPE_CHECKING, NamedTuple

from .errors import ClientError, ControllerNotRunning
from .paths import Paths
from .warmstart import WARM, daemon_env, spawn_serve

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DaemonResult", "START_TIMEOUT", "STOP_TIMEOUT", "EXIT_SETTLE", "read_pid", "mark_stopped",
           "stopped_on_purpose", "remembered_options", "start", "stop", "start_daemon", "stop_daemon"]

#: Seconds `start` waits for the daemon to answer.
START_TIMEOUT = 30.0
#: Seconds `stop` waits for the daemon to exit.
STOP_TIMEOUT = 30.0
#: Seconds `start` gives a daemon that closed its ready pipe without "ready" to finish exiting.
EXIT_SETTLE = 5.0


class DaemonResult(NamedTuple):
    """What start/stop did, for the CLI to print."""

    ok: bool
    message: str
    pid: int | None = None
    needs_force: bool = False
    """Refused because jobs are out: the same call with force=True would go ahead."""
    refused_options: bool = False
    """Not started because its command line was refused (the options given, or kept)."""



# -- the pid file (held by `serve`, pcontrol.daemon.PidLock) ----------------------------------

def read_pid(paths: Paths) -> int | None:
    """The pid of the running daemon, or None when nobody holds the pid lock."""
    try:
        file = open(paths.pidfile, encoding="ascii")
    except FileNotFoundError:
        return None
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = file.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(file, fcntl.LOCK_UN)
        return None


# -- stopped on purpose ----------------------------------------------------------------------

def mark_stopped(paths: Paths, how: str) -> None:
    """An operator stopped pcontrol (`how`: the command): schedulers must not start it again
    behind their back. Cleared when pcontrol starts, however it is started."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        paths.stopped_mark.write_text(f"{how} at {stamp}\n")
    except OSError as exc:
        import logging  # only here: see the module docstring

        logging.getLogger(__name__).warning("cannot mark pcontrol as stopped: %s", exc)


def stopped_on_purpose(paths: Paths) -> str | None:
    """How and when an operator stopped pcontrol ("pcontrol stop at ..."), or None."""
    try:
        return paths.stopped_mark.read_text().strip() or "stopped"
    except OSError:
        return None


def remembered_options(paths: Paths) -> list[str]:
    """The options of the last pcontrol that ran on this home (`pcontrol start --alerts ...
    --listen ...`), for a scheduler that starts it again by itself: after a crash the daemon
    comes back as its operator set it up. [] when none are kept or the file is unusable."""
    try:
        text = paths.options.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        problem = f"cannot read {paths.options}: {exc}"
    else:
        import json  # only here: see the module docstring

        try:
            options = json.loads(text)
        except ValueError:
            options = None
        if isinstance(options, list) and all(isinstance(word, str) for word in options):
            return _without_own_log(options, str(paths.log))
        problem = f"{paths.options} is not a JSON list of options; ignored"
    import logging  # only here: see the module docstring

    logging.getLogger(__name__).warning("%s", problem)
    return []


# -- start / stop (called by the CLI) --------------------------------------------------------

def _without_own_log(options: list[str], log: str) -> list[str]:
    """The kept options less a `--log-file` naming the home's own log: every start gives that
    one (pcontrol.warmstart.serve_argv), and a second copy would only lengthen `ps`'s line."""
    pairs = list(zip(options[::2], options[1::2]))
    if len(options) % 2 or ("--log-file", log) not in pairs:
        return options
    return [word for pair in pairs if pair != ("--log-file", log) for word in pair]


def start(paths: Paths, serve_args: list[str]) -> DaemonResult:
    """Start `pcontrol serve` in the background; return once it answers."""
    pid = read_pid(paths)
    if pid is not None:
        return DaemonResult(True, f"pcontrol is already running (pid {pid})", pid)
    paths.ensure_home()
    paths.check_socket_path()
    env = daemon_env(paths)
    warm = WARM.take(paths, serve_args, env)  # begun by a sched reading its script (pcontrol.warmstart)
    if warm is not None:
        process, read_end = warm
    else:
        process, read_end = _spawn(paths, serve_args, env)
    began = time.monotonic()
    said: list[str] = []
    try:
        ready = _wait_ready(read_end, process, START_TIMEOUT, said)
    finally:
        os.close(read_end)
    if not ready:
        if said:           # the daemon said why it cannot run: that, once, is the error
            return DaemonResult(False, f"pcontrol failed to start: {said[0]}")
        if time.monotonic() - began < START_TIMEOUT:
            # The ready pipe closed early: the daemon is exiting (say another one, started at the
            # same moment, holds the pid lock), but its exit may not be reaped yet.
            try:
                process.wait(timeout=EXIT_SETTLE)
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            return DaemonResult(False, f"pcontrol (pid {process.pid}) did not become ready within "
                                  f"{START_TIMEOUT:g} s; see {paths.log}", process.pid)
        already = read_pid(paths)
        if already is not None:
            return DaemonResult(True, f"pcontrol is already running (pid {already})", already)
        tail = _log_tail(paths.log)
        refused = [line for line in tail.splitlines() if line.startswith(_REFUSED)]
        if refused:  # its command line was refused (argparse, after its usage): that line says why
            return DaemonResult(False, f"pcontrol failed to start: {refused[-1][len(_REFUSED):]} "
                                       f"(its options: {' '.join(serve_args)})", refused_options=True)
        return DaemonResult(False, "pcontrol failed to start:\n" + tail)
    return DaemonResult(True, f"pcontrol started (pid {process.pid}), socket {paths.socket}",
                   process.pid)


def _spawn(paths: Paths, serve_args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """`pcontrol serve`, detached, writing to its log; the read end of its ready pipe."""
    log_fd = os.open(paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        return spawn_serve(paths, serve_args, env, log_fd)
    finally:
        os.close(log_fd)


def _wait_ready(fd: int, process: subprocess.Popen, timeout: float,
                said: list[str] | None = None) -> bool:
    """Wait for the daemon's "ready"; an "error: ..." line it wrote instead goes to `said`."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        chunk = os.read(fd, 4096)
        if not chunk:          # the daemon exited (or closed the pipe) without "ready"
            if data.startswith(b"error: ") and said is not None:
                said.append(data[len(b"error: "):].decode("utf-8", "replace").strip())
            return data.startswith(b"ready")
        data += chunk
        if data.startswith(b"ready"):
            return True
    return False


#: How `pcontrol serve` begins the line saying why it refused its command line (argparse).
_REFUSED = "pcontrol serve: error: "


def _log_tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def stop(paths: Paths, timeout: float = STOP_TIMEOUT, *, kill: bool = False,
         force: bool = False) -> DaemonResult:
    """Ask the daemon to stop (kill: ending every job) and wait until it has. With jobs
    out it refuses (needs_force) unless `force`."""
    pid = read_pid(paths)
    from .client import run_command  # only to stop: starting needs no client (sched imports this early)

    argv = ["shutdown"] + (["-kill"] if kill else []) + (["-force"] if force else [])
    try:
        reply = run_command(argv, paths.home, timeout=10.0)
    except ControllerNotRunning:
        if pid is None:
            return DaemonResult(True, "pcontrol is not running")
        os.kill(pid, signal.SIGTERM)      # a daemon with no socket: ask by signal
    except ClientError as exc:
        if pid is None:
            return DaemonResult(False, f"cannot reach pcontrol: {exc}")
        os.kill(pid, signal.SIGTERM)
    else:
        if not reply.ok:
            needs_force = isinstance(reply.data, dict) and bool(reply.data.get("needs_force"))
            return DaemonResult(False, f"pcontrol refused to stop: {reply.text}", pid,
                                needs_force=needs_force)
    if not _wait_unlocked(paths, pid, timeout):
        return DaemonResult(False, f"pcontrol (pid {pid}) did not stop within {timeout:g} s", pid)
    return DaemonResult(True, "pcontrol stopped" + (f" (pid {pid})" if pid else "")
                        + (", every job killed" if kill else ""), pid)


def _wait_unlocked(paths: Paths, pid: int | None, timeout: float) -> bool:
    """Wait until nobody holds the pid lock (the daemon has exited); False at `timeout`.

    Woken by the daemon's exit itself (a pidfd becomes readable when the process ends, and
    its lock goes with it), not by a poll; a short poll only where there is no pidfd (no
    pid, or a kernel without pidfd_open)."""
    deadline = time.monotonic() + timeout
    pidfd = None
    if pid is not None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):   # gone already, or no pidfd here
            pidfd = None
    try:
        while read_pid(paths) is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd is not None:
                select.select([pidfd], [], [], left)
                os.close(pidfd)            # it has exited: the loop checks the lock once more
                pidfd = None
            else:
                time.sleep(min(0.05, left))
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


# -- for other programs (the sched shell); blocking: call through asyncio.to_thread ----------

def start_daemon(home: str | os.PathLike[str] | None = None,
                 serve_args: list[str] | tuple[str, ...] = ()) -> DaemonResult:
    """`pcontrol start` for $SCHED_HOME (or `home`): ok=True if running when it returns."""
    return start(Paths.for_home(home), list(serve_args))


def stop_daemon(home: str | os.PathLike[str] | None = None, *, kill: bool = False,
                force: bool = False) -> DaemonResult:
    """`pcontrol stop ?-kill? ?-force?` for $SCHED_HOME (or `home`)."""
    return stop(Paths.for_home(home), kill=kill, force=force)
