"""The round planner (psched.scheduler.rounds) as tables: pure, given `now` and the seed; and a
rounds task driven by the scheduler loop on a fake clock."""

import statistics
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from psched.lang.errors import TaskError
from psched.scheduler.jobs import Outcome
from psched.scheduler.roundjobs import ROUNDS_AHEAD
from psched.scheduler.rounds import (RoundsConfig, RoundsError, check_fits, parse_rounds, plan_rounds, plan_window,
                                     window_at)

from sched_world import World

UTC = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
NDT = ["3", "-windows", "02:00 05:30 07:00 12:00 20:00", "-gap", "2m", "-runtime", "35s", "-seed", "7"]
PROBES = ("probe1", "probe2", "probe3")


def at(y, mo, d, h, mi, tz=UTC):
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def ndt(rounds="3", hosts=PROBES, gap="2m", runtime="35s", windows="02:00 05:30 07:00 12:00 20:00"):
    return RoundsConfig(parse_rounds([rounds, "-windows", windows, "-gap", gap, "-runtime", runtime]), hosts)


def assert_well_formed(config, plan):
    rule = config.rule
    runs = plan.runs
    assert [r.start for r in runs] == sorted(r.start for r in runs)
    for before, after in zip(runs, runs[1:]):
        assert after.start - before.start >= rule.runtime + rule.gap - 1e-6  # spacing, also across rounds
    for k in range(rule.rounds - plan.dropped):
        hosts = [r.host for r in runs if r.round == k]
        assert sorted(hosts) == sorted(config.hosts)  # each host once per round
    assert all(plan.start <= r.start for r in runs)
    assert all(r.start + rule.runtime + rule.gap <= plan.end + 1e-6 for r in runs)  # never over the boundary


def test_the_ndt_example_gives_9_runs_every_gap_at_least_2_minutes():
    config = ndt()
    check_fits(config)
    plan = plan_rounds(config, at(2024, 1, 1, 2, 0), seed=7)
    assert len(plan.runs) == 9
    assert_well_formed(config, plan)
    gaps = [b.start - (a.start + 35) for a, b in zip(plan.runs, plan.runs[1:])]
    assert min(gaps) >= 120 - 1e-6


@pytest.mark.parametrize("now,start,end", [
    (at(2024, 1, 1, 2, 0), at(2024, 1, 1, 2, 0), at(2024, 1, 1, 5, 30)),       # at a boundary: its window
    (at(2024, 1, 1, 5, 29), at(2024, 1, 1, 2, 0), at(2024, 1, 1, 5, 30)),
    (at(2024, 1, 1, 23, 0), at(2024, 1, 1, 20, 0), at(2024, 1, 2, 2, 0)),      # the last wraps past midnight
    (at(2024, 1, 2, 1, 59), at(2024, 1, 1, 20, 0), at(2024, 1, 2, 2, 0)),
])
def test_window_at(now, start, end):
    assert window_at(ndt().rule, now, UTC) == (start, end)


def test_the_same_seed_and_window_give_the_same_plan_whenever_asked():
    config = ndt()
    a = plan_rounds(config, at(2024, 1, 1, 2, 0), 7)
    b = plan_rounds(config, at(2024, 1, 1, 5, 0), 7)
    assert a == b
    assert plan_rounds(config, at(2024, 1, 1, 2, 0), 8) != a
    assert plan_rounds(config, at(2024, 1, 2, 2, 0), 7).runs != a.runs  # another day, another draw


@pytest.mark.parametrize("seed", range(200))
def test_many_seeds_well_formed_across_midnight(seed):
    config = ndt(rounds="4", hosts=("a", "b", "c", "d", "e"), gap="90s", runtime="1m")
    plan = plan_rounds(config, at(2024, 3, 5, 23, 30), seed)
    assert len(plan.runs) == 20
    assert_well_formed(config, plan)


