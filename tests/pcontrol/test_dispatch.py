"""Dispatch indexes: which pending job a free slot takes; pure, no clock. And their heaps,
whose compaction is spread over the operations (no one operation examines more than a
step of entries, whatever the heap's size)."""

from __future__ import annotations

import random

import pytest

from pcontrol.dispatch import (COMPACT_SLACK, COMPACT_STEP, TOP_CLEANING, DispatchIndex,
                               ForgetQueue, FreeHosts, LazyHeap, Placement, TimerHeap)


def order_for(host: str, placements: list[Placement]) -> list[int]:
    index = DispatchIndex()
    for placement in placements:
        index.add(placement)
    taken = []
    while (job_id := index.pop_best_for(host)) is not None:
        taken.append(job_id)
    return taken


@pytest.mark.parametrize("placements, host, expected", [
    # priority first, then age (id)
    ([Placement(1, 0), Placement(2, 5), Placement(3, 5), Placement(4, -1)], "a", [2, 3, 1, 4]),
    # required here beats preferred here beats anything else, whatever the priority
    ([Placement(1, 9), Placement(2, 0, "a"), Placement(3, 0, "a", True)], "a", [3, 2, 1]),
    # required elsewhere is never taken; preferred elsewhere is
    ([Placement(1, 0, "b", True), Placement(2, 0, "b"), Placement(3, 1)], "a", [3, 2]),
    # within the preferred tier, priority then age
    ([Placement(5, 0, "a"), Placement(6, 3, "a"), Placement(7, 3, "a")], "a", [6, 7, 5]),
])
def test_order(placements: list[Placement], host: str, expected: list[int]) -> None:
    assert order_for(host, placements) == expected


def test_removed_jobs_are_skipped_everywhere() -> None:
    index = DispatchIndex()
    index.add(Placement(1, 0, "a"))
    index.add(Placement(2, 0))
    assert index.remove(1) is True
    assert index.remove(1) is False
    assert index.pop_best_for("a") == 2
    assert index.pop_best_for("a") is None and len(index) == 0


def test_a_preferred_job_taken_by_another_host_leaves_its_preferred_heap() -> None:
    index = DispatchIndex()
    index.add(Placement(1, 0, "a"))
    assert index.pop_best_for("b") == 1       # via the general tier
    assert index.pop_best_for("a") is None    # its entry in a's tier is stale


def test_readding_a_job_does_not_revive_stale_entries() -> None:
    index = DispatchIndex()
    index.add(Placement(1, 0, "a"))
    index.remove(1)
    index.add(Placement(1, 0))
    assert index.pop_best_for("a") == 1
    assert index.pop_best_for("a") is None


def test_required_on_lists_only_live_jobs() -> None:
    index = DispatchIndex()
    for job_id in (1, 2, 3):
        index.add(Placement(job_id, 0, "a", True))
    index.remove(2)
    assert index.required_on("a") == [1, 3] and index.required_on("b") == []


def test_stale_entries_are_compacted() -> None:
    index = DispatchIndex()
    for job_id in range(10_000):
        index.add(Placement(job_id, 0, "a"))
        assert index.pop_best_for("b") == job_id      # leaves a stale entry in a's heap
    assert len(index._preferred[("a", False)].heap) < 200


def test_random_against_a_sort() -> None:
    rng = random.Random(4)
    placements = []
    for job_id in range(500):
        host = rng.choice([None, "a", "b"])
        placements.append(Placement(job_id, rng.randint(-2, 2), host,
                                    host is not None and rng.random() < 0.3))

    def rank(p: Placement) -> tuple[int, int, int]:
        tier = 0 if p.required and p.host == "a" else 1 if p.host == "a" else 2
        return (tier, -p.priority, p.job_id)

    expected = [p.job_id for p in sorted(placements, key=rank)
                if not (p.required and p.host != "a")]
    assert order_for("a", placements) == expected


