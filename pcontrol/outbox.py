"""The outbox: what the controller tells others goes out only after the journal has it.

Events to subscribers, `run` and `kill` to agents, `ack`s of the outcomes agents reported,
and the reply to `job` all wait here until the next flush of the journal, which happens
once per loop turn (so a burst of changes is still one commit). Hence after a `kill -9` of
pcontrol nothing anyone was told is missing from the journal: no agent runs a job the
journal thinks PENDING, no subscriber saw an outcome the journal lost, and an agent forgets
an outcome only once it is on disk (it keeps it until acked, and reports it again to the
next pcontrol otherwise).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pclient import protocol as agent_protocol

from .wire import EventKind

__all__ = ["Outbox"]


class Outbox:
    """Messages held until `flush()` (the journal's) returns; then sent in order.

    flush() returns True when everything is durable; acks wait for a good flush (the
    agents keep those outcomes meanwhile and report them again on a reconnect).
    """

    def __init__(self, flush: Callable[[], bool],
                 send_event: Callable[[EventKind, dict[str, Any], str | None], None],
                 send_agent: Callable[[str, agent_protocol.Message], None]):
        self._flush = flush
        self._send_event = send_event
        self._send_agent = send_agent
        self._events: list[tuple[EventKind, dict[str, Any], str | None]] = []
        self._agents: list[tuple[str, agent_protocol.Message]] = []
        self._acks: dict[str, list[str]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._handle: asyncio.Handle | None = None

    @property
    def empty(self) -> bool:
        return not (self._events or self._agents or self._acks)

    def event(self, kind: EventKind, data: dict[str, Any], owner: str | None) -> None:
        self._events.append((kind, data, owner))
        self._schedule()

    def agent(self, host: str, message: agent_protocol.Message) -> None:
        self._agents.append((host, message))
        self._schedule()

    def ack(self, host: str, job_word: str) -> None:
        self._acks.setdefault(host, []).append(job_word)
        self._schedule()

    async def durable(self) -> None:
        """Return once everything so far is flushed and sent."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._schedule()
        await waiter

    def _schedule(self) -> None:
        if self._handle is None:
            try:
                self._handle = asyncio.get_running_loop().call_soon(self.sync)
            except RuntimeError:        # no loop (tools, tests): at once
                self.sync()

    def sync(self) -> None:
        """Flush the journal, then send what waited for it."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        durable = self._flush()
        events, self._events = self._events, []
        for kind, data, owner in events:
            self._send_event(kind, data, owner)
        messages, self._agents = self._agents, []
        for host, message in messages:
            self._send_agent(host, message)
        acks, self._acks = self._acks, {}
        if durable:
            for host, words in acks.items():
                self._send_agent(host, agent_protocol.Ack(jobs=tuple(words)))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
