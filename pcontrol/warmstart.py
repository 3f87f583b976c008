"""A daemon warmed up ahead of need: the sched shell's embedded default (issue 13).

A sched script that defines a controller task and runs it needs pcontrol, but sched learns
that only at `run`, after its own start-up (~0.15 s of CPU: the scheduler's imports), and
pcontrol's start (~0.15 s of CPU, nearly all imports) then begins. So when sched reads such a
script (psched.scheduler.earlystart), it begins `pcontrol serve` here already, with one more
option: `--go-fd FD`. That process (pcontrol/__main__.py) starts its spare local agent, does
its imports, and waits on FD; nothing else. It holds no pid file, socket, journal or log:
until it is told to go it is not a pcontrol, only Python with pcontrol's code loaded.

    WARM.begin(paths, serve_args)         # sched, reading the script: the same command line
                                          # pcontrol.launch.start would run, plus --go-fd
    process, ready_fd = WARM.take(paths, serve_args, env)
                                          # pcontrol.launch.start: the warm process, told to
                                          # go (the ready pipe is read as for a cold start),
                                          # or None (none, another command line or
                                          # environment, or it has gone): start cold
    wait_for_go(fd, log)                  # pcontrol/__main__, after its imports: return on
                                          # "go" (stdout and stderr then go to the log, as
                                          # launch.start points them); exit on EOF or KEEP

Nothing else changes: `go` comes from launch.start exactly where it would have started the
daemon (after its pid and stopped checks), so the daemon starts, says ready, and is reported
as before. One never told to go exits by itself: when sched leaves (or dies, even by
kill -9: the go pipe's only writer is sched, so its end is EOF) or after KEEP seconds;
its spare agent, which never got `auth`, sees EOF on its input pipe and exits too.

Light on purpose (os, select, subprocess, sys, threading, time): sched imports it while reading,
and `python -m pcontrol` right after its spare agent has started.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, ContextManager

if TYPE_CHECKING:
    from pathlib import Path

    from .paths import Paths

__all__ = ["OPTION", "KEEP", "GO", "WarmDaemon", "WARM", "serve_argv", "daemon_env", "spawn_serve",
           "go_fd_from_argv", "log_from_argv", "wait_for_go"]

#: The `pcontrol serve` option that makes a warm process (its value: the go pipe's fd).
OPTION = "--go-fd"
#: Seconds a warm process waits to be told to go.
KEEP = 30.0
#: Seconds before KEEP from which sched no longer tells a warm process to go, but starts cold.
MARGIN = 5.0
#: What sched writes on the go pipe.
GO = b"go\n"


def serve_argv(ready_fd: int, log: Path, serve_args: Sequence[str]) -> list[str]:
    """The command line of `pcontrol serve` as launch.start runs it."""
    return [sys.executable, "-m", "pcontrol", "serve", "--ready-fd", str(ready_fd),
            "--log-file", str(log), *serve_args]


def daemon_env(paths: Paths) -> dict[str, str]:
    """The environment launch.start gives the daemon."""
    return dict(os.environ, SCHED_HOME=str(paths.home))


def spawn_serve(paths: Paths, serve_args: Sequence[str], env: dict[str, str], output: int,
                go_fd: int | None = None) -> tuple[subprocess.Popen, int]:
    """`pcontrol serve` detached, its stdout and stderr on `output` (with `go_fd`: a warm one,
    waiting on it); the read end of its ready pipe."""
    read_end, write_end = os.pipe()
    argv = serve_argv(write_end, paths.log, serve_args)
    fds = (write_end,) if go_fd is None else (write_end, go_fd)
    try:
        with _spawn_lock():
            # cwd $HOME: local agents then start jobs without -cwd where ssh would, and the
            # daemon does not pin whatever directory `start` was run from.
            process = subprocess.Popen(
                argv if go_fd is None else [*argv, OPTION, str(go_fd)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env,
                cwd=os.path.expanduser("~"), start_new_session=True, pass_fds=fds, close_fds=True)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return process, read_end


class WarmDaemon:
    """At most one warm process of this sched (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # begin runs on sched's loop thread, take on a worker
        self._held: tuple[Paths, list[str], dict[str, str], subprocess.Popen, int, int] | None = None
        self._began = 0.0

    def begin(self, paths: Paths, serve_args: Sequence[str], env: dict[str, str]) -> bool:
        """Start a warm process for `paths` and `serve_args` with environment `env` (what
        launch.start would give the daemon); False if one is held already or it cannot start."""
        with self._lock:
            if self._held is not None:
                return False
            go_read, go_write = os.pipe()
            try:
                process, ready_read = spawn_serve(paths, serve_args, env, subprocess.DEVNULL, go_read)
            except OSError:
                os.close(go_write)
                return False
            finally:
                os.close(go_read)
            self._held = (paths, list(serve_args), dict(env), process, ready_read, go_write)
            self._began = time.monotonic()
            return True

    def take(self, paths: Paths, serve_args: Sequence[str],
             env: dict[str, str]) -> tuple[subprocess.Popen, int] | None:
        """The warm process told to go, and the read end of its ready pipe (the caller's to
        close), if it was begun for the same paths, arguments and environment and still
        waits; else None, and any warm process is let go."""
        with self._lock:
            held, self._held = self._held, None
        if held is None:
            return None
        was_paths, was_args, was_env, process, ready_read, go_write = held
        fresh = time.monotonic() - self._began < KEEP - MARGIN  # never as it gives up waiting
        if (was_paths, was_args, was_env) == (paths, list(serve_args), env) and fresh and process.poll() is None:
            try:
                os.write(go_write, GO)
            except OSError:  # it has just gone (EPIPE): start cold
                pass
            else:
                os.close(go_write)
                return process, ready_read
        _let_go(held)
        return None

    def discard(self) -> None:
        """Let go of a warm process not taken (it exits on EOF)."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            _let_go(held)


def _let_go(held: tuple) -> None:
    """Close our ends of a warm process's pipes: it sees EOF and exits."""
    *_, process, ready_read, go_write = held
    os.close(go_write)
    os.close(ready_read)
    process.poll()  # reaped if it has ended; else it ends on EOF and init reaps it


def _spawn_lock() -> ContextManager[object]:
    """pclient.containment.SPAWN_LOCK (sched starts pcontrol from a worker thread while its
    loop may be starting local jobs: the daemon is never born inside a job's cgroup), if that
    module is loaded: if it is not, nobody can hold its lock, and sched, reading its first
    script, need not load it (and pclient's protocol) before the start."""
    containment = sys.modules.get("pclient.containment")
    return containment.SPAWN_LOCK if containment is not None else nullcontext()


WARM = WarmDaemon()
"""This process's warm daemon (sched begins it while reading; pcontrol.launch.start takes it)."""


def go_fd_from_argv(argv: list[str]) -> int | None:
    """Take `--go-fd FD` off the end of `argv` (in place, as WarmDaemon.begin puts it): the fd,
    or None for a process that was not started warm."""
    if len(argv) >= 2 and argv[-2] == OPTION and argv[-1].isdigit():
        fd = int(argv[-1])
        del argv[-2:]
        return fd
    return None


def log_from_argv(argv: Sequence[str]) -> str | None:
    """The `--log-file` of a `serve` command line (as serve_argv writes it)."""
    for i, word in enumerate(argv[:-1]):
        if word == "--log-file":
            return argv[i + 1]
    return None


def wait_for_go(fd: int, log: str | None, keep: float = KEEP) -> bool:
    """Block until sched says go (True: stdout and stderr now append to `log`, as launch.start
    points them) or lets go: EOF, or nothing in `keep` seconds (False)."""
    readable, _, _ = select.select([fd], [], [], keep)
    said = os.read(fd, len(GO)) if readable else b""
    os.close(fd)
    if said != GO:
        return False
    if log is not None:
        log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        for std in (1, 2):
            os.dup2(log_fd, std)
        os.close(log_fd)
    return True
