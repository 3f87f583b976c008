"""The page's copy of the job table (pweb.mirror): its indexed pages agree with a plain scan
(JobFilter.matches) whatever the jobs went through, its tallies with a recount, and finished
jobs are forgotten past `keep`. Pure data, `now` handed in."""

from __future__ import annotations

import collections

from hypothesis import given, settings, strategies as st

from pweb.mirror import JobFilter, JobMirror, outcome_key, row

NOW = 1_800_000_000.0
OUTCOMES = [("EXIT", 0), ("EXIT", 1), ("CRASH", None), ("TIMEOUT", None), ("KILLED", None)]

changes = st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["PENDING", "BUSY", "DONE"]),
                             st.sampled_from(["a", "b", None]), st.sampled_from(["h1", "h2"]),
                             st.sampled_from(OUTCOMES), st.integers(0, 300)), max_size=120)
filters = st.builds(JobFilter, task=st.sampled_from([None, "a", "b"]),
                    host=st.sampled_from([None, "h1", "h2"]),
                    outcome=st.sampled_from([None, "OK", "FAILED", "EXIT", "CRASH", "KILLED"]),
                    state=st.sampled_from([None, "PENDING", "BUSY", "DONE"]))


def record(job_id, state, task, host, outcome, ago):
    done = state == "DONE"
    return {"id": job_id, "argv": ["true"], "state": state, "task": task, "host": None,
            "ran_on": host if state != "PENDING" else None,
            "outcome": outcome[0] if done else None, "status": outcome[1] if done else None,
            "submitted": NOW - ago - 1, "started": None, "ended": NOW - ago if done else None,
            "elapsed": 0.5 if done else None}


@settings(max_examples=150)
@given(changes, filters, st.integers(0, 30), st.integers(1, 25))
def test_an_indexed_page_is_the_page_of_a_plain_scan(steps, where, offset, limit):
    mirror = JobMirror()
    for step in steps:
        mirror.take_job(record(*step), NOW)
    expected = [row(mirror.jobs[i]) for i in sorted(mirror.jobs, reverse=True)
                if where.matches(mirror.jobs[i])]
    page = mirror.page(where, offset, limit)
    assert page.total == len(expected)
    assert page.rows == expected[offset:offset + limit]
    counts = mirror.counts()
    assert counts["states"] == dict(collections.Counter(r["state"] for r in mirror.jobs.values()))
    assert counts["outcomes"] == dict(collections.Counter(
        outcome_key(r) for r in mirror.jobs.values() if r["outcome"]))
    plot = mirror.finished_per_minute(NOW, 1)      # every job here ended in the last 5 min
    assert sum(map(sum, plot["series"].values())) == counts["states"].get("DONE", 0)


def test_finished_jobs_past_keep_are_forgotten_oldest_first():
    mirror = JobMirror(keep=3)
    for job_id in range(1, 6):
        mirror.take_job(record(job_id, "DONE", "a", "h1", ("EXIT", 0), 10 - job_id), NOW)
    mirror.take_job(record(6, "PENDING", "a", None, ("EXIT", 0), 0), NOW)
    assert sorted(mirror.jobs) == [3, 4, 5, 6]
    assert mirror.page(JobFilter(task="a")).total == 4
    assert mirror.counts()["outcomes"] == {"OK": 3}
