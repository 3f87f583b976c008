"""The whole path: sched tasks -> pcontrol -> local pclients -> jobs, and back into exit macros."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import psched
from psched.scheduler.eventloop import get_loop, run_until
from psched.scheduler.jobs import JobState

from sched_shell import Shell as BaseShell

ROOT = Path(__file__).resolve().parents[2]
SCHED = [sys.executable, "-m", "psched.shell.cli"]


@pytest.fixture
def home(monkeypatch):
    path = Path(tempfile.mkdtemp(prefix="e2e.", dir="/tmp"))
    monkeypatch.setenv("SCHED_HOME", str(path))
    yield path
    from pcontrol import daemon
    from pcontrol.paths import Paths

    daemon.stop(Paths.for_home(path), kill=True, force=True)
    shutil.rmtree(path, ignore_errors=True)


class Shell(BaseShell):
    """An interpreter as the sched shell has it, with messages collected."""

    source = "e2e.sched"

    def lines(self):
        return sorted(self.out.getvalue().splitlines())

    def wait_job(self, job_id, state, timeout=30):
        fut = get_loop().create_future()

        def listener(job):
            if job.id == job_id and job.state is state and not fut.done():
                fut.set_result(job)

        self.sched.job_listeners.append(listener)
        try:
            job = self.sched.jobs.get(job_id)
            if job is not None and job.state is state:
                return job
            return run_until(asyncio.wait_for(fut, timeout))
        finally:
            self.sched.job_listeners.remove(listener)


def test_every_outcome_through_the_controller(home):
    sh = Shell()
    sh.run("""
task exit2
  command sh -c {echo out; exit 2}
  nmax 2
  npending 2
  task.exit 2
    echo "exit2 $exit_status [string trim $stdout] on $job_host"
  end
end
task crash
  command sh -c {kill -KILL $$}
  nmax 1
  task.exit crash
    echo "crash $job_state $job_signal"
  end
end
task slow
  command sleep 30
  nmax 1
  periods -timeout 0.3
  task.exit timeout
    echo "timeout $job_state"
  end
end
task ok
  command echo fine
  nmax 1
  task.exit 0
    echo "ok [string trim $stdout]"
  end
end
run
wait -timeout 60
""")
    assert sh.lines() == sorted(["exit2 2 out on localhost", "exit2 2 out on localhost", "crash CRASH 9",
                                 "timeout TIMEOUT", "ok fine"])
    assert any("started pcontrol in" in m for m in sh.messages)
    assert any("added localhost" in m for m in sh.messages)
    # localhost's agent was the one pcontrol started beside its own start (pcontrol.spareagent)
    assert "localhost: its agent was started ahead" in (home / "pcontrol.log").read_text()
    # every job was harvested (the controller keeps harvested jobs for a retention time)
    held = json.loads(sh.run("controller jobs -json"))
    assert len(held) == 5 and all(j["harvested"] for j in held)
    sh.close()


def test_a_user_who_added_hosts_gets_exactly_those(home):
    subprocess.run([sys.executable, "-m", "pcontrol", "start"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pcontrol", "host", "add", "only", "-slots", "1",
                    "-connect", f"{sys.executable} -m pclient --slots 1"], check=True, capture_output=True)
    sh = Shell()
    sh.run("task t\n  command true\n  nmax 1\n  task.exit 0\n    echo ran on $job_host\n  end\nend\nrun\nwait -timeout 60")
    assert sh.lines() == ["ran on only"]
    hosts = json.loads(sh.run("controller hosts -json"))
    assert [h["name"] for h in hosts] == ["only"]
    sh.close()


def test_a_preferred_host_the_controller_lacks_is_said_once_and_its_jobs_run_elsewhere(home):
    sh = Shell()
    sh.run("task t\n  command true\n  host lcoalhost\n  nmax 2\n  npending 1\n  task.exit 0\n"
           "    echo ran on $job_host\n  end\nend\n"
           "task u\n  command true\n  host localhost\n  nmax 1\n  task.exit 0\n    echo u ran on $job_host\n  end\nend\n"
           "run\nwait -timeout 60")
    assert sh.lines() == ["ran on localhost", "ran on localhost", "u ran on localhost"]
    said = [m for m in sh.messages if "has no host" in m]
    assert said == ["task t: the controller has no host lcoalhost: its jobs run on any host "
                    "(`host lcoalhost -required` would keep them for that host)"], sh.messages
    sh.close()


def test_a_wait_that_runs_out_says_why_the_controllers_jobs_wait(home, tmp_path):
    """A newcomer's first script: a host that cannot be reached, `wait -timeout`: the message
    says what the controller knows (the job waits for a host, and what is wrong with it)."""
    script = tmp_path / "first.sched"
    script.write_text("controller host add far -connect {/no/such/agent}\n"
                      "task t\n  command true\n  nmax 1\nend\nrun\nwait -timeout 2\n")
    done = subprocess.run([*SCHED, str(script)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SCHED_HOME=str(home)))
    assert done.returncode == 1
    said = done.stderr.splitlines()
    timed_out = next(line for line in said if "wait: timed out after 2 s" in line)
    assert "still waiting for: t (1/1 made, 1 out); at the controller: 1 pending: no host is up: host far is " \
        in timed_out, said
    assert "/no/such/agent" in timed_out, said


def test_host_lost_mid_job_ends_down(home):
    sh = Shell()
    sh.run("task long\n  command sleep 60\n  nmax 1\n  task.exit down\n    echo down $job_id $job_state\n  end\nend\nrun")
    job = sh.wait_job(1, JobState.RUNNING)
    host = json.loads(sh.run("controller check host localhost -json"))
    os.kill(host["agent"]["local_pid"], signal.SIGKILL)
    sh.wait_job(1, JobState.DONE)
    assert job.outcome.value == "DOWN"
    assert sh.lines() == ["down 1 DOWN"]
    sh.close()


def test_required_host_that_is_off_ends_pending(home):
    sh = Shell()
    sh.run("controller host add offhost -slots 1 -connect false")
    sh.run("controller host off offhost")
    sh.run("""
