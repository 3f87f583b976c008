"""The host table and each host's connection: connect, heartbeat, DOWN with backoff, on/off.

HostTable owns the Host records and, per host, the live HostLink (an agent's AgentLink, or a
Slurm cluster's SlurmLink: pcontrol's own driver speaking the agent protocol), the connect
attempt in flight and the retry timer. It knows nothing of jobs: what a connection means for
jobs is the listener's business (HostListener, implemented by the Controller): a host came up and
its agent reported what it runs (reconcile, fill its slots), a host was lost (its jobs wait
for the agent's successor, or end DOWN), an agent sent a message, a record changed.

    add -> CONNECTING -> (hello, v1) ------------------------> IDLE/BUSY   (set by the listener)
                      -> (hello, v2) -> auth -> (resumed) ---> IDLE/BUSY
              \\-> (failure) -> DOWN -> (backoff timer) -> CONNECTING
    connected -> (EOF, write error, silent for missed_heartbeats intervals) -> DOWN
    off -> OFF (no retries);  on -> CONNECTING

A host lost by silence (missed heartbeats, no EOF) may still have an agent that does not
know it was left: its jobs, held by the listener, are remembered as `unaware`, so that the
host's next agent not knowing them does not make them lost (it may take their agent over
later). While jobs are held for a host, every ping to its agent names them (`held`), and
the agent looks again for survivors; a survivor found late is reported by a second
`resumed` (listener.host_took_over).

An ssh host's agent is pcontrol's own, sent over the connection (pcontrol.bootstrap), unless
config.remote_agent names an installed one to try first: where that is missing pcontrol
sends its own at once. Every hello names the agent's build; an agent of another build (or
an older protocol) is noted in the host's record and history and never used silently: on
a host pcontrol starts itself it takes no new jobs (`replacing`) and is replaced by
pcontrol's own once it runs none; on a -connect host (or localhost) it is kept, with the
note, since the host's own command would start it again.

A host that goes DOWN within `stable_after` seconds of coming up is flapping: its failure
count carries on, so each retry waits twice as long (up to retry_max); a host that stayed
up that long starts again from retry_min. Recent state changes are kept in its history.
Timers (heartbeat, silence, retries) run on the loop's monotonic clock; the times in the
records (since, retry_at, history) are wall-clock, for people.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pclient import protocol as agent_protocol

from .agentlink import ConnectFailure, ConnectOutcome, connect_agent, terminate
from .bootstrap import BootstrapStart, current_bundle, remote_command
from .config import ControllerConfig
from .errors import ConflictError, NotFoundError, UsageError
from .fencing import fence_from_env
from .model import Host, HostState
from .paths import default_home
from .spareagent import KEEP as SPARE_KEEP
from .spareagent import PipedProcess, SpareAgent, local_agent_argv

if TYPE_CHECKING:
    from .slurmstate import SlurmOptions  # loaded with the first Slurm host (start-up, issue 13)

log = logging.getLogger(__name__)

#: Seconds to wait for a lost local agent (our own child) to exit before its jobs are held.
AGENT_EXIT_WAIT = 1.0


class HostListener(Protocol):
    def host_changed(self, host: Host) -> None: ...

    def host_resumed(self, host: Host, report: agent_protocol.Resumed | None,
                     unaware: frozenset[int] = frozenset()) -> None:
        """The agent reported what it runs (None: a version 1 agent, which runs nothing).
        `unaware`: held jobs whose agent was lost by silence and may not know it yet."""

    def host_took_over(self, host: Host, report: agent_protocol.Resumed) -> None:
        """The host's agent found survivors late and took them over: their jobs."""

    def host_connected(self, host: Host) -> None: ...

    def host_lost(self, host: Host, reason: str, survivable: bool) -> list[int]:
        """The host's connection is gone. `survivable`: its agent may live on and keep the
        jobs for a successor. Returns the jobs now awaiting a report."""

    def agent_died(self, host: Host, job_ids: list[int], reason: str) -> None:
        """The agent we lost is known to have exited: the jobs it held are gone."""

    def agent_message(self, host: Host, message: agent_protocol.Message) -> None: ...

    def held_words(self, host: Host) -> tuple[str, ...]:
        """The held jobs of `host` as the agent protocol names them (attempt included)."""


