"""Simulated agents for `sched --simulate`: links that speak the agent protocol, run nothing.

    opener = SimOpener(model, wall, slots=4) # a hosts.HostOpener: Controller(opener=opener)
    opener.kill("h2", "crashed", down_for=3600)   # the host's agent dies; no connect for an hour
    opener.set_offset("h2", 0.25)            # its clock reads 250 ms ahead

The controller (its HostTable, dispatch, reports, sync runs: all the real code) talks to a
SimLink as it talks to a real agent's AgentLink: it sends `run`, `kill`, `ping`, `prepare`,
`go`, clock probes, and reads `started`, `ended`, `pong`, `ready`, `launched`, clock replies.
A SimLink answers at once (on the next loop turn) and ends each job after the time its
JobModel gives, with the outcome it gives, on the running loop's clock: on a virtual-time
loop (psched.scheduler.virtualloop) a day of jobs runs in moments. It enforces a job's
timeout as the agent does (TIMEOUT at the limit). No process is started, nothing is opened.

What a job does is the JobModel's business (psched.scheduler.simfaults: `--job-time` and the
faults file); what hosts do (lost, down for a while, clock offset) is told to the opener.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pclient import protocol as agent_protocol

from .agentlink import ConnectFailure
from .bootstrap import current_bundle
from .model import Host
from .sshfail import ConnectOutcome

log = logging.getLogger(__name__)

__all__ = ["Behaviour", "JobModel", "SimLink", "SimOpener"]

AgentOutcome = agent_protocol.Outcome


@dataclass(frozen=True)
class Behaviour:
    """What a simulated job does: runs `duration` seconds (None: until it is killed or its
    timeout), then ends with `outcome` (EXIT `status`, CRASH `signal`)."""

    duration: float | None = 1.0
    outcome: AgentOutcome = AgentOutcome.EXIT
    status: int | None = 0
    signal: int | None = None
    stdout: str = ""


class JobModel(Protocol):
    """How long a job runs and how it ends, by its command, its host and the time."""

    def behaviour(self, argv: tuple[str, ...], host: str) -> Behaviour: ...


class _Job:
    __slots__ = ("word", "behaviour", "started", "handle", "sync")

    def __init__(self, word: str, behaviour: Behaviour, sync: bool = False) -> None:
        self.word = word
        self.behaviour = behaviour
        self.started: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.sync = sync


class SimLink:
    """One simulated agent's link (a hosts.HostLink)."""

    def __init__(self, name: str, slots: int, model: JobModel, offset: float,
                 on_message: Callable[["SimLink", agent_protocol.Message], None],
                 on_lost: Callable[["SimLink", str], None], pid: int, build: str,
                 wall: Callable[[], float]):
        self.name = name
        self._wall = wall
        self.model = model
        self.offset = offset
        self.authed = False
        self._on_message = on_message
        self._on_lost = on_lost
        self._pid = pid
        self._open = True
        self._jobs: dict[str, _Job] = {}
        self._loop = asyncio.get_running_loop()
        self.hello = agent_protocol.Hello(
            version=agent_protocol.PROTOCOL_VERSION, host=name, pid=pid, clock=self._clock(),
            slots=slots, agent="simulated", build=build)

    # -- HostLink ----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def agent_is_child(self) -> bool:
        return False

    def send(self, message: agent_protocol.Message) -> bool:
        if not self._open:
            return False
        handler = _HANDLERS.get(type(message))
        if handler is not None:
            handler(self, message)
        return True

    async def close(self, *, reason: str, grace: float = 3.0, polite: bool = True) -> None:
        self._drop(reason)

    def hang_up(self, reason: str) -> None:
        self._drop(reason)

    async def wait_gone(self, timeout: float | None) -> bool:
        return True

    # -- the simulated agent -----------------------------------------------------------------

    def _clock(self) -> float:
        """The agent's wall clock: the controller's, plus this host's offset."""
        return self._wall() + self.offset

    def _tell(self, message: agent_protocol.Message) -> None:
        self._loop.call_soon(self._deliver, message)

    def _deliver(self, message: agent_protocol.Message) -> None:
        if self._open:
            self._on_message(self, message)

    def lose(self, reason: str) -> None:
        """The agent is gone (its host died): its jobs with it; the controller hears EOF."""
        if not self._open:
            return
        self._drop(reason)
        self._loop.call_soon(self._on_lost, self, reason)

    def _drop(self, reason: str) -> None:
        self._open = False
        for job in self._jobs.values():
            if job.handle is not None:
                job.handle.cancel()
        self._jobs.clear()

    def _run(self, message: agent_protocol.Run) -> None:
        job = _Job(message.job, self.model.behaviour(tuple(message.argv), self.name))
        self._jobs[job.word] = job
        self._begin(job, message.timeout)
        self._tell(agent_protocol.Started(job=job.word, pid=self._pid, clock=self._clock()))

    def _begin(self, job: _Job, timeout: float | None) -> None:
        job.started = self._loop.time()
        duration = job.behaviour.duration
        if timeout is not None and (duration is None or duration > timeout):
            job.handle = self._loop.call_later(timeout, self._end, job, AgentOutcome.TIMEOUT, None, None,
                                               f"ran longer than its timeout of {timeout:g} s")
        elif duration is not None:
            b = job.behaviour
            job.handle = self._loop.call_later(duration, self._end, job, b.outcome, b.status, b.signal, None)

    def _end(self, job: _Job, outcome: AgentOutcome, status: int | None, signal: int | None,
             reason: str | None) -> None:
        if self._jobs.pop(job.word, None) is None:
            return
        stdout = job.behaviour.stdout if outcome is AgentOutcome.EXIT else ""
        elapsed = self._loop.time() - (job.started if job.started is not None else self._loop.time())
        self._tell(agent_protocol.Ended(
            job=job.word, outcome=outcome, status=status, signal=signal, elapsed=elapsed,
            stdout=stdout, stderr="", stdout_bytes=len(stdout.encode()), stderr_bytes=0,
            stdout_truncated=False, stderr_truncated=False, reason=reason))

    def _kill(self, message: agent_protocol.Kill) -> None:
        job = self._jobs.get(message.job)
        if job is None:
            return
        if job.handle is not None:
            job.handle.cancel()
        self._end(job, AgentOutcome.KILLED, None, 15, None)

    def _ping(self, message: agent_protocol.Ping) -> None:
        self._tell(agent_protocol.Pong(seq=message.seq, clock=self._clock(), running=len(self._jobs)))

    def _clock_probe(self, message: agent_protocol.ClockProbe) -> None:
        now = self._clock()
        self._tell(agent_protocol.ClockReply(seq=message.seq, sent=message.sent, received=now, replied=now))

    def _prepare(self, message: agent_protocol.Prepare) -> None:
        job = _Job(message.job, self.model.behaviour(tuple(message.argv), self.name), sync=True)
        self._jobs[job.word] = job
        self._tell(agent_protocol.Ready(job=job.word, pid=self._pid, clock=self._clock()))

    def _go(self, message: agent_protocol.Go) -> None:
        # `at` is the controller's instant (0: now); the gate waits for at + told offset by
        # this agent's clock, which reads `offset` ahead: it starts told - offset late.
        delay = 0.0
        if message.at:
            delay = max(0.0, message.at + message.offset - self._clock())
        for word in message.jobs:
            job = self._jobs.get(word)
            if job is not None:
                self._loop.call_later(delay, self._launch, job)

    def _launch(self, job: _Job) -> None:
        if self._jobs.get(job.word) is not job:
            return
        self._begin(job, None)
        self._tell(agent_protocol.Launched(job=job.word, clock=self._clock()))

    def _bye(self, message: agent_protocol.Bye) -> None:
        for job in list(self._jobs.values()):
            if job.handle is not None:
                job.handle.cancel()
            self._end(job, AgentOutcome.KILLED, None, 15, "the agent was told bye")


