"""Dispatch bookkeeping: which pending job a free slot takes, which host a new job goes to,
and when pending timeouts fire. Pure data structures; no clock, no I/O.

Order for a free slot on host H: jobs that require H, then jobs that prefer H, then every
other job that may run anywhere; within each tier higher priority first, then older first
(lower id). Each tier is a heap, so a decision costs O(log n) whatever the number of hosts
or pending jobs. A job that prefers H sits in two heaps (H's and the general one); removal
is lazy (a generation token per job), and a heap that fills up with stale entries is
compacted, which keeps memory proportional to the live jobs.

A job submitted with -noskew never goes to a SKEWED host (skew.py): its entries sit in heaps of
their own (keyed by the flag too), which a free slot on a SKEWED host does not look at; on any
other host the better top of the two heaps of a tier wins, so the order above holds across both.

Compaction is itself spread out (LazyHeap): a one-go rebuild of a heap of 100,000 entries
held the loop for 20-30 ms; instead each later operation on the heap moves COMPACT_STEP
entries from the old heap to a fresh one, so no operation costs more than
O(COMPACT_STEP log n). The pending-time and other per-job timers (TimerHeap) use the same heap;
the retention of harvested jobs, one delay for all, is a queue (ForgetQueue).
"""

from __future__ import annotations

import array
import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable, Iterator
from typing import Any, NamedTuple

#: Stale entries a heap may hold beyond as many as it has live ones before compaction.
COMPACT_SLACK = 64
#: Entries a compaction moves per operation on the heap (~5 us each on 100,000 entries).
COMPACT_STEP = 64
#: Stale entries on top dropped per discard.
TOP_CLEANING = 2


class Placement(NamedTuple):
    """How a pending job may be placed."""

    job_id: int
    priority: int
    host: str | None = None
    required: bool = False
    noskew: bool = False     # -noskew: never on a SKEWED host


class LazyHeap:
    """A heap whose entries go stale instead of being removed; compacted step by step.

    `is_live(entry)` tells whether an entry still counts. The owner reports each entry
    that went stale (`discarded`); `peek` drops stale entries found on top. Once stale
    entries outnumber live ones by COMPACT_SLACK, a compaction starts: the heap becomes
    the old heap and a fresh one takes the pushes; each later push or discard moves
    COMPACT_STEP entries, smallest first, from the old heap to the fresh one, dropping
    the stale ones, until the old heap is empty. Both stay valid heaps throughout, so
    `peek` and `pop` serve the smaller of their tops meanwhile.
    """

    __slots__ = ("heap", "live", "_is_live", "_old")

    def __init__(self, is_live: Callable[[Any], bool]) -> None:
        self.heap: list = []
        self.live = 0
        self._is_live = is_live
        self._old: list | None = None

    def __len__(self) -> int:
        """Entries held, stale ones included."""
        return len(self.heap) + len(self._old or ())

    @property
    def compacting(self) -> bool:
        return self._old is not None

    def entries(self) -> Iterator[Any]:
        """Every entry held, stale ones included, in no order."""
        yield from self.heap
        yield from self._old or ()

    def push(self, entry: Any) -> None:
        heapq.heappush(self.heap, entry)
        self.live += 1
        self._step()

    def discarded(self) -> None:
        """One live entry has gone stale. Up to TOP_CLEANING stale entries on top are
        dropped at once: the oldest jobs often go first (killed, timed out), and left
        there they would pile up for one `peek` to drop all together."""
        self.live -= 1
        heap, is_live = self.heap, self._is_live
        for _ in range(TOP_CLEANING):
            if not heap or is_live(heap[0]):
                break
            heapq.heappop(heap)
        self._step()

    def peek(self) -> Any:
        """The smallest live entry, or None; stale entries on top are dropped."""
        top = self._top(self.heap)
        if self._old is not None:
            old_top = self._top(self._old)
            if old_top is not None and (top is None or old_top < top):
                return old_top
        return top

    def pop(self) -> Any:
        """Remove the smallest entry, which `peek` has just returned (live: it counts)."""
        self.live -= 1
        old = self._old
        if old and (not self.heap or old[0] < self.heap[0]):
            return heapq.heappop(old)
        return heapq.heappop(self.heap)

    def _top(self, heap: list) -> Any:
        while heap:
            if self._is_live(heap[0]):
                return heap[0]
            heapq.heappop(heap)
        return None

    def _step(self) -> None:
        old = self._old
        if old is None:
            if len(self.heap) <= 2 * self.live + COMPACT_SLACK:
                return
            old = self._old = self.heap
            self.heap = []
        fresh, is_live = self.heap, self._is_live
        for _ in range(min(COMPACT_STEP, len(old))):
            entry = heapq.heappop(old)
            if is_live(entry):
                heapq.heappush(fresh, entry)
        if not old:
            self._old = None


