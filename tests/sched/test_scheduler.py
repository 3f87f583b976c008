"""The scheduler loop driven by a fake clock and a fake backend: no processes, no sleeping."""

import math

import pytest

from psched.lang.errors import SchedError, TaskError
from psched.scheduler.jobs import Outcome

from sched_world import World, task


def test_poll_exec0_makes_one_job_per_free_slot_and_reacts_to_ends_at_once():
    w = World()
    w.run(task("t", "periods -poll 10"))
    w.run("run")
    w.step()
    assert len(w.jobs) == 1  # npending 1 by default
    w.step()
    assert len(w.jobs) == 1
    w.end(w.jobs[0])
    w.step()  # no clock advance: the end made the task due again at once
    assert len(w.jobs) == 2


def test_exec_period_spaces_launches():
    w = World()
    w.run(task("t", "periods -poll 1 -exec 5", "npending 10"))
    w.run("run")
    w.step()
    assert len(w.jobs) == 1  # exec > 0: at most one per look
    w.end(w.jobs[0])
    for _ in range(4):
        w.advance(1)
    assert len(w.jobs) == 1
    w.advance(1)  # 5 s after the first launch
    assert len(w.jobs) == 2


def test_nmax_and_npending():
    w = World()
    w.run(task("t", "nmax 5", "npending 2", "periods -poll 1"))
    w.run("run")
    w.step()
    assert len(w.jobs) == 2
    for job in list(w.jobs):
        w.end(job)
    w.step()
    assert len(w.jobs) == 4
    for job in w.jobs[2:]:
        w.end(job)
    w.step()
    assert len(w.jobs) == 5  # nmax caps it
    w.end(w.jobs[4])
    assert w.advance(100) is None or w.sched.tasks["t"].handle is None
    assert len(w.jobs) == 5
    assert w.sched.finished(None)
    assert w.sched.tasks["t"].state() == "finished"


def test_finished_goes_round_the_tasks_from_the_one_that_held_wait_last():
    """`finished(None)` starts where it stopped (tasks ending in any order, one deleted and
    another made meanwhile, a paused one), and says done only after a whole round."""
    w = World()
    w.run("".join(task(f"t{i}", "nmax 1") for i in range(5)))
    w.run("run")
    w.step()
    jobs = {job.task: job for job in w.jobs}
    assert len(jobs) == 5 and not w.sched.finished(None)
    for name in ("t2", "t0", "t4"):  # out of order: the rest still hold it
        w.end(jobs[name])
        assert not w.sched.finished(None)
    w.end(jobs["t3"])
    assert not w.sched.finished(None)  # t1, before where the round last stopped
    w.run("delete t0")  # one gone and one made: the same count of tasks
    w.run(task("late", "nmax 1", "active off"))  # paused: `wait` does not wait for it
    w.end(jobs["t1"])
    assert w.sched.finished(None)
    w.run("task late\n  active on\nend")
    assert not w.sched.finished(None)
    w.step()
    w.end(next(job for job in w.jobs if job.task == "late"))
    assert w.sched.finished(None) and w.sched.finished(["late", "t3"])


def test_exec0_with_room_makes_as_many_as_limits_allow_in_one_look():
    w = World()
    w.run(task("t", "npending 4", "nmax 10"))
    w.run("run")
    w.step()
    assert len(w.jobs) == 4


def test_trange_waits_for_the_window_and_sleeps_until_it_opens():
    w = World()  # Monday 00:00 UTC
    w.run(task("t", "trange 09:00 17:00", "periods -poll 1"))
    w.run("run")
    nxt = w.step()
    assert w.jobs == []
    assert w.sched.tasks["t"].state() == "waiting"
    # it does not poll every second: the next look is at most a minute away (wall-jump check)
    assert nxt - w.clock.monotonic() == pytest.approx(60)
    w.clock.advance(9 * 3600 - 1)
    w.step()
    assert w.jobs == []
    w.advance(1)
    assert len(w.jobs) == 1


