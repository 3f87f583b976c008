"""A harvested job kept for the retention in its compact form (model.RetainedJob): every field
and record as its Job's, through the commands (`check job`, `jobs`, `stdout`) as before its
harvest, after a restart, and forgotten at the end of the retention."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pcontrol import verbs
from pcontrol.controller import Controller, JobSpec
from pcontrol.journal import Journal
from pcontrol.model import _OWN, _SHARED, Job, JobState, Outcome, RetainedJob, Sharing
from pcontrol.outcome import exited
from pcontrol_harness import make_config, poll, run

JOB_FIELDS = [f.name for f in dataclasses.fields(Job)]


class Session:
    """Just enough of a connection for a handler."""

    def __init__(self, controller: Controller):
        self.controller = controller


def test_each_field_of_a_job_is_kept_one_way() -> None:
    slots = set(RetainedJob.__slots__) - {"_shared", "_own", "_env", "_numbers"}
    numbers = {"submitted", "started", "ended", "elapsed", "pid"}
    constant = {"state", "unknown_since", "delete_requested"}
    ways = [set(_SHARED), set(_OWN), slots, numbers, constant, {"env"}]
    assert sum(map(len, ways)) == len(JOB_FIELDS) and set().union(*ways) == set(JOB_FIELDS)


words = st.sampled_from(["", "a", "sched-1", "x y", "é"])
maybe_words = st.none() | words
maybe_times = st.none() | st.floats(-1, 2e9, allow_nan=False) | st.just(float("nan")) | st.integers(0, 9)
small = st.integers(-3, 300)
jobs = st.builds(
    Job, id=st.integers(1, 10**9), argv=st.lists(words, min_size=1, max_size=3).map(tuple),
    submitted=st.floats(0, 2e9, allow_nan=False) | st.integers(0, 9), host=maybe_words, required=st.booleans(),
    timeout=st.none() | st.floats(0, 1e6) | st.integers(0, 9), pending_timeout=st.none() | st.floats(0, 9) | st.integers(0, 9),
    priority=small, cwd=maybe_words, env=st.dictionaries(words, words, max_size=3), owner=maybe_words,
    task=maybe_words, output_limit=small, spool=st.booleans(), spooled=st.booleans(), mail=st.booleans(),
    inbox=st.lists(words, max_size=2).map(tuple), outbox=st.lists(words, max_size=2).map(tuple),
    state=st.just(JobState.DONE), outcome=st.none() | st.sampled_from(list(Outcome)),
    status=st.none() | small, signal=st.none() | small, ran_on=maybe_words, pid=st.none() | small | st.just(-2 ** 63) | st.just(2 ** 63),
    started=maybe_times, ended=maybe_times, elapsed=maybe_times, reason=words, stdout=words,
    stderr=words, stdout_bytes=small, stderr_bytes=small, stdout_truncated=st.booleans(),
    stderr_truncated=st.booleans(), harvested=st.floats(0, 2e9, allow_nan=False),
    kill_requested=st.booleans(), retry=small, retries_left=small,
    attempts=st.lists(st.dictionaries(words, words, max_size=2), max_size=2).map(tuple),
    avoid=maybe_words, queued=maybe_times, batch_id=maybe_words, noskew=st.booleans(),
    not_before=maybe_times)


def same(job: Job, retained: RetainedJob) -> None:
    for name in JOB_FIELDS:
        mine, kept = getattr(job, name), getattr(retained, name)
        assert (kept, type(kept)) == (mine, type(mine)), name
    for output in (False, True):
        assert retained.to_record(output=output) == job.to_record(output=output)
        assert retained.to_brief(output=output) == job.to_brief(output=output)
    assert retained.to_row() == job.to_row()
    assert repr((retained.agent_word, retained.pending_deadline)) == repr((job.agent_word, job.pending_deadline))


@settings(max_examples=300, deadline=None)
@given(st.lists(jobs, min_size=1, max_size=6), st.randoms())
def test_a_retained_job_reads_as_its_job(batch: list[Job], random: Any) -> None:
    """Whatever its fields, and whatever the jobs before it shared (5 and 5.0 are equal, but
    not the same in a record)."""
    sharing = Sharing()
    twins = [dataclasses.replace(job, env=dict(job.env)) for job in batch]
    for twin in twins[:]:
        changed = dataclasses.replace(twin, env=dict(twin.env))
        name = random.choice(JOB_FIELDS[:-1])
        if name not in ("state", "unknown_since", "delete_requested", "harvested", "id"):
            setattr(changed, name, getattr(random.choice(twins), name))
        twins.append(changed)
    for job in batch + twins:
        assert RetainedJob.keeps(job)
        same(job, RetainedJob.of(job, sharing))


def test_equal_limits_of_another_type_are_not_shared() -> None:
    sharing = Sharing()
    base = Job(id=1, argv=("true",), submitted=1.0, state=JobState.DONE, harvested=2.0, timeout=5,
               pending_timeout=1.0, env={"A": "1"})
    for changes in ({}, {"timeout": 5.0}, {"pending_timeout": 1}, {"timeout": 5.0, "pending_timeout": 1}):
        job = dataclasses.replace(base, **changes)
        same(job, RetainedJob.of(job, sharing))


def test_only_a_harvested_finished_job_is_retained() -> None:
    job = Job(id=1, argv=("true",), submitted=1.0, state=JobState.DONE)
    assert not RetainedJob.keeps(job)
    job.harvested = 2.0
    assert RetainedJob.keeps(job)
    for name, value in (("state", JobState.BUSY), ("unknown_since", 3.0), ("delete_requested", True)):
        assert not RetainedJob.keeps(dataclasses.replace(job, **{name: value}))


def _ended(controller: Controller, number: int, *, owner: str = "me", stdout: str = "") -> Job:
    """A job as an agent's start and end leave it."""
    job = controller.submit(JobSpec(argv=["echo", str(number)], owner=owner, task="t",
                                    env={"PSCHED_SUBMIT": f"s:{number}"}))
    controller._index.remove(job.id)
    controller._set_state(job, JobState.BUSY)
    job.ran_on, job.pid, job.started = "h1", 1000 + number, 1_800_000_000.0 + number
    job.elapsed, job.stdout, job.stdout_bytes = 0.5, stdout, len(stdout)
    controller._finish(job, Outcome.EXIT, reason=exited(0), status=0)
    return job