def test_dst_spring_forward_keeps_spacing_and_drops_what_no_longer_fits():
    # Europe/Paris, 2024-03-31: 02:00 -> 03:00. The window 00:00-04:00 is 3 hours that day.
    config = ndt(rounds="2", hosts=("a", "b"), gap="10m", runtime="50m", windows="00:00 04:00")
    check_fits(config)  # 2 x 2 x 1h = 4h fits the nominal 4 h window
    plan = plan_rounds(config, at(2024, 3, 31, 0, 30, PARIS), 1, PARIS)
    assert plan.end - plan.start == 3 * 3600
    assert plan.dropped == 1 and "clock change" in plan.notes[0]
    assert len(plan.runs) == 2
    assert_well_formed(config, plan)


def test_dst_fall_back_window_is_an_hour_longer():
    config = ndt(rounds="3", hosts=("a", "b"), windows="00:00 04:00")
    plan = plan_rounds(config, at(2024, 10, 27, 0, 30, PARIS), 3, PARIS)
    assert plan.end - plan.start == 5 * 3600 and plan.dropped == 0
    assert_well_formed(config, plan)


def test_round_starts_are_uniform_in_their_slack_over_many_seeds():
    # 1 round of 1 host, step 60 s, in a 1 h window: the start is uniform on [0, 3540 s).
    config = ndt(rounds="1", hosts=("a",), gap="30s", runtime="30s", windows="00:00 01:00 12:00")
    start = at(2024, 1, 1, 0, 0)
    slack = 3600 - 60
    n = 4000
    offsets = [plan_window(config, start, start + 3600, seed).runs[0].start - start for seed in range(n)]
    assert min(offsets) >= 0 and max(offsets) <= slack
    # Kolmogorov-Smirnov against U(0, slack): at the 1% level the critical D is 1.63/sqrt(n) ~ 0.0258.
    offsets.sort()
    d = max(max((i + 1) / n - x / slack, x / slack - i / n) for i, x in enumerate(offsets))
    assert d < 1.63 / n ** 0.5, d
    # and the mean within 4 standard errors of slack/2
    assert abs(statistics.fmean(offsets) - slack / 2) < 4 * (slack / 12 ** 0.5) / n ** 0.5


def test_shuffled_order_varies_and_every_order_appears():
    config = ndt(hosts=("a", "b", "c"))
    orders = set()
    for seed in range(300):
        plan = plan_rounds(config, at(2024, 1, 1, 2, 0), seed)
        orders.add(tuple(r.host for r in plan.runs if r.round == 0))
    assert len(orders) == 6


@pytest.mark.parametrize("args,message", [
    (["30", "-windows", "02:00 05:30 07:00 12:00 20:00", "-gap", "2m", "-runtime", "35s"],
     "30 rounds x 3 hosts x (35s runtime + 120s gap) = 3h52m30s do not fit in the shortest window 05:30-07:00 "
     "(1h30m): 2h22m30s too long"),
    (["1", "-windows", "00:00 00:05", "-gap", "1m", "-runtime", "1m"],
     "1 rounds x 3 hosts x (60s runtime + 60s gap) = 6m do not fit in the shortest window 00:00-00:05 (5m): 1m too long"),
])
def test_refusals_say_by_how_much(args, message):
    with pytest.raises(RoundsError) as err:
        check_fits(RoundsConfig(parse_rounds(args), PROBES))
    assert str(err.value) == message


@pytest.mark.parametrize("args,message,index", [
    ([], "wrong # args", None),
    (["x", "-windows", "01:00", "-gap", "1", "-runtime", "1"], "whole number, got 'x'", 0),
    (["0", "-windows", "01:00", "-gap", "1", "-runtime", "1"], "at least 1", 0),
    (["1", "-windows", "05:00 01:00", "-gap", "1", "-runtime", "1"], "must increase", 2),
    (["1", "-windows", "25:00", "-gap", "1", "-runtime", "1"], "expected HH:MM, got '25:00'", 2),
    (["1", "-windows", "01:00", "-gap", "soon", "-runtime", "1"], "-gap expects seconds", 4),
    (["1", "-windows", "01:00", "-gap", "1"], "needs -runtime", None),
    (["1", "-windows", "01:00", "-gap", "1", "-runtime", "1", "-every", "2"], "unknown option '-every'", 7),
    (["1", "-windows", "01:00", "-gap", "0", "-runtime", "0"], "cannot both be 0", 4),
])
def test_bad_words(args, message, index):
    with pytest.raises(RoundsError) as err:
        parse_rounds(args)
    assert message in err.value.message and err.value.word_index == index


