"""Dispatch indexes: which pending job a free slot takes; pure, no clock."""

from __future__ import annotations

import random

import pytest

from pcontrol.dispatch import DispatchIndex, FreeHosts, Placement, TimerHeap


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
    assert len(index._preferred["a"].heap) < 200


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
