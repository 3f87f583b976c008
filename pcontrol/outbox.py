"""The outbox: what the controller tells others goes out only after the journal has it.

Events to subscribers, `run` and `kill` to agents, `ack`s of the outcomes agents reported,
and the reply to `job` all wait here until the journal has written every change made before
them. Each is stamped with the journal's change number (Journal.seq) when queued and is
released once `durable_seq` reaches it: usually by the write in the next loop turn (one
batch holds a turn's changes), after a few turns when a burst is written batch by batch.
Hence after a `kill -9` of pcontrol nothing anyone was told is missing from the journal: no
agent is sent a job that the journal does not have as BUSY, no subscriber saw an outcome the
journal lost, and an agent forgets an outcome only once it is on disk (it keeps it until
acked, and reports it again to the next pcontrol otherwise).

While the journal fails (full disk), everything stays here, in order, and goes out once
writes work again; a caller waiting for a change that did not reach the disk is told so
(JournalFailed) rather than left waiting.

What is released goes out RELEASE_BATCH messages per loop turn (a journal batch covers 250
jobs, each with a `run` or an `ack` to encode and write to an agent and maybe an event per
subscriber): the first batch in the journal's write turn, right after the write that covers
it (no turn of its own in between, which had been a loop turn more for every change told,
and a reply to `job` a turn later), the rest a turn each: the loop reads its clients and
agents between two batches. While a journal write is due, that write releases what is
queued; otherwise (nothing left to write, a failing or held journal) the outbox takes a
turn of its own.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from typing import Any

from pclient import protocol as agent_protocol

from .journal import Journal, JournalFailed
from .wire import EventKind

__all__ = ["Outbox", "RELEASE_BATCH"]

#: Messages (events count once per event, acks once per host) sent per loop turn.
RELEASE_BATCH = 256


class Outbox:
    """Messages held until the journal's durable_seq reaches them; then sent in order.

    `ledger()` returns the journal (or None: nothing to wait for); the controller calls
    `written` after each write (Journal.on_written), and `release` to send everything at
    once (stopping).
    """

    def __init__(self, ledger: Callable[[], Journal | None],
                 send_event: Callable[[EventKind, dict[str, Any] | None, str | None,
                                       dict[str, Any] | None], None],
                 send_agent: Callable[[str, agent_protocol.Message], None]):
        self._ledger = ledger
        self._send_event = send_event
        self._send_agent = send_agent
        # (seq, kind, whole record, owner, short record): a job's change in the forms its
        # subscribers asked for (either record may be None)
        self._events: collections.deque[tuple[int, EventKind, dict[str, Any] | None, str | None,
                                              dict[str, Any] | None]] = collections.deque()
        self._agents: collections.deque[tuple[int, str, agent_protocol.Message]] = \
            collections.deque()
        self._acks: collections.deque[tuple[int, str, str]] = collections.deque()
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._handle: asyncio.Handle | None = None

    @property
    def empty(self) -> bool:
        return not (self._events or self._agents or self._acks)

    def __len__(self) -> int:
        return len(self._events) + len(self._agents) + len(self._acks)

    def _seq(self) -> int:
        """The journal's last change number, which what is queued now waits for: lazy
        changes (journal.py) are then written next turn too."""
        journal = self._ledger()
        if journal is None:
            return 0
        journal.write_soon()
        return journal.seq

    def _durable(self) -> float:
        journal = self._ledger()
        return journal.durable_seq if journal is not None else math.inf

    def event(self, kind: EventKind, data: dict[str, Any] | None, owner: str | None,
              brief: dict[str, Any] | None = None) -> None:
        self._events.append((self._seq(), kind, data, owner, brief))
        self._schedule()

    def agent(self, host: str, message: agent_protocol.Message) -> None:
        self._agents.append((self._seq(), host, message))
        self._schedule()

    def ack(self, host: str, job_word: str) -> None:
        self._acks.append((self._seq(), host, job_word))
        self._schedule()

    async def durable(self, seq: float | None = None) -> None:
        """Return once every change up to `seq` (default: so far) is written and what was
        queued before is sent; JournalFailed if the journal fails first."""
        waiter = asyncio.get_running_loop().create_future()
        last = self._seq()
        self._waiters.append((last if seq is None else seq, waiter))
        self._schedule()
        await waiter

    def drop_job(self, job_id: int) -> None:
        """Forget what was queued about a job that is withdrawn (never told to anyone)."""
        word = str(job_id)
        self._events = collections.deque(
            item for item in self._events
            if not (item[1] is EventKind.JOB and (item[2] or item[4] or {}).get("id") == job_id))
        self._agents = collections.deque(
            item for item in self._agents if getattr(item[2], "job", None) != word)

    def written(self) -> None:
        """Journal.on_written: the journal wrote (or failed to); release what that covers
        now, in the journal's turn (a batch: the rest in turns of their own)."""
        if self.release(RELEASE_BATCH):
            self._schedule()

    def _journal_releases(self) -> bool:
        """A journal write is due: it calls `written`, which releases what it covers."""
        journal = self._ledger()
        return journal is not None and journal.write_due

    def _schedule(self) -> None:
        if self._journal_releases():
            return
        if self._handle is None:
            try:
                self._handle = asyncio.get_running_loop().call_soon(self._release_turn)
            except RuntimeError:        # no loop (tools, tests): at once
                self.release()

    def _release_turn(self) -> None:
        self._handle = None
        if self._journal_releases():
            return                      # (due since this turn was scheduled)
        if self.release(RELEASE_BATCH):
            self._schedule()            # more is covered: the next turn sends it

    def release(self, limit: int | None = None) -> bool:
        """Send what the journal now covers, at most `limit` messages (None: all); fail
        the waiters it cannot cover. True if covered messages are left for another call."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        durable = self._durable()
        budget = limit if limit is not None else len(self)
        agents = self._agents
        while budget > 0 and agents and agents[0][0] <= durable:
            _, host, message = agents.popleft()
            self._send_agent(host, message)
            budget -= 1
        acks: dict[str, list[str]] = {}
        while budget > 0 and self._acks and self._acks[0][0] <= durable:
            _, host, word = self._acks.popleft()
            acks.setdefault(host, []).append(word)
            budget -= 1                 # counted by job: one Ack may name many
        for host, words in acks.items():
            self._send_agent(host, agent_protocol.Ack(jobs=tuple(words)))
        events = self._events
        released = []
        while budget > 0 and events and events[0][0] <= durable:
            released.append(events.popleft())
            budget -= 1
        # The waiters first, then the events: a waiter's task (the `job` it answers) then runs
        # before the loop turn that writes a subscriber's events, and its reply takes them
        # along, before it, in one write (server.Connection._send).
        if self._waiters:
            self._settle_waiters(min([durable] + [queue[0][0] - 1 for queue in
                                                  (self._agents, self._acks, self._events)
                                                  if queue]), durable)
        for _, kind, data, owner, brief in released:
            self._send_event(kind, data, owner, brief)
        return any(queue and queue[0][0] <= durable
                   for queue in (self._agents, self._acks, self._events))

    def _settle_waiters(self, told: float, durable: float) -> None:
        """Wake the waiters whose changes are written and told (everything queued up to
        `told` is sent); fail those the failing journal has not written."""
        journal = self._ledger()
        failure = journal.failure if journal is not None else None
        waiting = []
        for seq, waiter in self._waiters:
            if waiter.done():
                continue
            if seq <= told:
                waiter.set_result(None)
            elif failure is not None and seq > durable:
                waiter.set_exception(JournalFailed(failure))
            else:
                waiting.append((seq, waiter))
        self._waiters = waiting
