"""A macro that never ends does not hold sched for good (psched.shell.longcode), through the
real programs: it is said in the log, SIGINT interrupts it (headless, a server), a stop
interrupts it after its grace, and an exit macro so ended is not run again by the next sched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from psched_test_command import SCHED_COMMAND
from waiting import wait_until_sync as wait_until

pytestmark = pytest.mark.timeout(120)

SPIN = """\
task spin
  host {host}
  command true
  nmax 1
  task.exit 0
    exec sh -c "echo $job_id $job_rerun >> {ledger}"
    set i 0
    while 1 {{incr i}}
  end
end
task tick
  host LOCAL
  command true
  periods -poll 0.2 -exec 0.2
end
run
"""


def sched(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def env(sched_env: dict[str, str]) -> dict[str, str]:
    return dict(sched_env, PSCHED_MACRO_WARN="0.5", PSCHED_STOP_GRACE="0.5")


def _stop_all(env: dict[str, str], home: Path) -> None:
    pidfile = home / "sched.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    pcontrol = str(Path(SCHED_COMMAND[0]).with_name("pcontrol"))
    subprocess.run([pcontrol, "stop", "-kill", "-force"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def spinning(env, tmp_path):
    """Start a server whose spin task's exit macro never ends (host as asked); yields
    start(host) -> (home, pid, script, ledger) once its log says the macro runs long; stops
    everything after."""
    home = Path(env["SCHED_HOME"])
    ledger = tmp_path / "ledger"
    script = tmp_path / "spin.sched"

    def start(host: str = "LOCAL") -> tuple[Path, int, Path, Path]:
        script.write_text(SPIN.format(host=host, ledger=ledger))
        assert sched(env, "--serve", str(script), cwd=tmp_path).returncode == 0
        pid = int((home / "sched.pid").read_text())
        wait_until(lambda: "is still running" in (home / "sched.log").read_text(), "the log says it", 60)
        return home, pid, script, ledger

    yield start
    _stop_all(env, home)


def test_a_headless_sched_says_it_and_sigint_interrupts_the_macro(env, tmp_path):
    ledger = tmp_path / "ledger"
    script = tmp_path / "spin.sched"
    script.write_text(SPIN.format(host="LOCAL", ledger=ledger) + "wait\n")
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(SCHED_COMMAND + [str(script)], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        wait_until(lambda: "is still running" in err.read_text(), "the macro is said to run long", 30)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    said = err.read_text()
    job = ledger.read_text().split()[0]
    assert f"task spin job {job}: task.exit 0 has run" in said and f"`kill -INT {proc.pid}` interrupts it" in said
    assert f"SIGINT: interrupting task spin job {job}: task.exit 0" in said
    assert re.search(re.escape(f"{script}:8:") + r"\d+: interrupted", said)  # the macro's line (at `while` or `incr`)
    assert "wait: interrupted" in said and proc.returncode != 0   # and Ctrl-C ends the script, as ever
    assert ledger.read_text().split()[1:] == ["0"]


def test_a_server_lives_on_and_answers_once_the_macro_is_interrupted(env, spinning):
    home, pid, _, _ = spinning()
    deaf = sched(env, "-c", "status", "--attach")
    assert deaf.returncode != 0 and f"(is it busy in a long macro? its log, {home / 'sched.log'}, says)" in deaf.stderr
    os.kill(pid, signal.SIGINT)
    status = sched(env, "-c", "status", "--attach")
    assert status.returncode == 0 and "spin" in status.stdout, status.stderr
    assert "interrupted" in (home / "sched.log").read_text()
    assert sched(env, "--stop").returncode == 0


def test_sched_stop_of_a_server_a_macro_holds_stops_it_by_signal(env, spinning):
    home, pid, _, _ = spinning()
    stopped = sched(env, "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"the server (pid {pid}) does not answer" in stopped.stderr and "sending it SIGTERM" in stopped.stderr
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the server is gone (reaped)", 30)
    assert "has not ended 0.5 s after the stop" in (home / "sched.log").read_text()


def test_a_stop_interrupts_the_macro_after_its_grace_and_the_next_sched_does_not_run_it_again(env, spinning, tmp_path):
    # a controller job: its exit macro runs once whatever happens, so a stop must not leave it
    # to be run again (and hang again) by the next sched
    home, pid, script, ledger = spinning("NONE")
    # held past ALERT_AFTER (6 x the warning's 0.5 s): an alert through the controller it uses
    wait_until(lambda: "held by task spin job" in (home / "pcontrol.log").read_text(), "the alert", 30)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the server has ended", 30)
    assert "has not ended 0.5 s after the stop" in (home / "sched.log").read_text()
    script.write_text(SPIN.format(host="NONE", ledger=ledger).replace("nmax 1", "nmax 1\n  active no"))
    assert sched(env, "--serve", str(script), cwd=tmp_path).returncode == 0
    waited = sched(env, "-c", "wait -timeout 30 spin", "--attach")  # its job's end is taken back
    assert waited.returncode == 0, waited.stderr
    assert sched(env, "--stop").returncode == 0
    assert ledger.read_text().split()[1:] == ["0"]   # once, never with $job_rerun 1

def test_at_the_prompt_the_warning_reaches_the_terminal_and_sigint_gives_the_prompt_back(sched_env, terminal):
    # the prompt's stderr writes only when the loop turns: the watch writes to the terminal itself
    sched_env.update(PSCHED_MACRO_WARN="0.5")
    term = terminal()
    term.prompt()
    term.line("task spin")
    term.line("  host LOCAL")
    term.line("  command true")
    term.line("  nmax 1")
    term.line("  task.exit 0")
    term.line("    while 1 {}")
    term.line("  end")
    term.line("end")
    term.line("run")
    term.expect("task spin job")
    term.expect("is still running")
    os.kill(term.child.pid, signal.SIGINT)
    term.expect("interrupted")
    term.line("puts back-[expr {40 + 2}]")
    term.expect("back-42")
