"""Running pcontrol as a daemon: serve in the foreground (starting it in the background and
stopping it are pcontrol.launch's, re-exported here).

`serve` holds an exclusive lock on the pid file for its whole life, so two daemons never
share a home and a leftover socket is known to be stale. `start` runs `serve` detached
(new session, output to the log) and waits until it reports ready through a pipe (or dies,
in which case the end of the log says why). `stop` asks over the socket and waits until
the pid file's lock is released; by default the agents keep running jobs for their lease
(the next `start` takes them over), `stop -kill` ends every job first. With jobs out pcontrol
refuses to stop, saying what would become of them, unless `-force` is given.

The controller's secret ($SCHED_HOME/secret, see pcontrol.secret) is loaded (or made) here:
it is what lets the next pcontrol's agents take over this one's.

Diagnostics, from the environment of `serve` (bench/bench_scale.py uses them):
$PCONTROL_TURNWATCH=1 times every loop turn and names slow callbacks (loadwatch.TurnWatch,
shown in `status`'s loop.turns); $PCONTROL_PROFILE=FILE runs the daemon under cProfile and
writes the statistics to FILE when it stops, and to FILE.1, FILE.2, ... (starting afresh
each time) on each SIGUSR1, so a tool can profile one phase of a run; with
$PCONTROL_PROFILE_CLOCK=cpu it counts this thread's CPU time, not the wall clock's (a
process waiting for a CPU otherwise shows its syscalls as slow).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import gc
import json
import logging
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pclient import protocol as agent_protocol
from pclient.logfile import RotatingLog
from pclient.replacefile import replace_file

from .controller import Controller, ControllerConfig
from .journal import Journal, JournalError
from .launch import (EXIT_SETTLE, START_TIMEOUT, STOP_TIMEOUT, DaemonResult, mark_stopped,  # noqa: F401
                     read_pid, start, start_daemon, stop, stop_daemon, stopped_on_purpose)
from .loadwatch import GcPolicy, TurnWatch
from .paths import Paths
from .secret import SecretError, load_or_create_secret
from .server import ControlServer
from .alerts import Alerter, MailSettings
from .skew import SkewWatch
from .spareagent import DAEMON_UMASK, SpareAgent

if TYPE_CHECKING:
    import cProfile

    from .pullserver import PullServer

log = logging.getLogger(__name__)

#: Environment variables of the diagnostics (see the module docstring).
TURNWATCH_ENV = "PCONTROL_TURNWATCH"
PROFILE_ENV = "PCONTROL_PROFILE"
PROFILE_CLOCK_ENV = "PCONTROL_PROFILE_CLOCK"


class DaemonError(Exception):
    pass


# -- the pid file ----------------------------------------------------------------------------

class PidLock:
    """An exclusive flock on $SCHED_HOME/pcontrol.pid, holding our pid."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        file = open(self.path, "a+", encoding="ascii")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            other = file.read().strip()
            file.close()
            raise DaemonError(f"pcontrol is already running (pid {other or '?'})") from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._file.close()
        self._file = None




def _clear_stopped(paths: Paths) -> None:
    try:
        paths.stopped_mark.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot clear %s: %s", paths.stopped_mark, exc)


def _remember(paths: Paths, options: list[str]) -> None:
    try:
        replace_file(paths.options, json.dumps(options) + "\n", mode=0o600)
    except OSError as exc:
        log.warning("cannot keep this start's options in %s (a scheduler that starts pcontrol "
                    "again by itself will not have them): %s", paths.options, exc)


# -- serve -----------------------------------------------------------------------------------

def serve(paths: Paths, config: ControllerConfig, *, ready_fd: int | None = None,
          listen: tuple[str, int] | None = None, log_file: RotatingLog | None = None,
          spare: SpareAgent | None = None, remember: list[str] | None = None) -> int:
    """Run the daemon in the foreground until `shutdown` or SIGTERM/SIGINT. Exit status.

    SIGHUP reopens `log_file` (logrotate moved it); with no log file (logging to a terminal)
    it is a hang-up and stops the daemon as SIGTERM does. `spare`: a local agent started
    ahead (pcontrol.spareagent), for the host table's first local start. `remember`: the
    options to keep for a scheduler that starts pcontrol again (pcontrol.launch.remembered_options),
    written once this daemon holds the home."""
    os.umask(DAEMON_UMASK)
    paths.ensure_home()
    paths.check_socket_path()
    lock = PidLock(paths.pidfile)
    try:
        lock.acquire()
    except DaemonError as exc:
        log.error("%s", exc)
        if spare is not None:
            spare.discard()
        return 1
    profiler = _Profiler.from_env()
    _clear_stopped(paths)
    if remember is not None:
        _remember(paths, remember)
    try:
        asyncio.run(_serve(paths, config, ready_fd, listen, profiler, log_file, spare))
    except (JournalError, SecretError, sqlite3.Error, OSError) as exc:
        log.error("pcontrol cannot run: %s", exc)
        _tell_starter(ready_fd, str(exc))
        return 1
    finally:
        if profiler is not None:
            profiler.dump(final=True)
        lock.release()
    return 0


