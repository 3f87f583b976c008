"""Dispatch bookkeeping: which pending job a free slot takes, which host a new job goes to,
and when pending timeouts fire. Pure data structures; no clock, no I/O.

Order for a free slot on host H: jobs that require H, then jobs that prefer H, then every
other job that may run anywhere; within each tier higher priority first, then older first
(lower id). Each tier is a heap, so a decision costs O(log n) whatever the number of hosts
or pending jobs. A job that prefers H sits in two heaps (H's and the general one); removal
is lazy (a generation token per job), and a heap that fills up with stale entries is
compacted, which keeps memory proportional to the live jobs.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import NamedTuple

_COMPACT_SLACK = 64


class Placement(NamedTuple):
    """How a pending job may be placed."""

    job_id: int
    priority: int
    host: str | None = None
    required: bool = False


class _Tier:
    """A heap of (−priority, job id, token) with a count of live entries."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, int]] = []
        self.live = 0


class DispatchIndex:
    """The pending jobs, indexed for dispatch."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        # job id -> (token, host, required): a plain tuple of plain values, which the
        # garbage collector stops tracking (a Placement, a subclass, it would keep visiting)
        self._live: dict[int, tuple[int, str | None, bool]] = {}
        self._required: dict[str, _Tier] = {}
        self._preferred: dict[str, _Tier] = {}
        self._general = _Tier()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._live

    def add(self, placement: Placement) -> None:
        if placement.job_id in self._live:
            raise ValueError(f"job {placement.job_id} is already pending")
        token = next(self._tokens)
        self._live[placement.job_id] = (token, placement.host, placement.required)
        entry = (-placement.priority, placement.job_id, token)
        for tier in self._tiers_of(placement.host, placement.required, create=True):
            heapq.heappush(tier.heap, entry)
            tier.live += 1

    def remove(self, job_id: int) -> bool:
        """Forget a pending job (started, killed, timed out). False if it was not pending."""
        item = self._live.pop(job_id, None)
        if item is None:
            return False
        for tier in self._tiers_of(item[1], item[2], create=False):
            tier.live -= 1
            self._maybe_compact(tier)
        return True

    def required_on(self, host: str) -> list[int]:
        """The pending jobs that require `host` (for `host delete`)."""
        tier = self._required.get(host)
        if tier is None:
            return []
        return sorted({job_id for _, job_id, token in tier.heap if self._valid(job_id, token)})

    def best_for(self, host: str) -> int | None:
        """The id of the best pending job for a free slot on `host`, without removing it."""
        for tier in (self._required.get(host), self._preferred.get(host), self._general):
            if tier is None:
                continue
            job_id = self._peek(tier)
            if job_id is not None:
                return job_id
        return None

    def pop_best_for(self, host: str) -> int | None:
        job_id = self.best_for(host)
        if job_id is not None:
            self.remove(job_id)
        return job_id

    # -- internals --------------------------------------------------------------------------

    def _tiers_of(self, host: str | None, required: bool, *,
                  create: bool) -> Iterator[_Tier]:
        if host is not None and required:
            yield self._tier(self._required, host, create)
            return
        if host is not None:
            yield self._tier(self._preferred, host, create)
        yield self._general

    @staticmethod
    def _tier(tiers: dict[str, _Tier], host: str, create: bool) -> _Tier:
        tier = tiers.get(host)
        if tier is None:
            tier = _Tier()
            if create:
                tiers[host] = tier
        return tier

    def _valid(self, job_id: int, token: int) -> bool:
        item = self._live.get(job_id)
        return item is not None and item[0] == token

    def _peek(self, tier: _Tier) -> int | None:
        heap = tier.heap
        while heap:
            _, job_id, token = heap[0]
            if self._valid(job_id, token):
                return job_id
            heapq.heappop(heap)
        return None

    def _maybe_compact(self, tier: _Tier) -> None:
        if len(tier.heap) > 2 * tier.live + _COMPACT_SLACK:
            tier.heap = [e for e in tier.heap if self._valid(e[1], e[2])]
            heapq.heapify(tier.heap)


class FreeHosts:
    """Hosts with at least one free slot, in round-robin order (O(1) per operation)."""

    def __init__(self) -> None:
        self._hosts: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, host: str) -> bool:
        return host in self._hosts

    def __len__(self) -> int:
        return len(self._hosts)

    def add(self, host: str) -> None:
        self._hosts[host] = None

    def discard(self, host: str) -> None:
        self._hosts.pop(host, None)

    def rotate(self, host: str) -> None:
        """Move a host that just took a job to the back, so the next job goes elsewhere."""
        if host in self._hosts:
            self._hosts.move_to_end(host)

    def pick(self, placement: Placement, avoid: str | None = None) -> str | None:
        """A free host the job may run on: its required or preferred host, else any, but
        not `avoid` (a retry's lost host) when another is free."""
        if placement.host is not None:
            if placement.host in self._hosts:
                return placement.host
            if placement.required:
                return None
        hosts = iter(self._hosts)
        first = next(hosts, None)
        if first is not None and first == avoid:
            return next(hosts, first)
        return first


class TimerHeap:
    """Deadlines by key, earliest first; re-pushing a key replaces it, cancel is lazy."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, tuple[float, int]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def push(self, due: float, key: Hashable) -> None:
        seq = next(self._seq)
        self._live[key] = (due, seq)
        heapq.heappush(self._heap, (due, seq, key))
        if len(self._heap) > 2 * len(self._live) + _COMPACT_SLACK:
            self._heap = [(d, s, k) for d, s, k in self._heap if self._live.get(k) == (d, s)]
            heapq.heapify(self._heap)

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def next_due(self) -> float | None:
        while self._heap:
            due, seq, key = self._heap[0]
            if self._live.get(key) == (due, seq):
                return due
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[Hashable]:
        """Remove and return the keys due at or before `now`, earliest first (at most
        `limit` of them; the rest stay due)."""
        due_keys: list[Hashable] = []
        while limit is None or len(due_keys) < limit:
            due = self.next_due()
            if due is None or due > now:
                return due_keys
            _, _, key = heapq.heappop(self._heap)
            del self._live[key]
            due_keys.append(key)
        return due_keys