class PullLinks(Protocol):
    """Where a pull host's link comes from (pull.PullHub)."""

    def open_link(self, name: str, on_message: Any, on_lost: Any, slots: int | None = None) -> "HostLink": ...


class HostLink(Protocol):
    """A host's job runner as the table uses it: an agent over a pipe (agentlink.AgentLink)
    or pcontrol's own driver of a batch system (slurm.SlurmLink). It takes the agent
    protocol's messages and answers through the callbacks it was made with."""

    name: str
    hello: agent_protocol.Hello
    authed: bool

    @property
    def pid(self) -> int: ...

    @property
    def agent_is_child(self) -> bool: ...

    def send(self, message: agent_protocol.Message) -> bool: ...

    async def close(self, *, reason: str, grace: float = 3.0, polite: bool = True) -> None: ...

    def hang_up(self, reason: str) -> None: ...

    async def wait_gone(self, timeout: float | None) -> bool: ...


class HostOpener(Protocol):
    """Starts a host's runner and hands back its live link, or raises ConnectFailure. The
    table's own opener starts agents (ssh, pexpect) and Slurm drivers; `sched --simulate`
    hands in one of simulated agents (pcontrol.simagent), so that the same table, with its
    backoff, heartbeats and states, runs them."""

    async def open(self, host: Host, on_message: Callable[[HostLink, agent_protocol.Message], None],
                   on_lost: Callable[[HostLink, str], None]) -> HostLink: ...


@dataclass
class _Runtime:
    """What the table keeps per host beside its record: the live connection."""

    link: HostLink | None = None
    connect_task: asyncio.Task | None = None
    retry_handle: asyncio.TimerHandle | None = None
    last_heard: float = 0.0                   # loop time of the agent's last line
    watchdog: asyncio.TimerHandle | None = None
    resume_timer: asyncio.TimerHandle | None = None
    unaware: set[int] = field(default_factory=set)
    """Held jobs whose agent was lost by silence (it may not know yet that it was left)."""
    ready: bool = False                       # resumed (or v1): the host takes jobs
    bootstrap: bool = False
    ping_sent: tuple[int, float] | None = None   # seq and loop time of the last ping
    """Send pcontrol's own agent even where config.remote_agent is set (it was missing
    there, or of another build)."""
    up_since: float | None = None             # loop time it became ready
    next_sweep: float | None = None
    """Loop time of the next sweep of the agent's spool (None: its agent sweeps none)."""


def validate_host_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or name.startswith("-"):
        raise UsageError(f'bad host name "{name}": no spaces, not empty, no leading "-"')


def _definition(*, slots: int | None, connect: str | None, address: str | None,
                port: int | None, pull: bool, slurm: dict[str, Any] | None) -> dict[str, Any]:
    """What `host add` defines, as its option words (-slurm's own options spread out)."""
    words: dict[str, Any] = {"-slots": slots, "-connect": connect, "-address": address,
                             "-port": port, "-pull": pull, "-slurm": slurm is not None}
    words.update({f"-{key}": value for key, value in (slurm or {}).items()})
    return words


