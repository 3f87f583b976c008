"""`host ... -noskew` (issue 16): the task's jobs carry the flag that keeps pcontrol from sending
them to a SKEWED host; the dispatch itself is pcontrol's (tests/pcontrol/test_dispatch.py,
tests/e2e/test_pull_probes.py)."""

import pytest

from psched.lang.errors import TaskError

from sched_world import World


@pytest.mark.parametrize("rule, jobs", [
    ("host -each {h1 h2} -noskew", [("h1", True, True), ("h2", True, True)]),
    ("host h1 -required -noskew", [("h1", True, True)]),
    ("host h1 -noskew -required", [("h1", True, True)]),
    ("host NONE -noskew", [("NONE", False, True)]),
    ("host h1", [("h1", False, False)]),
])
def test_the_jobs_of_a_noskew_task_carry_the_flag(rule, jobs):
    w = World()
    w.run(f"task t\n  command true\n  {rule}\n  nmax {len(jobs)}\n  npending {len(jobs)}\nend\n")
    w.run("run")
    w.step()
    assert [(j.host, j.host_required, j.noskew) for j in w.jobs] == jobs
    assert w.sched.tasks["t"].spec.describe().get("noskew", False) is jobs[0][2]


def test_a_task_exec_host_keeps_the_tasks_noskew():
    w = World()
    w.run("task t\n  command true\n  host NONE -noskew\n  task.exec\n    host h2 -required\n  end\nend\n")
    w.run("run")
    w.step()
    assert [(j.host, j.host_required, j.noskew) for j in w.jobs] == [("h2", True, True)]


def test_noskew_on_a_local_task_is_refused_with_its_line():
    w = World()
    with pytest.raises(TaskError) as err:
        w.run("\ntask t\n  command true\n  host LOCAL -noskew\nend\n")
    assert "-noskew is for controller hosts" in err.value.render() and "test.sched:4" in err.value.render()