task pinned
  command true
  host offhost -required
  nmax 1
  periods -pending 0.5
  task.exit pending
    echo pending $job_state
  end
end
run
wait -timeout 60
""")
    assert sh.lines() == ["pending PENDING"]
    sh.close()


def test_controller_kill_of_an_owned_job_is_refused_and_kill_at_the_prompt_works(home):
    sh = Shell()
    sh.run("task long\n  command sleep 60\n  nmax 1\n  task.exit killed\n    echo killed $job_id\n  end\nend\nrun")
    job = sh.wait_job(1, JobState.RUNNING)
    with pytest.raises(psched.SchedError, match="long"):
        sh.run(f"controller kill {job.controller_id}")
    sh.run("kill 1")
    sh.wait_job(1, JobState.DONE)
    assert job.outcome.value == "KILLED"
    assert sh.lines() == ["killed 1"]
    sh.close()


def test_exit_macro_not_rerun_when_sched_died_before_acknowledging(home):
    count = home / "count"
    task = f"""
task once
  command echo hi
  nmax 1
  task.exit 0
    exec sh -c "echo $job_id >> {count}"
  end
end
"""
    first = Shell()
    link = first.sched.remote
    real = link._request

    async def no_harvest(argv, what):  # sched "dies" before the controller hears the harvest
        if argv[0] != "harvest":
            await real(argv, what)

    link._request = no_harvest
    first.run(task + "run\nwait -timeout 60")
    assert count.read_text().split() == ["1"]
    held = json.loads(first.run("controller jobs -json"))
    assert len(held) == 1 and held[0]["state"] == "DONE"  # still unharvested at the controller
    first.close()

    second = Shell()  # a new sched on the same $SCHED_HOME
    second.run(task.replace("nmax 1", "nmax 1\n  active off"))
    second.run("run")
    run_until(second.sched.remote.connect())
    run_until(asyncio.sleep(0))
    assert all(j["harvested"] for j in json.loads(second.run("controller jobs -json")))  # acknowledged now
    assert count.read_text().split() == ["1"]  # and the macro did not run again
    second.close()


def test_sched_killed_mid_run_and_restarted_runs_each_exit_macro_once(home, tmp_path):
    count = tmp_path / "count"
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "jobs.sched"
    script.write_text(f"""
task work
  command sh -c "touch {marks}/\\$\\$; sleep 2; echo done"
  nmax 4
  npending 4
  task.exit 0
    exec sh -c "echo $job_id >> {count}"
  end