def test_trange_exclude_and_days():
    w = World()  # Monday
    w.run(task("t", "trange 00:00 00:00 -days Sat,Sun", "periods -poll 1"))
    w.run("run")
    w.step()
    assert w.jobs == []
    w.clock.advance(5 * 86400)  # Saturday
    w.step()
    assert len(w.jobs) == 1
    w2 = World()
    w2.run(task("t", "trange -exclude 00:00 01:00", "periods -poll 1"))
    w2.run("run")
    w2.step()
    assert w2.jobs == []
    w2.clock.advance(3600)
    w2.step()
    assert len(w2.jobs) == 1


def test_priorities_order_jobs_made_in_the_same_tick():
    w = World()
    w.run(task("low", "priority 1") + task("high", "priority 9") + task("mid", "priority 5"))
    w.run("run")
    w.step()
    assert [j.task for j in w.jobs] == ["high", "mid", "low"]


def test_pause_and_resume():
    w = World()
    w.run(task("t", "nmax 3"))
    w.run("pause t; run")
    w.step()
    assert w.jobs == []
    assert w.sched.tasks["t"].state() == "paused"
    w.run("resume t")
    w.step()
    assert len(w.jobs) == 1


def test_active_off_directive():
    w = World()
    w.run(task("t", "active off"))
    w.run("run")
    w.step()
    assert w.jobs == []


def test_stop_makes_no_new_jobs_but_ends_still_run_exit_macros():
    w = World()
    w.run(task("t", "task.exit 0", "  echo ended $job_id", "end"))
    w.run("run")
    w.step()
    w.run("stop")
    w.end(w.jobs[0])
    w.advance(10)
    assert len(w.jobs) == 1
    assert w.output() == "ended 1\n"


def test_exec_macro_changes_command_and_host_and_can_skip():
    w = World()
    w.run(task("t", "npending 5", "nmax 5", "task.exec",
               "  if $job_count == 1", "    skip", "  end",
               "  command echo job $job_count", "  host node$job_count -required", "end"))
    w.run("run")
    w.step()
    argvs = [j.argv for j in w.jobs]
    assert ["echo", "job", "0"] in argvs
    assert not any(a[-1] == "1" for a in argvs)  # skipped once
    assert all(j.host.startswith("node") and j.host_required for j in w.jobs)
    assert w.remote.submitted == w.jobs  # non-LOCAL hosts go to the remote backend


def test_exit_macro_variables_and_selectors():
    w = World()
    w.run(task("t", "npending 6",
               "task.exit 0", "  echo zero $job_id $job_state $exit_status [queuesize stdout] $task", "end",
               "task.exit 3", "  echo three $exit_status $stdout", "end",
               "task.exit timeout", "  echo timeout $job_state", "end",
               "task.exit crash", "  echo crash $job_signal", "end",
               "task.exit default", "  echo default $job_state", "end"))
    w.run("run")
    w.step()
    a, b, c, d, e, f = w.jobs[:6]
    w.end(a, stdout="line1\nline2\n")
    w.end(b, status=3, stdout="out")
    w.end(c, Outcome.TIMEOUT)
    w.end(d, Outcome.CRASH, signal=9)
    w.end(e, Outcome.DOWN, reason="host lost")
    w.end(f, status=7)
    assert w.output().splitlines() == [
        "zero 1 EXIT 0 2 t", "three 3 out", "timeout TIMEOUT", "crash 9", "default DOWN", "default EXIT",
    ]
    assert [j.macro for j in (a, b, c, d, e, f)] == ["0", "3", "timeout", "crash", "default", "default"]


def test_exit_macro_error_is_reported_and_the_loop_goes_on():
    w = World()
    w.run(task("t", "nmax 2", "task.exit 0", "  nosuch command", "end"))
    w.run("run")
    w.step()
    w.end(w.jobs[0])
    assert w.jobs[0].macro_error
    assert any("task t job 1: error in task.exit 0" in m and "test.sched:" in m and "nosuch" in m for m in w.messages)
    w.step()
    assert len(w.jobs) == 2