def test_free_hosts_pick_and_rotate() -> None:
    free = FreeHosts()
    for name in ("a", "b", "c"):
        free.add(name)
    assert free.pick(Placement(1, 0)) == "a"
    free.rotate("a")
    assert free.pick(Placement(2, 0)) == "b"
    assert free.pick(Placement(3, 0, "c")) == "c"           # preferred and free
    assert free.pick(Placement(4, 0, "z")) == "b"           # preferred but not free: any
    assert free.pick(Placement(5, 0, "z", True)) is None    # required and not free: none
    free.discard("b")
    free.discard("c")
    free.discard("a")
    assert free.pick(Placement(6, 0)) is None


NOSKEW = [Placement(1, 0, noskew=True), Placement(2, 5), Placement(3, 5, noskew=True),
          Placement(4, 0, "a", noskew=True), Placement(5, 0, "a", True, noskew=True), Placement(6, -1, "a")]


def test_noskew_jobs_keep_the_order_on_a_host_in_line_and_are_passed_over_on_a_skewed_one() -> None:
    # in line: tiers, then priority, then age, across -noskew jobs and others alike
    assert order_for("a", NOSKEW) == [5, 4, 6, 2, 3, 1]
    index = DispatchIndex()
    for placement in NOSKEW:
        index.add(placement)
    taken = []
    while (job_id := index.pop_best_for("a", skewed=True)) is not None:
        taken.append(job_id)
    assert taken == [6, 2]                                  # only the jobs that allow skew
    assert index.required_on("a") == [5]                    # the rest still wait
    assert order_for_index(index, "a") == [5, 4, 3, 1]


def order_for_index(index: DispatchIndex, host: str) -> list[int]:
    taken = []
    while (job_id := index.pop_best_for(host)) is not None:
        taken.append(job_id)
    return taken


def test_free_hosts_pick_passes_over_skewed_hosts_for_noskew_jobs_only() -> None:
    free = FreeHosts()
    for name in ("a", "b"):
        free.add(name)
    skewed = {"a"}
    assert free.pick(Placement(1, 0), skewed=skewed) == "a"
    assert free.pick(Placement(2, 0, noskew=True), skewed=skewed) == "b"
    assert free.pick(Placement(3, 0, "a", noskew=True), skewed=skewed) == "b"       # preferred: elsewhere
    assert free.pick(Placement(4, 0, "a", True, noskew=True), skewed=skewed) is None  # required: waits
    assert free.pick(Placement(5, 0, noskew=True), avoid="b", skewed=skewed) == "b"  # the only one left
    free.discard("b")
    assert free.pick(Placement(6, 0, noskew=True), skewed=skewed) is None


def test_timer_heap() -> None:
    timers = TimerHeap()
    timers.push(5.0, "late")
    timers.push(1.0, "early")
    timers.push(3.0, "middle")
    timers.cancel("middle")
    timers.push(2.0, "late")          # re-push moves it
    assert timers.next_due() == 1.0
    assert timers.pop_due(0.5) == []
    assert timers.pop_due(4.0) == ["early", "late"]
    assert timers.next_due() is None and len(timers) == 0


# -- LazyHeap: compaction a step at a time -------------------------------------------------

class CountingHeap:
    """A LazyHeap over ints whose liveness is a set, counting the entries it examines."""

    def __init__(self) -> None:
        self.live: set[int] = set()
        self.looks = 0
        self.heap = LazyHeap(self._is_live)

    def _is_live(self, entry: int) -> bool:
        self.looks += 1
        return entry in self.live

    def push(self, entry: int) -> int:
        self.looks = 0
        self.live.add(entry)
        self.heap.push(entry)
        return self.looks

    def discard(self, entry: int) -> int:
        self.looks = 0
        self.live.discard(entry)
        self.heap.discarded()
        return self.looks


def test_no_heap_operation_examines_more_than_a_step() -> None:
    heap = CountingHeap()
    for entry in range(20_000):
        assert heap.push(entry) <= COMPACT_STEP + TOP_CLEANING
    looks = [heap.discard(entry) for entry in range(1, 20_000, 3)]      # from the middle
    looks += [heap.discard(entry) for entry in range(0, 20_000, 3)]     # from the top
    assert max(looks) <= COMPACT_STEP + TOP_CLEANING
    assert heap.heap.live == len(heap.live)
    # Compaction kept up: stale entries stay within the slack of the live ones.
    assert len(heap.heap) <= 2 * heap.heap.live + COMPACT_SLACK + COMPACT_STEP
    assert heap.heap.peek() == min(heap.live)


