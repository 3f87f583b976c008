"""The pclient agent: serves the agent protocol on a Channel, runs jobs with jobproc.

    controller --run/kill/ping/bye/auth/ack--> Agent --JobSpec--> jobproc
    controller <--hello/started/ended/pong/error/resumed/lost-- Agent <--JobResult--

One loop reads lines, decodes them, looks the message type up in a table and
awaits its handler; a bad line or a failing handler is answered with an
`error` message and the loop carries on.  `bye` or a stop request (a signal)
end it: every running job is killed, reported `ended`, and `serve()` returns.

Losing the controller (end of input, a broken pipe, a hang-up) without a
`bye` ends the agent the same way, unless the controller sent `auth`: then
the agent keeps its jobs and their outcomes for a lease and waits on its
socket for a successor agent (pclient.lease).  A successor that proves the
token becomes the agent's new channel: it gets `resumed` and every outcome
its controller has not acked, and the agent exits once all is acked.  After
`auth` the agent also looks for survivors itself and proxies them: their
running jobs count as its own, their reports go to its controller, and the
controller's acks and kills go back to them.

A connection can also stall without ending (a cut network: no FIN, no RST).
When the controller's `auth` gives its heartbeat, the agent keeps a watchdog:
silence from the controller for longer than the controller's own DOWN limit
(heartbeat x missed) plus a slack means the controller has left; the agent
drops the connection and survives it exactly as on EOF.  And because an agent
may learn that late, a successor whose controller still holds jobs for the
host (the `held` of its pings) keeps looking for survivors at every such ping:
it takes over those that appear (a second `resumed` names their jobs), and
reports `lost` the held jobs that no live agent on the host can have.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import enum
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Union

from .build import code_digest
from .fencing import FenceFloor, refusal
from .jobproc import DEFAULT_KILL_GRACE, JobResult, JobSpec, RunningJob, begin_job
from .lease import (
    AgentPresence,
    LeaseError,
    SurvivorLink,
    SurvivorListener,
    find_survivors,
    kill_orphans,
    live_agents,
    live_agents_of,
    survivor_key,
    survivor_socket_problem,
)
from .protocol import AGENT_VERSION
from .protocol import (
    MAX_LINE,
    PROTOCOL_VERSION,
    SWEEP_VERSION,
    Ack,
    Auth,
    Bye,
    Chunk,
    ClockProbe,
    ClockReply,
    Drop,
    Ended,
    Error,
    Fetch,
    Fence,
    Go,
    Hello,
    Kill,
    Lost,
    Message,
    Ping,
    Pong,
    Prepare,
    ProtocolError,
    Resumed,
    Run,
    Spooled,
    Started,
    Sweep,
    decode,
    encode,
    prepare,
)
from .output import as_text
from .seldom import Seldom
from .spool import Spool, Swept
from .stdio import Channel, ClaimedStdio, StdioChannel
from .syncstart import SyncStarter

__all__ = ["AGENT_NAME", "AGENT_VAR", "AGENT_VERSION", "DEFAULT_LEASE", "WATCHDOG_MIN_SLACK", "Agent",
           "ChannelEnd", "LineSplitter", "LineTooLong", "ended_message", "run_agent"]

FENCED = (Run, Kill, Prepare, Go, Sweep)
"""What a controller asks that a higher fencing token on the host makes us refuse (pclient.fencing):
a deposed controller's sweep would take the files of jobs it no longer knows for orphans."""

FETCH_MAX = 1 << 20
"""Most bytes of a spooled stream sent in one `chunk` (base64 makes the line 4/3 of it)."""
SPOOL_TROUBLE_EVERY = 600.0
"""Seconds between two words to the controller that spooled outputs cannot be kept (a disk
nearly full fails the long outputs and keeps the short ones: no word a job)."""

log = logging.getLogger(__name__)

AGENT_NAME = f"pclient {AGENT_VERSION}"
DEFAULT_LEASE = 600.0
"""Seconds an agent keeps its jobs after losing its controller (after `auth` only)."""
AGENT_VAR = "PCLIENT_AGENT"
"""Environment variable marking a job with its agent (survivor key and pid), so the
jobs of an agent that was killed can be found and ended by its successor."""
SHUTDOWN_MARGIN = 10.0
"""Seconds beyond the kill grace to wait for killed jobs to be reported at shutdown."""
WATCHDOG_MIN_SLACK = 1.0
"""The watchdog's default slack beyond the controller's own limit: one heartbeat, and at
least this many seconds (so the controller, not the agent, normally decides first)."""
_EXCERPT_BYTES = 200


@dataclass(frozen=True)
class LineTooLong:
    """Stands for an input line longer than the limit (its bytes are dropped)."""

    head: bytes
    """The start of the line, for the error excerpt."""


class LineSplitter:
    """Cuts a byte stream into lines (without their newline).

    A line longer than `limit` comes out once as a LineTooLong, as soon as it
    is known to be too long; the rest of it is skipped up to its newline.
    """

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Union[bytes, LineTooLong]]:
        lines: list[Union[bytes, LineTooLong]] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif len(self._buffer) + end - start > self._limit:
                lines.append(LineTooLong(bytes((self._buffer + data[start:end])[:_EXCERPT_BYTES])))
            else:
                self._buffer += data[start:end]
                lines.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1
        if not self._skipping:
            self._buffer += data[start:]
            if len(self._buffer) > self._limit:
                lines.append(LineTooLong(bytes(self._buffer[:_EXCERPT_BYTES])))
                self._buffer.clear()
                self._skipping = True
        return lines

    def flush(self) -> Union[bytes, None]:
        """The unterminated last line at end of input, if any."""
        rest = bytes(self._buffer) if self._buffer and not self._skipping else None
        self._buffer.clear()
        self._skipping = False
        return rest


