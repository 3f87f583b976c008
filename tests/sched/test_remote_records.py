"""psched.scheduler.remote: records of one controller job met twice (an event and the adoption
list): the one further on wins, over the other, so that a short event record (`subscribe
-brief`) keeps what the whole one said of the job's submission."""

from __future__ import annotations

from psched.scheduler.remote import _later

WHOLE_BUSY = {"id": 7, "submitted": 1.0, "state": "BUSY", "argv": ["make"], "host": "h1", "env": {"K": "V"},
              "task": "build", "pid": 11, "ran_on": "h1", "attempts": []}
BRIEF_DONE = {"id": 7, "submitted": 1.0, "state": "DONE", "task": "build", "pid": 11, "ran_on": "h1",
              "outcome": "EXIT", "status": 0}
BRIEF_RETRY = {"id": 7, "submitted": 1.0, "state": "BUSY", "task": "build", "pid": None, "ran_on": "h2",
               "attempts": [{"host": "h1"}]}


def test_the_later_short_record_keeps_the_whole_ones_submission():
    for a, b in ((WHOLE_BUSY, BRIEF_DONE), (BRIEF_DONE, WHOLE_BUSY)):
        merged = _later(a, b)
        assert merged["state"] == "DONE" and merged["outcome"] == "EXIT"
        assert (merged["argv"], merged["host"], merged["env"]) == (["make"], "h1", {"K": "V"})


def test_a_retry_is_further_on_and_its_own_fields_win():
    merged = _later(WHOLE_BUSY, BRIEF_RETRY)
    assert (merged["ran_on"], merged["pid"], merged["attempts"]) == ("h2", None, [{"host": "h1"}])
    assert merged["argv"] == ["make"]


def test_two_whole_records_give_the_later_one():
    done = dict(WHOLE_BUSY, state="DONE", outcome="EXIT")
    assert _later(WHOLE_BUSY, done) == done and _later(done, WHOLE_BUSY) == done