def test_no_hosts_is_refused():
    with pytest.raises(RoundsError, match="host -each"):
        check_fits(RoundsConfig(parse_rounds(NDT), ()))


# --- through the language and the loop ---------------------------------------------------------

NDT_TASK = """task ndt
  command web100clt -n ndt.example.org
  host -each {probe1 probe2 probe3}
  rounds 3 -windows {02:00 05:30 07:00 12:00 20:00} -gap 2m -runtime 35s -seed 7
  periods -timeout 90
end
"""


def test_a_rounds_task_makes_its_9_jobs_at_the_planned_moments_on_each_host():
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK)
    plan_text = w.run("check ndt -plan")
    assert plan_text.startswith("window 2024-01-01 02:00:00 .. 2024-01-01 05:30:00: 9 runs")
    plan = plan_rounds(RoundsConfig(parse_rounds(NDT), PROBES), w.clock.wall(), 7, UTC)
    w.run("run")
    made_at = []
    while w.clock.wall() < plan.end:
        next_look = w.step()
        before = len(w.jobs)
        if len(w.jobs) > len(made_at):
            made_at.extend([w.clock.wall()] * (len(w.jobs) - len(made_at)))
        for job in w.jobs:
            if not job.done:
                w.end(job)
        w.clock.advance(max(0.0, next_look - w.clock.monotonic()) if next_look is not None else 60)
        assert before == len(w.jobs)
    this_window = [j for j in w.jobs if j.not_before < plan.end]  # the next window's first runs come ahead too
    assert [(j.host, j.not_before) for j in this_window] == [(r.host, r.start) for r in plan.runs]
    assert all(j.host_required and j.timeout == 90 for j in w.jobs)
    # a controller host's run goes to the controller ROUNDS_AHEAD before its start, which it carries
    assert made_at[:len(plan.runs)] == [max(plan.start, r.start - ROUNDS_AHEAD) for r in plan.runs]


def test_a_rounds_task_started_mid_window_skips_the_past_runs():
    w = World(start=at(2024, 1, 1, 4, 0))
    w.run(NDT_TASK)
    plan = plan_rounds(RoundsConfig(parse_rounds(NDT), PROBES), w.clock.wall(), 7, UTC)
    w.run("run")
    w.step()
    assert w.jobs == []
    future = [r for r in plan.runs if r.start >= w.clock.wall()]
    _steps_over(w, plan.end - w.clock.wall() - 1, step=60.0)
    assert [(j.host, j.not_before) for j in w.jobs if j.not_before < plan.end] == [(r.host, r.start) for r in future]



def _steps_over(w, seconds, step=10.0):
    """Let `seconds` pass in steps, stepping the loop at each (the loop's looks as they come)."""
    for _ in range(int(seconds / step)):
        w.clock.advance(step)
        w.step()


