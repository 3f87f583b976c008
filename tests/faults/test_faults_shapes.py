"""Exactly once whatever the script's shape (issue 12), through real `sched` processes and a
real pcontrol with local agents:

- a restarted sched takes back the running and finished jobs of its earlier run also when the
  script talks to the controller (`controller hosts`, `controller host add`) before its task
  blocks: the bug was that those jobs were never adopted, their exit macros never ran, and
  the last sched exited 0 with jobs still running;
- `wait` returns when the run ledger says the task already made its `nmax` (a sched killed
  after its last harvest);
- a macro that sched was SIGKILLed in runs again in full under the next sched, told so by
  `$job_rerun` (the bug: the harvest was recorded before the macro, so the macro was lost);
- the random fault test: sched, pcontrol and agents killed at random moments while scripts
  of different shapes run; every exit macro exactly once with the job's true outcome (a
  macro interrupted by a kill of sched: its start, then one full rerun), nothing left
  running, nmax never exceeded. Several seeds, each bounded in time.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from fault_harness import (FAST_SERVE, ROOT, SCHED, FaultHome, alive, count, job_script, kill_all,
                           pids_with_arg, read_exit_log, wait_until_sync)


def gated(gate: Path, then: str = "echo finished") -> str:
    return f"while [ ! -e {gate} ]; do sleep 0.02; done; {then}"


def sched(home: FaultHome, script: Path) -> subprocess.Popen:
    return subprocess.Popen([*SCHED, str(script)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=home.env, cwd=ROOT)


def states(home: FaultHome) -> collections.Counter:
    return collections.Counter(("harvested" if r["harvested"] else r["state"]) for r in home.jobs_sync(home.owner))


PREFIXES = {
    "controller-hosts-first": "controller hosts\n",
    "host-add-first": "catch {controller host add h1 -slots 8}\ncontroller hosts\n",
    "tasks-first": "",
}


@pytest.mark.parametrize("shape", list(PREFIXES))
def test_a_restarted_sched_takes_back_every_job_whatever_comes_before_the_task(
        fault_home: FaultHome, shape: str) -> None:
    """24 jobs on 2 hosts; sched is SIGKILLed with 8 harvested and 16 running; 8 end while no
    sched runs; the same script runs again: it adopts the 8 that ended (their macros run) and
    the 8 still running (followed to their end), and exits 0 with nothing left."""
    home = fault_home
    home.start()
    home.add_local_hosts(["h1", "h2"], slots=8)
    exit_log = home.path / "exits"
    gate_a, gate_b = home.path / "gate-a", home.path / "gate-b"
    script = home.path / "jobs.sched"
    script.write_text(PREFIXES[shape] + job_script("work", exit_log, ["echo quick", gated(gate_a), gated(gate_b)],
                                                   nmax=24, npending=24) + "run\nwait -timeout 90\n")
    run_and_kill_at(home, script, {"harvested": 8, "BUSY": 16})
    gate_a.touch()
    wait_until_sync(lambda: states(home) == {"harvested": 8, "DONE": 8, "BUSY": 8}, "8 jobs ended unharvested")

    def then(second: subprocess.Popen) -> None:
        wait_until_sync(lambda: second.poll() is None and len(read_exit_log(exit_log)) == 16,
                        "the jobs that ended meanwhile have had their macros", 60)
        gate_b.touch()

    run_again_to_its_end(home, script, then)
    assert_each_macro_once(home, exit_log, 24)
    assert not pids_with_arg(str(gate_b))


def run_and_kill_at(home: FaultHome, script: Path, wanted: dict[str, int]) -> None:
    """Run the script; SIGKILL its sched once the jobs' states at the controller are `wanted`."""
    first = sched(home, script)
    try:
        wait_until_sync(lambda: first.poll() is None and states(home) == wanted, f"job states {wanted}", 60)
    finally:
        first.kill()
        first.communicate()


def run_again_to_its_end(home: FaultHome, script: Path, then: Callable[[subprocess.Popen], None]) -> None:
    """Run the script again, `then` while it runs; it must end with status 0."""
    second = sched(home, script)
    try:
        then(second)
        out, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, err.decode()


def assert_each_macro_once(home: FaultHome, exit_log: Path, jobs: int) -> None:
    records = home.jobs_sync(home.owner)
    tally = count(records, read_exit_log(exit_log))
    assert tally.clean, tally.summary()
    assert tally.one_outcome == tally.submitted == jobs, tally.summary()
    assert all(r["harvested"] for r in records)


