"""Reload through the real programs: a served sched, `reload` at an attached prompt (pexpect), the
flag file $SCHED_HOME/reload, SIGHUP, and a broken file that changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from psched_test_command import SCHED_COMMAND
from waiting import wait_until_sync as wait_until

pytestmark = pytest.mark.timeout(120)

COUNTED = """\
task counted
  host LOCAL
  command {command}
  periods -poll 0.05
  nmax 3
end
"""
GONE = """\
task gone
  host LOCAL
  command sh -c {{while [ ! -e {release} ]; do sleep 0.05; done}}
  periods -poll 0.05
  nmax 1
  task.exit default
    puts harvested-$task-$exit_status
  end
end
"""
STEADY = """\
task steady
  host LOCAL
  command true
  periods -poll 3600 -exec 3600
end
"""
FRESH = """\
task fresh
  host LOCAL
  command true
  periods -poll 0.05
  nmax 1
  task.exit 0
    puts fresh-ran
  end
end
"""


def sched(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), env=env, capture_output=True, text=True, timeout=60)


def status(env: dict[str, str]) -> dict[str, dict]:
    answer = sched(env, "-c", "status -json", "--attach")
    assert answer.returncode == 0, answer.stderr
    return {row["task"]: row for row in json.loads(answer.stdout)["tasks"]}


def test_reload_from_a_prompt_the_flag_file_and_sighup(sched_env, tmp_path, terminal):
    home = Path(sched_env["SCHED_HOME"])
    script = tmp_path / "site.sched"
    script.write_text(COUNTED.format(command="true") + GONE.format(release=tmp_path / "release") + STEADY + "run\n")
    started = sched(sched_env, "--serve", str(script))
    assert started.returncode == 0, started.stderr
    pid = int((home / "sched.pid").read_text())
    try:
        wait_until(lambda: (s := status(sched_env))["counted"]["made"] == 3 and s["gone"]["running"] == 1,
                   "counted made its 3 jobs and gone's job runs")
        before = status(sched_env)

        # reload at an attached prompt: one task added, one changed, one removed, one unchanged
        script.write_text(COUNTED.format(command="true changed") + STEADY + FRESH + "run\n")
        prompt = terminal("--attach")
        prompt.prompt()
        prompt.line("reload")
        prompt.expect("reload: 1 task(s) added (fresh), 1 changed (counted), 1 removed (gone), 1 unchanged")
        prompt.expect("fresh-ran")            # the new task started
        assert status(sched_env)["gone"]["state"] == "deleting"
        (tmp_path / "release").touch()        # gone's job may end now
        prompt.expect("harvested-gone-0")     # the removed task's running job ended and was harvested
        after = wait_until(lambda: (s := status(sched_env)) and "gone" not in s and s,
                           "the removed task has left the table once its job ended")
        assert after["counted"]["made"] == 3 and after["counted"]["done"] == 3   # counters (and nmax) kept
        assert abs(after["steady"]["next"] - before["steady"]["next"]) < 0.01     # the same next look
        jobs = sched(sched_env, "-c", "jobs -task counted", "--attach").stdout
        assert jobs.count("EXIT 0") == 3      # the job table kept

        # a broken file, by the flag file: reported with file:line, nothing applied, the flag removed
        script.write_text(COUNTED.format(command="true") + "task broken\n  periods -poll 1\n")
        (home / "reload").touch()
        wait_until(lambda: not (home / "reload").exists(), "the flag file is handled and removed")
        prompt.expect("the flag file")
        prompt.expect(f"{script}:7:1: missing `end`")
        assert "nothing applied" in (home / "sched.log").read_text()
        assert sorted(status(sched_env)) == ["counted", "fresh", "steady"]
        assert status(sched_env)["counted"]["made"] == 3

        # SIGHUP reloads (and reopens the log)
        script.write_text(COUNTED.format(command="true") + STEADY + FRESH + FRESH.replace("fresh", "hup") + "run\n")
        os.kill(pid, signal.SIGHUP)
        prompt.expect("SIGHUP: reload: 1 task(s) added (hup), 1 changed (counted), 0 removed, 2 unchanged")
        wait_until(lambda: status(sched_env).get("hup", {}).get("made") == 1, "the task added by SIGHUP ran")
        prompt.line("detach")
        assert prompt.expect_exit() == 0
        assert sched(sched_env, "--stop").returncode == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