def test_a_wall_clock_set_forward_skips_the_runs_gone_by_instead_of_a_burst():
    # 02:00: the plan is made and the first runs come ahead; then the clock is set to 04:00
    # (monotonic time goes on as before): within a minute the task looks again, skips every
    # run whose start went by more than its gap (2m) ago, says so once, and makes the runs
    # still to come at their times.
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK)
    plan = plan_rounds(RoundsConfig(parse_rounds(NDT), PROBES), w.clock.wall(), 7, UTC)
    w.run("run")
    w.step()
    ahead = len(w.jobs)
    w.clock.jump_wall(2 * 3600)
    _steps_over(w, 60)
    now = w.clock.wall()
    gone = [r for r in plan.runs if r.start < now - 120 and r.start - ROUNDS_AHEAD > plan.start]
    assert gone, "the jump passes over some runs not yet made"
    made = [(j.host, j.not_before) for j in w.jobs[ahead:]]
    assert made == [(r.host, r.start) for r in plan.runs if now - 120 <= r.start <= now + ROUNDS_AHEAD + 1]
    said = [m for m in w.messages if "skipped" in m]
    assert said == [f"task ndt: {len(gone)} planned run(s) skipped: their start had gone by "
                    f"{said[0].split('gone by ')[1].split(' or more')[0]} or more (the clock set forward, "
                    "the machine suspended, or sched held up; a run is made at most 2m late)"]
    _steps_over(w, plan.end - w.clock.wall() - 1, step=60.0)
    assert sorted(j.not_before for j in w.jobs if j.not_before < plan.end) == sorted(
        r.start for r in plan.runs if not (r.start - ROUNDS_AHEAD > plan.start and r.start < now - 120))


def test_a_run_made_a_little_late_is_still_made():
    # a loop held up for less than the gap (a long macro): the run is made, late
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK)
    w.run("run")
    w.step()
    plan = plan_rounds(RoundsConfig(parse_rounds(NDT), PROBES), w.clock.wall(), 7, UTC)
    ahead = len(w.jobs)
    target = plan.runs[ahead]
    w.clock.advance(target.start - w.clock.wall() + 90)  # 1m30s late, the gap is 2m
    w.step()
    assert (target.host, target.start) in [(j.host, j.not_before) for j in w.jobs[ahead:]]
    assert not [m for m in w.messages if "skipped" in m]


@pytest.mark.parametrize("years", [3, -1])
def test_a_wall_clock_moved_by_years_plans_afresh_without_planning_the_windows_between(years):
    # a machine that booted with a dead RTC and then set its clock (or a clock set back):
    # the plan starts again from the new time, as at a start, at once
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK)
    w.run("run")
    w.step()
    before = len(w.jobs)
    w.clock.jump_wall(years * 365 * 86400.0)
    _steps_over(w, 60)
    cursor = w.sched.tasks["ndt"].rounds
    assert len(cursor.plans) <= 2 and cursor.plans[0].start - 86400 <= w.clock.wall() <= cursor.plans[-1].end
    plan = plan_rounds(RoundsConfig(parse_rounds(NDT), PROBES), w.clock.wall(), 7, UTC)
    assert all(plan.start <= j.not_before < plan.end + ROUNDS_AHEAD and j.not_before >= w.clock.wall() - 120
               for j in w.jobs[before:])


def _made_ahead(w):
    """Step to the first look that makes jobs; the jobs made then."""
    w.run("run")
    for _ in range(100):
        next_look = w.step()
        if w.jobs:
            return list(w.jobs)
        w.clock.advance(max(0.0, next_look - w.clock.monotonic()))
    raise AssertionError("no job made")


@pytest.mark.parametrize("how", ["pause", "delete"])
def test_jobs_made_ahead_are_withdrawn_when_the_task_pauses_or_goes_and_not_counted(how):
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK.replace("periods -timeout 90", "periods -timeout 90\n  nmax 4"))
    ahead = _made_ahead(w)
    entry = w.sched.tasks["ndt"]
    assert all(j.not_before > w.clock.wall() for j in ahead) and entry.timing.made == len(ahead)
    w.run("pause ndt" if how == "pause" else "delete ndt")
    assert w.remote.killed == ahead  # the controller is told to withdraw them
    for job in ahead:  # ... and ends them KILLED
        w.sched.job_ended(job, Outcome.KILLED, reason="killed while pending")
    assert all(j.withdrawn and "withdrawn before its planned start" in j.reason for j in ahead)
    if how == "delete":
        assert "ndt" not in w.sched.tasks
        return
    assert entry.timing.made == 0 and entry.done == 0 and entry.failed == 0  # not runs: nmax still allows 4
    # resumed before their start: the same runs are made again, with the same planned starts
    w.run("resume ndt")
    w.step()
    again = [j for j in w.jobs if j not in ahead]
    assert [(j.host, j.not_before) for j in again] == [(j.host, j.not_before) for j in ahead]