class DispatchIndex:
    """The pending jobs, indexed for dispatch."""

    def __init__(self) -> None:
        self._tokens = itertools.count(1)
        # job id -> (token, host, required, noskew): a plain tuple of plain values, which the
        # garbage collector stops tracking (a Placement, a subclass, it would keep visiting)
        self._live: dict[int, tuple[int, str | None, bool, bool]] = {}
        # tiers by (host, noskew); the general tiers by (None, noskew)
        self._required: dict[tuple[str | None, bool], LazyHeap] = {}
        self._preferred: dict[tuple[str | None, bool], LazyHeap] = {}
        self._general: dict[tuple[str | None, bool], LazyHeap] = {
            (None, False): self._new_tier(), (None, True): self._new_tier()}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, job_id: int) -> bool:
        return job_id in self._live

    def add(self, placement: Placement) -> None:
        if placement.job_id in self._live:
            raise ValueError(f"job {placement.job_id} is already pending")
        token = next(self._tokens)
        self._live[placement.job_id] = (token, placement.host, placement.required, placement.noskew)
        entry = (-placement.priority, placement.job_id, token)
        for tier in self._tiers_of(placement.host, placement.required, placement.noskew, create=True):
            tier.push(entry)

    def remove(self, job_id: int) -> bool:
        """Forget a pending job (started, killed, timed out). False if it was not pending."""
        item = self._live.pop(job_id, None)
        if item is None:
            return False
        for tier in self._tiers_of(item[1], item[2], item[3], create=False):
            tier.discarded()
        return True

    def required_on(self, host: str) -> list[int]:
        """The pending jobs that require `host` (for `host delete`)."""
        tiers = (self._required.get((host, False)), self._required.get((host, True)))
        return sorted({job_id for tier in tiers if tier is not None
                       for _, job_id, token in tier.entries() if self._valid(job_id, token)})

    def best_for(self, host: str, skewed: bool = False) -> int | None:
        """The id of the best pending job for a free slot on `host`, without removing it
        (a SKEWED host: none of the -noskew jobs)."""
        kinds = (False,) if skewed else (False, True)
        for tiers, key in ((self._required, host), (self._preferred, host), (self._general, None)):
            best = None
            for noskew in kinds:
                tier = tiers.get((key, noskew))
                entry = tier.peek() if tier is not None else None
                if entry is not None and (best is None or entry < best):
                    best = entry
            if best is not None:
                return best[1]
        return None

    def pop_best_for(self, host: str, skewed: bool = False) -> int | None:
        job_id = self.best_for(host, skewed)
        if job_id is not None:
            self.remove(job_id)
        return job_id

    # -- internals --------------------------------------------------------------------------

    def _new_tier(self) -> LazyHeap:
        return LazyHeap(lambda entry: self._valid(entry[1], entry[2]))

    def _tiers_of(self, host: str | None, required: bool, noskew: bool, *,
                  create: bool) -> Iterator[LazyHeap]:
        if host is not None and required:
            yield self._tier(self._required, (host, noskew), create)
            return
        if host is not None:
            yield self._tier(self._preferred, (host, noskew), create)
        yield self._general[(None, noskew)]

    def _tier(self, tiers: dict[tuple[str | None, bool], LazyHeap], key: tuple[str | None, bool],
              create: bool) -> LazyHeap:
        tier = tiers.get(key)
        if tier is None:
            tier = self._new_tier()
            if create:
                tiers[key] = tier
        return tier

    def _valid(self, job_id: int, token: int) -> bool:
        item = self._live.get(job_id)
        return item is not None and item[0] == token

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

    def pick(self, placement: Placement, avoid: str | None = None,
             skewed: Container[str] = ()) -> str | None:
        """A free host the job may run on: its required or preferred host, else any, but
        not `avoid` (a retry's lost host) when another is free, and for a -noskew job none
        of the `skewed` hosts."""
        refused = skewed if placement.noskew else ()
        if placement.host is not None:
            if placement.host in self._hosts and placement.host not in refused:
                return placement.host
            if placement.required:
                return None
        hosts = (name for name in self._hosts if name not in refused)
        first = next(hosts, None)
        if first is not None and first == avoid:
            return next(hosts, first)
        return first


