"""The run ledger: a restarted sched goes on with its tasks' job counts (nmax holds), a cleanly
ended run leaves nothing behind, and a torn or foreign line never stops sched."""

import json

from sched_world import FakeBackend, World, task

from psched.scheduler.runledger import LEDGER_NAME, RunLedger


class HomeBackend(FakeBackend):
    """A remote backend with a home, as the controller link has."""

    def __init__(self, home):
        super().__init__()
        self.home = home


def world(home):
    w = World()
    w.remote = w.sched.remote = HomeBackend(home)
    return w


def make_all(w, rounds=10):
    for _ in range(rounds):
        w.step()
        for job in [j for j in w.remote.submitted if not j.done]:
            w.end(job)


def test_ledger_round_trip_last_line_wins_and_torn_lines_are_skipped(tmp_path):
    path = tmp_path / LEDGER_NAME
    ledger = RunLedger(path)
    for made in (1, 2, 3):
        ledger.record("work", made)
    ledger.record("other task", 7)
    ledger.close()
    with open(path, "a") as fh:
        fh.write('[4, "wo')                      # a write torn by a kill
    assert RunLedger(path).load() == {"work": 3, "other task": 7}


def test_compaction_keeps_one_line_per_task(tmp_path, monkeypatch):
    import psched.scheduler.appendlog as appendlog

    monkeypatch.setattr(appendlog, "COMPACT_AT", 200)
    path = tmp_path / LEDGER_NAME
    ledger = RunLedger(path)
    for made in range(1, 101):
        ledger.record("work", made)
    ledger.record("b", 1)
    ledger.close()
    lines = path.read_text().splitlines()
    assert len(lines) < 20
    assert RunLedger(path).load() == {"work": 100, "b": 1}
    assert [json.loads(line) for line in lines][-1] == [1, "b"]


def test_sequence_items_survive_a_reload_compaction_and_drop_with_their_unsent_key(tmp_path, monkeypatch):
    import psched.scheduler.appendlog as appendlog

    path = tmp_path / LEDGER_NAME
    ledger = RunLedger(path)
    ledger.record("jobs", 1, unsent="k1", item="node-a\ta1")
    ledger.sent("k1")
    ledger.record("jobs", 2, unsent="k2", item="node-b\tb1")
    ledger.close()
    again = RunLedger(path)
    assert again.load() == {"jobs": 2} and again.items("jobs") == ["node-a\ta1", "node-b\tb1"]
    again.forget_unsent(held=set())            # b1 never reached the controller: to be made again
    assert again.counts() == {"jobs": 1} and again.items("jobs") == ["node-a\ta1"]
    monkeypatch.setattr(appendlog, "COMPACT_AT", 0)
    again.record("jobs", 2, item="node-a\ta2")  # and the file is rewritten compactly
    again.close()
    third = RunLedger(path)
    assert third.load() == {"jobs": 2} and third.items("jobs") == ["node-a\ta1", "node-a\ta2"]


def test_a_restarted_sched_goes_on_counting_and_nmax_holds(tmp_path):
    first = world(tmp_path)
    first.run(task("work", "nmax 5", "npending 2", "periods -poll 1", host="h1"))
    first.run("run")
    first.step()
    first.end(first.remote.submitted[0])
    first.step()
    assert len(first.remote.submitted) == 3        # 1 ended, 2 out: then sched dies
    second = world(tmp_path)
    second.run(task("work", "nmax 5", "npending 2", "periods -poll 1", host="h1"))
    second.run("run")
    make_all(second)
    assert len(second.remote.submitted) == 2       # 5 in all
    assert any("had made 3 job(s) of nmax 5" in m for m in second.messages), second.messages


