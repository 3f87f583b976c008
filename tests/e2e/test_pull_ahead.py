"""Pull probes are told the time of their next run, not of their next check-in (issue 16): one
`pcontrol serve --pull-listen 127.0.0.1:PORT` with a long --pull-interval (4 s) for the module,
`pclient --pull` probes as processes, jobs with a planned start (`job -not-before EPOCH`, what
sched sends for a rounds run made ahead).

With a 4 s interval, a probe that learnt of a job only at its next check-in would start it up to
4 s late; these tests hold it to under a second, and check the planned start survives a
restart of pcontrol and that a job withdrawn before its run time never runs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from pclient.pullwire import RUN_NEAR
from pullworld import PullWorld, kill, pull_world
from waiting import wait_until_sync

WAIT = 40.0
INTERVAL = 4.0
ON_TIME = 1.0
"""How late after its planned start a job may start: a check-in is one loopback round trip
(measured 30-70 ms), but the machine is shared by many test runs; a job learnt of at the next
check-in would be up to INTERVAL (4 s) late."""


@pytest.fixture(scope="module")
def world() -> Iterator[PullWorld]:
    with pull_world("ahead.", "--pull-interval", str(INTERVAL), "--pull-grace", "2", wait=WAIT) as w:
        yield w


def probe_in(world: PullWorld, name: str) -> None:
    """A probe of a new pull host, once it has checked in."""
    world.probe(name, world.add_probe(name))
    wait_until_sync(lambda: world.host(name)["agent"].get("pull_last"), f"{name} checked in", WAIT)


def planned(world: PullWorld, name: str, at: float, *argv: str) -> str:
    """A job for `name` with its planned start at `at` (what sched sends for a run made ahead)."""
    return world.pcontrol("job", "-host", name, "-required", "-not-before", repr(at), "--", *argv).stdout.strip()


STAMP = ["sh", "-c", "date +%s.%N"]


def told(log: str, job_id: str) -> list[float]:
    """The run times a probe's log says it was told for `job_id` (the log's time + the wait)."""
    times = []
    for stamp, wait in re.findall(rf"^(\S+ \S+) pclient-probe\[\d+\] INFO checked in: next run in ([\d.]+) s, "
                                  rf"job {re.escape(job_id)}$", log, re.M):
        logged = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        times.append(logged + float(wait))
    return times


def test_a_probe_is_told_its_run_time_ahead_and_starts_the_job_then(world: PullWorld) -> None:
    probe_in(world, "a-run")
    # held by pcontrol until lead = INTERVAL + RUN_NEAR (6 s) before: 10 s to see it waiting there, under load;
    # then given at the probe's first check-in within lead, at least RUN_NEAR before (a later `at` would give
    # no more margin to the checks that follow)
    at = time.time() + 4 * INTERVAL
    job = planned(world, "a-run", at, *STAMP)
    record = world.job(job)
    assert record["state"] == "PENDING" and record["not_before"] == at
    assert record["waiting"].startswith("planned start at ") and "(-not-before)" in record["waiting"]
    # the probe holds the job before its run time, told that time
    wait_until_sync(lambda: (world.state("a-run").get("job") or {}).get("job") == job, "the probe holds the job",
                    WAIT)
    assert time.time() < at - RUN_NEAR / 2
    assert abs(world.host("a-run")["agent"]["pull_next"] - at) < 0.01  # a miss counts from the real run time
    ended = world.done(job)
    assert ended["outcome"] == "EXIT" and ended["status"] == 0
    started = float(world.pcontrol("stdout", job).stdout.strip())
    assert at - 0.05 <= started <= at + ON_TIME, started - at  # not one pull interval (4 s) late
    runs = told(world.log("a-run"), job)
    assert runs and all(abs(t - at) < 0.3 for t in runs), (runs, at)
    assert min(abs(t - at) for t in runs) < 0.3
    kill(world.probes.pop())


def test_a_job_withdrawn_before_its_run_time_is_dropped_by_the_probe_and_never_runs(world: PullWorld) -> None:
    probe_in(world, "a-drop")
    marker = world.home / "a-drop.ran"
    at = time.time() + 2 * INTERVAL
    job = planned(world, "a-drop", at, "touch", str(marker))
    wait_until_sync(lambda: (world.state("a-drop").get("job") or {}).get("job") == job, "the probe holds the job",
                    WAIT)
    world.pcontrol("kill", job)
    ended = world.done(job)
    assert ended["outcome"] == "KILLED"
    wait_until_sync(lambda: f"job {job} was withdrawn before its run time: dropped" in world.log("a-drop"),
                    "the probe heard of the withdrawal", WAIT)
    wait_until_sync(lambda: world.state("a-drop").get("job") is None, "the probe holds no job", WAIT)
    wait_until_sync(lambda: (world.host("a-drop")["agent"].get("pull_last") or 0) > at + 0.5,
                    "the probe checked in after the run time", WAIT)
    assert not marker.exists()
    kill(world.probes.pop())


def test_the_planned_start_survives_a_restart_of_pcontrol(world: PullWorld) -> None:
    probe_in(world, "a-restart")
    at = time.time() + 4 * INTERVAL
    job = planned(world, "a-restart", at, *STAMP)
    world.pcontrol("stop", "-force")
    world.pcontrol("start", *world.serve_args)
    record = world.job(job)
    assert record["state"] == "PENDING" and record["not_before"] == at
    ended = world.done(job)
    assert ended["outcome"] == "EXIT" and ended["status"] == 0
    started = float(world.pcontrol("stdout", job).stdout.strip())
    assert at - 0.05 <= started <= at + ON_TIME, started - at
    kill(world.probes.pop())


SCHED_PERIODIC = """
task periodic
  command sh -c {date +%s.%N}
  host a-sched -required
  periods -exec 7
  nmax 2
  stdout -var out
  task.exit 0
    puts "ran at [string trim $out]"
  end
end
run
wait periodic
"""


def test_sched_makes_a_pull_probes_next_periodic_job_ahead_and_it_starts_at_its_planned_start(world: PullWorld) -> None:
    probe_in(world, "a-sched")
    done = world.sched(SCHED_PERIODIC, "periodic.sched", timeout=120)
    assert done.returncode == 0, done.stderr
    jobs = [j for j in json.loads(world.pcontrol("jobs", "-json").stdout) if j.get("task") == "periodic"]
    planned = [j for j in jobs if j.get("not_before") is not None]
    assert len(jobs) == 2 and len(planned) == 1, jobs  # the first at once, the second made ahead
    first = next(j for j in jobs if j["not_before"] is None)
    started = sorted(float(line.split()[-1]) for line in done.stdout.splitlines())
    at = planned[0]["not_before"]
    assert abs(at - first["submitted"] - 7.0) < 0.5  # -exec 7 from the first launch
    assert at - 0.05 <= started[1] <= at + ON_TIME, (started, at)
    kill(world.probes.pop())
