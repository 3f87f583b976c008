"""The scheduler's link to pcontrol: the backend for every job that is not `host LOCAL`.

    link = ControllerLink(sched)    # made by psched.scheduler.attach: it is sched.remote
    link.submit(job)                # queue the job; sent as soon as a connection is up

The link connects lazily. With no daemon running it starts one in $SCHED_HOME (the embedded
default, saying so) and, when that controller has no host, adds `localhost` with four slots per
CPU. It subscribes to the events of this scheduler's jobs (the owner is derived from
$SCHED_HOME), so nobody polls: a job going BUSY is reported started; a job going DONE has its
task.exit macro run, and is then harvested (acknowledged) at the controller, which keeps every
finished job until then. Its end event brings its outcome, and its output when that is short;
a longer output is fetched only if the macro reads it (remote_output.DeferredOutput), or into
the task's stdout/stderr files before the macro.

Exactly once, across restarts: before a job's exit macro runs, the link appends `+KEY` to a
harvest log in $SCHED_HOME, and `KEY` once the macro has ended (each line flushed to the OS, so
it survives the sched process being killed). A job whose end runs no macro and writes nothing
(Scheduler.end_is_plain) gets only its `KEY`, written with those of its loop turn and before
its harvest is sent: were sched killed before, the next one would end it again unseen. After
a restart, finished jobs the controller still holds are adopted: those whose macro ended are
only acknowledged, the others have their macro run now, and one that an earlier sched began and
died in runs again in full, with `$job_rerun` 1 (whatever it did before the kill stays done: a
macro that must not repeat an effect checks `$job_rerun`). Jobs still pending or running are followed. So every exit macro runs to its end
once; only a sched killed in the middle of a macro makes it run (part of it) twice.

A broken connection is reported; submitted jobs are not forgotten, new ones wait, and the link
reconnects with backoff.

Remote controllers: the link may talk to another machine's pcontrol over its TCP listener
instead, named by $PCONTROL_CONNECT (HOST:PORT) when sched starts or by `controller connect
HOST:PORT` (see cmd_controller), proving the secret of $SCHED_HOME or of the file named by
$PCONTROL_SECRET_FILE / `-secret FILE`. Such a link never starts a daemon, does not add
localhost to a controller without hosts (that would be the controller's machine), and its
errors name the address. Its owner id also names this machine, so that two machines whose
$SCHED_HOME has the same path are two owners there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable, Protocol

from pclient.seldom import Seldom
from pcontrol import launch  # starts and stops the daemon without loading it (pcontrol.daemon)
from pcontrol.client import ControllerAddress, ControllerClient
from pcontrol.errors import ClientError, ControllerNotRunning
from pcontrol.paths import Paths
from pcontrol.wire import Interest

from .appendlog import AppendLog
from .earlystart import embedded_serve_args, localhost_slots
from .eventloop import get_loop
from .jobs import Job, JobSink, JobState, Outcome
from .local import output_text
from .home import HomeBusy
from .remote_output import DeferredOutput, fetch_into_files

log = logging.getLogger(__name__)

__all__ = ["ControllerLink", "owner_id", "HarvestLog"]

MANAGE = ("start", "stop", "status", "connect")
"""The `controller` subcommands sched does itself (psched.scheduler.commands.controller); the others go to pcontrol."""

RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)
SUBMIT_RETRY_DELAYS = (1, 2, 4, 8, 15, 30)
"""Seconds before jobs that the controller refused for now (its journal cannot write, say on
a full disk, or it is stopping: the reply's code says so) are submitted again; they wait here,
unsent, meanwhile, rather than end DOWN."""
_FOR_NOW = frozenset({"unavailable", "shutting_down"})
BEGIN_RETRY = 2.0
"""Seconds before a controller job's harvest is tried again when the harvest log could not
keep that its exit macro begins (a full disk): the macro does not run unrecorded."""
HARVEST_DURABLE = 30.0
"""Seconds after the controller answered a harvest (on a connection still up) when its key
leaves the harvest log: by then the controller's journal has it."""
WHY_OUT_JOBS = 50
"""How many of its pending jobs `wait`'s timeout asks the controller about (why_out)."""
EVENTS_WANTED = frozenset({Interest.START, Interest.END, Interest.HOST, Interest.ALERT})
"""The events the link acts on: its jobs starting and ending, hosts coming and going (for
completion), and alerts about hosts (for the script's `alerts` queue, alertqueue.py); not every
state on the way, nor hosts filling and freeing slots."""
SUBMIT_BATCH = 256
"""Most jobs in one batch of submissions."""
UNSPOOLED_EVERY = 600.0
"""Seconds between two reports, for one task, of a job whose host kept only the head of its
output for the task's files (its agent could not spool it: a full disk there)."""
PULL_AHEAD = 600.0
"""Seconds before its planned start that a job for a pull probe is made (with that start as its
-not-before): the controller hands it to the probe at its check-in before that time, telling it
the time. pcontrol's --pull-interval should stay below this."""
SUBMIT_KEY = "PSCHED_SUBMIT"
"""Environment variable carrying `session:job id` on every controller job this link submits."""


def owner_id(home: Path, machine: str | None = None, name: str | None = None) -> str:
    """This scheduler's identity at the controller: derived from its $SCHED_HOME (and, for a
    controller on another machine, from the name of this one; for `sched --name NAME`, NAME)."""
    where = f"{machine}:" if machine else ""
    named = f"#{name}" if name else ""
    return f"sched:{where}{home.expanduser().resolve()}{named}"


class HarvestGate(Protocol):
    """Between a controller job's end and its exit macro (psched.scheduler.ha, a pool's leader):
    the macro runs only once the gate has kept, elsewhere, that it begins."""

    async def begin(self, job: Job, record: dict[str, Any]) -> bool:
        """Keep that the job's macro begins, with its outcome (`record`); False: it must not run here."""


class AddressError(ClientError):
    """The controller's address (e.g. $PCONTROL_CONNECT) cannot be used."""


class HarvestLog:
    """Which controller jobs' exit macros this scheduler has begun and ended (an append-only
    file of lines: `+KEY` when the macro begins, `KEY` once it has ended).

    A key begun and never ended is a macro that its sched died in (`interrupted`): the next
    sched runs it again. A bare key written by an older sched (which wrote it before the macro
    only) counts as ended. With no path (a simulation) the log is kept in memory only. The file
    is an appendlog.AppendLog: a torn last line (a sched killed while writing it) is skipped.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.keys: set[str] = set()  # begun or ended
        self.unfinished: set[str] = set()  # begun, not ended
        self._file = AppendLog(path, "`+KEY` or `KEY`", dir_mode=0o700) if path is not None else None
        self._dropped = 0  # keys dropped since the file was last rewritten
        self._acked: deque[tuple[float, str]] = deque()  # (when the controller answered, key)
        begun: set[str] = set()
        for _, line in self._file.replay() if self._file is not None else ():
            line = line.strip()
            if line.startswith("+"):
                begun.add(line[1:])
            elif line:
                self.keys.add(line)
        self.unfinished = begun - self.keys
        self.keys |= begun

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def interrupted(self, key: str) -> bool:
        """Its macro began under an earlier sched, which died before the macro ended."""
        return key in self.unfinished

    def begin(self, key: str) -> None:
        """The job's harvest (output, exit macro) begins."""
        self._append("+" + key)
        self.keys.add(key)
        self.unfinished.add(key)

    def end(self, key: str) -> None:
        """The job's exit macro has ended: from now on it is only acknowledged. A line the disk
        refuses now (full) is held and written with the next that can be; until then a crash
        would have the next sched run the macro again, as after a crash in it."""
        if self._file is not None:
            try:
                self._file.append([key])
            except OSError as exc:
                self._file.hold([key])
                if self._file.failed():
                    log.warning("cannot write %s: %s (kept to write later)", self.path, exc)
        self.keys.add(key)
        self.unfinished.discard(key)

    def ended_plainly(self, key: str) -> None:
        """The job has ended with nothing to keep from happening twice (no exit macro, no
        output written anywhere, loop.Scheduler.end_is_plain): no `+KEY` before, and its `KEY`
        is held to the end of the loop turn, written with the others of the turn, and in any
        case before its harvest is sent (`flush`). A crash before that only has the next
        sched end it again, which shows nothing."""
        if self._file is not None:
            self._file.hold([key])
        self.keys.add(key)

    def flush(self) -> None:
        """Write the keys held (ended_plainly) now: their harvest is about to be sent. OSError."""
        if self._file is not None:
            self._file.flush()

    def _append(self, line: str) -> None:
        if self._file is not None:
            self._file.append([line])  # flushed to the OS: it survives the death of this process

    def refused(self) -> bool:
        """A write has just failed: True the first time since one last worked (say it once)."""
        return self._file.failed() if self._file is not None else False

    def acknowledged(self, keys: list[str], now: float) -> None:
        """The controller answered these harvests. Its journal has them a moment later, unless
        it dies first (and then our connection with it): so a key is dropped only once its
        answer is HARVEST_DURABLE seconds old on a connection still up (`settle`); after a
        broken connection, the next adoption's `compact` decides from the controller's list."""
        self._acked.extend((now, key) for key in keys)
        self.settle(now)

    def settle(self, now: float) -> None:
        acked = self._acked
        dropped = 0
        while acked and acked[0][0] <= now - HARVEST_DURABLE:
            self.keys.discard(acked.popleft()[1])
            dropped += 1
        self._dropped += dropped
        if dropped and self._dropped > max(1000, len(self.keys)):
            self.compact(self.keys)  # memory and file stay small over months

    def connection_lost(self) -> None:
        self._acked.clear()

    def compact(self, still_held: set[str], listed: set[str] | None = None) -> None:
        """Drop the keys the controller no longer holds (they were acknowledged).

        `listed`: the keys there were when the controller's list was asked for; keys added
        since (jobs that ended while the list was read) are kept whatever the list says.
        """
        gone = (self.keys if listed is None else self.keys & listed) - still_held
        keep = self.keys - gone
        self._dropped = 0
        if self._file is None:
            self.keys, self.unfinished = keep, self.unfinished & keep
            return
        if keep == self.keys and not self._file.path.exists():
            return
        unfinished = self.unfinished & keep
        self._file.rewrite(("+" if k in unfinished else "") + k for k in sorted(keep))
        self.keys = keep
        self.unfinished = unfinished


_STATE_ORDER = {"PENDING": 0, "BUSY": 1, "DONE": 2}


def _later(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Of two records of one controller job, the one further on (retries restart its states),
    over the other: an event's short record (`subscribe -brief`) keeps what a whole one (the
    adoption list's) says of the job's submission, its argv, host and environment."""
    def rank(r: dict[str, Any]) -> tuple[int, int]:
        return len(r.get("attempts") or []), _STATE_ORDER.get(r.get("state") or "", 0)

    later, other = (a, b) if rank(a) >= rank(b) else (b, a)
    return {**other, **later}


def job_key(record: dict[str, Any]) -> str:
    """A controller job's identity: its id and submit time (ids restart with a new journal)."""
    return f"{record['id']}@{record.get('submitted')}"


class ControllerLink:
    """The remote backend: jobs go to pcontrol, their ends come back as events (a Backend;
    it reports to a JobSink)."""

    def __init__(self, sched: JobSink, home: str | os.PathLike[str] | None = None, auto_start: bool = True,
                 address: ControllerAddress | None = None):
        self.sched = sched
        self.paths = Paths.for_home(home)
        own = sched.home if home is None else None  # psched.scheduler.home: the name and the files
        self.name = own.name if own is not None else None
        self.address_error: str | None = None  # why the address from the environment is unusable
        if address is None:
            try:
                address = ControllerAddress.chosen(self.paths.home)  # $PCONTROL_CONNECT, else the local socket
            except ValueError as exc:
                address = ControllerAddress.local(self.paths.home)
                self.address_error = str(exc)
        self.address = address
        self.owner = self._owner_for(address)
        self.auto_start = auto_start
        self.client: ControllerClient | None = None
        self.by_cid: dict[int, Job] = {}
        self.unsent: deque[Job] = deque()
        self._sending: dict[int, Job] = {}  # submitted, the controller's reply not read yet
        self.orphans: dict[int, dict[str, Any]] = {}  # finished jobs of tasks not defined here (yet)
        self.hosts: set[str] = set()  # host names the controller told us of (for completion)
        self._unknown_said: set[tuple[str, str]] = set()  # (task, host) said to be no host of the controller
        self.pull_hosts: set[str] = set()  # those that are pull probes: their jobs are made ahead (lead)
        self._early: dict[int, dict[str, Any]] = {}  # events that beat their job's submit reply
        self._to_harvest: list[int] = []
        self._harvesting = False  # a harvest request is on its way
        self._flushing = False  # a flush is sending jobs
        self._flush_due = False  # a flush is spawned and has not begun: a task a turn, not a job (issue 13)
        self._batches = True  # the controller takes batches of submissions (until it refuses one)
        self.session = os.urandom(6).hex()  # this sched process, in submit keys (uuid's import costs start-up)
        self.submit_keys_held: set[str] | None = None  # of every job the controller has of ours (after a connect)
        self.harvests = HarvestLog(own.harvest_path if own is not None else self.paths.home / "harvested.log")
        self.started_daemon = False
        self._found_daemon = False  # a pcontrol ran when we first connected: someone else's to stop
        self._hosts_checked = False
        self.state = "not connected"
        self._connecting: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._retry = 0
        self._retry_timer: asyncio.TimerHandle | None = None
        self._submit_hold: asyncio.TimerHandle | None = None  # jobs refused for now: sent again then
        self._submit_tries = 0
        self._refused = False  # said that the controller takes no jobs for now
        self._tasks: set[asyncio.Task] = set()
        self._last_failure: str | None = None  # the last connect failure reported
        self.fence: int | None = None  # a pool's leader: its fencing token, sent with every request
        self.chosen_id: Callable[[Job], int | None] | None = None  # a pool's leader: the controller id of a job
        self.gate: HarvestGate | None = None  # a pool's leader: where a macro's beginning is kept
        self.foreign: Callable[[dict[str, Any]], bool] | None = None  # a pool's leader: jobs it settles elsewhere
        self._gating: set[int] = set()  # jobs waiting at the gate
        self._through: set[int] = set()  # jobs the gate let through
        self._macros_waiting: dict[int, asyncio.TimerHandle] = {}
        """Jobs whose exit macro waits for the harvest log (_finish_later), with the timer of their
        next try: aclose cancels it (the job is then the next sched's, or this one's adoption's)."""
        self._unspooled = Seldom(UNSPOOLED_EVERY)  # by task: when said, jobs cut since

    # --- Backend ------------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.paths.home

    def submit(self, job: Job) -> None:
        self.unsent.append(job)
        if self.client is not None and not self.client.closed:
            if not self._flushing and not self._flush_due:  # else the flush under way or due takes it
                self._flush_due = True
                self.spawn(self._flush())
        else:
            self.connect_soon()

    def kill(self, job: Job) -> bool:
        if job in self.unsent:
            self.unsent.remove(job)
            get_loop().call_soon(self._end_unsent, job, Outcome.KILLED, "killed before it reached the controller")
            return True
        if job.controller_id is None or self.client is None:
            return False
        self.spawn(self._request(["kill", job.controller_id, "-owner", self.owner], f"kill job {job.id}"))
        return True

    def submit_key(self, job: Job) -> str:
        """The key the controller keeps in the job's environment (SUBMIT_KEY)."""
        return f"{self.session}:{job.id}"

    def _end_unsent(self, job: Job, outcome: Outcome, reason: str) -> None:
        self.sched.job_sent(job)  # it never will be: counted as made, and ended
        if not job.done:
            self.sched.job_ended(job, outcome, reason=reason, stderr=reason + "\n", elapsed=0.0)

    # --- connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client is not None and not self.client.closed

    def _owner_for(self, address: ControllerAddress) -> str:
        return owner_id(self.paths.home, socket.gethostname() if address.is_tcp else None, self.name)

    def jobs_at_controller(self) -> int:
        """Jobs of this scheduler that the current controller holds and has not finished."""
        sending = sum(1 for j in self._sending.values() if j.controller_id is None)  # else in by_cid
        return sending + sum(1 for j in self.by_cid.values() if not j.done)

    async def retarget(self, address: ControllerAddress) -> None:
        """Use the controller at `address` from now on, connecting there now; on failure the
        link goes back to the controller it used and the error (naming `address`) is raised.

        Only without jobs out at the current controller (they would be lost track of); jobs
        not sent yet go to the new one.
        """
        out = self.jobs_at_controller()
        if out:
            raise ClientError(f"{out} job(s) of this scheduler are out at pcontrol at {self.address}; "
                              "wait for them (or kill them) before switching controllers")
        previous = (self.address, self.owner, self.address_error)
        await self._disconnect()
        self.address, self.owner, self.address_error = address, self._owner_for(address), None
        try:
            await self._connect(raise_errors=True, quiet=True)
        except (ClientError, OSError, ValueError):
            await self._disconnect()
            self.address, self.owner, self.address_error = previous
            self.state = "not connected"
            if self.unsent:
                self.connect_soon()
            raise

    async def _disconnect(self) -> None:
        """Drop the connection (and any pending retry) so that the next use connects afresh."""
        await self.aclose()
        self._retry = 0
        self._hosts_checked = False
        self.hosts = set()
        self.pull_hosts = set()
        self.orphans.clear()
        self._early.clear()

    def connect_soon(self) -> None:
        if self.connected or (self._connecting is not None and not self._connecting.done()):
            return
        if self._retry_timer is not None:
            return
        self._connecting = self.spawn(self._connect())

    async def connect(self) -> None:
        """Connect now (or wait for the connection under way); raise ClientError on failure."""
        if self.connected:
            return
        if self._connecting is not None and not self._connecting.done():
            await asyncio.shield(self._connecting)
        if not self.connected:
            await self._connect(raise_errors=True)

    async def _connect(self, raise_errors: bool = False, quiet: bool = False) -> None:
        try:
            self.sched.claim_home()  # one sched per $SCHED_HOME speaks to the controller for it
        except HomeBusy as exc:
            self.state = f"not connected: {exc}"
            self.sched.report(str(exc))
            if raise_errors or quiet:
                raise
            return
        try:
            if self.address_error is not None:
                raise AddressError(self.address_error)
            try:
                client = await self.address.connect(on_event=self._on_event)
            except ControllerNotRunning:
                if not self.auto_start or self.address.is_tcp:  # a remote pcontrol is started over there
                    raise
                await self._start_daemon()
                client = await self.address.connect(on_event=self._on_event)
            else:
                self._found_daemon = self._found_daemon or not self.started_daemon
            self.client = client
            client.fence = self.fence
            client.before_write = self.sched.flush_records  # a job's count is written before the job leaves
            self._early.clear()  # what came on an old connection may be staler than the job list
            await client.subscribe(owner=self.owner, only=EVENTS_WANTED, brief=True)
            self.state = "connected"
            self._retry = 0
            self._last_failure = None
            self._watcher = get_loop().create_task(self._watch(client))  # not in _tasks: it lives as long as the connection
            self._release_hold()  # a new connection (say to a new pcontrol): try at once
            await self._adopt()
            await self._flush()
        except (ClientError, OSError, ValueError) as exc:
            self.state = f"not connected: {exc}"
            if quiet:
                raise
            if str(exc) != self._last_failure:  # each retry failing the same way is said once
                self.sched.report(f"controller: {exc}; will retry")
            self._last_failure = str(exc)
            self._schedule_retry()
            if raise_errors:
                raise

    async def _start_daemon(self) -> None:
        stopped = launch.stopped_on_purpose(self.paths)
        if stopped is not None:  # an operator stopped it: not ours to start again
            raise ControllerNotRunning(f"pcontrol is stopped ({stopped}); jobs for it wait until it is "
                                       f"started again: pcontrol start (or controller start)")
        # the embedded default's controller most likely gets localhost (_ensure_hosts, or its
        # journal has it from an earlier run): its agent starts beside the daemon's own start-up
        # (pcontrol.spareagent); one not needed is ended there. A warm process begun while the
        # script was read (psched.scheduler.earlystart) is taken if it is what this would start.
        outcome = await get_loop().run_in_executor(None, launch.start, self.paths, embedded_serve_args(self.paths))
        if not outcome.ok:
            if outcome.refused_options and launch.remembered_options(self.paths):
                raise ControllerNotRunning(f"{outcome.message}; started with the options of its last start, "
                                           f"kept in {self.paths.options} (remove that file to start it "
                                           f"with none)")
            raise ControllerNotRunning(outcome.message)
        if "already running" not in outcome.message:
            # one that ran before us and that we start again (it crashed) stays when we leave
            self.started_daemon = not self._found_daemon
            self.sched.report(f"started pcontrol in {self.paths.home} (pid {outcome.pid})")

    async def _ensure_hosts(self) -> None:
        """The embedded default: a controller with no host gets localhost, four slots per CPU.

        Checked once, when the first job is about to be sent (not when a `controller` command
        connects: a user adding hosts gets exactly the hosts added).
        """
        if self._hosts_checked:
            return
        hosts = await self.client.call("hosts", "-json")  # (a failure: checked at the next flush)
        self.hosts = {h["name"] for h in hosts}
        self.pull_hosts = {h["name"] for h in hosts if h.get("pull")}
        if not hosts and self.address.is_tcp:
            self.sched.report(f"controller at {self.address} has no hosts: jobs wait until one is added there")
        elif not hosts:
            slots = localhost_slots()
            await self.client.call("host", "add", "localhost", "-slots", str(slots))
            self.hosts.add("localhost")
            self.sched.report(f"controller had no hosts: added localhost with {slots} slot(s)")
        self._hosts_checked = True

    async def _watch(self, client: ControllerClient) -> None:
        reason = await client.wait_closed()
        if client is not self.client:
            return
        self.client = None
        self.harvests.connection_lost()
        self.state = f"not connected: {reason}"
        out = sum(1 for j in self.by_cid.values() if not j.done)
        self.sched.report(f"controller connection lost ({reason}); {out} job(s) out there are not forgotten, reconnecting")
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry_timer is not None:
            return
        delay = RECONNECT_DELAYS[min(self._retry, len(RECONNECT_DELAYS) - 1)]
        self._retry += 1

        def again() -> None:
            self._retry_timer = None
            if self.unsent or self._sending or any(not j.done for j in self.by_cid.values()):
                self.connect_soon()

        self._retry_timer = get_loop().call_later(delay, again)

    async def aclose(self) -> None:
        """Close the connection (jobs out stay at the controller for the next sched)."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        self._release_hold()
        if self._tasks and self.connected:  # let harvests and kills under way reach the controller
            await asyncio.wait(list(self._tasks), timeout=5)
        client, self.client = self.client, None
        self.state = "not connected"
        if self._macros_waiting:
            self.sched.report(f"{len(self._macros_waiting)} controller job(s) whose exit macro waited for "
                              f"{self.harvests.path} to be writable are left to the next sched, which runs "
                              f"their macros")
            for timer in self._macros_waiting.values():
                timer.cancel()
            self._macros_waiting.clear()
        try:
            self.harvests.flush()
        except OSError as exc:
            log.warning("cannot write %s: %s", self.harvests.path, exc)
        if client is not None:
            await client.close()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._flush_due = False  # (a flush cancelled before it began)

    # --- sending ------------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Send the unsent jobs: one flush at a time, each request taking all the jobs that
        gathered while the one before was on its way (a batch; a lone job goes at once)."""
        self._flush_due = False
        if self._flushing:
            return  # the flush under way takes them too
        self._flushing = True
        client = self.client
        try:
            await self._flush_all()
        finally:
            self._flushing = False
        if self.client is not client and self.unsent and self.connected:
            self.spawn(self._flush())  # a new connection came up meanwhile: its turn

    async def _flush_all(self) -> None:
        if self.unsent and self.connected:
            try:
                await self._ensure_hosts()
            except ClientError as exc:  # the jobs wait: to a controller with no host they would wait there
                self.sched.report(f"controller: {exc}")
                self._hold()
                return
        while self.unsent and self.connected and self._submit_hold is None:
            jobs: list[Job] = []
            limit = SUBMIT_BATCH if self._batches else 1
            while self.unsent and len(jobs) < limit:
                job = self.unsent.popleft()
                if not job.done and job.controller_id is None:
                    jobs.append(job)
            if not jobs:
                return
            for job in jobs:
                self._sending[job.id] = job  # out, as far as jobs_out is concerned, while its reply is awaited
            try:
                replies = await self._submit(jobs)
            except ClientError as exc:
                # pcontrol may have taken them before the connection broke: the next _adopt
                # finds them by their submit keys (the adoption of a new connection may already
                # have, while this request was failing); otherwise they are sent again.
                self.unsent.extendleft(reversed([job for job in jobs if job.controller_id is None]))
                self.sched.report(f"controller: could not submit job {jobs[0].id}: {exc}")
                return
            except asyncio.CancelledError:  # sched is leaving: the next one finds them, or sends them
                self.unsent.extendleft(reversed(jobs))
                raise
            finally:
                for job in jobs:
                    self._sending.pop(job.id, None)
            self.unsent.extendleft(reversed(jobs[len(replies):]))  # an older pcontrol took one only
            held: list[Job] = []
            why = ""
            for job, reply in zip(jobs, replies):
                if job.controller_id is not None:
                    continue  # an adoption found it by its submit key meanwhile: taken there
                if not reply.ok and reply.error is not None and reply.error.code in _FOR_NOW:
                    held.append(job)
                    why = reply.text
                    continue
                self.sched.job_sent(job)
                if not job.host_required and job.host not in self.hosts and job.host not in ("NONE", "LOCAL"):
                    self._unknown_host(job)
                self._submitted(job, reply)
            if held:
                self.unsent.extendleft(reversed(held))
                self._hold_submits(why)
                return
            self._submit_tries = 0
            if self._refused:
                self._refused = False
                self.sched.report("controller takes jobs again")

    async def why_out(self) -> str | None:
        """The controller's word on our jobs that wait there (or why it cannot be asked)."""
        if not self.connected:  # (why was said when it was found, once: not again here)
            return "not connected to the controller (why: said above)"
        try:
            records = await self.client.call("jobs", "-owner", self.owner, "-state", "PENDING", "-limit",
                                             str(WHY_OUT_JOBS), "-json")
        except ClientError as exc:
            return f"the controller could not say why its jobs wait: {exc}"
        reasons = Counter(str(r.get("waiting") or "pending") for r in records if isinstance(r, dict))
        if not reasons:
            return None
        more = " ..." if len(records) >= WHY_OUT_JOBS else ""
        return "at the controller: " + "; ".join(f"{n} pending: {why}" for why, n in reasons.most_common(3)) + more

    def _unknown_host(self, job: Job) -> None:
        """`job` prefers a host the controller does not have (a typo, say): it runs on any host,
        which is said once a task and host."""
        if not self._hosts_checked or (job.task, job.host) in self._unknown_said:
            return
        self._unknown_said.add((job.task, job.host))
        self.sched.report(f"task {job.task}: the controller has no host {job.host}: its jobs run on any host "
                          f"(`host {job.host} -required` would keep them for that host)")

    def _hold_submits(self, why: str) -> None:
        """The controller refused jobs for now: they wait here, and go again after a while
        (said once, until it takes jobs again)."""
        if not self._refused:
            self.sched.report(f"controller takes no jobs for now ({why}); {len(self.unsent)} job(s) "
                              f"wait here and are sent again once it does")
            self._refused = True
        self._hold()

    def _hold(self) -> None:
        """Send the unsent jobs again after a while (SUBMIT_RETRY_DELAYS), or at a new connection."""
        self._release_hold()
        delay = SUBMIT_RETRY_DELAYS[min(self._submit_tries, len(SUBMIT_RETRY_DELAYS) - 1)]
        self._submit_tries += 1

        def again() -> None:
            self._submit_hold = None
            if self.unsent and self.connected:
                self.spawn(self._flush())

        self._submit_hold = get_loop().call_later(delay, again)

    def _release_hold(self) -> None:
        if self._submit_hold is not None:
            self._submit_hold.cancel()
            self._submit_hold = None

    async def _submit(self, jobs: list[Job]) -> list[Any]:
        """The replies to the first len(result) of `jobs`: all of them, unless the controller is
        older than batches (then one, and one by one from now on)."""
        if len(jobs) > 1:
            replies = await self.client.request_batch([self._job_argv(job) for job in jobs])
            if replies is not None:
                return replies
            self._batches = False
        return [await self.client.request(self._job_argv(jobs[0]))]

    def _submitted(self, job: Job, reply: Any) -> None:
        if not reply.ok:
            self.sched.job_ended(job, Outcome.DOWN, reason=f"controller refused the job: {reply.text}",
                                 stderr=reply.text + "\n", elapsed=0.0)
            return
        cid = int(reply.data["id"]) if isinstance(reply.data, dict) and "id" in reply.data else int(reply.text)
        job.controller_id = str(cid)
        self.by_cid[cid] = job
        # A short job may have started and ended before this reply reached us: its events
        # came first and were kept; the newest record wins.
        record = self._early.pop(cid, None) or reply.data
        if isinstance(record, dict):
            self._apply(job, record)

    def _job_argv(self, job: Job) -> list[str]:
        # The submit key lets a reconnecting link recognise a job whose reply it never got,
        # instead of sending it again.
        argv = ["job", "-owner", self.owner, "-task", job.task, "-env", f"{SUBMIT_KEY}={self.session}:{job.id}"]
        chosen = self.chosen_id(job) if self.chosen_id is not None else None
        if chosen is not None:
            argv += ["-id", str(chosen)]
        if job.host not in ("NONE", "LOCAL"):
            argv += ["-host", job.host]
            if job.host_required:
                argv.append("-required")
        if job.noskew:
            argv.append("-noskew")  # pcontrol keeps it off SKEWED hosts (an older one refuses the option)
        if job.not_before is not None:
            argv += ["-not-before", repr(job.not_before)]  # held by pcontrol until then (an older one refuses it)
        if job.timeout is not None:
            argv += ["-timeout", repr(job.timeout)]
        if job.pending is not None:
            argv += ["-pending", repr(job.pending)]
        if job.retry:
            argv += ["-retry", str(job.retry)]
        if job.cwd is not None:
            argv += ["-cwd", job.cwd]
        if job.outputs:
            argv.append("-spool")  # the agent keeps every byte for the task's stdout/stderr files
        for key, value in job.env.items():
            argv += ["-env", f"{key}={value}"]
        argv.append("-mail")  # $PSCHED_INBOX, $PSCHED_OUTBOX: the switchboard (psched.scheduler.switchboard)
        if job.inbox:
            argv += ["-inbox", "\n".join(job.inbox)]
        if self.client is not None and self.client.brief:
            argv.append("-brief")  # the reply's record short, as the events are (a pcontrol that sends them knows it)
        argv.append("--")
        argv += job.argv
        return argv

    async def _request(self, argv: list[str], what: str) -> None:
        try:
            reply = await self.client.request(argv)
        except ClientError as exc:
            self.sched.report(f"controller: {what}: {exc}")
            return
        if not reply.ok:
            self.sched.report(f"controller: {what}: {reply.text}")

    # --- events and harvest -------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        kind = getattr(event.kind, "_value_", event.kind)  # (enum's .value descriptor is ten times slower)
        if kind == "host" and event.data.get("name"):
            name = event.data["name"]
            self.hosts.add(name)
            if event.data.get("pull") and not event.data.get("deleted"):
                self.pull_hosts.add(name)
            else:
                self.pull_hosts.discard(name)
            return
        if kind == "alert":
            self.sched.controller_alert(event.data)
            return
        if kind != "job":
            return
        record = event.data
        cid = int(record.get("id", -1))
        job = self.by_cid.get(cid)
        if job is not None:
            self._apply(job, record)
        elif cid in self.orphans:  # a job of a task not defined yet: keep its newest record
            if record.get("harvested"):
                del self.orphans[cid]
            else:
                self.orphans[cid] = _later(record, self.orphans[cid])
        elif record.get("owner") == self.owner and not record.get("harvested"):
            self._early[cid] = record  # its submit reply (or the adoption list) is still on the way
            if len(self._early) > 10_000:  # never matched (jobs of an earlier sched, harvested): drop the oldest
                del self._early[next(iter(self._early))]

    def _apply(self, job: Job, record: dict[str, Any]) -> None:
        state = record.get("state")
        if state == "BUSY" and job.state is JobState.PENDING:
            self.sched.job_started(job, ran_on=record.get("ran_on") or "", pid=record.get("pid"),
                                   controller_id=str(record["id"]))
        elif state == "DONE" and not job.done:
            if "stdout" in record and "outcome" in record:
                self._finish(job, record)  # a short output comes whole with the end
            elif not record.get("stdout_bytes") and not record.get("stderr_bytes") and "outcome" in record:
                self._finish(job, dict(record, stdout="", stderr=""))  # nothing more to fetch
            elif "outcome" in record and not job.outputs:
                self._finish(job, record, lazy=True)  # the output is fetched only if it is read
            else:
                self.spawn(self._collect(job, int(record["id"])))

    async def _collect(self, job: Job, cid: int) -> None:
        try:
            record = await self.client.call("check", "job", str(cid), "-output", "-json")
        except ClientError as exc:
            self.sched.report(f"controller: could not fetch the outcome of job {job.id} (controller job {cid}): {exc}")
            return  # collected again after the reconnect
        written: tuple[str, ...] = ()
        if record.get("spooled") and job.outputs:
            written = tuple(job.outputs)  # fetched into their files, or left as they were (and said so)
            if job_key(record) not in self.harvests:  # else fetched before an earlier sched's macro began
                for error in await fetch_into_files(self.client, cid, job.outputs):
                    self.sched.report(f"task {job.task} job {job.id}: {error}")
        elif job.outputs:
            self._say_unspooled(job, record)
        self._finish(job, record, written)

    def _say_unspooled(self, job: Job, record: dict[str, Any]) -> None:
        """The job's host did not keep its whole output (not spooled there): the task's files get
        the head, whose last line says it was cut. Reported at most once every UNSPOOLED_EVERY
        seconds for a task, with the count of the jobs so since (a full disk on a host cuts
        every long output until there is room)."""
        cut = [stream for stream in job.outputs if record.get(f"{stream}_truncated")]
        if not cut:
            return  # (the head is the whole output: the files get every byte)
        told = self._unspooled.due(job.task, get_loop().time())
        if told is None:
            return
        before, since = told
        sizes = " and ".join(f"{stream} ({record.get(stream + '_bytes')} bytes)" for stream in cut)
        more = f"; {since} more job(s) of the task so since the last report" if before else ""
        self.sched.report(
            f"task {job.task} job {job.id}: host {record.get('ran_on') or '?'} did not keep its whole "
            f"{sizes} (not spooled there: pcontrol's log says why): the file gets the head, whose "
            f"last line says it was cut{more} (said at most once every {UNSPOOLED_EVERY / 60:g} minutes)")

    def _finish(self, job: Job, record: dict[str, Any], written: tuple[str, ...] = (), lazy: bool = False) -> None:
        """Mark the harvest begun, run the exit macro, mark it ended, then acknowledge at the
        controller. A macro that an earlier sched began and died in runs again, told so by
        `$job_rerun`; one that ended under an earlier sched does not.

        `lazy`: the record holds no output; it is fetched only if the macro reads it."""
        if job.done:
            return
        if self.gate is not None and job.id not in self._through:
            if job.id not in self._gating:
                self._gating.add(job.id)
                self.spawn(self._pass_gate(job, record, written, lazy))
            return
        self._through.discard(job.id)
        key = job_key(record)
        rerun = self.harvests.interrupted(key)
        already = key in self.harvests and not rerun
        if job.state is JobState.PENDING and record.get("started"):
            job.started = record.get("started")
        outcome = Outcome(record["outcome"]) if record.get("outcome") else Outcome.DOWN
        plain = (not already and not rerun and self.gate is None and not written and not record.get("outbox")
                 and self.sched.end_is_plain(job, outcome, record.get("status")))
        if already:
            job.macro = "(ran before a restart)"
            self.sched.job_ended(job, outcome, status=record.get("status"), signal=record.get("signal"),
                                 elapsed=record.get("elapsed"), reason=record.get("reason") or "",
                                 ran_on=record.get("ran_on") or "", quiet=True)
        else:
            if rerun:
                job.vars["job_rerun"] = "1"
            elif not plain:
                try:
                    self.harvests.begin(key)  # before the macro's side effects
                except OSError as exc:
                    self._finish_later(job, record, written, lazy, exc)
                    return
            try:
                self.sched.job_ended(
                    job, outcome, status=record.get("status"), signal=record.get("signal"),
                    stdout=output_text((record.get("stdout") or "").encode(), record.get("stdout_bytes") or 0,
                                       bool(record.get("stdout_truncated"))),
                    stderr=output_text((record.get("stderr") or "").encode(), record.get("stderr_bytes") or 0,
                                       bool(record.get("stderr_truncated"))),
                    stdout_bytes=record.get("stdout_bytes") or 0, stderr_bytes=record.get("stderr_bytes") or 0,
                    elapsed=record.get("elapsed"), reason=record.get("reason") or "",
                    ran_on=record.get("ran_on") or "", written=written,
                    outbox=() if rerun else tuple(str(line) for line in record.get("outbox") or ()),  # posted before the first run
                    deferred=DeferredOutput(self.address, int(record["id"]),
                                            f"job {job.id} (controller job {record['id']})").streams() if lazy else None,
                )
            finally:
                if plain:
                    self.harvests.ended_plainly(key)  # written with the turn's others, before the harvest
                else:
                    self.harvests.end(key)  # this process lives on: the macro has had its run
        self.by_cid.pop(int(record["id"]), None)
        self._harvest_soon(int(record["id"]), key)

    def _finish_later(self, job: Job, record: dict[str, Any], written: tuple[str, ...], lazy: bool,
                      exc: OSError) -> None:
        """The harvest log cannot keep that the macro begins (a full disk): it does not run
        unrecorded (a crash would then run it twice); the job is finished again in a while."""
        if self.harvests.refused():
            self.sched.report(f"task {job.task} job {job.id}: its exit macro waits: cannot write "
                              f"{self.harvests.path}: {exc.strerror or exc}; tried again every "
                              f"{BEGIN_RETRY:g} s (said once)")
        if self.gate is not None:
            self._through.add(job.id)  # it passed the gate already

        def again() -> None:
            self._macros_waiting.pop(job.id, None)
            if not job.done:
                self._finish(job, record, written, lazy)

        earlier = self._macros_waiting.get(job.id)
        if earlier is not None:
            earlier.cancel()
        self._macros_waiting[job.id] = get_loop().call_later(BEGIN_RETRY, again)

    async def _pass_gate(self, job: Job, record: dict[str, Any], written: tuple[str, ...], lazy: bool) -> None:
        try:
            passed = await self.gate.begin(job, record)
        finally:
            self._gating.discard(job.id)
        if passed:
            self._through.add(job.id)
            self._finish(job, record, written, lazy)

    async def claim(self, job: Job, cid: int) -> dict[str, Any] | None:
        """A pool's new leader: take over controller job `cid`, which an earlier leader's
        controller placed, from the agents that ran it (pcontrol.adoption); its record (the job
        is followed from now on), or None when no agent has it."""
        await self.connect()
        await self._ensure_hosts()
        argv = ["adopt", "-owner", self.owner, "-task", job.task]
        if job.host not in ("NONE", "LOCAL"):
            argv += ["-host", job.host] + (["-required"] if job.host_required else [])
        if job.timeout is not None:
            argv += ["-timeout", repr(job.timeout)]
        if job.outputs:
            argv.append("-spool")
        argv += ["-mail", "--", str(cid), *job.argv]
        reply = await self.client.request(argv, timeout=60)
        if not reply.ok:
            raise ClientError(reply.text)
        if reply.data is None:
            return None
        job.controller_id = str(cid)
        self.by_cid[cid] = job
        record = self._early.pop(cid, None) or reply.data
        self._apply(job, record)
        return record

    async def _claim_back(self, job: Job, cid: int) -> None:
        try:
            found = await self.claim(job, cid)
        except ClientError as exc:
            self.sched.report(f"controller: could not take job {job.id} (controller job {cid}) back: {exc}")
            return
        if found is None and not job.done:
            reason = f"the controller lost it: no agent had controller job {cid} after pcontrol restarted"
            self.sched.job_ended(job, Outcome.DOWN, reason=reason, stderr=reason + "\n", elapsed=0.0)

    def _harvest_soon(self, cid: int, key: str) -> None:
        """Acknowledge finished jobs in batches: one request for all that ended this loop turn,
        and while one is on its way, the next gathers all that end meanwhile (no timer: a lone
        job's acknowledgement leaves at once; under a stream of ends, batches grow by themselves)."""
        self._to_harvest.append((cid, key))
        if len(self._to_harvest) == 1 and not self._harvesting:
            get_loop().call_soon(self._harvest_batch)

    def _harvest_batch(self) -> None:
        batch, self._to_harvest = self._to_harvest, []
        if batch and self.connected:
            self._harvesting = True
            self.spawn(self._harvest(batch)).add_done_callback(self._harvested)

    def _harvested(self, _task: asyncio.Task) -> None:
        self._harvesting = False
        if self._to_harvest:
            self._harvest_batch()

    async def _harvest(self, batch: list[tuple[int, str]]) -> None:
        ids = [str(cid) for cid, _ in batch]
        what = f"harvest controller job(s) {', '.join(ids)}"
        try:
            self.harvests.flush()  # the keys of plain ends: kept before they are acknowledged
        except OSError as exc:
            self.sched.report(f"controller: {what}: cannot write {self.harvests.path}: {exc}")
            return  # harvested after the next reconnect, if the keys can be written by then
        try:
            reply = await self.client.request(["harvest", *ids, "-owner", self.owner])
        except ClientError as exc:
            self.sched.report(f"controller: {what}: {exc}")
            return  # harvested again after the reconnect (the keys stay in the log)
        if not reply.ok:
            self.sched.report(f"controller: {what}: {reply.text}")
            return
        self.harvests.acknowledged([key for _, key in batch], get_loop().time())

    async def _adopt(self) -> None:
        """After (re)connecting: collect our finished jobs, follow the running ones."""
        listed = set(self.harvests.keys)  # keys added from here on are of jobs that end meanwhile
        records = await self.client.all_jobs("-owner", self.owner)  # a page per request: pcontrol stays responsive
        held = set()
        # a job whose submit is on its way is matched too: its request may be failing with the
        # connection that broke, after pcontrol took (and journaled) the job
        unsent = {self.submit_key(j): j for j in (*self.unsent, *self._sending.values())}
        self.submit_keys_held = {(r.get("env") or {}).get(SUBMIT_KEY, "") for r in records}
        for record in records:
            if record.get("harvested") or (self.foreign is not None and int(record["id"]) not in self.by_cid
                                           and self.foreign(record)):
                continue  # (foreign: an earlier leadership's, settled through etcd: psched.scheduler.hatakeover)
            cid = int(record["id"])
            key = job_key(record)
            held.add(key)
            if key in self.harvests and not self.harvests.interrupted(key) and cid not in self.by_cid:
                # its macro ran and only the acknowledgement was lost: acknowledge it again
                self._harvest_soon(cid, key)
                continue
            job = self.by_cid.get(cid)
            if job is None:
                mine = unsent.get((record.get("env") or {}).get(SUBMIT_KEY, ""))
                if mine is not None and mine.controller_id is None:  # submitted, the reply lost
                    if mine.id not in self._sending:
                        self.unsent.remove(mine)
                    self.sched.job_sent(mine)
                    job = mine
                else:
                    job = self.sched.adopt(record)
                if job is None:  # its task is not defined (yet): taken when it is
                    early = self._early.pop(cid, None)
                    self.orphans[cid] = record if early is None else _later(early, record)
                    continue
                job.controller_id = str(cid)
                self.by_cid[cid] = job
            early = self._early.pop(cid, None)
            if early is not None:  # it may have moved on since the list was made
                record = _later(early, record)
            if record.get("state") == "DONE":
                await self._collect(job, cid)
            else:
                self._apply(job, record)
        self.harvests.compact(held, listed)
        if self.fence is not None:  # a pool's new pcontrol left our jobs to the agents: take them back
            listed_ids = {int(r["id"]) for r in records}
            for cid, job in list(self.by_cid.items()):
                if cid not in listed_ids and not job.done:
                    self.spawn(self._claim_back(job, cid))

    def orphans_note(self) -> str | None:
        """What the controller holds of ours for tasks not defined here (None: nothing)."""
        if not self.orphans:
            return None
        tasks = sorted({r.get("task") or "?" for r in self.orphans.values()})
        running = sum(1 for r in self.orphans.values() if r.get("state") != "DONE")
        return (f"controller holds {len(self.orphans)} job(s) ({running} not finished) of an earlier sched on this "
                f"home for task(s) not defined here: {', '.join(tasks)}; define them to follow these jobs and run "
                "their exit macros")

    def lead(self, host: str) -> float:
        """A pull probe's job is made PULL_AHEAD before its planned start (it carries that start:
        `job -not-before`), so that its probe is told its run time in advance; others at it."""
        return PULL_AHEAD if host in self.pull_hosts else 0.0

    def task_defined(self, task: str) -> None:
        """A task was defined: take back the jobs of an earlier run of it that we hold (running
        ones are followed, finished ones have their exit macro run)."""
        for cid, record in list(self.orphans.items()):
            if record.get("task") != task:
                continue
            job = self.sched.adopt(record)
            if job is None:
                continue
            del self.orphans[cid]
            job.controller_id = str(cid)
            self.by_cid[cid] = job
            early = self._early.pop(cid, None)
            if early is not None:
                record = _later(early, record)
            if record.get("state") == "DONE":
                if self.connected:
                    self.spawn(self._collect(job, cid))
            else:
                self._apply(job, record)

    # --- the daemon's life ----------------------------------------------------------------------

    def start_daemon(self) -> Any:
        """`controller start`: start pcontrol in this link's home; its DaemonResult."""
        outcome = launch.start(self.paths, [])
        if outcome.ok and "already running" not in outcome.message:
            self.started_daemon = True
        return outcome

    def stop_daemon(self, kill: bool = False, force: bool = False, on_purpose: bool = False) -> Any:
        """`controller stop` (and sched leaving): stop the pcontrol of this link's home; its DaemonResult.

        `on_purpose` (`controller stop`): no sched starts it again by itself until someone
        starts it (pcontrol.daemon.mark_stopped); sched leaving stops the pcontrol it started
        without that mark."""
        outcome = launch.stop(self.paths, kill=kill, force=force)
        if outcome.ok:
            self.started_daemon = False
            if on_purpose:
                launch.mark_stopped(self.paths, "controller stop")
        return outcome

    # --- helpers ------------------------------------------------------------------------------

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task:
        """Run `coro` in the background on the link's behalf (its own work, and commands sent
        over it such as `alert`): held until done; `aclose` lets it end, within a bound, while
        connected, and cancels it otherwise."""
        task = get_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def jobs_out(self) -> int:
        return len(self.unsent) + self.jobs_at_controller()