_HANDLERS: dict[type, Callable[[SimLink, agent_protocol.Message], None]] = {
    agent_protocol.Run: SimLink._run,            # type: ignore[dict-item]
    agent_protocol.Kill: SimLink._kill,          # type: ignore[dict-item]
    agent_protocol.Ping: SimLink._ping,          # type: ignore[dict-item]
    agent_protocol.ClockProbe: SimLink._clock_probe,  # type: ignore[dict-item]
    agent_protocol.Prepare: SimLink._prepare,    # type: ignore[dict-item]
    agent_protocol.Go: SimLink._go,              # type: ignore[dict-item]
    agent_protocol.Bye: SimLink._bye,            # type: ignore[dict-item]
}
"""What a simulated agent answers; the rest (ack, drop, fetch, auth) it takes silently."""


class SimOpener:
    """A hosts.HostOpener whose every host is a simulated agent."""

    def __init__(self, model: JobModel, wall: Callable[[], float], slots: int | None = None):
        self.model = model
        self.wall = wall
        """The controller's wall clock (an agent's clock is this plus its host's offset)."""
        self.slots = slots or os.cpu_count() or 1
        """An agent's slots when its host was added without -slots (a real agent: its CPUs)."""
        self.links: dict[str, SimLink] = {}
        self._down_until: dict[str, float] = {}
        self._offsets: dict[str, float] = {}
        self._pids = iter(range(100_000, 10**9))
        self._build = current_bundle().build

    async def open(self, host: Host, on_message: Callable[[SimLink, agent_protocol.Message], None],
                   on_lost: Callable[[SimLink, str], None]) -> SimLink:
        loop = asyncio.get_running_loop()
        until = self._down_until.get(host.name)
        if until is not None and loop.time() < until:
            raise ConnectFailure(ConnectOutcome.UNREACHABLE, f"ssh: connect to host {host.name}: "
                                 "No route to host (simulated: the host is down)")
        link = SimLink(host.name, host.slots or self.slots, self.model, self._offsets.get(host.name, 0.0),
                       on_message, on_lost, next(self._pids), self._build, self.wall)
        self.links[host.name] = link
        return link

    def kill(self, name: str, reason: str, down_for: float = 0.0) -> None:
        """The host's agent dies now (its jobs with it); no agent starts there for `down_for` s."""
        loop = asyncio.get_running_loop()
        if down_for > 0:
            self._down_until[name] = loop.time() + down_for
        link = self.links.pop(name, None)
        if link is not None:
            link.lose(reason)

    def set_offset(self, name: str, offset: float) -> None:
        """The host's clock reads `offset` seconds ahead of the controller's (from its next agent on)."""
        self._offsets[name] = offset
        link = self.links.get(name)
        if link is not None:
            link.offset = offset
