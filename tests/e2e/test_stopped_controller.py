"""A pcontrol stopped on purpose stays stopped, and a damaged journal is said once with the remedy:
through `pcontrol stop/start` and `sched FILE`, the real programs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from waiting import wait_until_sync

SCHED = [sys.executable, "-m", "psched.shell.cli"]
PCONTROL = [sys.executable, "-m", "pcontrol"]

SCRIPT = """\
task {name}
  command echo [set w ra]n
  nmax 1
  task.exit 0
    echo "job ran: [string trim $stdout]"
  end
end
run
wait -timeout 4
"""


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="stopped.", dir="/tmp"))
    yield path
    subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=dict(os.environ, SCHED_HOME=str(path)),
                   capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


def _run(home: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env=dict(os.environ, SCHED_HOME=str(home)), capture_output=True, text=True,
                          timeout=120, input=stdin)


def _sched(home: Path, task: str = "remote") -> subprocess.CompletedProcess:
    script = home / f"{task}.sched"
    script.write_text(SCRIPT.replace("{name}", task))
    return _run(home, *SCHED, str(script))


def test_a_stopped_pcontrol_is_not_started_again_behind_the_operators_back(home: Path):
    assert _run(home, *PCONTROL, "start").returncode == 0
    stopped = _run(home, *PCONTROL, "stop")
    assert stopped.returncode == 0
    done = _sched(home)
    said = done.stdout + done.stderr
    assert "job ran" not in said
    assert said.count("pcontrol is stopped (pcontrol stop at ") == 1, said  # once, however often sched retries
    assert "pcontrol start (or controller start)" in said
    assert "not running" in _run(home, *PCONTROL, "status").stderr + _run(home, *PCONTROL, "status").stdout

    assert _run(home, *PCONTROL, "start").returncode == 0  # started on purpose: the mark goes
    assert _run(home, *PCONTROL, "stop").returncode == 0
    assert (home / "pcontrol.stopped").exists()
    assert _run(home, *PCONTROL, "start").returncode == 0
    assert not (home / "pcontrol.stopped").exists()
    done = _sched(home, "again")  # another task: the first one's unsent job is not this test's business
    assert "job ran: ran" in done.stdout + done.stderr


def test_a_sched_starts_a_pcontrol_that_was_not_stopped_on_purpose(home: Path):
    done = _sched(home)
    said = done.stdout + done.stderr
    assert "started pcontrol" in said and "job ran: ran" in said


@pytest.mark.parametrize("content, words", [
    (b"", "is empty (0 bytes)"),
    (b"this is not a database, whatever it was" * 200, "is damaged (file is not a database)"),
])
def test_a_damaged_journal_is_said_once_with_the_remedy(home: Path, content: bytes, words: str):
    home.chmod(0o700)
    journal = home / "pcontrol.db"
    journal.write_bytes(content)
    started = _run(home, *PCONTROL, "start")
    assert started.returncode == 1
    message = started.stdout + started.stderr
    assert message.startswith("pcontrol failed to start: journal ") and words in message
    assert f"mv {journal} {journal}.bad" in message
    assert message.count("journal ") == 1 + message.count("journal \n")  # one message, not a log tail
    assert journal.read_bytes() == content  # left as it was, not replaced by an empty controller
    (home / "pcontrol.options").write_text('["--retention", "600"]\n')  # (as an earlier start leaves them)
    done = _sched(home)
    said = done.stdout + done.stderr
    assert said.count(words) == 1, said
    assert "job ran" not in said
    assert "pcontrol.options" not in said  # (the kept options are not what is wrong: no hint to remove them)


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_a_pcontrol_that_sched_starts_again_after_a_crash_has_its_operators_options(
        home: Path, tmp_path: Path):
    """The operator started pcontrol with options (a file among them, named from another
    directory); it is killed -9 under a running sched, which starts it again by itself: with
    the same options, and it leaves it running when it leaves (it was not sched's)."""
    log = tmp_path / "ops.log"
    started = subprocess.run([*PCONTROL, "start", "--retention", "1234", "--log-file", "ops.log"],
                             env=dict(os.environ, SCHED_HOME=str(home)), capture_output=True,
                             text=True, timeout=120, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert log.exists()                       # where it was named, not in the daemon's $HOME
    first = int((home / "pcontrol.pid").read_text().split()[0])
    script = home / "crash.sched"
    script.write_text(f"controller hosts\nexec kill -9 {first}\n"
                      + SCRIPT.replace("{name}", "after").replace("wait -timeout 4", "wait -timeout 30"))
    done = _run(home, *SCHED, str(script))
    said = done.stdout + done.stderr
    assert "job ran: ran" in said and "started pcontrol" in said, said
    assert "stopped pcontrol" not in said
    second = int((home / "pcontrol.pid").read_text().split()[0])
    assert second != first
    argv = _cmdline(second)
    assert argv[argv.index("--retention") + 1] == "1234", argv
    assert argv[argv.index("--log-file", argv.index("--retention")) + 1] == str(log), argv
    assert "--ready-fd" not in argv[argv.index("--retention"):]


def test_sched_still_stops_the_pcontrol_it_started_itself(home: Path):
    done = _sched(home)
    said = done.stdout + done.stderr
    assert "started pcontrol" in said and "stopped pcontrol (this sched started it)" in said, said


def test_sched_says_it_left_the_pcontrol_it_started_running_when_jobs_stay_out(home: Path):
    script = home / "out.sched"
    script.write_text("task held\n  command true\n  host nosuch.invalid -required\n  nmax 1\nend\n"
                      "controller host add nosuch.invalid\nrun\nwait -timeout 0.5\n")
    done = _run(home, *SCHED, str(script))
    assert done.returncode == 1 and "wait: timed out" in done.stderr, done.stderr
    assert (f"left pcontrol running in {home}: it holds 1 job(s) of this sched; the next sched collects them"
            in done.stderr), done.stderr
    assert "stopped pcontrol" not in done.stderr
    assert _run(home, *PCONTROL, "status").returncode == 0  # it is running, as said


SERVICE = """\
task gated
  command sh -c "touch {home}/started.\\$$; while \\[ ! -e {home}/gate \\]; do sleep 0.02; done; echo released"
  nmax 2
  npending 2
  task.exit default
    set f [open {home}/exits a]; puts $f "$job_state $exit_status [string trim $stdout]"; close $f
  end
end
run
wait
"""


def test_a_service_stop_that_signals_sched_alone_leaves_its_controller_jobs_to_the_next_start(home: Path):
    """What scripts/systemd/sched.service's KillMode=process gives: SIGTERM to sched alone. Its
    controller jobs run on under the pcontrol it started (said), and the next sched collects
    their true outcomes and runs each exit macro once."""
    script = home / "service.sched"
    script.write_text(SERVICE.replace("{home}", str(home)))
    first = subprocess.Popen([*SCHED, str(script)], env=dict(os.environ, SCHED_HOME=str(home)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_sync(lambda: len(list(home.glob("started.*"))) == 2, "both jobs run")
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, err
    assert "left pcontrol running in" in err and "it holds 2 job(s) of this sched" in err, err
    assert not (home / "exits").exists()
    (home / "gate").touch()
    done = _run(home, *SCHED, str(script))
    assert done.returncode == 0, done.stderr
    assert (home / "exits").read_text().splitlines() == ["EXIT 0 released"] * 2
    assert len(list(home.glob("started.*"))) == 2  # none ran again


def test_bad_kept_options_are_said_once_with_the_file_that_holds_them(home: Path):
    home.chmod(0o700)
    (home / "pcontrol.options").write_text('["--retention", "abc"]\n')
    done = _sched(home)
    said = done.stdout + done.stderr
    assert "job ran" not in said
    assert said.count("pcontrol failed to start: argument --retention: invalid float value: 'abc' "
                      "(its options: --retention abc --spare-local-agent") == 1, said
    assert f"kept in {home / 'pcontrol.options'} (remove that file to start it with none)" in said
    (home / "pcontrol.options").unlink()
    assert "job ran: ran" in _sched(home, "again").stdout