def test_a_newcomers_script_with_host_add_at_the_top_runs_again_after_a_kill(
        fault_home: FaultHome) -> None:
    """The script a newcomer writes first: `controller host add localhost` at the top, no
    `catch`. Run again after sched is SIGKILLed, its `host add` finds the host it made and goes
    on (the bug: it failed at line 1 with `host "localhost" already exists`, and the jobs of the
    killed run waited for their macros); every exit macro runs once."""
    home = fault_home
    home.start()
    exit_log = home.path / "exits"
    gate = home.path / "gate"
    script = home.path / "jobs.sched"
    script.write_text("controller host add localhost -slots 16\n" + job_script(
        "work", exit_log, ["echo quick", gated(gate)], nmax=16, npending=16) + "run\nwait -timeout 90\n")
    run_and_kill_at(home, script, {"harvested": 8, "BUSY": 8})
    run_again_to_its_end(home, script, lambda second: gate.touch())
    assert_each_macro_once(home, exit_log, 16)


def test_wait_returns_when_the_ledger_says_nmax_was_reached(fault_home: FaultHome) -> None:
    """A sched killed after its last harvest leaves a ledger saying the task made its nmax;
    the next sched with the same script must not hang in `wait` (nor make a job)."""
    home = fault_home
    home.start()
    home.add_local_hosts(["h1"], slots=4)
    exit_log = home.path / "exits"
    task = job_script("work", exit_log, ["echo quick"], nmax=4, npending=4)
    script = home.path / "jobs.sched"
    script.write_text(task + "run\nwait -timeout 60\nputs waited\nafter 600000\n")
    again = home.path / "again.sched"
    again.write_text(task + "run\nwait -timeout 30\nputs waited\n")
    first = sched(home, script)
    try:
        wait_until_sync(lambda: states(home) == {"harvested": 4} and len(read_exit_log(exit_log)) == 4,
                        "4 jobs harvested", 60)
        assert first.stdout.readline() == b"waited\n"
    finally:
        first.kill()  # after its last harvest, in `after`: the ledger stays
        first.communicate()
    second = sched(home, again)
    out, err = second.communicate(timeout=60)
    assert (second.returncode, out) == (0, b"waited\n"), err.decode()
    assert b"had made 4 job(s) of nmax 4" in err
    assert len(read_exit_log(exit_log)) == 4 and states(home) == {"harvested": 4}


def test_a_macro_that_sched_died_in_runs_again_in_full(fault_home: FaultHome) -> None:
    """The window the random test found: sched is SIGKILLed while a controller job's exit
    macro runs (the macro has begun, written a line, and waits on a gate). The next sched
    runs that macro again, in full, with `$job_rerun` 1, and exits 0 with the job harvested;
    the bug was that the harvest was recorded before the macro, so the next sched only
    acknowledged the job and its macro never ran to its end."""
    home = fault_home
    home.start()
    home.add_local_hosts(["h1"], slots=2)
    log, gate = home.path / "macro.log", home.path / "gate"
    script = home.path / "jobs.sched"
    script.write_text(f"""
task work
  host NONE
  nmax 1
  command echo hi
  task.exit default
    exec sh -c {{echo "begun r=$1" >> "$2"; while [ ! -e "$3" ]; do sleep 0.02; done; echo "ended r=$1" >> "$2"}} macro $job_rerun {{{log}}} {{{gate}}}
  end
end
run
wait -timeout 60
""")
    first = sched(home, script)
    try:
        wait_until_sync(lambda: log.exists() and log.read_text() == "begun r=0\n", "the macro has begun", 60)
    finally:
        first.kill()
        first.communicate()
    kill_all(pids_with_arg(str(gate)))  # the first macro's shell: it dies with its sched here
    assert home.jobs_sync(home.owner)[0]["harvested"] is None
    gate.touch()
    second = sched(home, script)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    assert log.read_text() == "begun r=0\nbegun r=1\nended r=1\n"
    records = home.jobs_sync(home.owner)
    assert len(records) == 1 and records[0]["harvested"], records


# -- the random fault test ---------------------------------------------------------------------