COMMANDS = [["check", "job", "{id}", "-output", "-json"], ["check", "job", "{id}"], ["stdout", "{id}"],
            ["stderr", "{id}"], ["jobs"], ["jobs", "-json"], ["jobs", "-owner", "me", "-json"],
            ["jobs", "-state", "DONE", "-limit", "2", "-after", "1"], ["jobs", "-host", "h1", "-json"],
            ["jobs", "-owner", "me", "-state", "PENDING", "-json"]]


async def _said(controller: Controller, job_id: int) -> list[tuple[str, Any]]:
    said = []
    for words in COMMANDS:
        result = await verbs.TABLE.run(Session(controller), [w.format(id=job_id) for w in words])
        said.append((result.text, result.data))
    return said


def test_the_commands_show_a_retained_job_as_its_job() -> None:
    async def body() -> None:
        controller = Controller(None, make_config())
        await controller.start(watch_loop=False)
        jobs = [_ended(controller, number, stdout="out\n" * number) for number in range(1, 4)]
        pending = controller.submit(JobSpec(argv=["true"], owner="me"))
        controller.harvest([str(job.id) for job in jobs], owner="me")
        assert all(type(controller.jobs[job.id]) is RetainedJob for job in jobs)
        assert all(type(controller.jobs[job.id]._numbers) is bytes for job in jobs)   # (packed)
        retained = await _said(controller, jobs[1].id)
        for job in jobs:                                       # the harvested jobs as they were
            controller.jobs[job.id] = job
        assert retained == await _said(controller, jobs[1].id)
        await controller.stop()
    run(body())


def test_a_retained_job_is_deleted_and_forgotten_as_before() -> None:
    async def body() -> None:
        controller = Controller(None, make_config(retention=0.0))
        await controller.start(watch_loop=False)
        kept, deleted = _ended(controller, 1), _ended(controller, 2)
        controller.harvest([str(kept.id), str(deleted.id)], owner="me")
        assert controller.delete(str(deleted.id), owner="me") == f"job {deleted.id} deleted"
        await poll(lambda: not controller.jobs, "the retention's end")
        assert controller.status()["jobs"]["DONE"] == 0 and not controller._forgets
        assert controller.harvest([str(kept.id)], owner="me")[0]["known"] is False
        await controller.stop()
    run(body())


def test_a_stale_forget_leaves_a_new_job_of_the_same_id() -> None:
    """A job deleted in its retention, its id given again (a pool's -id): the first harvest's
    end forgets nothing; the second's forgets it."""
    async def body() -> None:
        wall = [1_800_000_000.0]
        controller = Controller(None, make_config(retention=0.0), clock=lambda: wall[0])
        await controller.start(watch_loop=False)
        first = _ended(controller, 1)
        controller.harvest([str(first.id)], owner="me")
        controller.delete(str(first.id), owner="me")
        wall[0] += 1.0
        again = controller.submit(JobSpec(argv=["true"], owner="me", id=first.id))
        controller._index.remove(again.id)
        controller._finish(again, Outcome.KILLED, reason="test")
        controller._forgets.push(float("inf"), again.id, wall[0])   # (held back: the stale one goes first)
        controller.harvest([str(again.id)], owner="me")
        await poll(lambda: len(controller._forgets) == 2, "the stale forget")
        assert controller.jobs[again.id].harvested == wall[0]
        await controller.stop()
    run(body())


def test_a_restart_keeps_retained_jobs_and_forgets_them_in_time(home: str) -> None:
    async def body() -> None:
        path = os.path.join(home, "j.db")
        journal = Journal(path)
        controller = Controller(journal, make_config(retention=3600.0))
        await controller.start(watch_loop=False)
        jobs = [_ended(controller, number, stdout="x") for number in range(1, 4)]
        controller.harvest([str(job.id) for job in jobs[:2]], owner="me")
        records = {job.id: job.to_record(output=True) for job in jobs}
        await controller.stop()
        journal.close()

        journal = Journal(path)
        again = Controller(journal, make_config(retention=3600.0))
        await again.start(watch_loop=False)
        assert [type(again.jobs[job.id]) for job in jobs] == [RetainedJob, RetainedJob, Job]
        assert {job.id: again.jobs[job.id].to_record(output=True) for job in jobs} == records
        assert len(again._forgets) == 2 and again._by_owner["me"] == {job.id for job in jobs}
        await again.stop()
        journal.close()

        journal = Journal(path)
        later = Controller(journal, make_config(retention=0.0))   # its retention is over
        await later.start(watch_loop=False)
        await poll(lambda: list(later.jobs) == [jobs[2].id], "the harvested jobs forgotten")
        await later.stop()
        journal.close()
    run(body())