def _same_as_given(host: Host, given: dict[str, Any]) -> Host:
    """`host add` of a host that exists: the host when defined as given, else ConflictError
    naming what differs."""
    have = _definition(slots=host.slots, connect=host.connect, address=host.address,
                       port=host.port, pull=host.pull, slurm=host.slurm)
    differ = [f"{word} {_shown(have.get(word))}, not {_shown(value)}"
              for word, value in given.items() if have.get(word) != value]
    if differ:
        raise ConflictError(f'host "{host.name}" already exists with other settings '
                            f'({"; ".join(differ)}): "host delete {host.name}" first to change it')
    return host


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class HostTable:
    def __init__(self, config: ControllerConfig, listener: HostListener,
                 clock: Callable[[], float], token: str | None = None,
                 opener: HostOpener | None = None):
        self.config = config
        self.opener = opener
        """None: start real agents (and Slurm drivers); else the opener that gives links."""
        self.listener = listener
        self.clock = clock
        self.token = token
        """Sent to version 2 agents in `auth`; None: never authenticate (agents won't survive)."""
        self.fence = fence_from_env()
        """The leader's fencing token, sent in `auth` (pcontrol.fencing); None: not in a pool."""
        self.hosts: dict[str, Host] = {}
        self._runtime: dict[str, _Runtime] = {}
        self._background: set[asyncio.Task] = set()
        self._reapers: set[asyncio.Task] = set()
        self._heartbeat_task: asyncio.Task | None = None
        self._ping_seq = 0
        self._sweep_seq = 0
        self._stopping = False
        self._draining = False
        self.pull: PullLinks | None = None
        """Opens pull hosts' links (pull.PullHub); set by the daemon when it has a pull listener."""
        self.spare: SpareAgent | None = None
        """A local agent started ahead of need (pcontrol.spareagent), for the first local start;
        set by the daemon when `serve --spare-local-agent` made one."""
        self._spare_timer: asyncio.TimerHandle | None = None

    # -- life -------------------------------------------------------------------------------

    def load(self, records: list[dict[str, Any]]) -> None:
        now = self.clock()
        for record in records:
            host = Host(name=record["name"], slots=record.get("slots"),
                        connect=record.get("connect"), slurm=record.get("slurm"),
                        address=record.get("address"), port=record.get("port"),
                        pull=bool(record.get("pull", False)), enabled=bool(record.get("enabled", True)),
                        added=float(record.get("added") or now), since=now)
            host.history = collections.deque(maxlen=self.config.history_size)
            host.state = HostState.CONNECTING if host.enabled else HostState.OFF
            self._note(host, "pcontrol started")
            self.hosts[host.name] = host
            self._runtime[host.name] = _Runtime()

    def start(self) -> None:
        """Start the heartbeat and connect every enabled host."""
        loop = asyncio.get_running_loop()
        self._heartbeat_task = loop.create_task(self._heartbeat_loop(), name="pcontrol-heartbeat")
        if self.spare is not None:
            self._spare_timer = loop.call_later(SPARE_KEEP, self._end_spare)
        for host in self.hosts.values():
            if host.enabled:
                self._begin_connect(host)

    async def stop(self, *, kill: bool = False) -> None:
        """End every attempt in flight and let go of every agent.

        kill: say bye, so each agent kills its jobs and reports them (their reports still
        reach the listener) before it exits. Otherwise hang up without a word: an agent that
        was sent `auth` keeps its jobs for its lease, for the next pcontrol's agent.
        """
        self._stopping = True
        self._draining = kill
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        self._end_spare()
        closing: list[Any] = []
        for runtime in self._runtime.values():
            self._cancel_timers(runtime)
            if runtime.retry_handle is not None:
                runtime.retry_handle.cancel()
            if runtime.connect_task is not None:
                runtime.connect_task.cancel()
                closing.append(runtime.connect_task)
            if runtime.link is None:
                continue
            if kill or not runtime.link.authed:
                closing.append(runtime.link.close(reason="pcontrol stopped",
                                                  grace=self.config.bye_grace))
            else:
                runtime.link.hang_up("pcontrol stopped")
        closing.extend(self._background)
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        self._draining = False
        for task in self._reapers:
            task.cancel()

    @staticmethod
    def _cancel_timers(runtime: _Runtime) -> None:
        for handle in (runtime.watchdog, runtime.resume_timer):
            if handle is not None:
                handle.cancel()
        runtime.watchdog = runtime.resume_timer = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- lookups and sending ----------------------------------------------------------------

    def get(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None:
            raise NotFoundError(f'no host "{name}"')
        return host

    def send(self, host: Host, message: agent_protocol.Message) -> bool:
        runtime = self._runtime.get(host.name)
        if runtime is None or runtime.link is None:
            return False
        return runtime.link.send(message)

    def set_state(self, host: Host, state: HostState, reason: str | None = None) -> None:
        changed = host.state is not state or (reason is not None and reason != host.reason)
        if reason is not None:
            host.reason = reason
        if not changed:
            return
        up = (HostState.IDLE, HostState.BUSY)
        noted = host.state is not state and not (host.state in up and state in up)
        host.state = state
        host.since = self.clock()
        if state is not HostState.DOWN:
            host.retry_at = None
        if noted:
            self._note(host, reason if state is HostState.DOWN else None)
        self.listener.host_changed(host)

    def _note(self, host: Host, reason: str | None) -> None:
        """Add the current state to the host's bounded history (IDLE/BUSY swings are
        not history: only coming up is)."""
        entry: dict[str, Any] = {"time": self.clock(), "state": host.state.value}
        if reason:
            entry["reason"] = reason
        host.history.append(entry)

    def agent_argv(self, host: Host) -> list[str]:
        slots = ["--slots", str(host.slots)] if host.slots else []
        if host.connect:
            return shlex.split(host.connect)
        if host.local:
            return local_agent_argv(host.slots, self.config.local_agent)
        ssh = list(self.config.ssh_command) + (["-p", str(host.port)] if host.port is not None else [])
        if not self._sends_agent(host):
            assert self.config.remote_agent is not None
            return ssh + [host.target, self.config.remote_agent] + slots
        return ssh + [host.target, remote_command(current_bundle(), slots)]

    @staticmethod
    def _may_send_agent(host: Host) -> bool:
        """An ssh host started by pcontrol's own command (not -connect, not localhost, not
        a Slurm cluster)."""
        return not host.connect and not host.local and host.slurm is None and not host.pull

    def _sends_agent(self, host: Host) -> bool:
        """This host's next start sends pcontrol's own agent (pcontrol.bootstrap)."""
        runtime = self._runtime.get(host.name)
        return self._may_send_agent(host) and (
            self.config.remote_agent is None or (runtime is not None and runtime.bootstrap))

    # -- commands (the listener has dealt with the jobs first) ------------------------------

    def add(self, name: str, *, slots: int | None, connect: str | None,
            slurm: SlurmOptions | None = None, pull: bool = False,
            address: str | None = None, port: int | None = None) -> Host:
        validate_host_name(name)
        if pull and (slurm is not None or connect is not None):
            raise UsageError("a pull host (-pull) has no -connect command and is not a Slurm cluster")
        if pull and self.pull is None:
            raise UsageError("this pcontrol has no pull listener: start it with --pull-listen HOST:PORT")
        if (address is not None or port is not None) and (connect is not None or slurm is not None or pull):
            raise UsageError("-address and -port are for the default ssh start, not with -connect, -slurm or -pull")
        if address is not None:
            validate_host_name(address)
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"-port must be a TCP port (1-65535), got {port}")
        if name in self.hosts:   # the same again (a script run once more): nothing to do
            return _same_as_given(self.hosts[name], _definition(
                slots=slots, connect=connect, address=address, port=port, pull=pull,
                slurm=slurm.to_record() if slurm is not None else None))
        if slurm is not None and connect is not None:
            raise UsageError("a Slurm host (-slurm) has no -connect command")
        if slurm is not None:
            try:
                slurm.extra()
            except ValueError as exc:
                raise UsageError(f"bad -sbatch options: {exc}") from None
        if connect is not None:
            try:
                words = shlex.split(connect)
            except ValueError as exc:
                raise UsageError(f"bad -connect command: {exc}") from None
            if not words:
                raise UsageError("-connect needs a command")
        now = self.clock()
        host = Host(name=name, slots=slots, connect=connect, added=now, since=now,
                    slurm=slurm.to_record() if slurm is not None else None, pull=pull,
                    address=address, port=port)
        host.history = collections.deque(maxlen=self.config.history_size)
        self._note(host, "added")
        self.hosts[name] = host
        self._runtime[name] = _Runtime()
        self.listener.host_changed(host)
        self._begin_connect(host)
        return host

    def disconnect(self, host: Host, reason: str) -> None:
        """Hang up on purpose (bye); no retry. A connect in flight closes what it opens."""
        runtime = self._runtime[host.name]
        if runtime.retry_handle is not None:
            runtime.retry_handle.cancel()
            runtime.retry_handle = None
        self._cancel_timers(runtime)
        runtime.ready = False
        runtime.up_since = None
        link, runtime.link = runtime.link, None
        if link is not None:
            self._spawn(link.close(reason=reason, grace=self.config.bye_grace),
                        f"close {host.name}")

    def remove(self, host: Host) -> None:
        self.disconnect(host, f"host {host.name} was deleted")
        del self.hosts[host.name]
        del self._runtime[host.name]

    def switch_off(self, host: Host) -> None:
        host.enabled = False
        self.disconnect(host, f"host {host.name} was switched off")
        self.set_state(host, HostState.OFF)

    def switch_on(self, host: Host) -> None:
        host.enabled = True
        host.failures = 0
        self.listener.host_changed(host)
        self._begin_connect(host)

    def retry(self, host: Host) -> None:
        self._begin_connect(host)

    # -- connecting -------------------------------------------------------------------------

    def _begin_connect(self, host: Host) -> None:
        runtime = self._runtime[host.name]
        if runtime.retry_handle is not None:
            runtime.retry_handle.cancel()
            runtime.retry_handle = None
        if runtime.link is not None or self._stopping:
            return
        self.set_state(host, HostState.CONNECTING)
        if runtime.connect_task is None:   # else the attempt in flight will do
            runtime.connect_task = asyncio.get_running_loop().create_task(
                self._connect(host, runtime), name=f"connect {host.name}")

    def _is_current(self, host: Host, runtime: _Runtime) -> bool:
        return self.hosts.get(host.name) is host and self._runtime.get(host.name) is runtime

    async def _connect(self, host: Host, runtime: _Runtime) -> None:
        prelude = BootstrapStart(current_bundle()) \
            if self._sends_agent(host) and self.opener is None else None
        try:
            link = await self._open_link(host, prelude)
        except ConnectFailure as failure:
            if (failure.outcome is ConnectOutcome.NOT_FOUND and prelude is None
                    and self._may_send_agent(host) and self._is_current(host, runtime)):
                log.info("%s: no installed agent (%s); sending pcontrol's own", host.name,
                         failure.reason)
                runtime.bootstrap = True
                await self._connect(host, runtime)
                return
            runtime.connect_task = None
            if self._is_current(host, runtime) and host.enabled:
                log.info("%s: connect failed (%s): %s", host.name, failure.outcome.value,
                         failure.reason)
                self.down(host, failure.reason)
            return
        except asyncio.CancelledError:
            runtime.connect_task = None
            raise
        except Exception as exc:      # includes shlex's ValueError: a -connect gone bad
            runtime.connect_task = None
            log.exception("%s: connect failed", host.name)
            if self._is_current(host, runtime) and host.enabled:
                self.down(host, f"cannot start the agent: {exc}")
            return
        runtime.connect_task = None
        if not self._is_current(host, runtime) or not host.enabled or self._stopping:
            await link.close(reason="no longer wanted", grace=self.config.bye_grace)
            return
        self._connected(host, runtime, link, prelude)

    async def _open_link(self, host: Host, prelude: BootstrapStart | None) -> HostLink:
        if self.opener is not None:
            return await self.opener.open(host, self._on_message, self._on_lost)
        if host.pull:
            if self.pull is None:
                raise ConnectFailure(ConnectOutcome.NOT_FOUND, "a pull host, but this pcontrol has no "
                                     "pull listener (--pull-listen)")
            return self.pull.open_link(host.name, self._on_message, self._on_lost, slots=host.slots)
        if host.slurm is None:
            argv = self.agent_argv(host)
            return await connect_agent(host.name, argv,
                                       timeout=self.config.connect_timeout,
                                       nice=self.config.agent_nice,
                                       on_message=self._on_message, on_lost=self._on_lost,
                                       prelude=prelude, pipes=self._on_pipes(host),
                                       started=self._take_spare(host, argv))
        from .slurm import connect_slurm  # a Slurm host's driver, loaded for the first one (pcontrol's start-up)
        from .slurmstate import SlurmOptions, host_tag  # with it (start-up, issue 13)

        options = SlurmOptions.from_record(host.slurm)
        output = Path(options.output) if options.output else \
            Path(self.config.slurm_output or default_home() / "slurm") / host.name
        try:
            return await asyncio.wait_for(connect_slurm(
                host.name, options, slots=host.slots, tag=host_tag(self.token, host.name),
                output_dir=output, poll=self.config.slurm_poll, on_message=self._on_message,
                on_lost=self._on_lost), self.config.connect_timeout)
        except asyncio.TimeoutError:
            raise ConnectFailure(ConnectOutcome.TIMEOUT, f"Slurm did not answer within "
                                 f"{self.config.connect_timeout:g} s") from None

    @staticmethod
    def _on_pipes(host: Host) -> bool:
        """Its agent starts on pipes, not on a pty: a local agent of pcontrol's own command
        (not -connect), which asks no terminal anything (pcontrol.agentlink)."""
        return host.local and not host.connect

    def _take_spare(self, host: Host, argv: list[str]) -> PipedProcess | None:
        """The spare agent for the first local start, if it is that start's command (its
        process, else None); the spare is offered once."""
        if not self._on_pipes(host) or self.spare is None:
            return None
        process = self.spare.take(argv, self.config.agent_nice)
        if process is not None:
            log.info("%s: its agent was started ahead (pid %d)", host.name, process.pid)
        self._end_spare()
        return process

    def _end_spare(self) -> None:
        """End (and reap) a spare agent nobody took."""
        if self._spare_timer is not None:
            self._spare_timer.cancel()
            self._spare_timer = None
        spare, self.spare = self.spare, None
        pid = spare.discard() if spare is not None else None
        if pid is not None:
            log.info("the local agent started ahead (pid %d) was not needed", pid)
            self._spawn(terminate(pid, grace=1.0), name="end the spare agent")

    def _connected(self, host: Host, runtime: _Runtime, link: HostLink,
                   prelude: BootstrapStart | None = None) -> None:
        hello = link.hello
        slots = host.slots or hello.slots
        if host.slots and hello.slots < host.slots:
            log.warning("%s: configured for %d slots but the agent offers %d; using %d",
                        host.name, host.slots, hello.slots, hello.slots)
            slots = hello.slots
        runtime.link = link
        runtime.ready = False
        host.agent_slots = max(1, slots)
        host.last_pong = self.clock()
        host.agent = {"pid": hello.pid, "host": hello.host, "version": hello.version,
                      "agent": hello.agent, "local_pid": link.pid,
                      "clock_skew": round(hello.clock - host.last_pong, 6),
                      "build": hello.build}
        if prelude is not None:
            host.agent["bootstrap"] = prelude.report
        if host.slurm is None and not host.pull:   # a Slurm or pull host's runner is pcontrol itself
            self._check_build(host, hello, sent=prelude is not None)
        log.info("%s: connected (%s, pid %d on %s, %d slots)", host.name, hello.agent,
                 hello.pid, hello.host, host.agent_slots)
        loop = asyncio.get_running_loop()
        runtime.last_heard = loop.time()
        self._arm_watchdog(host, runtime, runtime.last_heard + self._silence_limit())
        if hello.version >= 2 and self.token is not None:
            link.authed = link.send(agent_protocol.Auth(
                token=self.token, name=host.name, lease=self.config.lease,
                heartbeat=self.config.heartbeat, missed=self.config.missed_heartbeats, fence=self.fence))
            runtime.resume_timer = loop.call_later(self.config.connect_timeout,
                                                   self._resume_overdue, host, runtime)
            return         # ready once the agent has reported what it runs (resumed)
        self._ready(host, runtime, None)

    def _ready(self, host: Host, runtime: _Runtime, report: agent_protocol.Resumed | None) -> None:
        if runtime.resume_timer is not None:
            runtime.resume_timer.cancel()
            runtime.resume_timer = None
        runtime.ready = True
        runtime.up_since = asyncio.get_running_loop().time()
        runtime.next_sweep = runtime.up_since if self._sweeps(runtime) else None
        self.set_state(host, HostState.IDLE)
        runtime.unaware &= host.held
        self.listener.host_resumed(host, report, frozenset(runtime.unaware))
        runtime.unaware &= host.held
        self.listener.host_connected(host)
        self._replace_when_idle(host, runtime)

    @staticmethod
    def _sweeps(runtime: _Runtime) -> bool:
        """Whether the host's agent sweeps its spool when asked (an authenticated agent whose
        hello says so; an older one is never asked)."""
        link = runtime.link
        return link is not None and link.authed and link.hello.sweep >= 1

    def _sweep_when_due(self, runtime: _Runtime) -> None:
        """Ask the agent to sweep its spool, at the first heartbeat once it is ready (not on the
        way from its connect to its first job) and then every spool_sweep_every seconds; its
        `spooled` goes to the listener (reports.py drops what is no job's)."""
        now = asyncio.get_running_loop().time()
        if runtime.link is None or not runtime.ready or runtime.next_sweep is None or now < runtime.next_sweep:
            return
        runtime.next_sweep = now + self.config.spool_sweep_every
        self._sweep_seq += 1
        runtime.link.send(agent_protocol.Sweep(seq=self._sweep_seq, age=self.config.spool_sweep_age,
                                               abandon=self.config.spool_abandon))

    # -- agents of another build ------------------------------------------------------------

    def _check_build(self, host: Host, hello: agent_protocol.Hello, *, sent: bool) -> None:
        """An agent that is not pcontrol's own build is never used silently: it is noted
        (and logged), and where pcontrol can send its own agent, replaced once it runs no
        jobs (it takes no new ones meanwhile). `sent`: this agent is the one pcontrol sent
        (a mismatch then is a bug, not to be answered by sending it again)."""
        ours = current_bundle().build
        host.replacing = False
        if hello.build == ours and hello.version == agent_protocol.PROTOCOL_VERSION:
            return
        mismatch = (f"the agent is {hello.agent} (build {hello.build[:12] or 'unknown'}, "
                    f"protocol {hello.version}), not pcontrol's own (build {ours[:12]}, "
                    f"protocol {agent_protocol.PROTOCOL_VERSION})")
        host.agent["mismatch"] = mismatch
        if self._may_send_agent(host) and not sent:
            host.replacing = True
            log.warning("%s: %s; it takes no new jobs and is replaced once it runs none",
                        host.name, mismatch)
        elif sent:
            log.error("%s: %s, though pcontrol sent it (a bug: a stale %s?)", host.name,
                      mismatch, "pclient/_bundled.py")
        else:
            log.warning("%s: %s; kept, since the host's own command starts it", host.name,
                        mismatch)
        self._note(host, mismatch)

    def _replace_when_idle(self, host: Host, runtime: _Runtime) -> None:
        """Replace an agent of another build by pcontrol's own, once it runs no jobs."""
        if not host.replacing or not runtime.ready or host.running or self._stopping:
            return
        log.info("%s: replacing the agent of another build by pcontrol's own", host.name)
        host.replacing = False
        runtime.bootstrap = True
        self.disconnect(host, "replaced by pcontrol's own agent")
        self._begin_connect(host)

    def _resume_overdue(self, host: Host, runtime: _Runtime) -> None:
        runtime.resume_timer = None
        if self._is_current(host, runtime) and runtime.link is not None and not runtime.ready:
            self.down(host, f"the agent did not report its jobs within "
                            f"{self.config.connect_timeout:g} s of auth")

    def _host_of_link(self, link: HostLink) -> Host | None:
        runtime = self._runtime.get(link.name)
        if runtime is None or runtime.link is not link:
            return None
        if self._stopping and not self._draining:
            return None
        return self.hosts.get(link.name)

    def _on_message(self, link: HostLink, message: agent_protocol.Message) -> None:
        host = self._host_of_link(link)
        if host is None:
            return
        runtime = self._runtime[host.name]
        runtime.last_heard = asyncio.get_running_loop().time()
        if isinstance(message, agent_protocol.Pong):
            host.last_pong = self.clock()
            host.agent["clock_skew"] = round(message.clock - host.last_pong, 6)
            if runtime.ping_sent is not None and runtime.ping_sent[0] == message.seq:
                host.agent["rtt"] = round(runtime.last_heard - runtime.ping_sent[1], 6)
        elif isinstance(message, agent_protocol.Resumed):
            if runtime.ready:
                if not self._stopping:
                    log.info("%s: the agent took over %d more agent(s) found late: %d running "
                             "job(s), %d finished", host.name, message.survivors,
                             len(message.running), len(message.finished))
                    self.listener.host_took_over(host, message)
            elif not self._stopping:
                log.info("%s: the agent runs %d job(s), reports %d finished, took over %d "
                         "agent(s)", host.name, len(message.running), len(message.finished),
                         message.survivors)
                self._ready(host, runtime, message)
        else:
            self.listener.agent_message(host, message)
            self._replace_when_idle(host, runtime)

    def _on_lost(self, link: HostLink, reason: str) -> None:
        runtime = self._runtime.get(link.name)
        if runtime is None or runtime.link is not link or self._stopping:
            return
        host = self.hosts.get(link.name)
        if host is not None:
            self.down(host, reason)

    def down(self, host: Host, reason: str, *, silent: bool = False) -> None:
        """The host is unusable: the listener deals with its jobs; retry later with backoff.

        An authenticated agent is hung up on without a signal (it keeps its jobs for its
        lease); if it is our own child and exits anyway, its jobs are known lost.
        `silent`: the connection went quiet rather than ending, so the agent may not know
        yet that it was left; its held jobs are remembered as unaware (module docstring)."""
        runtime = self._runtime[host.name]
        self._cancel_timers(runtime)
        link, runtime.link = runtime.link, None
        survivable = link is not None and link.authed and self.config.lease > 0
        if link is not None and not survivable:
            self._spawn(link.close(reason=reason, polite=False, grace=1.0),
                        f"hang up {host.name}")
        elif link is not None:
            link.hang_up(reason)
        held = self.listener.host_lost(host, reason, survivable)
        if silent and survivable:
            runtime.unaware.update(held)
        if link is not None and survivable:
            self._watch_agent(host, link, held)
        self._count_failure(host, runtime)
        if host.enabled and not self._stopping:
            delay = min(self.config.retry_max,
                        self.config.retry_min * 2 ** min(host.failures - 1, 30))
            delay *= random.uniform(0.9, 1.1)
            host.retry_at = self.clock() + delay
            runtime.retry_handle = asyncio.get_running_loop().call_later(
                delay, self._retry_due, host, runtime)
        log.warning("%s: DOWN: %s", host.name, reason)
        self.set_state(host, HostState.DOWN, reason)

    def _count_failure(self, host: Host, runtime: _Runtime) -> None:
        """One more failure; a host that had been up for `stable_after` starts over,
        one that went down sooner is flapping and its backoff keeps growing."""
        if runtime.up_since is not None:
            up_for = asyncio.get_running_loop().time() - runtime.up_since
            if up_for >= self.config.stable_after:
                host.failures = 0
            elif host.failures > 0:      # it had been down, came back, and fell again
                host.flaps += 1
                log.warning("%s: flapping: down again %.1f s after coming up (%d failures "
                            "in a row)", host.name, up_for, host.failures + 1)
        runtime.up_since = None
        runtime.ready = False
        host.failures += 1

    def _watch_agent(self, host: Host, link: HostLink, held: list[int]) -> None:
        """Reap the agent we hung up on whenever it exits. A local agent (our child) that
        exits at once took its jobs with it: tell the listener without waiting for grace."""
        async def watch() -> None:
            if link.agent_is_child and held:
                if await link.wait_gone(AGENT_EXIT_WAIT):
                    self.listener.agent_died(host, held, f"its agent (pid {link.pid}) died")
                    return
            await link.wait_gone(None)

        task = asyncio.get_running_loop().create_task(watch(), name=f"reap {host.name}")
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    def _retry_due(self, host: Host, runtime: _Runtime) -> None:
        runtime.retry_handle = None
        if self._is_current(host, runtime) and host.enabled and host.state is HostState.DOWN:
            self._begin_connect(host)

    # -- heartbeat --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat)
            self.heartbeat_tick()

    def heartbeat_tick(self) -> None:
        """Ping every connected agent (the watchdogs decide who is silent too long). The
        ping to an agent that has reported (resumed) names the jobs held for its host, so
        it keeps looking for the agent that runs them."""
        for name, runtime in list(self._runtime.items()):
            if runtime.link is None:
                continue
            host = self.hosts.get(name)
            held: tuple[str, ...] = ()
            if host is not None and runtime.ready and runtime.link.authed:  # (+ the jobs `adopt` looks for)
                held = self.listener.held_words(host)
            self._ping_seq += 1
            runtime.ping_sent = (self._ping_seq, asyncio.get_running_loop().time())
            runtime.link.send(agent_protocol.Ping(seq=self._ping_seq, held=held))
            self._sweep_when_due(runtime)

    def _silence_limit(self) -> float:
        return self.config.missed_heartbeats * self.config.heartbeat

    def _arm_watchdog(self, host: Host, runtime: _Runtime, due: float) -> None:
        runtime.watchdog = asyncio.get_running_loop().call_at(due, self._watchdog, host, runtime)

    def _watchdog(self, host: Host, runtime: _Runtime) -> None:
        """An agent heard of nothing for missed_heartbeats intervals is DOWN: at most that
        long after its last line (any line counts, not only pongs)."""
        runtime.watchdog = None
        if runtime.link is None or not self._is_current(host, runtime):
            return
        due = runtime.last_heard + self._silence_limit()
        if asyncio.get_running_loop().time() < due:
            self._arm_watchdog(host, runtime, due)
            return
        self.down(host, f"missed {self.config.missed_heartbeats} heartbeats "
                        f"({self.config.heartbeat:g} s apart)", silent=True)
