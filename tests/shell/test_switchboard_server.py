"""The switchboard through the real programs: messages from a job's $PSCHED_OUTBOX and from
`send` wait in $SCHED_HOME, survive a server killed with SIGKILL and restarted, and reach the
addressee's next job (its macros' queue `inbox`, its $PSCHED_INBOX file)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from psched_test_command import SCHED_COMMAND
from waiting import wait_until_sync as wait_until

pytestmark = pytest.mark.timeout(90)


def sched(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def attached(env: dict[str, str], command: str) -> str:
    done = sched(env, "-c", command, "--attach")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_messages_survive_a_killed_server_and_reach_the_next_job(sched_env, tmp_path):
    home = Path(sched_env["SCHED_HOME"])
    seen = tmp_path / "child.txt"
    script = tmp_path / "served.sched"
    script.write_text(f"""\
task parent
  host LOCAL
  nmax 1
  command sh -c {{[ -e {tmp_path}/once ] && exit 0; touch {tmp_path}/once; echo "child is down" >> "$PSCHED_OUTBOX"; exit 3}}
end
task child
  host LOCAL
  nmax 1
  active off
  command sh -c {{cat "$PSCHED_INBOX"}}
  task.exit 0
    exec sh -c "cat >> {seen}" << "macro: [join [queuelist inbox] |]\\njob: $stdout"
  end
end
run
""")
    try:
        assert sched(sched_env, "--serve", str(script), cwd=tmp_path).returncode == 0
        wait_until(lambda: "is down" in attached(sched_env, "messages"), "the parent's message waits", 30)
        attached(sched_env, "send child {and a word from the prompt}")
        first = int((home / "sched.pid").read_text())
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{first}").exists(), "the server is dead", 10)

        assert sched(sched_env, "--serve", str(script), cwd=tmp_path).returncode == 0
        assert attached(sched_env, "messages child").splitlines() == [
            "child parent {is down}", "child sched {and a word from the prompt}"]  # a local task starts over
        attached(sched_env, "resume child")
        wait_until(lambda: seen.exists() and "job:" in seen.read_text(), "the child's exit macro ran", 30)
        assert seen.read_text().splitlines() == [
            "macro: parent is down|sched and a word from the prompt",
            "job: parent is down", "sched and a word from the prompt"]
        assert attached(sched_env, "messages") == ""
        assert not (home / "switchboard.log").exists()  # nothing waits: no file
    finally:
        pidfile = home / "sched.pid"
        if pidfile.exists():
            assert sched(sched_env, "--stop").returncode == 0