def test_a_job_whose_planned_start_has_come_is_not_withdrawn():
    w = World(start=at(2024, 1, 1, 2, 0))
    w.run(NDT_TASK)
    ahead = _made_ahead(w)
    w.clock.advance(ahead[0].not_before - w.clock.wall())  # the first one's start: it runs
    w.run("pause ndt")
    assert w.remote.killed == ahead[1:]


def test_a_rounds_task_that_cannot_fit_is_refused_at_definition_with_its_line():
    w = World()
    with pytest.raises(TaskError) as err:
        w.run("\n" + NDT_TASK.replace("rounds 3", "rounds 12"))
    assert "too long" in err.value.render() and "test.sched:2" in err.value.render()
    assert "ndt" not in w.sched.tasks


def test_host_each_makes_one_job_per_host_for_any_task():
    w = World()
    w.run("task t\n  command true\n  host -each {h1 h2}\n  nmax 4\n  npending 4\nend\n")
    w.run("run")
    w.step()
    assert [(j.host, j.host_required) for j in w.jobs] == [("h1", True), ("h2", True), ("h1", True), ("h2", True)]


def test_check_plan_needs_a_rounds_task():
    w = World()
    w.run("task t\n  command true\n  host LOCAL\nend\n")
    with pytest.raises(TaskError, match="no `rounds`"):
        w.run("check t -plan")


def test_without_a_seed_the_plan_is_the_task_names_and_survives_a_redefinition():
    w = World(start=at(2024, 1, 1, 2, 0))
    script = NDT_TASK.replace(" -seed 7", "")
    w.run(script)
    first = w.run("check ndt -plan")
    w.run(script)  # read again (a reload, a restart of sched): the same plan
    assert w.run("check ndt -plan") == first
    w.run(script.replace("task ndt", "task ndt2"))
    assert w.run("check ndt2 -plan") != first


# --- periodic jobs of pull probes, made ahead ---------------------------------------------------

def _until_jobs(w, count, limit=10_000):
    """Step the loop on its fake clock until `count` jobs were made; the wall time each was made."""
    made_at = []
    for _ in range(limit):
        next_look = w.step()
        made_at.extend([w.clock.wall()] * (len(w.jobs) - len(made_at)))
        for job in w.jobs:
            if not job.done and job.not_before is not None and job.not_before <= w.clock.wall():
                w.end(job)  # it ran at its planned start
            elif not job.done and job.not_before is None:
                w.end(job)
        if len(w.jobs) >= count:
            return made_at
        w.clock.advance(max(0.0, next_look - w.clock.monotonic()))
    raise AssertionError(f"only {len(w.jobs)} jobs made")


def test_a_periodic_task_on_a_pull_probe_makes_each_next_job_ahead_carrying_its_planned_start():
    w = World()
    w.remote.leads = {"probe": 30.0}  # the controller says probe is a pull probe
    w.run("task t\n  command true\n  host probe -required\n  periods -exec 60\n  nmax 3\nend\n")
    w.run("run")
    t0 = w.clock.wall()
    made_at = _until_jobs(w, 3)
    first, second, third = w.jobs
    assert first.not_before is None and made_at[0] == t0  # the first look makes it at once
    assert second.not_before == t0 + 60 and third.not_before == t0 + 120  # -exec spacing, from planned starts
    for job, made in zip((second, third), made_at[1:]):
        assert job.not_before - 30 <= made < job.not_before  # within the lead, ahead of its start


def test_a_periodic_task_on_an_ordinary_host_makes_its_jobs_at_their_time():
    w = World()
    w.run("task t\n  command true\n  host n1 -required\n  periods -exec 60\n  nmax 3\nend\n")
    w.run("run")
    t0 = w.clock.wall()
    made_at = _until_jobs(w, 3)
    assert [j.not_before for j in w.jobs] == [None, None, None]
    assert made_at == [t0, t0 + 60, t0 + 120]
