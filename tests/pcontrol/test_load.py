"""Load: status stays fast with many agents and a deep queue; the journal writes a burst in
bounded batches (and tells nothing before it is written); finished jobs are pruned from
memory and from the journal, whose file shrinks again.

The real figures (200 agents, 100,000 jobs) come from bench/bench_scale.py; here the same
path runs smaller, with a bound generous enough for a shared 2-CPU machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import pytest

from pcontrol.client import ControllerClient
from pcontrol.controller import Controller, JobSpec
from pcontrol.journal import VACUUM_MIN_PAGES, Journal
from pcontrol.model import JobState
from pcontrol.wire import Event, EventKind
from pcontrol_harness import LOCAL_AGENT, make_config, poll, run
from waiting import wait_until

AGENTS = 20
JOBS = 20_000
#: What a `status` round trip may take here at worst (the bench holds the real figure).
STATUS_BOUND = 0.5


def pcontrol(home: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pcontrol", "--home", home, *args],
                          capture_output=True, text=True, timeout=120)


async def queue(home: str, count: int, connections: int = 4, in_flight: int = 200) -> None:
    async def submitter(share: int) -> None:
        async with await ControllerClient.connect(home) as client:
            sent = 0
            while sent < share:
                batch = min(in_flight, share - sent)
                replies = await asyncio.gather(*[client.request(["job", "--", "true"])
                                                 for _ in range(batch)])
                assert all(reply.ok for reply in replies), replies[0].text
                sent += batch

    await asyncio.gather(*[submitter(count // connections) for _ in range(connections)])


@pytest.mark.alone  # its bound holds for pcontrol's own load: scripts/test runs it by itself
def test_status_stays_fast_with_agents_and_a_deep_queue(home: str) -> None:
    latencies: list[float] = []

    async def probe(stop: asyncio.Event) -> None:
        async with await ControllerClient.connect(home) as client:
            while not stop.is_set():
                start = time.perf_counter()
                await client.call("status")
                latencies.append(time.perf_counter() - start)
                try:
                    await asyncio.wait_for(stop.wait(), 0.01)
                except asyncio.TimeoutError:
                    pass

    async def body() -> dict[str, Any]:
        async with await ControllerClient.connect(home) as client:
            stop = asyncio.Event()
            prober = asyncio.get_running_loop().create_task(probe(stop))
            await queue(home, JOBS)          # before the agents: the queue really is deep
            for number in range(AGENTS):
                await client.call("host", "add", f"a{number:02d}", "-slots", "1",
                                  "-connect", f"{LOCAL_AGENT} --slots 1")

            async def all_up() -> bool:
                status = await client.call("status")
                return status["hosts"]["IDLE"] + status["hosts"]["BUSY"] == AGENTS

            await wait_until(all_up, f"all {AGENTS} agents are connected", 60.0)
            # Dispatch with the queue deep: wait until another 500 jobs have ended.
            target = (await client.call("status"))["jobs"]["DONE"] + 500
            await wait_until(lambda: _done_at_least(client, target), "500 more jobs ended",
                             60.0)
            status = await client.call("status")
            stop.set()
            await prober
            return status

    started = pcontrol(home, "start")
    assert started.returncode == 0, started.stderr
    try:
        status = asyncio.run(body())
    finally:
        stopped = pcontrol(home, "stop", "-kill", "-force")
    assert stopped.returncode == 0, stopped.stderr
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99)]
    print(f"\nstatus with {AGENTS} agents and {JOBS} jobs: p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms over {len(ordered)} probes; pcontrol loop "
          f"{status['loop']}; memory {status['memory']}")
    assert len(ordered) > 20
    assert p99 < STATUS_BOUND, f"status p99 {p99:.3f} s"
    assert status["totals"] == {"hosts": AGENTS, "connected": AGENTS, "jobs": JOBS}
    assert sum(status["jobs"].values()) == JOBS and status["jobs"]["PENDING"] > 0
    assert status["outcomes"]["EXIT"] == status["jobs"]["DONE"]
    assert status["memory"]["peak"] >= status["memory"]["rss"] > 10 * 1024 * 1024
    assert status["connections"] >= 2           # this client and the prober
    assert status["loop"]["samples"] > 0 and status["loop"]["lag_max_ms"] is not None
    assert status["journal"]["size"] > 0


async def _done_at_least(client: ControllerClient, count: int) -> bool:
    return (await client.call("status"))["jobs"]["DONE"] >= count


class Collector:
    """A subscriber that checks, for each event, that the journal already has the job."""

    owner = None
    interests = None      # every kind of event (the Subscriber protocol's `subscribe -only`)
    brief = False         # whole job records (`subscribe -brief`: short ones)

    def __init__(self, journal: Journal):
        self.journal = journal
        self.events: list[Event] = []
        self.unwritten: list[int] = []

    def send_event(self, event: Event) -> None:
        self.events.append(event)
        if event.kind is EventKind.JOB:
            row = self.journal._db.execute("SELECT state FROM jobs WHERE id = ?",
                                           (event.data["id"],)).fetchone()
            if row is None:
                self.unwritten.append(event.data["id"])


def test_a_burst_is_written_in_bounded_batches_and_told_only_after(home: str) -> None:
    async def body() -> None:
        journal = Journal(os.path.join(home, "j.db"), batch_rows=500)
        controller = Controller(journal, make_config())
        await controller.start()
        collector = Collector(journal)
        controller.subscribe(collector)
        await asyncio.sleep(0)
        commits = journal.commits
        for i in range(JOBS):                       # one loop turn: 20,000 new jobs
            controller.submit(JobSpec(argv=["echo", str(i)]))
        gaps: list[float] = []
        loop = asyncio.get_running_loop()
        last = loop.time()
        deadline = last + 60.0
        # One batch a turn (none while a checkpoint runs); the loop goes on meanwhile.
        while journal.dirty or not controller._outbox.empty:
            await asyncio.sleep(0)
            now = loop.time()
            gaps.append(now - last)
            last = now
            assert now < deadline, "the burst was not written and told within 60 s"
        assert journal.commits - commits == JOBS // 500    # next_job_id only beside a deletion
        assert len(gaps) >= JOBS // 500
        assert max(gaps) < 0.25, f"a loop turn took {max(gaps):.3f} s"
        assert len(collector.events) == JOBS and collector.unwritten == []
        assert journal.row_count() == JOBS
        await controller.stop()
        journal.close()
    run(body())


def test_finished_jobs_are_pruned_from_memory_and_the_journal(home: str) -> None:
    count = 5000

    async def body() -> None:
        path = os.path.join(home, "j.db")
        journal = Journal(path)
        controller = Controller(journal, make_config(retention=0.0))
        await controller.start()
        ids = [controller.submit(JobSpec(argv=["true"], owner="s1")).id
               for _ in range(count)]
        for job_id in ids:                           # no host: they end as KILLED
            controller.kill(job_id, owner="s1")
        journal.flush()
        pages, _ = journal.file_pages()
        size = journal.size()            # the database and its write-ahead log
        assert journal.row_count() == count
        controller.harvest([str(i) for i in ids], owner="s1")
        await poll(lambda: not controller.jobs, "the harvested jobs are forgotten")
        await poll(lambda: not journal.dirty and not journal._vacuum_due,
                   "their rows are deleted and the free pages given back")
        assert journal.row_count() == 0
        remaining, free = journal.file_pages()
        assert free < VACUUM_MIN_PAGES and remaining < pages / 4, (pages, remaining, free)
        status = controller.status()
        assert status["totals"]["jobs"] == 0 and status["jobs"]["DONE"] == 0
        assert controller._by_owner == {}
        # Harvest stays idempotent after the forgetting.
        assert controller.harvest([str(ids[0])], owner="s1")[0]["known"] is False
        await controller.stop()
        journal.close()
        assert os.path.getsize(path) < size / 4     # the file itself shrank
    run(body())


def test_unowned_finished_jobs_expire_and_owned_ones_wait_for_their_harvest(home: str) -> None:
    async def body() -> None:
        journal = Journal(os.path.join(home, "j.db"))
        controller = Controller(journal, make_config(unowned_retention=0.0))
        await controller.start()
        unowned = controller.submit(JobSpec(argv=["true"], host="ghost", required=True))
        owned = controller.submit(JobSpec(argv=["true"], host="ghost", required=True,
                                          owner="s1"))
        assert controller.jobs[unowned.id].state is JobState.DONE
        await poll(lambda: unowned.id not in controller.jobs, "the unowned job expired")
        assert controller.jobs[owned.id].state is JobState.DONE
        await controller.stop()
        journal.close()
        reopened = Journal(os.path.join(home, "j.db"))
        assert [job.id for job in reopened.load().jobs] == [owned.id]
        reopened.close()
    run(body())
