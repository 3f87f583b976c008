"""Slurm's words and ours (pcontrol/slurmstate.py): tables, no cluster, no clock.

The squeue lines marked `recorded` were printed by Slurm 22.05 (Debian bookworm) for real
jobs, with the very -O format pcontrol uses; Slurm's own TIMEOUT among them (it takes over
a minute to happen, so the live tests in test_slurm.py do not wait for one). The others
are composed in the same shape for states a one-node test cluster cannot produce.
"""

from __future__ import annotations

import shlex
import subprocess
import time

import pytest

from pclient import protocol as agent_protocol
from pcontrol.slurmstate import (SQUEUE_FORMAT, Cancel, Limits, SlurmOptions, batch_script,
                                 host_tag, job_name, parse_sbatch, parse_squeue,
                                 pending_expired, sbatch_argv, start_time, time_minutes, timeout_due,
                                 verdict, word_of)

Outcome = agent_protocol.Outcome

RECORDED = {
    "completed": "8|COMPLETED|None|0|2026-12-06T02:56:10|2026-12-06T02:56:10|pcontrol limit=1048576|pcontrol.e1645458a8.4|",
    "exit3": "1|FAILED|NonZeroExitCode|768|2026-12-06T02:51:05|2026-12-06T02:51:05|(null)|wrap|",
    "segv": "2|FAILED|JobLaunchFailure|11|2026-12-06T02:51:05|2026-12-06T02:51:05|(null)|wrap|",
    "cancelled": "4|CANCELLED|None|15|2026-12-06T02:53:47|2026-12-06T02:53:48|(null)|pcontrol.abc.8|",
    "slurm_timeout": "3|TIMEOUT|TimeLimit|15|2026-12-06T02:53:47|2026-12-06T02:54:57|pcontrol timeout=600.0 limit=100|pcontrol.abc.7|",
    "completing": "4|COMPLETING|None|0|2026-12-06T02:53:47|2026-12-06T02:53:48|(null)|pcontrol.abc.8|",
}
HELD = "30|PENDING|JobHeldUser|0|N/A|N/A|pcontrol pending_until=1796525461.5 limit=1048576|pcontrol.e1645458a8.20|"
COMPOSED = {
    state: f"9|{state}|{reason}|{code}|2026-12-06T02:53:47|2026-12-06T02:54:00|(null)|pcontrol.abc.9|"
    for state, reason, code in (("NODE_FAIL", "NodeDown", 0), ("BOOT_FAIL", "None", 0),
                                ("PREEMPTED", "None", 15), ("OUT_OF_MEMORY", "OutOfMemory", 9),
                                ("DEADLINE", "DeadLine", 0), ("REVOKED", "None", 0))
}


def one(line: str):
    [job] = parse_squeue(line + "\n")
    return job


@pytest.mark.parametrize("key, cancelled, outcome, status, signal, words", [
    ("completed", None, Outcome.EXIT, 0, None, "Slurm job 8 COMPLETED, ExitCode 0:0"),
    ("exit3", None, Outcome.EXIT, 3, None, "Slurm job 1 FAILED, ExitCode 3:0, Reason=NonZeroExitCode"),
    ("segv", None, Outcome.CRASH, None, 11, "ExitCode 0:11"),
    ("slurm_timeout", None, Outcome.TIMEOUT, None, 15, "Slurm ended it at its time limit"),
    ("cancelled", Cancel.KILL, Outcome.KILLED, None, 15, "killed on request"),
    ("cancelled", Cancel.TIMEOUT, Outcome.TIMEOUT, None, 15, "ran longer than its timeout"),
    ("cancelled", Cancel.PENDING, Outcome.PENDING, None, None, "still pending in Slurm"),
    ("cancelled", None, Outcome.KILLED, None, 15, "cancelled in Slurm, not by pcontrol"),
])
def test_recorded_states_map_to_outcomes(key, cancelled, outcome, status, signal, words):
    result = verdict(one(RECORDED[key]), cancelled, Limits(timeout=2.0))
    assert (result.outcome, result.status, result.signal) == (outcome, status, signal)
    assert words in result.reason


def test_our_own_end_wins_over_our_cancel():
    """A job that completed before our scancel reached it keeps its real outcome."""
    result = verdict(one(RECORDED["exit3"]), Cancel.TIMEOUT, Limits(timeout=2.0))
    assert (result.outcome, result.status) == (Outcome.EXIT, 3)


@pytest.mark.parametrize("state, outcome, signal", [
    ("NODE_FAIL", None, None), ("BOOT_FAIL", None, None), ("PREEMPTED", None, None),
    ("OUT_OF_MEMORY", Outcome.CRASH, 9), ("DEADLINE", Outcome.TIMEOUT, None),
    ("REVOKED", None, None),
])
def test_composed_states(state, outcome, signal):
    """None: lost, so DOWN or a retry (-retry); the state is always in the reason."""
    result = verdict(one(COMPOSED[state]), None, Limits())
    assert (result.outcome, result.signal) == (outcome, signal)
    assert state in result.reason