class TimerHeap:
    """Deadlines by key, earliest first; re-pushing a key replaces it, cancel is lazy."""

    def __init__(self) -> None:
        self._live: dict[Hashable, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._heap = LazyHeap(lambda entry: self._live.get(entry[2]) == (entry[0], entry[1]))

    def __len__(self) -> int:
        return len(self._live)

    def push(self, due: float, key: Hashable) -> None:
        seq = next(self._seq)
        replaced = self._live.get(key) is not None
        self._live[key] = (due, seq)
        if replaced:
            self._heap.discarded()            # its earlier deadline has gone stale
        self._heap.push((due, seq, key))

    def cancel(self, key: Hashable) -> None:
        if self._live.pop(key, None) is not None:
            self._heap.discarded()

    def next_due(self) -> float | None:
        entry = self._heap.peek()
        return None if entry is None else entry[0]

    def pop_due(self, now: float, limit: int | None = None) -> list[Hashable]:
        """Remove and return the keys due at or before `now`, earliest first (at most
        `limit` of them; the rest stay due)."""
        due_keys: list[Hashable] = []
        while limit is None or len(due_keys) < limit:
            entry = self._heap.peek()
            if entry is None or entry[0] > now:
                return due_keys
            self._heap.pop()
            del self._live[entry[2]]
            due_keys.append(entry[2])
        return due_keys


class ForgetQueue:
    """Harvested jobs in the order their retention ends: (due, job id, harvest stamp) in three
    arrays, 24 bytes a job where a TimerHeap entry (its key, its deadline, its heap entry) took
    ~270. Every due is a harvest's time plus the same retention, so the pushes come in the
    order of their dues; one earlier than the last (a clock that went back between two loads)
    is taken as the last, so nothing waits behind a later one. There is no cancel: whoever
    pops an entry checks that its job is still there, harvested at `stamp`."""

    #: Popped entries left at the front before the arrays are compacted (when they are also
    #: half of them): a memmove of the rest, so O(1) a pop on average.
    COMPACT = 4096

    def __init__(self) -> None:
        self._dues = array.array("d")
        self._ids = array.array("q")
        self._stamps = array.array("d")
        self._head = 0

    def __len__(self) -> int:
        return len(self._ids) - self._head

    def push(self, due: float, job_id: int, stamp: float) -> None:
        if len(self._dues) > self._head and due < self._dues[-1]:
            due = self._dues[-1]
        self._dues.append(due)
        self._ids.append(job_id)
        self._stamps.append(stamp)

    def next_due(self) -> float | None:
        return self._dues[self._head] if len(self._dues) > self._head else None

    def pop_due(self, now: float, limit: int) -> list[tuple[int, float]]:
        """Remove and return (job id, stamp) of at most `limit` entries due at or before
        `now`, earliest first."""
        head, dues = self._head, self._dues
        stop = min(len(dues), head + limit)
        end = head
        while end < stop and dues[end] <= now:
            end += 1
        popped = list(zip(self._ids[head:end], self._stamps[head:end]))
        self._head = end
        if end >= self.COMPACT and 2 * end >= len(dues):
            for column in (self._dues, self._ids, self._stamps):
                del column[:end]
            self._head = 0
        return popped