def test_a_compaction_in_progress_serves_the_smallest_live_entry() -> None:
    rng = random.Random(7)
    heap = CountingHeap()
    alive: list[int] = []
    for _ in range(20_000):
        if alive and rng.random() < 0.45:
            if rng.random() < 0.5:                  # the oldest, or any
                entry = heap.heap.peek()
                alive.remove(entry)
            else:
                entry = alive.pop(rng.randrange(len(alive)))
            heap.discard(entry)
        else:
            entry = rng.randrange(1_000_000_000)
            alive.append(entry)
            heap.push(entry)
        if rng.random() < 0.1:
            assert heap.heap.peek() == (min(heap.live) if heap.live else None)
    assert heap.live <= set(heap.heap.entries())     # nothing live was lost
    while heap.live:
        top = heap.heap.peek()
        assert top == min(heap.live)
        heap.heap.pop()
        heap.live.discard(top)
    assert heap.heap.peek() is None and heap.heap.live == 0


def test_the_oldest_jobs_removed_leave_no_pile_on_top() -> None:
    index = DispatchIndex()
    for job_id in range(10_000):
        index.add(Placement(job_id, 0))
    for job_id in range(5_000):                  # e.g. their pending timeouts fired
        index.remove(job_id)
    assert len(index._general[(None, False)].heap) <= 5_000 + TOP_CLEANING
    assert index.best_for("a") == 5_000


def test_timer_heap_compacts_a_step_at_a_time() -> None:
    timers = TimerHeap()
    for number in range(5_000):
        timers.push(float(number), ("pending", number))
    for number in range(0, 5_000, 2):
        timers.cancel(("pending", number))
    assert len(timers) == 2_500 and len(timers._heap) <= 2 * 2_500 + COMPACT_SLACK
    assert timers.pop_due(10.0) == [("pending", n) for n in range(1, 11, 2)]
    timers.push(0.5, ("pending", 11))                 # re-pushed: earlier now
    assert timers.next_due() == 0.5 and len(timers) == 2_495


# -- ForgetQueue: the retention of harvested jobs ------------------------------------------

def test_forget_queue_pops_in_order_at_most_limit() -> None:
    queue = ForgetQueue()
    assert queue.next_due() is None and queue.pop_due(10.0, 5) == []
    for number in range(1, 6):
        queue.push(float(number), number, 100.0 + number)
    assert queue.next_due() == 1.0 and len(queue) == 5
    assert queue.pop_due(0.5, 10) == []
    assert queue.pop_due(3.0, 2) == [(1, 101.0), (2, 102.0)]      # the limit
    assert queue.pop_due(3.0, 10) == [(3, 103.0)]                 # and `now`
    assert queue.next_due() == 4.0 and len(queue) == 2


def test_forget_queue_takes_an_earlier_due_as_the_last() -> None:
    queue = ForgetQueue()
    queue.push(5.0, 1, 1.0)
    queue.push(2.0, 2, 2.0)           # (a load's clock went back): never ahead of job 1
    assert queue.pop_due(4.0, 10) == []
    assert queue.pop_due(5.0, 10) == [(1, 1.0), (2, 2.0)]


def test_forget_queue_compacts_and_keeps_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ForgetQueue, "COMPACT", 4)
    queue = ForgetQueue()
    popped: list[int] = []
    for number in range(100):
        queue.push(float(number), number, 0.0)
        if number % 3 == 2:
            popped += [job_id for job_id, _ in queue.pop_due(float(number), 2)]
        assert len(queue._ids) - queue._head == len(queue) and len(queue._ids) <= 4 + 2 * len(queue) + 2
    popped += [job_id for job_id, _ in queue.pop_due(1000.0, 1000)]
    assert popped == list(range(100)) and len(queue) == 0