end
run
wait -timeout 60
""")
    env = dict(os.environ, SCHED_HOME=str(home))
    subprocess.run([sys.executable, "-m", "pcontrol", "start"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pcontrol", "host", "add", "localhost", "-slots", "4"], check=True,
                   capture_output=True)
    first = subprocess.Popen(SCHED + [str(script)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=ROOT)
    # wait until all four jobs run at the controller: each touches a mark file when it starts
    fut = get_loop().create_future()

    async def four_started():
        while len(list(marks.iterdir())) < 4:
            if first.poll() is not None:
                raise AssertionError(first.stderr.read().decode())
            await asyncio.sleep(0.05)

    run_until(asyncio.wait_for(four_started(), 30))
    del fut
    first.kill()
    first.wait()
    assert not count.exists()  # nothing finished before the kill
    second = subprocess.run(SCHED + [str(script)], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                            cwd=ROOT, timeout=120)
    assert second.returncode == 0, second.stderr.decode()
    assert len(count.read_text().split()) == 4  # every exit macro ran exactly once
    assert len(list(marks.iterdir())) == 4  # and no job was made twice


def test_retry_runs_a_job_again_elsewhere_when_its_host_is_lost(home):
    sh = Shell()
    pclient = f"{sys.executable} -m pclient --slots 1"
    sh.run(f"controller host add h1 -slots 1 -connect {{{pclient}}}")
    sh.run(f"controller host add h2 -slots 1 -connect {{{pclient}}}")
    sh.run("""
task sturdy
  command sh -c {sleep 1; echo finished}
  nmax 1
  retry 1
  task.exit 0
    echo "sturdy [string trim $stdout] on $job_host"
  end
end
run
""")
    job = sh.wait_job(1, JobState.RUNNING)
    record = json.loads(sh.run(f"controller check job {job.controller_id} -json"))
    lost = record["ran_on"]
    host = json.loads(sh.run(f"controller check host {lost} -json"))
    os.kill(host["agent"]["local_pid"], signal.SIGKILL)
    sh.wait_job(1, JobState.DONE)
    other = {"h1": "h2", "h2": "h1"}[lost]
    assert sh.lines() == [f"sturdy finished on {other}"]
    record = json.loads(sh.run(f"controller check job {job.controller_id} -json"))
    assert [a["host"] for a in record["attempts"]][:1] == [lost]
    sh.close()


def _full_harvest_log(monkeypatch, refusals: int | None = None) -> list:
    """The harvest log refuses its `+KEY` lines as a full disk does, `refusals` times (None: for
    good), and sched tries again every 0.05 s; the count of refusals left, as a list."""
    import errno

    from psched.scheduler import remote

    monkeypatch.setattr(remote, "BEGIN_RETRY", 0.05)
    left = [refusals]
    append = remote.HarvestLog._append

    def full_disk(self, line):
        if line.startswith("+") and (left[0] is None or left[0] > 0):
            if left[0] is not None:
                left[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        append(self, line)

    monkeypatch.setattr(remote.HarvestLog, "_append", full_disk)
    return left


def test_an_exit_macro_whose_begin_the_harvest_log_cannot_keep_waits_and_runs_once(home, monkeypatch):
    """A full disk refuses the harvest log's `+KEY` line: the macro does not run unrecorded
    (a crash would run it twice); it runs once the line can be written, once, and the job
    is harvested (said once, not once a try)."""
    refusals = _full_harvest_log(monkeypatch, 3)
    sh = Shell()
    sh.run("""
task full
  command echo fine
  nmax 2
  task.exit 0
    echo "ran $job_id [string trim $stdout]"
  end
end
run
wait -timeout 60
""")
    assert refusals == [0]
    assert sh.lines() == ["ran 1 fine", "ran 2 fine"]
    waits = [m for m in sh.messages if "its exit macro waits: cannot write" in m]
    assert len(waits) == 1 and "No space left on device" in waits[0], sh.messages
    keys = (home / "harvested.log").read_text().split()
    assert len([k for k in keys if k.startswith("+")]) == 2
    sh.close()  # (its harvest log written before the fixture removes the home)


def test_controller_commands_work_in_an_exit_macro(home):
    """A macro cannot wait on the loop that runs it: a `controller` command there goes on a
    connection of its own while the macro waits (a failed probe takes its host off, say)."""
    sh = Shell()
    sh.run("""
task probe
  command sh -c "exit 3"
  nmax 1
  task.exit 3
    controller host off $job_host
    echo [controller check host $job_host]
  end