def test_active_running_and_pending():
    assert one(RECORDED["completing"]).active and not one(RECORDED["exit3"]).active
    held = one(HELD)
    assert held.active and not held.running and held.start is None
    limits = Limits.from_comment(held.comment)
    assert limits.pending_until == 1796525461.5
    assert not pending_expired(held, limits, now=1796525461.0)
    assert pending_expired(held, limits, now=1796525461.5)
    assert timeout_due(held, Limits(timeout=5), start_time(held, None)) is None


def test_timeout_from_slurms_start_time():
    row = one(RECORDED["slurm_timeout"].replace("TIMEOUT|TimeLimit", "RUNNING|None"))
    assert row.running
    limits = Limits.from_comment(row.comment)
    assert (limits.timeout, limits.output_limit) == (600.0, 100)
    # the script's own record of its start; else StartTime's second, so never early
    assert timeout_due(row, limits, start_time(row, "1796525627.250000000\n")) == 1796525627.25 + 600
    assert timeout_due(row, limits, start_time(row, None)) == row.start + 1 + 600.0
    assert timeout_due(row, limits, start_time(row, "garbage")) == row.start + 1 + 600.0


def test_names_tell_our_jobs_from_others():
    tag = host_tag("token", "c1")
    assert tag == host_tag("token", "c1") != host_tag("token", "c2") != host_tag("other", "c1")
    name = job_name(tag, "17.1")
    assert word_of(tag, name) == "17.1"
    assert word_of(host_tag("other", "c1"), name) is None and word_of(tag, "wrap") is None


def test_odd_fields_parse():
    assert parse_squeue("garbage\n\n") == []
    row = one("5|RUNNING|None|0|2026-12-06T02:53:47|Unknown|(null)|a|b|c|")
    assert row.name == "a|b|c" and row.end is None       # another user's name with "|"
    assert SQUEUE_FORMAT.endswith("Name:|")


@pytest.mark.parametrize("timeout, minutes", [(0.5, 1), (60, 1), (60.01, 2), (3600, 60)])
def test_time_limit_is_a_ceiling_in_whole_minutes(timeout, minutes):
    assert time_minutes(timeout) == minutes


def test_sbatch_command_and_script(tmp_path):
    run = agent_protocol.Run(job="7", argv=("printf", "%s|", "it's", "$HOME"), cwd=str(tmp_path),
                             env={"GREETING": "a b'c"}, timeout=90, pending=5)
    options = SlurmOptions(partition="debug", qos="high", sbatch="--mem=10M --exclusive")
    argv = sbatch_argv(options, run, name="pcontrol.t.7", output="/o/pcontrol.t.7",
                       limits=Limits(timeout=90, output_limit=10))
    assert argv[:3] == ["sbatch", "--parsable", "--no-requeue"]
    assert "--time=2" in argv and "--partition=debug" in argv and "--qos=high" in argv
    assert f"--chdir={tmp_path}" in argv and argv[-2:] == ["--mem=10M", "--exclusive"]
    assert "--comment=pcontrol timeout=90 limit=10" in argv or \
        "--comment=pcontrol timeout=90.0 limit=10" in argv
    script = batch_script(run, "c1", str(tmp_path / "x.start"))
    assert script.startswith("#!/bin/sh\n")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.stdout == "it's|$HOME|"
    assert abs(float((tmp_path / "x.start").read_text()) - time.time()) < 30
    env_script = batch_script(agent_protocol.Run(job="8", argv=("sh", "-c", 'echo "$GREETING"; pwd'),
                                                 cwd=str(tmp_path), env={"GREETING": "a b'c"}), "c1")
    done = subprocess.run(["sh", "-c", env_script], capture_output=True, text=True)
    assert done.stdout == f"a b'c\n{tmp_path}\n"
    with pytest.raises(ValueError, match="environment name"):
        batch_script(agent_protocol.Run(job="9", argv=("true",), env={"A-B": "1"}), "c1")
    missing_dir = batch_script(agent_protocol.Run(job="9", argv=("true",), cwd="/nonexistent"), "c1")
    assert subprocess.run(["sh", "-c", missing_dir], capture_output=True).returncode == 127
    assert shlex.split(options.sbatch or "") == options.extra()


def test_parse_sbatch():
    assert parse_sbatch("123\n") == "123" and parse_sbatch("45;cluster\n") == "45"
    with pytest.raises(ValueError):
        parse_sbatch("Submitted batch job 12\n")
