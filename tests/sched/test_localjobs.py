"""Local jobs through the whole scheduler with real processes: every outcome, kill, big output."""

import asyncio
import io
import os
from pathlib import Path

import pytest

import psched
from psched.lang.errors import SchedError
from psched.scheduler.eventloop import get_loop, run_until
from psched.scheduler.jobs import JobState
from psched.scheduler.attach import scheduler_of
from procs import alive


@pytest.fixture
def interp(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHED_HOME", str(tmp_path / "home"))  # job ids start at 1
    out = io.StringIO()
    it = psched.Interp(stdout=out)
    it.out = out
    sched = scheduler_of(it)
    sched.messages = []
    sched.on_message = sched.messages.append
    yield it
    sched.stop()


def run_script(interp, text):
    return interp.eval(text, "jobs.sched")


def wait_for_job(interp, job_id, state):
    """Run the loop until job `job_id` reaches `state` (told by the scheduler, no polling)."""
    sched = scheduler_of(interp)
    fut = get_loop().create_future()

    def listener(job):
        if job.id == job_id and job.state is state and not fut.done():
            fut.set_result(job)

    sched.job_listeners.append(listener)
    try:
        job = sched.jobs.get(job_id)
        if job is not None and job.state is state:
            return job
        return run_until(asyncio.wait_for(fut, 20))
    finally:
        sched.job_listeners.remove(listener)


def test_every_outcome_lands_in_its_exit_macro(interp):
    run_script(interp, r"""
task ok
  host LOCAL
  command sh -c {echo hello; echo warn >&2}
  nmax 1
  task.exit 0
    echo "ok: [string trim $stdout] / [string trim $stderr] / $job_state"
  end
end
task three
  host LOCAL
  command sh -c {exit 3}
  nmax 1
  task.exit 3
    echo "three: $exit_status ($job_reason)"
  end
end
task missing
  host LOCAL
  command /no/such/program
  nmax 1
  task.exit 127
    echo "missing: $exit_status [string match *no/such/program* $stderr]"
  end
end
task crash
  host LOCAL
  command sh -c {kill -SEGV $$}
  nmax 1
  task.exit crash
    echo "crash: $job_state $job_signal"
  end
end
task slow
  host LOCAL
  command sleep 30
  nmax 1
  periods -timeout 0.2
  task.exit timeout
    echo "timeout: $job_state"
  end
end
run
wait -timeout 20
""")
    lines = sorted(interp.out.getvalue().splitlines())
    assert lines == sorted([
        "ok: hello / warn / EXIT", "three: 3 (exited with status 3)", "missing: 127 1", "crash: CRASH 11", "timeout: TIMEOUT",
    ])


def test_timeout_kills_the_grandchildren_too(interp, tmp_path):
    pidfile = tmp_path / "pids"
    run_script(interp, f"""
task forker
  host LOCAL
  command sh -c {{sleep 60 & echo $! > {pidfile}; (setsid sleep 60 & echo $! >> {pidfile}); wait}}
  nmax 1
  periods -timeout 0.5
end
run
wait -timeout 20
""")
    job = scheduler_of(interp).jobs[1]
    assert job.outcome.value == "TIMEOUT"
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    assert not any(alive(p) for p in pids)


def test_kill_at_the_prompt(interp):
    run_script(interp, "task k\n  host LOCAL\n  command sleep 30\n  nmax 1\n  task.exit killed\n    echo killed $job_id\n  end\nend\nrun")
    job = wait_for_job(interp, 1, JobState.RUNNING)
    assert job.pid and alive(job.pid)
    assert run_script(interp, "kill 1") == "job 1 is being killed"
    wait_for_job(interp, 1, JobState.DONE)
    assert job.outcome.value == "KILLED"
    assert interp.out.getvalue() == "killed 1\n"
    assert not alive(job.pid)


def test_big_output_is_captured_without_deadlock_and_cut_with_a_note(interp):
    sched = scheduler_of(interp)
    sched.output_limit = 100_000
    run_script(interp, """
task big
  host LOCAL
  command sh -c {yes a | head -c 3000000; yes b | head -c 3000000 >&2}
  nmax 1
  task.exit default
    set ::out $stdout
    set ::err $stderr
  end
end
run
wait -timeout 30
""")
    job = sched.jobs[1]
    assert job.outcome.value == "EXIT" and job.status == 0
    assert job.stdout_bytes == 3_000_000 and job.stderr_bytes == 3_000_000
    out, err = interp.get_var("::out"), interp.get_var("::err")
    assert out.startswith("a\n" * 50_000)
    assert "output cut: kept 100000 of 3000000 bytes" in out
    assert "output cut" in err
    assert job.stdout == job.stderr == ""  # delivered to the macro, not kept


def test_output_destinations_files_and_variables(interp, tmp_path):
    out = tmp_path / "out.log"
    err = tmp_path / "err.log"
    run_script(interp, f"""
task dest
  host LOCAL
  command sh -c {{echo line; echo oops >&2}}
  nmax 2
  stdout -append {out}
  stderr {err}
end
task var
  host LOCAL
  command echo into-var
  nmax 1
  stdout -var captured
end
run
wait -timeout 20
""")
    assert out.read_text() == "line\nline\n"
    assert err.read_text() == "oops\n"
    assert run_script(interp, "set captured") == "into-var\n"


def test_macro_error_does_not_stop_other_tasks(interp):
    run_script(interp, """
task bad
  host LOCAL
  command true
  nmax 3
  task.exit 0
    error "broken macro"
  end
end
task good
  host LOCAL
  command true
  nmax 3
  task.exit 0
    echo good $job_id
  end
end
run
wait -timeout 20
""")
    sched = scheduler_of(interp)
    assert interp.out.getvalue().count("good") == 3
    said = [m for m in sched.messages if "error in task.exit 0" in m and "broken macro" in m]
    assert len(said) == 1 and "said again at most every 10 min" in said[0]  # the same error: said once
    assert [bool(j.macro_error) for j in sorted(sched.jobs.values(), key=lambda j: j.id) if j.task == "bad"] == [True] * 3
    assert all(j.done for j in sched.jobs.values())


def test_wait_times_out_with_a_clear_error(interp):
    run_script(interp, "task s\n  host LOCAL\n  command sleep 30\n  nmax 1\nend\nrun")
    with pytest.raises(SchedError, match=r"wait: timed out after 0.2 s; still waiting for: s \(1/1 made, 1 out"):
        run_script(interp, "wait -timeout 0.2")
    run_script(interp, "kill 1")
    run_script(interp, "wait -timeout 20")


def test_wait_refuses_tasks_that_never_finish(interp):
    run_script(interp, "task forever\n  host LOCAL\n  command true\nend")
    with pytest.raises(SchedError, match="no nmax"):
        run_script(interp, "wait forever")


def test_queue_between_a_feeder_and_a_consumer(interp):
    run_script(interp, """
queueinit work
task feeder
  host LOCAL
  command echo item
  nmax 3
  task.exit 0
    queuepush work "[string trim $stdout]-$job_id"
  end
end
task consumer
  host LOCAL
  command true
  nmax 3
  task.exec
    if [queuesize work] == 0
      skip
    end
    command echo [queuepop work]
  end
  task.exit 0
    echo consumed [string trim $stdout]
  end
end
run
wait -timeout 20
""")
    assert sorted(interp.out.getvalue().splitlines()) == ["consumed item-1", "consumed item-2", "consumed item-3"]
    assert Path(os.devnull).exists()


def test_short_jobs_arm_no_timer_per_job(interp, monkeypatch):
    """A task looked at again at each job's end runs that look on the loop's next turn: the
    timers it arms are its poll periods (one a second), not one or two a job."""
    import time

    loop = get_loop()
    sched = scheduler_of(interp)
    timers = []
    real_call_at = loop.call_at

    def counting_call_at(when, callback, *args, **kwargs):
        if getattr(callback, "__self__", None) is sched:
            timers.append(when)
        return real_call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    started = time.monotonic()
    run_script(interp, """
task many
  host LOCAL
  command true
  nmax 60
  npending 4
  task.exit 0
    echo ended $job_id
  end
end
run
wait -timeout 60
""")
    elapsed = time.monotonic() - started
    assert sorted(interp.out.getvalue().split("\n")[:-1]) == sorted(f"ended {n}" for n in range(1, 61))  # each once
    assert len(timers) <= 2 + elapsed, (len(timers), elapsed)
