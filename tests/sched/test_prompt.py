"""run, status and kill at the interactive prompt, on a real pty (pexpect)."""

import os
import sys
from pathlib import Path

import pexpect
import pytest
from prompts import new_prompt

pytestmark = pytest.mark.timeout(90)

SCHED = Path(sys.executable).with_name("sched")
PROMPT = new_prompt("sched>")  # a new prompt, not a redraw (tests/tools/prompts.py)


@pytest.fixture
def term(tmp_path):
    env = dict(os.environ, SCHED_HOME=str(tmp_path / "home"), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="200")
    command = [str(SCHED)] if SCHED.exists() else [sys.executable, "-m", "psched.shell.cli"]
    child = pexpect.spawn(command[0], command[1:], env=env, cwd=str(tmp_path), encoding="utf-8", timeout=20,
                          dimensions=(40, 200))
    yield child
    if child.isalive():
        child.terminate(force=True)


def test_run_status_and_kill_at_the_prompt(term):
    term.expect(PROMPT)
    for line in ["task sleeper", "  host LOCAL", "  command sleep 60", "  nmax 1",
                 "  task.exit killed", "    echo [set w KIL]LED-$job_id", "  end", "end"]:
        term.send(line + "\r")
    term.expect(PROMPT)
    term.send("run\r")
    term.expect(PROMPT)
    # the job starts while the prompt waits; `status` shows it running
    term.send("wait -timeout 0.5\r")
    term.expect("timed out after 0.5 s; still waiting for: sleeper \\(1/1 made, 1 out")
    term.expect(PROMPT)
    term.send("status\r")
    term.expect(r"sleeper\s+finishing\s+LOCAL\s+1/1\s+1\s+0\s+0")
    term.expect_exact("1 running")
    term.expect(PROMPT)
    term.send("kill 1\r")
    term.expect_exact("job 1 is being killed")
    term.expect_exact("KILLED-1")  # the task.exit killed macro ran
    term.expect(PROMPT)
    term.send("status\r")
    term.expect(r"sleeper\s+finished\s+LOCAL\s+1/1\s+0\s+1\s+1\s+KILLED")
    term.expect(PROMPT)
    term.send("quit\r")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 0