def shaped_script(shape: str, exit_log: Path, nmax: int, retry: int) -> str:
    """One of the script shapes the fault test runs."""
    kinds = ["echo quick", "sleep 0.3", "sleep 0.8; exit 3", "sleep 1.5"]
    controller = job_script("work", exit_log, kinds, nmax=nmax, npending=6, retry=retry)
    local = job_script("loc", exit_log, ["sleep 0.2", "exit 2"], nmax=nmax // 2, npending=2, host="LOCAL")
    if shape == "controller-first":
        return "controller hosts\n" + controller + local + "run\nwait -timeout 120\n"
    if shape == "controller-after":
        return controller + "controller hosts\n" + local + "run\nwait -timeout 120\n"
    return local + controller + "run\nwait -timeout 120\n"


def _kill_something(rng: random.Random, home: FaultHome, proc: subprocess.Popen) -> str:
    """SIGKILL one of sched, pcontrol or an agent; say which."""
    victim = rng.choice(["sched", "sched", "pcontrol", "agent"])
    if victim == "sched" and proc.poll() is None:
        proc.kill()
        proc.communicate()
        return "sched"
    if victim == "pcontrol" and home.pid() is not None:
        try:
            home.kill_pcontrol()
        except AssertionError:
            return "nothing"
        home.pcontrol("start", *FAST_SERVE, check=False)  # sched may have started it already
        return "pcontrol"
    agents = home.agents()
    if victim == "agent" and agents:
        with_pid = rng.choice(agents)
        try:
            os.kill(with_pid, signal.SIGKILL)
        except ProcessLookupError:
            return "nothing"
        return "agent"
    return "nothing"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kills_of_sched_pcontrol_and_agents(fault_home: FaultHome, seed: int) -> None:
    """For one seed: a shape, a retry count, then up to 4 random SIGKILLs at random moments
    while `sched SCRIPT` runs (restarted whenever it was killed), then runs to the end. Every
    controller job's exit macro ran to its end once with its true outcome (a macro that a
    killed sched was in runs again in full, `$job_rerun` 1: at most one such rerun per kill
    of sched, as one macro runs at a time); local jobs of a killed sched died with it (never
    a macro twice); no task made more than its nmax; nothing is left."""
    rng = random.Random(seed)
    shape = ["controller-first", "controller-after", "local-first"][seed % 3]
    retry = rng.choice([0, 1])
    nmax = 24
    home = fault_home
    home.start()
    home.add_local_hosts(["h1", "h2"], slots=4)
    exit_log = home.path / "exits"
    script = home.path / "jobs.sched"
    script.write_text(shaped_script(shape, exit_log, nmax, retry))
    deadline = time.monotonic() + 150
    kills: list[str] = []
    proc = sched(home, script)
    try:
        for _ in range(4):
            # a random moment, told by the work done so far (never a fixed sleep)
            target = len(read_exit_log(exit_log)) + rng.randint(1, 6)
            wait_until_sync(lambda: proc.poll() is not None or len(read_exit_log(exit_log)) >= target,
                            f"{target} exit macros have run", 60)
            if proc.poll() is not None:
                break
            kills.append(_kill_something(rng, home, proc))
            if proc.poll() is not None:
                if proc.returncode == 0:
                    break  # it had finished its run as pcontrol or an agent was killed: not a kill of sched
                proc = sched(home, script)
        if proc.poll() is not None and proc.returncode != 0:
            proc = sched(home, script)  # killed at the last moment: the next sched finishes
        out, err = proc.communicate(timeout=max(10, deadline - time.monotonic()))
        if proc.returncode != 0:  # killed by an agent's loss? one more sched takes the rest
            proc = sched(home, script)
            out, err = proc.communicate(timeout=max(10, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"kills {kills}: {err.decode()[-2000:]}"
    lines = read_exit_log(exit_log)
    if home.pid() is None:  # a sched that started the daemon itself (after a kill) stops it
        home.start()
    records = home.jobs_sync(home.owner)
    controller_lines = [line for line in lines if any(line.token == r["argv"][-1] for r in records)]
    tally = count(records, controller_lines)
    assert (tally.lost, tally.duplicated, tally.submitted_twice, tally.not_done, tally.wrong_outcome) == \
        ([], [], [], [], []), f"kills {kills}: {tally.summary()}"
    assert len(tally.reruns) <= kills.count("sched"), f"kills {kills}: {tally.summary()}"
    assert all(r["harvested"] for r in records), kills
    assert tally.submitted <= nmax, f"nmax exceeded: {tally.submitted} > {nmax} (kills {kills})"
    assert tally.submitted == nmax, f"kills {kills}: {tally.summary()}"
    local_tokens = collections.Counter(line.token for line in lines if line not in controller_lines)
    assert all(n == 1 for n in local_tokens.values()), local_tokens
    wait_until_sync(lambda: not _job_processes(home), "no job process is left", 30)


def _job_processes(home: FaultHome) -> list[int]:
    """Processes of the test's jobs still alive (agents excluded)."""
    from fault_harness import pids_where

    marker = f"PCLIENT_RUNTIME_DIR={home.run_dir}\0".encode()
    return [pid for pid in pids_where(lambda cmd, env: marker in env and b"pclient" not in cmd
                                      and (b"sleep" in cmd or b"sh\0-c" in cmd)) if alive(pid)]
