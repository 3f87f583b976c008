"""The host table and each host's connection: connect, heartbeat, DOWN with backoff, on/off.

HostTable owns the Host records and, per host, the live AgentLink, the connect attempt in
flight and the retry timer. It knows nothing of jobs: what a connection means for jobs is
the listener's business (HostListener, implemented by the Controller): a host came up (fill
its slots), a host was lost (its running jobs end DOWN), an agent sent a message, a record
changed (journal it, send an event).

    add -> CONNECTING -> (hello) -> IDLE/BUSY            (IDLE/BUSY set by the listener)
              \\-> (failure) -> DOWN -> (backoff timer) -> CONNECTING
    connected -> (EOF, write error, missed heartbeats) -> DOWN
    off -> OFF (no retries);  on -> CONNECTING
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pclient import protocol as agent_protocol

from .agentlink import AgentLink, ConnectFailure, connect_agent
from .config import ControllerConfig
from .errors import ConflictError, NotFoundError, UsageError
from .model import Host, HostState

log = logging.getLogger(__name__)


class HostListener(Protocol):
    def host_changed(self, host: Host) -> None: ...

    def host_connected(self, host: Host) -> None: ...

    def host_lost(self, host: Host, reason: str) -> None: ...

    def agent_message(self, host: Host, message: agent_protocol.Message) -> None: ...


@dataclass
class _Runtime:
    """What the table keeps per host beside its record: the live connection."""

    link: AgentLink | None = None
    connect_task: asyncio.Task | None = None
    retry_handle: asyncio.TimerHandle | None = None
    unanswered: int = 0


def validate_host_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or name.startswith("-"):
        raise UsageError(f'bad host name "{name}": no spaces, not empty, no leading "-"')


class HostTable:
    def __init__(self, config: ControllerConfig, listener: HostListener,
                 clock: Callable[[], float]):
        self.config = config
        self.listener = listener
        self.clock = clock
        self.hosts: dict[str, Host] = {}
        self._runtime: dict[str, _Runtime] = {}
        self._background: set[asyncio.Task] = set()
        self._heartbeat_task: asyncio.Task | None = None
        self._ping_seq = 0
        self._stopping = False

    # -- life -------------------------------------------------------------------------------

    def load(self, records: list[dict[str, Any]]) -> None:
        now = self.clock()
        for record in records:
            host = Host(name=record["name"], slots=record.get("slots"),
                        connect=record.get("connect"), enabled=bool(record.get("enabled", True)),
                        added=float(record.get("added") or now), since=now)
            host.state = HostState.CONNECTING if host.enabled else HostState.OFF
            self.hosts[host.name] = host
            self._runtime[host.name] = _Runtime()

    def start(self) -> None:
        """Start the heartbeat and connect every enabled host."""
        self._heartbeat_task = asyncio.get_running_loop().create_task(
            self._heartbeat_loop(), name="pcontrol-heartbeat")
        for host in self.hosts.values():
            if host.enabled:
                self._begin_connect(host)

    async def stop(self) -> None:
        """End every agent (politely: bye) and every attempt in flight."""
        self._stopping = True
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        closing: list[Any] = []
        for runtime in self._runtime.values():
            if runtime.retry_handle is not None:
                runtime.retry_handle.cancel()
            if runtime.connect_task is not None:
                runtime.connect_task.cancel()
                closing.append(runtime.connect_task)
            if runtime.link is not None:
                closing.append(runtime.link.close(reason="pcontrol stopped",
                                                  grace=self.config.bye_grace))
        closing.extend(self._background)
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)

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
        host.state = state
        host.since = self.clock()
        if state is not HostState.DOWN:
            host.retry_at = None
        self.listener.host_changed(host)

    def agent_argv(self, host: Host) -> list[str]:
        slots = ["--slots", str(host.slots)] if host.slots else []
        if host.connect:
            return shlex.split(host.connect)
        if host.name == "localhost":
            return list(self.config.local_agent) + slots
        return list(self.config.ssh_command) + [host.name, self.config.remote_agent] + slots

    # -- commands (the listener has dealt with the jobs first) ------------------------------

    def add(self, name: str, *, slots: int | None, connect: str | None) -> Host:
        validate_host_name(name)
        if name in self.hosts:
            raise ConflictError(f'host "{name}" already exists')
        if connect is not None:
            try:
                words = shlex.split(connect)
            except ValueError as exc:
                raise UsageError(f"bad -connect command: {exc}") from None
            if not words:
                raise UsageError("-connect needs a command")
        now = self.clock()
        host = Host(name=name, slots=slots, connect=connect, added=now, since=now)
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
        try:
            link = await connect_agent(host.name, self.agent_argv(host),
                                       timeout=self.config.connect_timeout,
                                       on_message=self._on_message, on_lost=self._on_lost)
        except ConnectFailure as failure:
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
        self._connected(host, runtime, link)

    def _connected(self, host: Host, runtime: _Runtime, link: AgentLink) -> None:
        hello = link.hello
        slots = host.slots or hello.slots
        if host.slots and hello.slots < host.slots:
            log.warning("%s: configured for %d slots but the agent offers %d; using %d",
                        host.name, host.slots, hello.slots, hello.slots)
            slots = hello.slots
        runtime.link = link
        runtime.unanswered = 0
        host.agent_slots = max(1, slots)
        host.failures = 0
        host.last_pong = self.clock()
        host.agent = {"pid": hello.pid, "host": hello.host, "version": hello.version,
                      "agent": hello.agent, "local_pid": link.pid,
                      "clock_skew": round(hello.clock - host.last_pong, 6)}
        log.info("%s: connected (%s, pid %d on %s, %d slots)", host.name, hello.agent,
                 hello.pid, hello.host, host.agent_slots)
        self.set_state(host, HostState.IDLE)
        self.listener.host_connected(host)

    def _host_of_link(self, link: AgentLink) -> Host | None:
        runtime = self._runtime.get(link.name)
        if runtime is None or runtime.link is not link or self._stopping:
            return None
        return self.hosts.get(link.name)

    def _on_message(self, link: AgentLink, message: agent_protocol.Message) -> None:
        host = self._host_of_link(link)
        if host is None:
            return
        if isinstance(message, agent_protocol.Pong):
            self._runtime[host.name].unanswered = 0
            host.last_pong = self.clock()
            host.agent["clock_skew"] = round(message.clock - host.last_pong, 6)
        else:
            self.listener.agent_message(host, message)

    def _on_lost(self, link: AgentLink, reason: str) -> None:
        host = self._host_of_link(link)
        if host is not None:
            self.down(host, reason)

    def down(self, host: Host, reason: str) -> None:
        """The host is unusable: the listener ends its jobs; retry later with backoff."""
        runtime = self._runtime[host.name]
        link, runtime.link = runtime.link, None
        if link is not None:
            self._spawn(link.close(reason=reason, polite=False, grace=1.0),
                        f"hang up {host.name}")
        self.listener.host_lost(host, reason)
        host.failures += 1
        if host.enabled and not self._stopping:
            delay = min(self.config.retry_max,
                        self.config.retry_min * 2 ** min(host.failures - 1, 30))
            delay *= random.uniform(0.9, 1.1)
            host.retry_at = self.clock() + delay
            runtime.retry_handle = asyncio.get_running_loop().call_later(
                delay, self._retry_due, host, runtime)
        log.warning("%s: DOWN: %s", host.name, reason)
        self.set_state(host, HostState.DOWN, reason)

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
        """Ping every connected agent; one that left `missed_heartbeats` pings unanswered
        in a row is DOWN."""
        limit = self.config.missed_heartbeats
        for name, runtime in list(self._runtime.items()):
            if runtime.link is None:
                continue
            if runtime.unanswered >= limit:
                self.down(self.hosts[name], f"missed {limit} heartbeats "
                                            f"({self.config.heartbeat:g} s apart)")
                continue
            runtime.unanswered += 1
            self._ping_seq += 1
            runtime.link.send(agent_protocol.Ping(seq=self._ping_seq))