def test_adopted_jobs_are_not_counted_twice(tmp_path):
    first = world(tmp_path)
    first.run(task("work", "nmax 4", "npending 2", "periods -poll 1", host="h1"))
    first.run("run")
    first.step()                                   # 2 made, both still out when sched dies
    second = world(tmp_path)
    second.run(task("work", "nmax 4", "npending 2", "periods -poll 1", host="h1"))
    for cid in (1, 2):                             # the controller still holds them
        assert second.sched.adopt({"id": cid, "task": "work", "argv": ["true"], "host": "h1"})
    second.run("run")
    assert second.sched.tasks["work"].timing.made == 2
    for job in list(second.sched.jobs.values()):
        second.end(job)
    make_all(second)
    assert len(second.remote.submitted) == 2       # 2 adopted + 2 new = nmax


def test_a_task_defined_after_run_still_gets_its_count(tmp_path):
    RunLedger(tmp_path / LEDGER_NAME).record("late", 3)
    w = world(tmp_path)
    w.run(task("early", "nmax 1", host="h1"))
    w.run("run")
    w.run(task("late", "nmax 4", "npending 4", host="h1"))
    make_all(w)
    assert [j.task for j in w.remote.submitted].count("late") == 1


def test_a_run_that_ended_cleanly_leaves_nothing_and_the_next_starts_afresh(tmp_path):
    first = world(tmp_path)
    first.run(task("work", "nmax 3", "npending 3", host="h1"))
    first.run("run")
    make_all(first)
    assert len(first.remote.submitted) == 3
    assert (tmp_path / LEDGER_NAME).exists()
    first.sched.end_run()
    assert not (tmp_path / LEDGER_NAME).exists()
    second = world(tmp_path)
    second.run(task("work", "nmax 3", "npending 3", host="h1"))
    second.run("run")
    make_all(second)
    assert len(second.remote.submitted) == 3
    assert not any("going on" in m for m in second.messages)


def test_counts_of_tasks_not_defined_here_survive_a_clean_end(tmp_path):
    RunLedger(tmp_path / LEDGER_NAME).record("elsewhere", 2)
    w = world(tmp_path)
    w.run(task("work", "nmax 1", host="h1"))
    w.run("run")
    make_all(w)
    w.sched.end_run()
    assert RunLedger(tmp_path / LEDGER_NAME).load() == {"elsewhere": 2}


def test_local_tasks_never_read_or_write_a_ledger(tmp_path):
    RunLedger(tmp_path / LEDGER_NAME).record("work", 3)
    w = world(tmp_path)
    w.run(task("work", "nmax 3", "npending 3"))     # host LOCAL
    w.run("run")
    for _ in range(3):
        w.step()
        for job in [j for j in w.local.submitted if not j.done]:
            w.end(job)
    assert len(w.local.submitted) == 3
    assert w.sched.ledger is None


def test_an_unreadable_ledger_is_reported_in_the_log_and_counts_start_from_zero(tmp_path, caplog):
    (tmp_path / LEDGER_NAME).write_text("not json\n[1]\n")
    w = world(tmp_path)
    w.run(task("work", "nmax 2", "npending 2", host="h1"))
    w.run("run")
    make_all(w)
    assert len(w.remote.submitted) == 2
    assert "skipping a line" in caplog.text


def test_a_job_made_but_never_sent_is_not_counted_by_the_next_sched(tmp_path):
    """The ledger counts a job when it is made, with its submit key until the controller has
    it. A sched killed in between leaves the key: the next sched drops the count of every such
    job the controller does not hold (and keeps those it does)."""
    path = tmp_path / LEDGER_NAME
    ledger = RunLedger(path)
    ledger.record("work", 1, unsent="s:1")
    ledger.sent("s:1")
    ledger.record("work", 2, unsent="s:2")        # sent, but the reply was lost with sched
    ledger.record("work", 3, unsent="s:3")        # never sent: sched was killed first
    ledger.close()
    again = RunLedger(path)
    assert again.load() == {"work": 3}
    assert again.unsent == {"s:2": "work", "s:3": "work"}
    assert again.forget_unsent({"s:1", "s:2"}) == {"work": 1}
    assert again.counts() == {"work": 2} and again.unsent == {}
    again.close()
    third = RunLedger(path)
    assert third.load() == {"work": 2} and third.unsent == {}