class _Profiler:
    """cProfile over the daemon's loop thread; see the module docstring."""

    def __init__(self, path: str, *, cpu: bool = False):
        self.path = path
        self.dumps = 0
        self._timer = time.thread_time if cpu else None
        self._profile = self._new()
        self._profile.enable()

    def _new(self) -> cProfile.Profile:
        import cProfile  # with $PCONTROL_PROFILE only (start-up, issue 13)

        return cProfile.Profile(self._timer) if self._timer else cProfile.Profile()

    @classmethod
    def from_env(cls) -> "_Profiler | None":
        path = os.environ.get(PROFILE_ENV)
        if not path:
            return None
        return cls(path, cpu=os.environ.get(PROFILE_CLOCK_ENV, "") == "cpu")

    def dump(self, *, final: bool = False) -> None:
        """Write what was profiled so far and start afresh (final: to `path` itself)."""
        self._profile.disable()
        if final:
            target = self.path
        else:
            self.dumps += 1
            target = f"{self.path}.{self.dumps}"
        try:
            self._profile.dump_stats(target)
            log.info("profile written to %s", target)
        except OSError as exc:
            log.warning("cannot write the profile to %s: %s", target, exc)
        if not final:
            self._profile = self._new()
            self._profile.enable()


async def _serve(paths: Paths, config: ControllerConfig, ready_fd: int | None,
                 listen: tuple[str, int] | None = None,
                 profiler: _Profiler | None = None, log_file: RotatingLog | None = None,
                 spare: SpareAgent | None = None) -> None:
    loop = asyncio.get_running_loop()
    secret = load_or_create_secret(paths.home)
    if config.slurm_output is None:
        config = dataclasses.replace(config, slurm_output=str(paths.home / "slurm"))
    journal = Journal(paths.journal)
    controller = Controller(journal, config, secret=secret)
    pull_server = _pull_and_alerts(paths, config, controller)
    server = ControlServer(controller, paths.socket, listen=listen, secret=secret)
    controller.host_table.spare = spare
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.request_shutdown)
    loop.add_signal_handler(signal.SIGHUP, server.request_shutdown if log_file is None else log_file.reopen)
    if profiler is not None:
        loop.add_signal_handler(signal.SIGUSR1, profiler.dump)
    gc_policy = GcPolicy(config.gc_full_interval)
    turns = None
    if os.environ.get(TURNWATCH_ENV, "") not in ("", "0"):
        turns = TurnWatch()
        if turns.install(loop):
            controller.loop_watch.turns = turns
    try:
        await controller.start()
        # What the journal held (100,000 jobs after a restart is ordinary) stays for long:
        # keep it out of the cyclic collector's full passes, which would otherwise visit
        # every one of them and stop the loop for that long; and have those passes come
        # on a timer, not each time the jobs grow by a quarter (loadwatch.GcPolicy).
        gc.freeze()
        gc_policy.start()
        await server.start()
        if pull_server is not None:
            await pull_server.start()
        log.info("pcontrol %d serving on %s", os.getpid(), paths.socket)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        # while the starter connects: the agent messages of a host's handshake and its first job,
        # made now rather than in their latency (pclient.protocol.prepare)
        agent_protocol.prepare(agent_protocol.Hello, agent_protocol.Auth, agent_protocol.Resumed,
                               agent_protocol.Run, agent_protocol.ClockProbe, agent_protocol.Started)
        await server.shutdown_requested.wait()
        log.info("shutdown requested")
        await server.close()
        if pull_server is not None:
            await pull_server.close()
        await controller.stop()
        if controller.pull is not None:
            await controller.pull.close()
        await controller.alerter.close(grace=2.0)
    finally:
        gc_policy.stop()
        if turns is not None:
            turns.uninstall()
        journal.close()
        log.info("pcontrol %d stopped", os.getpid())


def _pull_and_alerts(paths: Paths, config: ControllerConfig, controller: Controller) -> PullServer | None:
    """The alerter (mail settings from config.alerts) and, with --pull-listen, the pull hub and
    its listener (not yet listening)."""
    controller.alerter = Alerter(MailSettings.load(config.alerts) if config.alerts else None)
    controller.alerter.on_alert.append(controller.alerted)
    skew = SkewWatch(controller.alerter, config.skew_threshold, controller.host_changed)
    controller.clocks.on_measured.append(lambda host, best: skew.measured(host, best.offset, best.delay))
    if config.pull_listen is None:
        return None
    # loaded with a pull listener only: a pcontrol without one starts without them (issue 13)
    from .pull import PullHub, PullSettings
    from .pullserver import PullServer

    settings = PullSettings(interval=config.pull_interval, grace=config.pull_grace,
                            misses=config.pull_misses, skew_threshold=config.skew_threshold)
    hub = PullHub(paths.home / "pull", settings, controller.alerter, controller.hosts)
    hub.on_changed = controller.host_changed
    hub.planned = controller.planned_for
    controller.pull = hub
    controller.host_table.pull = hub
    return PullServer(hub, config.pull_listen)


def _tell_starter(ready_fd: int | None, message: str) -> None:
    """Say why the daemon cannot run to `pcontrol start`, which shows it as its one error."""
    if ready_fd is None:
        return
    try:
        os.write(ready_fd, b"error: " + message.replace("\n", " ").encode("utf-8", "replace") + b"\n")
        os.close(ready_fd)
    except OSError:
        pass     # already closed (the daemon was ready), or the starter has gone