def test_a_look_that_raises_leaves_the_task_looked_at_again_and_says_so(monkeypatch):
    """A bug in a task's look (here: the planning maths raising, twice) must not drop the task:
    without its next look it would make no job again and `wait` would never end."""
    import psched.scheduler.loop as loop

    real_plan, failures = loop.plan, [RuntimeError("boom"), RuntimeError("boom")]

    def plan(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(loop, "plan", plan)
    w = World()
    w.run(task("t", "nmax 1"))
    w.run("run")
    w.step()
    assert w.jobs == []
    said = [m for m in w.messages if "task t: looking at it failed (RuntimeError: boom)" in m]
    assert len(said) == 1 and "looked at again every 1 s" in said[0]
    w.advance(1)
    assert w.jobs == [] and len([m for m in w.messages if "looking at it failed" in m]) == 1  # said once
    w.advance(1)
    assert len(w.jobs) == 1


def test_exec_macro_error_makes_no_job_and_is_reported():
    w = World()
    w.run(task("t", "task.exec", "  error boom", "end"))
    w.run("run")
    w.step()
    assert w.jobs == []
    assert any("task t: error in task.exec" in m and "boom" in m for m in w.messages)


@pytest.mark.parametrize("host", ["LOCAL", "NONE"])
def test_a_nul_byte_in_a_command_is_refused_where_it_is_written_for_every_host(host):
    """Not a LOCAL job ending EXIT 127 and a controller job DOWN (pcontrol refusing it)."""
    w = World()
    with pytest.raises(TaskError, match=r"command word 2 holds a NUL byte \(at character 2\), which no program"):
        w.run(task("t", f"host {host}", 'command printf "a\\000b"'))
    w.run(task("u", f"host {host}", "nmax 1", "task.exec", '  command printf "a\\000b"', "end"))
    w.run("run")
    w.step()
    assert w.jobs == []
    assert any("task u: error in task.exec" in m and "command word 2 holds a NUL byte" in m for m in w.messages)


def test_a_macro_failing_alike_at_every_look_is_said_seldom_and_a_change_at_once():
    w = World()
    w.run(task("t", "periods -poll 1", "task.exec", "  error boom", "end"))
    w.run("run")
    for _ in range(30):
        w.advance(1)
    said = [m for m in w.messages if "error in task.exec" in m]
    assert len(said) == 1 and "said again at most every 10 min while it fails so" in said[0]
    for _ in range(600):
        w.advance(1)
    said = [m for m in w.messages if "error in task.exec" in m]
    assert len(said) == 2 and "(no job made this time; again, and " in said[1] and "boom" in said[1]
    w.run(task("t", "periods -poll 1", "task.exec", "  error bang", "end"))   # another error: at once
    w.advance(1)
    assert "bang" in [m for m in w.messages if "error in task.exec" in m][-1]
    w.run(task("t", "periods -poll 1", "task.exec", "  command true", "end"))
    w.advance(1)
    assert len(w.jobs) == 1
    w.end(w.jobs[0])
    w.run(task("t", "periods -poll 1", "task.exec", "  error bang", "end"))   # after a success: at once
    w.advance(1)
    assert len([m for m in w.messages if "bang" in m]) == 2


def test_stdout_destinations(tmp_path):
    w = World()
    path = tmp_path / "out.txt"
    w.run(task("t", "npending 3", f"stdout -append {path}", "stderr -var errs"))
    w.run("run")
    w.step()
    for n, job in enumerate(w.jobs):
        w.end(job, stdout=f"o{n}\n", stderr=f"e{n}")
    assert path.read_text() == "o0\no1\no2\n"
    assert w.run("set errs") == "e2"


def test_redefining_a_task_modifies_it():
    w = World()
    w.run(task("t", "nmax 1", "trange 01:00 02:00", "trange 03:00 04:00"))
    assert len(w.sched.tasks["t"].spec.ranges) == 2
    w.run("task t\n  nmax 2\nend")
    spec = w.sched.tasks["t"].spec
    assert spec.nmax == 2 and spec.argv == ["true"] and len(spec.ranges) == 2
    w.run("task t\n  trange 05:00 06:00\nend")
    assert len(w.sched.tasks["t"].spec.ranges) == 1  # the first trange of a block replaces them


def test_a_failing_block_leaves_the_task_unchanged():
    w = World()
    w.run(task("t", "nmax 1"))
    with pytest.raises(SchedError):
        w.run("task t\n  nmax 7\n  npending $nosuch\nend")
    assert w.sched.tasks["t"].spec.nmax == 1


def test_delete_task_waits_for_its_jobs():
    w = World()
    w.run(task("t", "npending 2"))
    w.run("run")
    w.step()
    assert "removed when its 2 job(s)" in w.run("delete t")
    w.step()
    assert len(w.jobs) == 2
    w.end(w.jobs[0])
    assert "t" in w.sched.tasks
    w.end(w.jobs[1])
    assert "t" not in w.sched.tasks


def test_kill_and_delete_jobs():
    w = World()
    w.run(task("t"))
    w.run("run")
    w.step()
    assert w.run("kill 1") == "job 1 is being killed"
    assert w.local.killed == w.jobs
    with pytest.raises(TaskError, match="kill it first"):
        w.run("delete 1")
    w.end(w.jobs[0], Outcome.KILLED)
    with pytest.raises(TaskError, match="already ended"):
        w.run("kill 1")
    assert w.run("delete 1") == "job 1 deleted"
    with pytest.raises(TaskError, match="no job 1"):
        w.run("check 1")


def test_status_check_jobs_json():
    import json

    w = World()
    w.run(task("t", "nmax 2"))
    w.run("run")
    w.step()
    w.end(w.jobs[0], status=2)
    w.step()
    status = json.loads(w.run("status -json"))
    assert status["tasks"][0]["task"] == "t" and status["tasks"][0]["failed"] == 1
    assert status["summary"]["jobs"]["done"] == 1
    jobs = json.loads(w.run("jobs -json"))
    assert [j["outcome"] for j in jobs] == ["EXIT", None]
    check = json.loads(w.run("check 1 -json"))
    assert check["status"] == 2 and check["task"] == "t"
    assert json.loads(w.run("check t -json"))["nmax"] == 2
    text = w.run("status")
    assert "TASK" in text and "EXIT 2" in text and "1 done (1 failed)" in text
    assert "EXIT 2" in w.run("jobs -state done")


def test_wall_clock_jump_does_not_fire_or_starve_tasks():
    w = World()
    w.run(task("t", "periods -poll 1 -exec 10", "npending 5"))
    w.run("run")
    w.step()
    assert len(w.jobs) == 1
    w.clock.jump_wall(3600)  # the wall clock jumps an hour: periods use monotonic time
    w.step()
    assert len(w.jobs) == 1
    w.advance(10)
    assert len(w.jobs) == 2


def test_thousands_of_idle_tasks_cost_one_heap_entry_each():
    w = World()
    script = "".join(task(f"t{i}", "active off") for i in range(2000))
    w.run(script)
    w.run("run")
    assert w.step() is None or w.step() == math.inf or True
    assert len(w.sched.heap) == 0  # paused tasks are not polled at all
    w2 = World()
    w2.run("".join(task(f"t{i}", "periods -poll 30", "nmax 0") for i in range(2000)))
    w2.run("run")
    w2.step()
    assert len(w2.sched.heap) == 0  # nmax 0: finished at once


@pytest.mark.parametrize("script, line, column, message", [
    ("nmax 3", 1, 1, "task directive"),
    ("task t\n  command ls\n  nmax -1\nend", 3, 8, "nmax must be at least 0"),
    ("task t\n  command ls\n  nmax x\nend", 3, 8, "nmax must be a whole number"),
    ("task t\n  command ls\n  npending 0\nend", 3, 12, "at least 1"),
    ("task t\n  command ls\n  periods -poll abc\nend", 3, 17, "-poll expects"),
    ("task t\n  command ls\n  periods -bogus 1\nend", 3, 11, "unknown option '-bogus'"),
    ("task t\n  command ls\n  trange 9:00\nend", 3, 3, "trange"),
    ("task t\n  command ls\n  trange 09:00 10:00 -days Mnday\nend", 3, 28, "Mnday"),
    ("task t\n  command ls\n  host a b\nend", 3, 8, "host"),
    ('task t\n  command ls\n  host ""\nend', 3, 8, "a host name cannot be empty"),
    ('task t\n  command ls\n  host "" -required\nend', 3, 8, "a host name cannot be empty"),
    ('task t\n  command ls\n  host {a b}\nend', 3, 8, "cannot be empty or hold blanks"),
    ("task t\n  command ls\n  active maybe\nend", 3, 10, "on or off"),
    ("task t\n  command ls\n  stdout\nend", 3, 3, "wrong # args"),
    ("task t\n  command ls\n  echo hi\nend", 3, 3, "unknown directive `echo`"),
    ("task t\n  command ls\n  task.exit default {puts $job_id}\nend", 3, 3,
     '"task.exit" opens a block: write "task.exit selector" on a line of its own'),
    ("task t\n  command ls\n  task.exec {puts hi}\nend", 3, 3, '"task.exec" opens a block: write "task.exec" on'),
    ("task t\n  task.exit sometimes\n  end\nend", 2, 13, "unknown selector"),
    ("task.exit 0\nend", 1, 1, "belongs inside"),
    ("task t\n  command ls\n  task.exit 0\n    nmax 3\n  end\nend", 4, 5, "has no job to change"),
    ("task t\n  command ls\n  task.exec\n    nmax 3\n  end\nend", 4, 5, "only command and host"),
    ("task 12\n  command ls\nend", 1, 1, "not a number"),
    ("task t\n  nmax 1\nend", 1, 1, "no `command`"),
])
def test_bad_task_input_is_refused_with_its_position(script, line, column, message):
    w = World()
    with pytest.raises(SchedError) as info:
        w.run(script)
    err = info.value
    assert message in err.message
    assert (err.pos.file, err.pos.line, err.pos.column) == ("test.sched", line, column)
    assert w.sched.tasks == {}


def test_read_time_check_refuses_before_anything_runs():
    w = World()
    with pytest.raises(SchedError):
        w.run("echo before\ntask t\n  command ls\n  nmax x\nend")
    assert w.output() == ""  # nothing ran: the script was refused when read


@pytest.mark.parametrize("block", ["task.exec", "task.exit 0"])
def test_a_task_block_outside_a_task_says_where_it_belongs(block):
    name = block.split()[0]
    with pytest.raises(SchedError, match=f"^{name} belongs inside a `task NAME` block$"):
        World().run(f"{block}\n  set x 1\nend\n")


@pytest.mark.parametrize("directive", ["retry", "nmax", "npending", "priority"])
def test_a_count_past_64_bits_is_refused_where_it_is_written(directive):
    # pcontrol refuses such numbers (its journal cannot keep them): refused at the task, not at its jobs
    w = World()
    with pytest.raises(TaskError, match=r"out of range \(at most 9223372036854775807\)"):
        w.run(task("t", f"{directive} 99999999999999999999"))


def test_cwd_goes_with_each_job_and_is_checked_where_written():
    w = World()
    w.run(task("t", "cwd /srv/probes", "nmax 1"))
    w.run("run")
    w.step()
    assert [j.cwd for j in w.jobs] == ["/srv/probes"]
    assert "cwd            /srv/probes" in w.run("check t")
    with pytest.raises(TaskError, match="cwd needs a directory"):
        w.run(task("u", "cwd {}"))