end
run
wait -timeout 60
""")
    assert not [m for m in sh.messages if "error in task.exit" in m], sh.messages
    said = sh.out.getvalue().splitlines()
    assert said[:1] == ["host:      localhost"] and said[1].startswith("state:     OFF since"), said
    assert "localhost  OFF" in sh.run("controller hosts")
    sh.close()  # (its harvest log written before the fixture removes the home)


def test_cwd_is_where_jobs_run_local_and_controller_alike(home, tmp_path):
    """`cwd DIR`: the same directory for a LOCAL job and a controller job (`./x.sh` found
    alike); one missing on the host ends the job EXIT 127 saying so."""
    work = tmp_path / "work dir"
    work.mkdir()
    (work / "x.sh").write_text("#!/bin/sh\npwd\n")
    (work / "x.sh").chmod(0o755)
    sh = Shell()
    sh.run(f"""
task here
  host LOCAL
  command ./x.sh
  cwd {{{work}}}
  nmax 1
  task.exit default
    echo "here $job_state [string trim $stdout]"
  end
end
task there
  host NONE
  command ./x.sh
  cwd {{{work}}}
  nmax 1
  task.exit default
    echo "there $job_state [string trim $stdout]"
  end
end
task nowhere
  host NONE
  command ./x.sh
  cwd {tmp_path / "gone"}
  nmax 1
  task.exit default
    echo "nowhere $job_state $exit_status $job_reason"
  end
end
run
wait -timeout 60
""")
    assert sorted(sh.lines()) == [f"here EXIT {work}",
                                  f"nowhere EXIT 127 cannot start './x.sh': bad working directory "
                                  f"'{tmp_path / 'gone'}': No such file or directory",
                                  f"there EXIT {work}"]
    sh.close()  # (its harvest log written before the fixture removes the home)


def test_a_sched_leaving_while_an_exit_macro_waits_for_the_harvest_log_says_it_leaves_the_job(home, monkeypatch):
    """The disk stays full: sched leaves with the macro still waiting; it says the job is the
    next sched's (whose macro then runs it), rather than leaving it unsaid, and makes no more
    tries (one made after it left ran the macro in a closed sched, and wrote its harvest log
    into a home the fixture had removed)."""
    from psched.scheduler import remote
    from psched.scheduler.eventloop import run_until
    from waiting import wait_until

    _full_harvest_log(monkeypatch)
    monkeypatch.setattr(remote, "BEGIN_RETRY", 3600.0)  # its next try stays armed until sched leaves
    sh = Shell()
    sh.run("""
task stuck
  command echo fine
  nmax 1
  task.exit 0
    echo "ran $job_id"
  end
end
run
""")
    run_until(wait_until(lambda: any("its exit macro waits" in m for m in sh.messages), "the macro waits"), "test",
              interruptible=False)
    tries = list(sh.sched.remote._macros_waiting.values())
    sh.close()
    assert len(tries) == 1 and tries[0].cancelled()
    assert sh.lines() == []
    left = [m for m in sh.messages if "left to the next sched" in m]
    assert left == [f"1 controller job(s) whose exit macro waited for {home / 'harvested.log'} to be writable "
                    "are left to the next sched, which runs their macros"]


def test_the_embedded_defaults_host_check_is_made_again_when_the_connection_broke_under_it(home, monkeypatch):
    """The check that gives a controller with no host localhost failed (the connection broke
    as it asked, pcontrol killed): it is made again at the next flush, not counted as done --
    the job waited for ever at a controller with no host."""
    from pcontrol.client import ControllerClient
    from pcontrol.errors import ControllerDisconnected

    broken = [1]
    call = ControllerClient.call

    async def breaking(self, *argv, **kwargs):
        if argv[:2] == ("hosts", "-json") and broken[0]:
            broken[0] -= 1
            raise ControllerDisconnected("connection to pcontrol lost: (the test)")
        return await call(self, *argv, **kwargs)

    monkeypatch.setattr(ControllerClient, "call", breaking)
    sh = Shell()
    sh.run("""
task once
  command echo fine
  nmax 1
  task.exit 0
    echo "ran [string trim $stdout]"
  end
end
run
wait -timeout 30
""")
    assert broken == [0]
    assert sh.lines() == ["ran fine"]
    assert any("added localhost" in m for m in sh.messages), sh.messages
    sh.close()  # (its harvest log written before the fixture removes the home)
