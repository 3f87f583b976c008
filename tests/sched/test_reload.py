"""Loading and reloading a server's files (psched.scheduler.reload) on a fake clock: which tasks
are added, changed, removed, when they are next looked at, and that a wrong file changes nothing."""

from collections import Counter

import pytest

from psched.lang.errors import SchedError
from psched.scheduler.reload import first_offset, load_files
from psched.scheduler.timing import Periods

from sched_world import World, task

EVERY_MINUTE = "periods -poll 60 -exec 60"


def write(path, *blocks, run=True):
    path.write_text("".join(blocks) + ("run\n" if run else ""))
    return str(path)


def next_due(w, name):
    handle = w.sched.tasks[name].handle
    return handle.due if handle is not None and handle.live else None


def test_first_start_spreads_first_runs_over_the_first_period_by_name(tmp_path):
    names = [f"probe{i}" for i in range(600)]
    path = write(tmp_path / "site.sched", *(task(n, EVERY_MINUTE) for n in names))
    w = World()
    start = w.clock.monotonic()
    result = load_files(w.interp, [path])
    assert (len(result.added), result.started) == (600, True)
    for name in names:
        assert next_due(w, name) == start + first_offset(name, Periods(poll=60, exec=60))
    per_second = Counter()
    for second in range(60):
        made = len(w.jobs)
        w.advance(1)
        per_second[second] = len(w.jobs) - made
    assert len(w.jobs) == 600                   # each made its first job within the minute
    assert max(per_second.values()) <= 3 * 600 / 60
    assert first_offset("probe7", Periods(exec=60)) == first_offset("probe7", Periods(exec=60))


def test_a_changed_task_keeps_counters_jobs_and_exactly_its_next_look(tmp_path):
    path = tmp_path / "site.sched"
    w = World()
    load_files(w.interp, [write(path, task("steady", "periods -poll 10 -exec 10"),
                                task("moved", "periods -poll 10 -exec 10"))])
    w.advance(11)
    w.advance(10)
    steady = w.sched.tasks["steady"]
    job = next(j for j in w.jobs if j.task == "steady")
    w.end(job)
    made, done, out = steady.timing.made, steady.done, set(steady.jobs_out)
    due, moved_due = next_due(w, "steady"), next_due(w, "moved")
    w.clock.advance(3.7)                         # the reload comes between two looks

    result = load_files(w.interp, [write(
        path, task("steady", "periods -poll 10 -exec 10", command="echo changed"),
        task("moved", "periods -poll 20 -exec 10"))])
    assert sorted(result.changed) == ["moved", "steady"]
    assert steady is w.sched.tasks["steady"]     # the same entry: counters, jobs, launch
    assert (steady.timing.made, steady.done, steady.jobs_out) == (made, done, out)
    assert steady.spec.argv == ["echo", "changed"]
    assert next_due(w, "steady") == due          # the same periods: exactly the same next look
    assert next_due(w, "moved") == moved_due - 10 + 20    # the last look plus the new poll


def test_an_unchanged_task_is_left_alone_even_paused_at_the_prompt(tmp_path):
    path = write(tmp_path / "site.sched", task("a", EVERY_MINUTE), task("b", EVERY_MINUTE))
    w = World()
    load_files(w.interp, [path])
    w.run("pause a")
    due = next_due(w, "b")
    result = load_files(w.interp)
    assert (sorted(result.unchanged), result.changed, result.added) == (["a", "b"], [], [])
    assert not w.sched.tasks["a"].spec.active and next_due(w, "b") == due


def test_pause_and_delete_right_after_a_task_block_in_the_files_act_on_what_they_define(tmp_path):
    path = write(tmp_path / "site.sched", task("a", EVERY_MINUTE), "pause a\n",
                 task("b", EVERY_MINUTE), task("gone", EVERY_MINUTE), "delete gone\n")
    w = World()
    result = load_files(w.interp, [path])       # no 'no task "a"': the task is still staged
    assert sorted(result.added) == ["a", "b"] and "gone" not in w.sched.tasks
    assert not w.sched.tasks["a"].spec.active and w.sched.tasks["b"].spec.active
    w.run("resume a")                           # what the prompt changed stays across a reload
    result = load_files(w.interp)
    assert sorted(result.unchanged) == ["a", "b"] and w.sched.tasks["a"].spec.active


def test_a_new_task_starts_after_its_offset_and_a_removed_one_finishes_its_jobs(tmp_path):
    path = tmp_path / "site.sched"
    w = World()
    exit_macro = "task.exit default\n    puts harvested-$job_id\n  end"
    load_files(w.interp, [write(path, task("old", "periods -poll 1", exit_macro))])
    w.advance(1)
    running = [j for j in w.jobs if j.task == "old"]
    assert len(running) == 1

    now = w.clock.monotonic()
    result = load_files(w.interp, [write(path, task("new", "periods -poll 5"))])
    assert (result.added, result.removed) == (["new"], ["old"])
    assert w.sched.tasks["old"].state() == "deleting"
    assert next_due(w, "new") == now + first_offset("new", Periods(poll=5))
    w.advance(5)
    assert [j.task for j in w.jobs].count("new") == 1
    assert [j.task for j in w.jobs].count("old") == 1        # no new job of the removed task
    w.end(running[0])
    assert f"harvested-{running[0].id}" in w.output()       # its running job was harvested
    assert "old" not in w.sched.tasks


@pytest.mark.parametrize("broken, where", [  # the file's first 10 lines are two good tasks
    ("task half\n  command true\n", ":11:1: missing `end`"),              # read: nothing runs
    ("task bad\n  periods -poll -3\nend\n", ":12:17: -poll must not be negative"),                   # a directive's check
    ("set x [expr {1/0}]\n", ":11:15: divide by zero"),                    # while it runs
    ("task empty\n  host LOCAL\nend\n", "has no `command`"),              # the scheduler's check
])
def test_a_file_with_an_error_changes_no_task(tmp_path, broken, where):
    path = tmp_path / "site.sched"
    w = World()
    load_files(w.interp, [write(path, task("a", EVERY_MINUTE))])
    due = next_due(w, "a")
    path.write_text(task("a", EVERY_MINUTE, command="echo new") + task("added", "periods -poll 1") + broken)
    with pytest.raises(SchedError) as raised:
        load_files(w.interp)
    assert where in raised.value.render()
    assert str(path) in raised.value.render() or "has no" in where
    assert sorted(w.sched.tasks) == ["a"] and w.sched.tasks["a"].spec.argv == ["true"]
    assert next_due(w, "a") == due and w.sched.staging is None


def test_reload_at_the_prompt_reports_what_changed_and_needs_files(tmp_path):
    w = World()
    with pytest.raises(SchedError, match="no files to read again"):
        w.run("reload")
    path = write(tmp_path / "site.sched", task("a", EVERY_MINUTE))
    load_files(w.interp, [path])
    write(tmp_path / "site.sched", task("b", EVERY_MINUTE))
    assert w.run("reload") == "reload: 1 task(s) added (b), 0 changed, 1 removed (a), 0 unchanged"
    (tmp_path / "site.sched").write_text("task c\n")
    with pytest.raises(SchedError, match="nothing applied, the tasks run on as they were") as raised:
        w.run("reload")
    assert "site.sched:1:1: missing `end`" in raised.value.render()