def _excerpt(line: bytes) -> str:
    text = line[:_EXCERPT_BYTES].decode("utf-8", "replace")
    return text + "..." if len(line) > _EXCERPT_BYTES else text


def ended_message(result: JobResult, spooled: bool = False) -> bytes:
    """The encoded `ended` line for a result, with output cut further if the
    line would not fit in MAX_LINE (escaping can make text grow six-fold)."""
    msg = Ended(
        job=result.job_id, outcome=result.outcome, status=result.status, signal=result.signal,
        elapsed=result.elapsed,
        stdout=as_text(result.stdout), stderr=as_text(result.stderr),
        stdout_bytes=result.stdout_bytes, stderr_bytes=result.stderr_bytes,
        stdout_truncated=result.stdout_truncated, stderr_truncated=result.stderr_truncated,
        reason=result.reason, spooled=spooled, outbox=result.outbox,
    )
    while True:
        try:
            return encode(msg)
        except ProtocolError:
            if not msg.stdout and not msg.stderr:  # only the outbox is left to cut
                msg = dataclasses.replace(msg, outbox=msg.outbox[: len(msg.outbox) // 2])
                continue
            msg = dataclasses.replace(
                msg, stdout=msg.stdout[: len(msg.stdout) // 2], stderr=msg.stderr[: len(msg.stderr) // 2],
                stdout_truncated=msg.stdout_truncated or bool(msg.stdout),
                stderr_truncated=msg.stderr_truncated or bool(msg.stderr),
            )


_Handler = Callable[[Any], Awaitable[None]]
"""Takes the message of the type it is registered for."""


class ChannelEnd(enum.Enum):
    """Why the agent stopped reading its current channel."""

    BYE = "bye"
    """The controller said bye: end every job, report, exit."""
    STOP = "stop"
    """A stop request (SIGTERM, SIGINT): the same as bye."""
    LOST = "lost"
    """End of input, a read or write error, a hang-up: the controller is gone."""
    DONE = "done"
    """A survivor's successor has every outcome and acknowledged it: nothing left to do."""


class Agent:
    """Serves one controller on `channel` until bye, a stop request, or (without a
    lease) the end of its input; with a lease, survives the controller (module pclient.lease)."""

    def __init__(self, channel: Channel, *, slots: int, host: str,
                 kill_grace: float = DEFAULT_KILL_GRACE, clock: Callable[[], float] = time.time,
                 lease: float = DEFAULT_LEASE, watchdog_slack: Union[float, None] = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        if watchdog_slack is not None and not watchdog_slack >= 0:
            raise ValueError(f"watchdog_slack must be >= 0, got {watchdog_slack}")
        self.slots = slots
        self.host = host
        self.kill_grace = kill_grace
        self.lease = lease
        """Seconds to keep jobs without a controller (the controller's `auth` may change it)."""
        self.watchdog_slack = watchdog_slack
        """Seconds of silence tolerated beyond the controller's DOWN limit (None: one
        heartbeat, at least WATCHDOG_MIN_SLACK)."""
        self.silence_limit: Union[float, None] = None
        """Seconds of silence after which the controller is lost (None: no watchdog)."""
        self.lease_expired = False
        self._channel = channel
        self._first_channel = channel
        self._broken: Union[Channel, None] = None
        """The channel whose output failed, if it is the current one."""
        self._clock = clock
        self._monotonic = monotonic
        """The watchdog's clock (tests pass a fake one)."""
        self._running: dict[str, RunningJob] = {}
        self._adopted: dict[str, SurvivorLink] = {}
        """Running jobs of survivors we took over, by job id."""
        self._unacked: dict[str, tuple[bytes, Union[SurvivorLink, None]]] = {}
        """Ended lines the controller has not acknowledged, and the survivor each came from."""
        self._links: dict[SurvivorLink, asyncio.Task[None]] = {}
        self._announced: set[str] = set()
        """Running jobs whose Started has been sent."""
        self._all_ended: Union[asyncio.Future[None], None] = None
        """Set once no job of ours runs any more, when _shutdown waits for that."""
        self._takeover: Union[asyncio.Task[None], None] = None
        self._search: Union[asyncio.Task[None], None] = None
        """A later look for survivors, for jobs the controller holds (one at a time)."""
        self._reported_lost: set[str] = set()
        """Held jobs already reported lost (not again while the controller still names them)."""
        self._watchdog: Union[asyncio.Task[None], None] = None
        self._sweeping: Union[asyncio.Task[None], None] = None
        """The spool sweep under way (`sweep`), if any."""
        self._last_heard = 0.0
        """Monotonic time of the last bytes from the current channel."""
        self._presence: Union[AgentPresence, None] = None
        self._token: Union[str, None] = None
        self._name: Union[str, None] = None
        self._keep_results = False
        self._fence: Union[int, None] = None
        """Our controller's fencing token (pclient.fencing); None: not in a pool."""
        self._floor: Union[FenceFloor, None] = None
        self._chunks = 0
        """Chunks of input read so far."""
        self._floor_read: tuple[int, int] = (-1, 0)
        """(_chunks when the floor was last read, the floor then): it is read once per chunk
        of input, not once per line of it."""
        self._mark: Union[tuple[tuple[str, str, int], str], None] = None
        """The last _agent_mark, and what it was made of."""
        self._serving_successor = False
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._end: Union[ChannelEnd, None] = None
        self._output_lost = False
        self._handlers: Dict[type, _Handler] = {
            Run: self._on_run,
            Kill: self._on_kill,
            Ping: self._on_ping,
            Bye: self._on_bye,
            Auth: self._on_auth,
            Ack: self._on_ack,
            Fetch: self._on_fetch,
            Drop: self._on_drop,
            ClockProbe: self._on_clock_probe,
            Prepare: self._on_prepare,
            Go: self._on_go,
            Fence: self._on_fence,
            Sweep: self._on_sweep,
        }
        self.spool = Spool.default()
        """Where jobs run with `spool` keep their whole output (pclient.spool)."""
        self._spool_says = Seldom(SPOOL_TROUBLE_EVERY)
        """When the controller was last told that a spooled output could not be kept (a full
        disk), and how many jobs so since then."""
        self._spool_failing = False
        """The last spooled job's output was not kept whole."""
        self._sync = SyncStarter(self._send_message, self._report_sync_end, kill_grace=kill_grace,
                                 clock=clock)
        """Jobs of synchronized runs (pclient.syncstart): prepared at a gate, started at an instant."""

    @property
    def running(self) -> int:
        """Jobs running here, our own and those of survivors we took over."""
        return len(self._running) + len(self._adopted)

    @property
    def output_lost(self) -> bool:
        """Outcomes were lost: the controller stopped reading, or the lease ran out."""
        return self._output_lost or self.lease_expired

    def request_stop(self) -> None:
        """Stop reading, kill the jobs, report them, return from serve()."""
        self._stop.set()
        self._end_channel(ChannelEnd.STOP)

    def hang_up(self) -> None:
        """SIGHUP: the terminal the controller talked through is gone.  With a lease
        that is a lost controller (survive it); without, a stop request.  The terminal of a
        controller already given up (silent, or succeeded by another: a deposed leader's
        controller that closes it late) is no request at all: its jobs go on."""
        if self._channel is not self._first_channel or self._broken is self._first_channel:
            log.warning("the terminal of a controller already given up is gone (SIGHUP): refused as a "
                        "request to stop; the jobs go on")
            return
        if self._may_lease():
            self._broken = self._channel
            self._end_channel(ChannelEnd.LOST)
        else:
            self.request_stop()

    def _end_channel(self, end: ChannelEnd) -> None:
        if self._end is None:
            self._end = end
        self._wake.set()

    def _may_lease(self) -> bool:
        return self._token is not None and self.lease > 0 and not self._stop.is_set()

    def _has_work(self) -> bool:
        return bool(self._running or self._adopted or self._unacked)

    async def serve(self) -> None:
        await self._send(encode(Hello(version=PROTOCOL_VERSION, host=self.host, pid=os.getpid(),
                                      clock=self._clock(), slots=self.slots, agent=AGENT_NAME,
                                      build=code_digest(), sweep=SWEEP_VERSION)))
        # while the controller reads the hello: the messages of the handshake and of a first job,
        # made now rather than in their latency (pclient.protocol.prepare)
        prepare(Auth, Resumed, Run, Started)
        try:
            while True:
                end = await self._read_messages()
                if end is not ChannelEnd.LOST or not self._may_lease() or not self._has_work():
                    break
                channel = await self._survive()
                if channel is None:
                    break
                await self._attach(channel)
        finally:
            await self._shutdown()
            if self._channel is not self._first_channel:
                await self._channel.close()
            if self._presence is not None:
                self._presence.release()
            if self._token is None:     # our anonymous part: nobody can read it once we are gone
                self._spool().clear()

    # -- input ------------------------------------------------------------------

    async def _read_messages(self) -> ChannelEnd:
        self._end = None
        self._wake.clear()
        if self._stop.is_set():
            return ChannelEnd.STOP
        splitter = LineSplitter()
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            while self._end is None:
                reading = asyncio.ensure_future(self._channel.read_chunk())
                await asyncio.wait({reading, woken}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    break
                try:
                    chunk = reading.result()
                except OSError as exc:
                    log.warning("reading input failed: %s", exc)
                    self._end_channel(ChannelEnd.LOST)
                    break
                self._last_heard = self._monotonic()
                self._chunks += 1
                if not chunk:
                    log.info("end of input")
                    last = splitter.flush()
                    if last is not None:
                        await self._handle_line(last)
                    self._end_channel(ChannelEnd.LOST)
                    break
                for line in splitter.feed(chunk):
                    await self._handle_line(line)
                    if self._end is not None:
                        break
        finally:
            woken.cancel()
        assert self._end is not None
        return self._end

    async def _handle_line(self, line: Union[bytes, LineTooLong]) -> None:
        if isinstance(line, LineTooLong):
            await self._send_error(f"line longer than MAX_LINE ({MAX_LINE} bytes) ignored",
                                   excerpt=_excerpt(line.head) + "...")
            return
        if not line.strip():
            return
        try:
            msg = decode(line)
        except ProtocolError as exc:
            log.info("rejected line: %s", exc.reason)
            await self._send_error(exc.reason, job=exc.job, excerpt=exc.excerpt)
            return
        job = getattr(msg, "job", None)
        if isinstance(msg, FENCED) and (fenced := self._fenced()) is not None:
            log.warning("refused %s%s: %s", msg.TYPE, f" of job {job}" if job else "", fenced)
            await self._send_error(fenced, job=job, excerpt=_excerpt(line))
            return
        handler = self._handlers.get(type(msg))
        if handler is None:
            await self._send_error(f"unexpected {msg.TYPE!r} message: an agent only accepts "
                                   + ", ".join(cls.TYPE for cls in self._handlers), job=job, excerpt=_excerpt(line))
            return
        try:
            await handler(msg)
        except Exception as exc:  # a handler bug must not kill the agent
            log.exception("handling %s failed", msg.TYPE)
            await self._send_error(f"internal error handling {msg.TYPE!r}: {exc}", job=job, excerpt=_excerpt(line))

    # -- handlers -----------------------------------------------------------------

    async def _on_run(self, msg: Run) -> None:
        if msg.job in self._running or msg.job in self._adopted:
            await self._send_error(f"run: job {msg.job!r} is already running", job=msg.job)
            return
        if self.running >= self.slots:
            await self._send_error(f"run: all {self.slots} slots are busy; job {msg.job!r} refused",
                                   job=msg.job)
            return
        env = msg.env
        if self._token is not None:
            env = dict(env, **{AGENT_VAR: self._agent_mark()})
        files: tuple = (None, None)
        if msg.spool:
            try:
                files = self._spool().files(msg.job)
            except (OSError, ValueError) as exc:
                self._spool_failed(msg.job, f"cannot write {getattr(exc, 'filename', None) or self._spool().directory}: "
                                            f"{getattr(exc, 'strerror', None) or exc}")
        spec = JobSpec(job_id=msg.job, argv=msg.argv, cwd=msg.cwd, env=env, timeout=msg.timeout,
                       output_limit=msg.output_limit, kill_grace=self.kill_grace,
                       stdout_file=files[0], stderr_file=files[1], mailbox=msg.mailbox, inbox=msg.inbox)
        # (made in jobproc's spawner thread: the next line is read meanwhile)
        job = begin_job(spec, on_started=self._job_started, threaded=True)
        self._running[msg.job] = job
        job.when_done(lambda result: self._job_ended(job, result))

    def _spool_failed(self, job_id: str, why: str) -> None:
        """A spooled job's output could not be kept whole: only its head reaches the controller.
        Said to the controller (an `error` without a job: its log) at most once every
        SPOOL_TROUBLE_EVERY seconds; each job in our log."""
        self._spool_failing = True
        told = self._spool_says.due(None, time.monotonic())
        if told is None:
            log.info("job %s: only the head of its output is kept: %s", job_id, why)
            return
        before, cut = told
        since = f"; {cut} more job(s) so since the last word" if before else ""
        text = (f"cannot spool the output of job {job_id} ({why}): only the head of a spooled job's "
                f"output reaches the controller while this lasts{since} (said at most once every "
                f"{SPOOL_TROUBLE_EVERY / 60:g} minutes)")
        log.warning("%s", text)
        self._send_now(encode(Error(reason=text)))

    def _drop_soon(self, job_id: str) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._spool().drop, job_id)

    def _agent_mark(self) -> str:
        assert self._token is not None and self._name is not None
        key = (self._token, self._name, os.getpid())
        if self._mark is None or self._mark[0] != key:  # one sha256 an agent, not one a job
            self._mark = (key, f"{survivor_key(self._token, self._name)}:{key[2]}")
        return self._mark[1]

    # A job is reported by callbacks on the loop, not by a task of its own that awaits its start
    # and its end: that took a task, two shielded futures and four more turns of the loop a job
    # (issue 13). Both lines go out through _send_now, in the order made.

    def _job_started(self, job: RunningJob) -> None:
        """On the loop, once the job's process exists: its Started."""
        self._announced.add(job.job_id)
        self._send_started(job)

    def _send_started(self, job: RunningJob) -> None:
        log.info("job %s: started pid %s: %s", job.job_id, job.pid, " ".join(job.spec.argv))
        self._send_now(encode(Started(job=job.job_id, pid=job.pid, clock=job.started_at)))

    def _job_ended(self, job: RunningJob, result: JobResult) -> None:
        """On the loop, once the job has ended: its Ended (after a Started without a pid for a job
        that could not be started)."""
        if self._running.pop(job.job_id, None) is None:  # the slot is free before the controller hears of it
            return  # (given up on at shutdown: no longer reported)
        if job.job_id in self._announced:
            self._announced.discard(job.job_id)
        else:
            self._send_started(job)
        log.info("job %s: %s status=%s signal=%s after %.3f s", job.job_id, result.outcome.value,
                 result.status, result.signal, result.elapsed)
        unwritten = job.unwritten
        for error in result.output_errors:
            if error not in unwritten:
                log.warning("job %s: %s", job.job_id, error)
        spooled = job.spec.stdout_file is not None and not unwritten
        if unwritten:
            self._spool_failed(job.job_id, "; ".join(unwritten))
            self._drop_soon(job.job_id)  # a stream kept without the other is never fetched
        elif spooled and self._spool_failing:
            self._spool_failing = False
            log.info("job %s: its output is spooled whole again", job.job_id)
        line = ended_message(result, spooled=spooled)
        if self._keep_results:
            self._unacked[job.job_id] = (line, None)
        self._send_now(line)
        if not self._running and self._all_ended is not None and not self._all_ended.done():
            self._all_ended.set_result(None)

    async def _on_kill(self, msg: Kill) -> None:
        if self._sync.kill(msg.job):
            return
        job = self._running.get(msg.job)
        link = self._adopted.get(msg.job)
        if link is not None:
            link.send(msg)
        elif job is None:
            await self._send_error(f"kill: no running job {msg.job!r}", job=msg.job)
        elif not job.done:  # a done job is about to be reported ended anyway
            job.kill()

    async def _on_ping(self, msg: Ping) -> None:
        await self._send(encode(Pong(seq=msg.seq, clock=self._clock(), running=self.running)))
        fenced = self._fenced()
        if fenced is not None:  # a deposed controller: our jobs go to the agent of the one that took the host over
            log.warning("leaving our controller (%s): our jobs wait for the agent of the controller that took over", fenced)
            self._end_channel(ChannelEnd.LOST)
            return
        self._note_held(msg.held)

    # -- synchronized runs (pclient.syncstart) ---------------------------------------

    async def _on_clock_probe(self, msg: ClockProbe) -> None:
        received = self._clock()
        await self._send(encode(ClockReply(seq=msg.seq, sent=msg.sent, received=received,
                                           replied=self._clock())))

    async def _on_prepare(self, msg: Prepare) -> None:
        env = msg.env
        if self._token is not None:
            env = dict(env, **{AGENT_VAR: self._agent_mark()})
        refusal = await self._sync.prepare(msg, env)
        if refusal is not None:
            await self._send_error(refusal, job=msg.job)

    async def _on_go(self, msg: Go) -> None:
        for job, reason in await self._sync.go(msg):
            await self._send_error(reason, job=job)

    async def _send_message(self, msg: Message) -> None:
        await self._send(encode(msg))

    async def _report_sync_end(self, result: JobResult) -> None:
        await self._send(ended_message(result))

    async def _on_bye(self, msg: Bye) -> None:
        log.info("bye; stopping")
        self._stop.set()
        self._end_channel(ChannelEnd.BYE)

    async def _on_auth(self, msg: Auth) -> None:
        if self._token is not None:
            await self._send_error("auth: this agent is already authenticated")
            return
        refused = self._take_fence(msg)
        if refused is not None:
            log.warning("refused the controller's auth: %s", refused)
            await self._send_error(refused)
            self._stop.set()
            self._end_channel(ChannelEnd.BYE)
            return
        self._token, self._name = msg.token, msg.name
        if msg.lease is not None:
            self.lease = msg.lease
        self._keep_results = True
        self._claim_presence(msg.token, msg.name)
        cannot = survivor_socket_problem(msg.token, msg.name) if self.lease > 0 else None
        if cannot is not None:      # told now (pcontrol.log), not only as the jobs end
            log.warning("%s", cannot)
            await self._send_error(cannot)
        if msg.silence_limit is not None and msg.heartbeat is not None:
            slack = self.watchdog_slack
            if slack is None:
                slack = max(msg.heartbeat, WATCHDOG_MIN_SLACK)
            self.silence_limit = msg.silence_limit + slack
            self._last_heard = self._monotonic()
            self._watchdog = asyncio.ensure_future(self._watch_controller(self.silence_limit))
        # In the background: pings are answered while survivors are looked for.
        self._takeover = asyncio.ensure_future(self._take_over(msg.token, msg.name))

    def _take_fence(self, msg: Auth) -> Union[str, None]:
        """Check the controller's fencing token against the host's floor and raise the floor
        to it; why it is refused (None: accepted)."""
        try:
            floor = FenceFloor.of(survivor_key(msg.token, msg.name))
            refused = refusal(msg.fence, floor.current())
            if refused is None and msg.fence is not None:
                floor.raise_to(msg.fence)
        except (OSError, LeaseError) as exc:
            log.warning("cannot keep fencing tokens on this host: %s", exc)
            return None
        self._fence, self._floor = msg.fence, floor
        return refused

    async def _on_fence(self, msg: Fence) -> None:
        """Our controller leads under a higher token now: take it, unless a higher one has
        taken the host over (pclient.fencing)."""
        if self._floor is None:
            await self._send_error("fence: this agent is not authenticated in a pool")
            return
        try:
            refused = refusal(msg.token, self._floor.current())
            if refused is None:
                self._floor.raise_to(msg.token)
        except OSError as exc:
            refused = f"cannot keep fencing tokens on this host: {exc}"
        if refused is not None:
            log.warning("refused the controller's fencing token %d: %s", msg.token, refused)
            await self._send_error(refused)
            return
        log.info("fencing token %s -> %d", self._fence, msg.token)
        self._fence = msg.token

    def _fenced(self) -> Union[str, None]:
        """Why our controller may no longer act here (a higher token has taken over), or None."""
        if self._floor is None or self._serving_successor:
            return None
        if self._floor_read[0] != self._chunks:
            self._floor_read = (self._chunks, self._floor.current())
        return refusal(self._fence, self._floor_read[1])

    def _claim_presence(self, token: str, name: str) -> None:
        """Mark this agent alive for its key, so that a successor waits for us (we may
        yet learn that we were left) instead of calling our jobs lost."""
        presence = AgentPresence(token, name)
        try:
            presence.claim()
        except (OSError, LeaseError) as exc:
            log.warning("cannot mark this agent alive for successors: %s", exc)
            return
        self._presence = presence

    def _spool(self) -> Spool:
        """This controller's part of the spool: by its token and our host name (so a successor
        agent finds a survivor's files), else by our own pid (a version 1 controller)."""
        key = survivor_key(self._token, self._name) if self._token and self._name else f"agent-{os.getpid()}"
        return self.spool.of(key)

    async def _on_fetch(self, msg: Fetch) -> None:
        size = min(msg.size, FETCH_MAX)
        try:
            data, eof = await asyncio.get_running_loop().run_in_executor(
                None, self._spool().read, msg.job, msg.stream, msg.offset, size)
        except (OSError, ValueError) as exc:
            reply = Chunk(job=msg.job, stream=msg.stream, offset=msg.offset, data="", eof=True,
                          error=f"cannot read the {msg.stream} of job {msg.job}: {getattr(exc, 'strerror', None) or exc}")
        else:
            reply = Chunk(job=msg.job, stream=msg.stream, offset=msg.offset,
                          data=base64.b64encode(data).decode("ascii"), eof=eof)
        await self._send(encode(reply))

    async def _on_drop(self, msg: Drop) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._spool().drop, msg.job)

    async def _on_sweep(self, msg: Sweep) -> None:
        """List the spooled jobs of our controller's part that we cannot account for, and
        remove what no controller can ask for (pclient.spool.Spool.sweep)."""
        if self._token is None or self._name is None or self._serving_successor:
            await self._send_error("sweep: this agent is not authenticated by a controller")
            return
        if self._sweeping is not None and not self._sweeping.done():
            await self._send(encode(Spooled(seq=msg.seq)))   # one at a time: the next sweep lists them
            return
        # In the background, as the look for survivors: pings are answered meanwhile.
        self._sweeping = asyncio.ensure_future(self._sweep(msg, self._token, self._name))

    async def _sweep(self, msg: Sweep, token: str, name: str) -> None:
        if self._takeover is not None and not self._takeover.done():
            await asyncio.wait({self._takeover})  # the survivors we take over account for their jobs
        followed = {link.pid for link in self._links}
        searching = self._search is not None and not self._search.done()
        accounted = self._known_jobs()

        def live(key: str) -> set[int]:
            try:
                return set(live_agents_of(key, exclude=set()))
            except (OSError, LeaseError):
                return {0}              # cannot tell: as if one were alive

        def sweep() -> Swept:
            key = survivor_key(token, name)
            others = live(key) - {os.getpid()} - followed
            return self.spool.sweep(key, accounted=accounted, sole=not others and not searching,
                                    age=msg.age, abandon=msg.abandon, live=live)

        # (a thread of its own that ends with the sweep, as _sweep_orphans': the default
        # executor's would stay, and every job's start moves every thread into its cgroup)
        sweeper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pclient-spool")
        try:
            swept = await asyncio.get_running_loop().run_in_executor(sweeper, sweep)
        except Exception as exc:
            log.exception("sweeping the spool failed")
            await self._send_error(f"sweep: cannot sweep the spool {self.spool.directory}: {exc}")
            return
        finally:
            sweeper.shutdown(wait=False)
        if swept.files:
            log.info("spool sweep: removed %d file(s) (%d bytes) no controller can ask for%s", swept.files,
                     swept.bytes, f", parts {', '.join(swept.parts)}" if swept.parts else "")
        await self._send(encode(Spooled(seq=msg.seq, jobs=tuple(swept.jobs), files=swept.files,
                                        bytes=swept.bytes, parts=tuple(swept.parts), shared=swept.shared)))

    async def _on_ack(self, msg: Ack) -> None:
        by_link: dict[SurvivorLink, list[str]] = {}
        for job_id in msg.jobs:
            entry = self._unacked.pop(job_id, None)
            if entry is not None and entry[1] is not None:
                by_link.setdefault(entry[1], []).append(job_id)
        for link, jobs in by_link.items():
            link.send(Ack(jobs=tuple(jobs)))
        self._check_done()

    def _check_done(self) -> None:
        """A survivor whose successor has everything has nothing left to do."""
        if self._serving_successor and not self._has_work():
            log.info("everything handed over; exiting")
            self._end_channel(ChannelEnd.DONE)

    # -- taking over survivors of a previous controller -----------------------------

    async def _take_over(self, token: str, name: str) -> None:
        try:
            links = await find_survivors(token, name, self._fence)
        except Exception:  # never leave the controller without its `resumed`
            log.exception("looking for survivors failed")
            links = []
        finished = set(self._unacked) | self._adopt(links)
        await _sweep_orphans(token, name, {os.getpid()} | {link.pid for link in links})
        await self._send(encode(Resumed(running=tuple(sorted(set(self._running) | set(self._adopted))),
                                        finished=tuple(sorted(finished)), survivors=len(links),
                                        looks_again=True)))
        self._follow_all(links)

    def _adopt(self, links: list[SurvivorLink]) -> set[str]:
        """Count the survivors' running jobs as ours; the finished jobs they will report.

        A survivor found late may hold a stale copy of a job the controller has since run
        again here (its grace ran out): that copy is killed and its outcome never passed on
        (see _is_stale), so the job keeps the one outcome of its current run."""
        finished: set[str] = set()
        for link in links:
            for job_id in link.report.running:
                if self._is_stale(job_id, link):
                    log.warning("job %s: survivor pid %d runs a stale copy of it; killing that",
                                job_id, link.pid)
                    link.send(Kill(job=job_id))
                    continue
                self._adopted[job_id] = link
            finished.update(job for job in link.report.finished if not self._is_stale(job, link))
        return finished

    def _is_stale(self, job_id: str, link: SurvivorLink) -> bool:
        """Whether `link`'s job `job_id` is another copy of one this agent runs itself or
        follows in another survivor."""
        owner = self._adopted.get(job_id)
        return job_id in self._running or (owner is not None and owner is not link)

    def _follow_all(self, links: list[SurvivorLink]) -> None:
        for link in links:
            self._links[link] = asyncio.ensure_future(self._follow(link))

    def _known_jobs(self) -> set[str]:
        """Every job this agent can account for: running here or in a survivor we follow,
        finished and not yet acked, or announced finished by a survivor."""
        known = set(self._running) | set(self._adopted) | set(self._unacked)
        for link in self._links:
            known.update(link.report.finished)
        return known

    # -- looking again, for jobs the controller holds -------------------------------

    def _note_held(self, held: tuple[str, ...]) -> None:
        """The controller still awaits these jobs from this host: look for survivors
        again if we cannot account for some (one look at a time, one per ping)."""
        self._reported_lost.intersection_update(held)
        if not held or self._token is None or self._serving_successor:
            return
        if self._takeover is None or not self._takeover.done():
            return                      # our first look is still under way
        if self._search is not None and not self._search.done():
            return
        known = self._known_jobs()
        missing = [job for job in held if job not in known and job not in self._reported_lost]
        if missing:
            self._search = asyncio.ensure_future(self._look_again(missing))

    async def _look_again(self, missing: list[str]) -> None:
        assert self._token is not None and self._name is not None
        token, name = self._token, self._name
        try:
            links = await find_survivors(token, name, self._fence)
        except Exception:
            log.exception("looking for survivors again failed")
            return
        if links:
            finished = self._adopt(links)
            running = sorted(job for job, link in self._adopted.items() if link in links)
            log.warning("took over %d survivor(s) found late: %d running job(s), %d finished",
                        len(links), len(running), len(finished))
            await self._send(encode(Resumed(running=tuple(running), finished=tuple(sorted(finished)),
                                            survivors=len(links), looks_again=True)))
            self._follow_all(links)
        gone = [job for job in missing if job not in self._known_jobs()]
        if gone:
            await self._report_gone(token, name, gone)

    async def _report_gone(self, token: str, name: str, jobs: list[str]) -> None:
        """Report `jobs` lost if no agent that could still have them is alive here."""
        keep = {os.getpid()} | {link.pid for link in self._links}
        try:
            others = live_agents(token, name, exclude=keep)
        except (OSError, LeaseError) as exc:
            log.warning("cannot tell which agents are alive (%s); jobs %s wait", exc, ", ".join(jobs))
            return
        if others:
            log.info("jobs %s: not found yet; agent(s) %s may still offer them", ", ".join(jobs),
                     ", ".join(map(str, others)))
            return
        await _sweep_orphans(token, name, keep)  # what the dead agent left must not run beside a retry
        reason = "the agent that ran them is gone: no survivor had them and no other agent is alive on the host"
        log.error("jobs %s: %s", ", ".join(jobs), reason)
        self._reported_lost.update(jobs)
        await self._send(encode(Lost(jobs=tuple(jobs), reason=reason)))

    # -- the watchdog on a silent controller ---------------------------------------

    async def _watch_controller(self, limit: float) -> None:
        """Give the controller's connection up once it has been silent for `limit` s."""
        channel = self._first_channel
        while self._channel is channel and self._broken is not channel and not self._stop.is_set():
            silent = self._monotonic() - self._last_heard
            if silent >= limit:
                self._give_up_controller(silent)
                return
            await asyncio.sleep(limit - silent)

    def _give_up_controller(self, silent: float) -> None:
        """The controller is as good as gone: stop trusting its connection, close it, and
        go on as after its end (survive it with a lease, else end the jobs)."""
        log.warning("heard nothing from the controller for %.1f s (limit %.1f s); "
                    "closing the connection", silent, self.silence_limit or 0.0)
        channel = self._first_channel
        self._broken = channel
        if not self._may_lease() and self._has_work():
            self._output_lost = True     # without a lease the outcomes die with the connection
        abort = getattr(channel, "abort", None)
        if abort is not None:
            abort()
        self._end_channel(ChannelEnd.LOST)

    async def _follow(self, link: SurvivorLink) -> None:
        """Forward what a survivor reports; on its end, report its unreported jobs lost."""
        try:
            while True:
                line = await link.read_line()
                if not line:
                    break
                try:
                    msg = decode(line)
                except ProtocolError as exc:
                    log.warning("survivor pid %d sent a bad line: %s", link.pid, exc.reason)
                    continue
                if isinstance(msg, Ended):
                    if self._is_stale(msg.job, link):
                        log.warning("job %s: dropping the outcome of a stale copy (survivor pid %d)",
                                    msg.job, link.pid)
                        link.send(Ack(jobs=(msg.job,)))
                        continue
                    if self._adopted.get(msg.job) is link:
                        del self._adopted[msg.job]
                    self._unacked[msg.job] = (line, link)
                elif isinstance(msg, Lost):
                    for job_id in msg.jobs:
                        if self._adopted.get(job_id) is link:
                            del self._adopted[job_id]
                elif not isinstance(msg, (Started, Error)):
                    continue
                await self._send(line if line.endswith(b"\n") else line + b"\n")
        finally:
            del self._links[link]
            link.close()
            orphaned = sorted(job_id for job_id, owner in self._adopted.items() if owner is link)
            for job_id in orphaned:
                del self._adopted[job_id]
            if orphaned:
                reason = f"the agent that ran them (pid {link.pid}) ended without reporting them"
                log.error("jobs %s: %s", ", ".join(orphaned), reason)
                await self._send(encode(Lost(jobs=tuple(orphaned), reason=reason)))
            self._check_done()

    # -- surviving a lost controller ---------------------------------------------------

    async def _survive(self) -> Union[Channel, None]:
        """Keep the jobs and wait on our socket for a successor that proves the token,
        until the lease runs out or a stop request.  The successor's channel, or None."""
        assert self._token is not None and self._name is not None
        self._broken = self._channel   # nothing more goes to a controller that is gone
        self._sync.kill_all()          # a synchronized run ends with its controller
        log.warning("lost the controller; keeping %d running job(s) and %d outcome(s) for a "
                    "lease of %g s", self.running, len(self._unacked), self.lease)
        listener = SurvivorListener(self._token, self._name, fence=self._fence)
        try:
            await listener.start()
        except (OSError, LeaseError) as exc:
            log.error("cannot wait for a successor: %s; ending the jobs now", exc)
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                arriving = asyncio.ensure_future(listener.successors.get())
                done, _ = await asyncio.wait({arriving, stopped}, timeout=max(0.0, deadline - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
                if arriving in done:
                    return arriving.result()
                arriving.cancel()
                if stopped in done:
                    return None
                if loop.time() >= deadline:
                    log.error("the lease of %g s ran out with no controller; ending the jobs", self.lease)
                    self.lease_expired = True
                    return None
        finally:
            stopped.cancel()
            await listener.close()
            while not listener.successors.empty():  # a second successor lost the race
                await listener.successors.get_nowait().close()

    async def _attach(self, channel: Channel) -> None:
        """Serve a successor: report what we run and every outcome it has not acked."""
        previous, self._channel = self._channel, channel
        if previous is not self._first_channel:
            await previous.close()
        self._broken = None
        self._output_lost = False
        self._serving_successor = True
        self._keep_results = True
        outcomes = list(self._unacked.values())
        await self._send(encode(Resumed(running=tuple(sorted(set(self._running) | set(self._adopted))),
                                        finished=tuple(sorted(self._unacked)), survivors=len(self._links),
                                        looks_again=True)))
        for line, _ in outcomes:
            await self._send(line)
        self._check_done()

    # -- output and shutdown -------------------------------------------------------

    async def _send_error(self, reason: str, *, job: Union[str, None] = None, excerpt: str = "") -> None:
        await self._send(encode(Error(reason=reason, job=job, excerpt=excerpt)))

    async def _send(self, line: bytes) -> None:
        """Write one line to the current channel; a failing channel is a lost controller."""
        channel = self._channel
        if channel is self._broken:
            return
        try:
            await channel.write(line)
        except ConnectionError as exc:
            self._output_failed(channel, exc)

    def _send_now(self, line: bytes) -> None:
        """`_send` from a callback: the line is queued at once, without waiting for the reader."""
        channel = self._channel
        if channel is self._broken:
            return
        try:
            channel.write_nowait(line)
        except ConnectionError as exc:
            self._output_failed(channel, exc)

    def _output_failed(self, channel: Channel, exc: ConnectionError) -> None:
        if channel is not self._channel or channel is self._broken:
            return
        self._broken = channel
        if self._may_lease():
            log.warning("output lost (%s)", exc)
        else:
            log.error("output lost (%s); killing all jobs and stopping", exc)
            self._output_lost = True
        self._end_channel(ChannelEnd.LOST)

    async def _shutdown(self) -> None:
        for task in (self._takeover, self._search, self._watchdog, self._sweeping):
            if task is not None and not task.done():
                task.cancel()
        if self._running or self._adopted:
            log.info("killing %d running job(s)", self.running)
        for job in list(self._running.values()):
            job.kill()
        sync_jobs = asyncio.ensure_future(self._sync.close())
        for link in list(self._links):
            link.send(Bye())
        waiting: set[asyncio.Future[None]] = set(self._links.values()) | {sync_jobs}
        if self._running:
            self._all_ended = asyncio.get_running_loop().create_future()
            waiting.add(self._all_ended)
        _, late = await asyncio.wait(waiting, timeout=self.kill_grace + SHUTDOWN_MARGIN)
        for task in late:
            if task is not self._all_ended:
                log.error("a job was not reported ended in time; giving up on it")
            task.cancel()
        for _ in self._running:
            log.error("a job was not reported ended in time; giving up on it")
        self._running.clear()
        if self.lease_expired and self._unacked:
            log.error("outcomes lost with the lease: jobs %s", ", ".join(sorted(self._unacked)))


async def run_agent(claimed: ClaimedStdio, *, slots: int, host: Union[str, None] = None,
                    kill_grace: float = DEFAULT_KILL_GRACE, lease: float = DEFAULT_LEASE,
                    watchdog_slack: Union[float, None] = None) -> int:
    """Serve the protocol on the claimed stdin/stdout until done.

    Returns the exit status: 0, or 1 if outcomes were lost (the output went away
    without a lease, or the lease ran out).
    """
    channel = await StdioChannel.open(claimed.in_fd, claimed.out_fd)
    agent = Agent(channel, slots=slots, host=host or socket.gethostname(), kill_grace=kill_grace,
                  lease=lease, watchdog_slack=watchdog_slack)
    loop = asyncio.get_running_loop()
    for signum, action in ((signal.SIGTERM, agent.request_stop), (signal.SIGINT, agent.request_stop),
                           (signal.SIGHUP, agent.hang_up)):
        try:
            loop.add_signal_handler(signum, action)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        await agent.serve()
    finally:
        await channel.close()
    return 1 if agent.output_lost else 0


async def _sweep_orphans(token: str, name: str, keep: set[int]) -> None:
    """Kill the jobs of dead agents of this controller and host (not of the agents in `keep`)."""
    # (a thread of its own, which ends with the sweep: the default executor's would stay, and
    # with cgroups each job's start moves every thread of this process, issue 13)
    sweeper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pclient-sweep")
    try:
        swept = await asyncio.get_running_loop().run_in_executor(
            sweeper, kill_orphans, survivor_key(token, name), keep)
    except Exception:
        log.exception("sweeping orphaned jobs failed")
        return
    finally:
        sweeper.shutdown(wait=False)
    if swept:
        log.warning("killed %d orphaned process(es) of dead agents: %s", len(swept), swept)
