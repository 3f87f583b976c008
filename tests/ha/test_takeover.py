"""The controller jobs of a killed leader are taken over by the next one, through the agents.

Two real `sched --serve --ha` members, each with its own $SCHED_HOME and its own pcontrol (the
same secret: their agents on this host take over each other's), share one private etcd and the
local agents. A periodic task fires every second and a batch task makes 20 jobs, all on the
controller's `localhost`; each job appends `TASK RUN` to a file as it starts, runs a few seconds
and exits with a status of its own (RUN modulo something); each exit macro appends `TASK RUN
STATE STATUS RERUN`. The leader's sched AND its pcontrol are killed with SIGKILL while jobs run
(or only its sched: its pcontrol lives on, its agent leaves it once fenced and serves the new
leader's agent, and the hangup of its terminal when the old pcontrol gives up on it must not
end the jobs -- pclient.agent.Agent.hang_up):
the standby leads, its controller adopts from the agents the jobs the dead one placed (their ids
were chosen under the dead leader's token), and at the end every run fired exactly once, every
exit macro ran once, and each got its job's true exit status -- also the jobs that ran across
the failover, whose outcome reached the new leader's exit macro.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from hapool import Pool, lines_of as _lines
from waiting import wait_until_sync

pytestmark = pytest.mark.timeout(180)

TTL = 3
BATCH = 20

TASKS = """\
catch {{controller host add localhost -slots 40}}
task tick
  host localhost
  npending 10
  periods -poll 0.05 -exec {period}
  task.exec
    command sh -c {{echo "$0 $1" >> {runs}; sleep 3; exit $(($1 % 4))}} tick $job_count
  end
  task.exit default
    exec sh -c "echo [lindex $job_command 3] [lindex $job_command 4] $job_state $exit_status $job_rerun >> {exits}"
  end
end
task batch
  host localhost
  nmax 20
  npending 20
  periods -poll 0.05 -exec 0.3
  task.exec
    command sh -c {{echo "$0 $1" >> {runs}; sleep $((4 + $1 % 6)); exit $(($1 % 7))}} batch $job_count
  end
  task.exit default
    exec sh -c "echo [lindex $job_command 3] [lindex $job_command 4] $job_state $exit_status $job_rerun >> {exits}"
  end
end
run
"""


@pytest.fixture
def pool(etcd, tmp_path: Path, request):
    made = Pool(tmp_path, f"{etcd.url}/takeover-{abs(hash(request.node.name))}", ttl=TTL, period=1.0, tasks=TASKS,
                secret=os.urandom(32))
    yield made
    made.close()


@pytest.mark.parametrize("kill_pcontrol", [True, False], ids=["sched-and-pcontrol", "sched-only"])
def test_kill9_of_the_leaders_sched_and_pcontrol_running_jobs_are_taken_over(pool, kill_pcontrol):
    a = pool.member("a")
    a.wait_log("serving")
    b = pool.member("b")
    b.wait_log("standby: ")
    wait_until_sync(lambda: sum(1 for r in _lines(pool.runs_file) if r[0] == "batch") >= 12
                    and sum(1 for r in _lines(pool.exits_file) if r[0] == "batch") >= 1,
                    "a has started 12 batch jobs and one has ended", 60)
    a_pcontrol = a.pcontrol_pid()
    assert a_pcontrol is not None
    started_by_a = {tuple(r[:2]) for r in _lines(pool.runs_file)}
    ended_under_a = {tuple(r[:2]) for r in _lines(pool.exits_file)}
    if kill_pcontrol:
        os.kill(a_pcontrol, signal.SIGKILL)  # the leader's machine dies: its sched and its pcontrol
    a.kill9()
    b.wait_log("taken over: task tick", 3 * TTL + 10)

    def batch_done() -> bool:   # each job's macro (counting lines would count a rerun's second line)
        return {int(r[1]) for r in _lines(pool.exits_file) if r[0] == "batch"} >= set(range(BATCH))

    wait_until_sync(batch_done, f"the {BATCH} batch jobs' exit macros ran", 90)
    ticks = max(int(r[1]) for r in _lines(pool.runs_file) if r[0] == "tick")
    wait_until_sync(lambda: {int(r[1]) for r in _lines(pool.exits_file) if r[0] == "tick"} >= set(range(ticks + 1)),
                    f"the exit macros of tick runs 0..{ticks}", 30)
    b.stop()
    runs = Counter((r[0], int(r[1])) for r in _lines(pool.runs_file))
    exits = _lines(pool.exits_file)
    text = b.text()
    # every due run fired exactly once
    assert sorted(n for (task, n) in runs if task == "batch") == list(range(BATCH)), runs
    tick_runs = sorted(n for (task, n) in runs if task == "tick")
    assert tick_runs == list(range(len(tick_runs))), tick_runs
    twice = [key for key, count in runs.items() if count > 1]
    assert not twice, f"fired twice: {twice}"
    # every exit macro once, with the job's true exit status; but a macro whose end etcd had
    # not recorded when a was killed (cut in the middle, or just ended) runs again in full
    # under b, with $job_rerun 1 (docs/operators.md): a second line of that job, never a third
    macros = Counter((task, int(n)) for task, n, *_ in exits)
    reruns = [(task, int(n)) for task, n, *_, rerun in exits if rerun == "1"]
    assert len(reruns) <= text.count("began under the earlier leader, which died before it ended"), (reruns, exits)
    assert not [key for key, count in macros.items() if count > 1 + (key in reruns)], macros
    assert {n for (task, n) in macros if task == "batch"} == set(range(BATCH))
    for task, n, state, status, rerun in exits:
        expected = int(n) % (7 if task == "batch" else 4)
        assert (state, status) == ("EXIT", str(expected)), (task, n, state, status, text[-3000:])
    # jobs that ran across the failover: started under a, ended (their macro run) under b
    across = {key for key in started_by_a - ended_under_a}
    assert across, "no job ran across the failover"
    assert all((task, int(n)) in macros for task, n in across)
    assert "taken over: job " in text and " runs on localhost" in text, text[-3000:]
    assert "adopt: job " in (b.home / "pcontrol.log").read_text()
