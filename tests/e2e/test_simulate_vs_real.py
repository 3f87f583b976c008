"""Issue 15: one script, run for real (~15 s, local agents under a real pcontrol) and simulated
(`sched --simulate` with a faults file describing the same events); the two agree.

The script's exit macros print one RESULT line per job (task, job, host, outcome, start and
end in ms after the script's start, by `clock`, which is virtual in the simulation), so both
runs are read the same way, from what the script itself says.

What the script holds: periods of a second or less (`tick`, -exec 0.5), a task with a trange
window and nmax (`windowed`), a job that times out (`slow`, twice), and a job on a host that
is killed while it runs (`victim` on h2), which its -retry runs again on h1. The real run's
h2 agent is killed by this test (SIGKILL, as an operator's mistake would) once the victim
runs there; the faults file says `host h2 killed at T` with the T measured.

Agreement: the same jobs of each task, in order, on the same hosts, with the same outcomes;
start times within START_TOLERANCE. Jobs are compared by their index within their task: the
global job ids agree too unless two tasks make a job in the same millisecond, which the
real clock may order either way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sched"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from sched_process import SCHED, kill_group  # noqa: E402
from waiting import wait_until_sync  # noqa: E402

PCONTROL = [str(Path(sys.executable).parent / "pcontrol")]

START_TOLERANCE = 1.0
"""Seconds a real job's start may differ from the simulated one's: a real job start passes
through sched, pcontrol and an agent (tens of ms each on a machine shared by many tests), and a
late start moves the next look of its task."""

SCRIPT = """
controller host add h1 -slots 4 -connect {PCLIENT --slots 4}
controller host add h2 -slots 1 -connect {PCLIENT --slots 1}
foreach h {h1 h2} {
  while {![string match "*IDLE*" [controller check host $h]]} { after 50 }
}
set t0 [clock milliseconds]
puts "T0 $t0"
set from [clock format [expr {[clock seconds] - 120}] -format %H:%M]
set to [clock format [expr {[clock seconds] + 300}] -format %H:%M]
proc result {task job host state status elapsed} {
    set end [expr {[clock milliseconds] - $::t0}]
    set start [expr {$end - int($elapsed * 1000)}]
    puts "RESULT $task $job $host $state $status $start $end"
}
task tick
  command sleep 0.3
  host h1 -required
  periods -poll 0.5 -exec 0.5
  nmax 20
  task.exit default
    result $task $job_id $job_host $job_state $exit_status $job_elapsed
  end
end
task windowed
  command sleep 0.2
  host h1 -required
  periods -exec 2.25
  trange $from $to
  nmax 3
  task.exit default
    result $task $job_id $job_host $job_state $exit_status $job_elapsed
  end
end
task slow
  command sleep 30
  host h1 -required
  periods -timeout 1.75
  nmax 2
  task.exit default
    result $task $job_id $job_host $job_state $exit_status $job_elapsed
  end
end
task victim
  command sleep 6
  host h2
  retry 1
  nmax 1
  task.exit default
    result $task $job_id $job_host $job_state $exit_status $job_elapsed
  end
end
run
wait
"""

FAULTS = """\
# the same events as the real run
job "sleep 0.3" takes 300ms
job "sleep 0.2" takes 200ms
job "sleep 30" times out
job "sleep 6" takes 6s
host h2 killed at {kill:.3f}s
"""


def _results(out: str) -> tuple[int, dict[str, list[tuple]]]:
    t0 = None
    by_task: dict[str, list[tuple]] = {}
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["T0"]:
            t0 = int(words[1])
        elif words[:1] == ["RESULT"]:
            _, task, job, host, state, *rest = words
            status = rest[0] if len(rest) == 3 else ""
            start, end = int(rest[-2]), int(rest[-1])
            by_task.setdefault(task, []).append((int(job), host, state, status, start / 1000, end / 1000))
    assert t0 is not None, out
    return t0, by_task


def _pcontrol(home: Path, *argv: str) -> object:
    done = subprocess.run([*PCONTROL, "--home", str(home), *argv, "-json"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.timeout(240)
def test_simulation_agrees_with_a_real_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "mixed.sched"
    script.write_text(SCRIPT.replace("PCLIENT", f"{sys.executable} -m pclient"))
    env = dict(os.environ, SCHED_HOME=str(home))

    real = subprocess.Popen([*SCHED, str(script)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        def victim_on_h2() -> bool:
            if not (home / "pcontrol.sock").exists():
                return False
            try:
                host = _pcontrol(home, "check", "host", "h2")
            except (AssertionError, ValueError):  # not up yet
                return False
            return bool(host.get("running"))

        wait_until_sync(victim_on_h2, "the victim job running on h2", 60)
        host = _pcontrol(home, "check", "host", "h2")
        os.kill(host["agent"]["local_pid"], signal.SIGKILL)
        killed_at = time.time()
        out, err = real.communicate(timeout=120)
    finally:
        kill_group(real.pid)
        subprocess.run([*PCONTROL, "--home", str(home), "stop"], capture_output=True, timeout=60)
    assert real.returncode == 0, err
    t0, real_results = _results(out)

    faults = tmp_path / "faults.txt"
    faults.write_text(FAULTS.format(kill=killed_at - t0 / 1000))
    start = datetime.fromtimestamp(t0 / 1000).isoformat(timespec="milliseconds")
    sim_home = tmp_path / "sim-home"
    sim_home.mkdir()
    simulated = subprocess.run([*SCHED, "--simulate", "20s", "--start", start, "--faults", str(faults), "--seed", "1",
                                str(script)], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, SCHED_HOME=str(sim_home)))
    assert simulated.returncode == 0, simulated.stderr
    sim_t0, sim_results = _results(simulated.stdout)
    assert sim_t0 == t0
    assert list(os.scandir(sim_home)) == []

    assert sorted(real_results) == sorted(sim_results) == ["slow", "tick", "victim", "windowed"]
    worst = 0.0
    for task in real_results:
        real_jobs, sim_jobs = real_results[task], sim_results[task]
        assert [(h, s, st) for _, h, s, st, _, _ in real_jobs] == [(h, s, st) for _, h, s, st, _, _ in sim_jobs], task
        for (_, _, _, _, real_start, _), (_, _, _, _, sim_start, _) in zip(real_jobs, sim_jobs):
            assert abs(real_start - sim_start) <= START_TOLERANCE, (task, real_jobs, sim_jobs)
            worst = max(worst, abs(real_start - sim_start))
    print(f"largest start difference: {worst:.3f} s over {sum(map(len, real_results.values()))} jobs")
    assert len(real_results["tick"]) == 20
    assert [r[2] for r in real_results["slow"]] == ["TIMEOUT", "TIMEOUT"]
    assert [r[1:3] for r in real_results["victim"]] == [("h1", "EXIT")]
    # the simulation's own timeline says the victim was requeued off h2
    timeline = [line for line in simulated.stdout.splitlines() if " requeued " in line]
    assert timeline and "victim" in timeline[0] and "h2" in timeline[0], simulated.stdout
