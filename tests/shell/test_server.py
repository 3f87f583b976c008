"""Server mode through the real programs: `sched --serve`, `--attach` (pexpect), `-c ... --attach`, `--stop`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pexpect
import pytest

from psched_test_command import SCHED_COMMAND
from waiting import wait_until_sync as wait_until

pytestmark = pytest.mark.timeout(90)

QUIET = """\
set made 0
proc shout {} { return SHOUT-[expr {6 * 7}] }
"""


def sched(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def server(sched_env: dict[str, str], tmp_path: Path):
    """Start a server on a script; yields (env, home, script path); stops it (by pid if need be) after."""
    home = Path(sched_env["SCHED_HOME"])
    script = tmp_path / "served.sched"
    script.write_text(QUIET)

    def start(text: str = QUIET) -> subprocess.CompletedProcess:
        script.write_text(text)
        return sched(sched_env, "--serve", str(script), cwd=tmp_path)

    yield start, home
    pidfile = home / "sched.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_serve_runs_headless_and_one_shot_commands_reach_it(server, sched_env):
    start, home = server
    started = start()
    assert started.returncode == 0, started.stderr
    assert "attach with: sched --attach" in started.stderr
    assert (home / "sched.sock").exists() and (home / "sched.log").exists()
    assert oct((home / "sched.sock").stat().st_mode & 0o777) == "0o600"

    shout = sched(sched_env, "-c", "shout", "--attach")
    assert (shout.returncode, shout.stdout) == (0, "SHOUT-42\n")
    failed = sched(sched_env, "-c", "expr {1/0}", "--attach")
    assert failed.returncode == 1
    assert "<input>:1:8: divide by zero" in failed.stderr

    again = start()
    assert again.returncode == 1 and "a server already runs" in again.stderr

    stopped = sched(sched_env, "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (home / "sched.sock").exists() and not (home / "sched.pid").exists()
    gone = sched(sched_env, "-c", "shout", "--attach")
    assert gone.returncode == 1 and "no server runs" in gone.stderr


def test_commands_piped_to_attach_run_one_by_one_without_a_prompt(server, sched_env):
    """`echo ... | sched --attach` (cron, another script): each command runs in the server once
    it is complete, only their output comes back (no prompt, no greeting, no terminal codes), and
    the first error ends it with status 1; `detach` alone ends it with 0."""
    start, _home = server
    assert start().returncode == 0
    piped = subprocess.run(SCHED_COMMAND + ["--attach"], env=sched_env, capture_output=True, text=True, timeout=60,
                           input="shout\nset x 5\nif {$x > 1} {\n  puts big\n}\nmacro m\n  return m-ran\nend\n"
                                 "m\nexpr {1/0}\nputs never\n")
    assert (piped.returncode, piped.stdout) == (1, "SHOUT-42\n5\nbig\nm-ran\n"), piped
    assert "<input>:10:8: divide by zero" in piped.stderr and "sched>" not in piped.stderr + piped.stdout
    left = subprocess.run(SCHED_COMMAND + ["--attach"], env=sched_env, capture_output=True, text=True, timeout=60,
                          input="puts a\ndetach\nputs b\n")
    assert (left.returncode, left.stdout, left.stderr) == (0, "a\n", "")


def test_a_script_error_is_reported_and_no_server_is_left(server, sched_env):
    start, home = server
    started = start("set x 1\nnosuchcommand here\n")
    assert started.returncode == 1
    assert "served.sched:2:1" in started.stderr and "nosuchcommand" in started.stderr
    assert not (home / "sched.sock").exists()


def test_two_prompts_see_macro_output_detach_and_quit(server, sched_env, terminal):
    start, home = server
    assert start().returncode == 0
    first, second = terminal("--attach"), terminal("--attach")
    first.prompt()
    second.prompt()
    for line in ("task once", "host LOCAL", "command true", "nmax 1", "task.exit 0",
                 "puts [set w mac]ro-ran", "end", "end"):
        second.line(line)
    second.prompt()
    second.line("run")
    first.expect("macro-ran")          # written between requests: every prompt sees it
    second.expect("macro-ran")

    first.line("puts [set w loo]ping; while 1 {}")
    first.expect("looping")            # the server runs it now
    first.send("\x03")                 # Ctrl-C interrupts the command in the server
    first.expect("interrupted")
    first.prompt()
    first.line("set made [expr {$made + 1}]; echo [set w stil]l-serving")
    first.expect("still-serving")
    first.prompt()
    first.line("detach")
    assert first.expect_exit() == 0
    second.send("\x04")                # Ctrl-D detaches too
    assert second.expect_exit() == 0

    third = terminal("--attach")
    third.prompt()
    third.line("echo made-$made")      # the server kept its state
    third.expect("made-1")
    third.prompt()
    third.line("quit")
    third.expect("sched: the server stops")
    assert third.expect_exit() == 0
    wait_until(lambda: not (home / "sched.pid").exists(), "the server is gone", 30)


def test_the_schedulers_messages_reach_every_prompt_and_the_log(server, sched_env, terminal):
    start, home = server
    assert start().returncode == 0
    first, second = terminal("--attach"), terminal("--attach")
    first.prompt()
    second.prompt()
    for line in ("task flawed", "host LOCAL", "periods -poll 3600", "task.exec",
                 "error [set w bro]ken-exec", "end", "end"):
        second.line(line)
    second.prompt()
    second.line("run")
    for prompt in (first, second):       # the scheduler's own message, not a macro's output
        prompt.expect("error in task.exec")
        prompt.expect("broken-exec")
    wait_until(lambda: "broken-exec" in (home / "sched.log").read_text(), "the message is in the log", 30)
    second.line("quit -force")
    second.expect_exit()


def test_sigterm_stops_the_server_like_quit_force(server, sched_env):
    start, home = server
    sleeper = f"sleep 600.{os.getpid()}"  # this test's own: another suite's `sleep 600` may run beside it
    assert start(QUIET + f"task busy\n  host LOCAL\n  command {sleeper}\nend\nrun\n").returncode == 0
    pid = int((home / "sched.pid").read_text())
    wait_until(lambda: "sleep" in sched(sched_env, "-c", "jobs", "--attach").stdout, "the job runs", 30)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the server has ended", 30)
    assert not (home / "sched.sock").exists()
    assert subprocess.run(["pgrep", "-f", sleeper], capture_output=True).returncode == 1


def test_a_malformed_request_is_answered_and_the_server_lives(server, sched_env):
    start, home = server
    assert start().returncode == 0
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(home / "sched.sock"))
        stream = sock.makefile("rwb")
        assert json.loads(stream.readline())["type"] == "hello"
        for line in (b"not json\n", b'{"v": 9, "op": "eval", "id": 1}\n', b'{"v": 1, "op": "rm", "id": 2}\n',
                     b'{"v": 1, "op": "eval", "id": "x"}\n'):
            stream.write(line)
            stream.flush()
            reply = json.loads(stream.readline())
            assert reply["type"] == "reply" and reply["ok"] is False and "malformed" in reply["text"]
        stream.write(b'{"v": 1, "op": "eval", "id": 7, "script": "shout"}\n')
        stream.flush()
        reply = json.loads(stream.readline())
        assert (reply["id"], reply["ok"], reply["text"]) == (7, True, "SHOUT-42")
    assert sched(sched_env, "--stop").returncode == 0


def test_ctrl_c_right_after_enter_is_not_lost(server, sched_env):
    """Ctrl-C pressed as soon as a request is sent reaches the server in the same read, before it
    has begun the request (a signal then would be ignored, as at an idle prompt): the request is
    answered `interrupted` and not run, and the prompt's next request runs as usual."""
    start, home = server
    assert start(QUIET + "task busy\n  host LOCAL\n  command sleep 600\nend\n").returncode == 0
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(home / "sched.sock"))
        stream = sock.makefile("rwb")
        assert json.loads(stream.readline())["type"] == "hello"
        stream.write(b'{"v": 1, "op": "eval", "id": 1, "script": "incr made; run; wait"}\n'
                     b'{"v": 1, "op": "interrupt", "id": 0}\n')
        stream.flush()
        reply = json.loads(stream.readline())
        assert (reply["id"], reply["ok"], reply["text"]) == (1, False, "interrupted")
        stream.write(b'{"v": 1, "op": "eval", "id": 2, "script": "list $made [shout]"}\n')
        stream.flush()
        reply = json.loads(stream.readline())
        assert (reply["id"], reply["ok"], reply["text"]) == (2, True, "0 SHOUT-42")
    assert sched(sched_env, "--stop").returncode == 0


def test_a_killed_server_restarted_runs_each_exit_macro_once(server, sched_env, tmp_path):
    start, home = server
    ledger = tmp_path / "macros.txt"
    script = f"""\
task slow
  command sleep 2
  nmax 3
  npending 3
  task.exit 0
    exec sh -c "echo $job_id >> {ledger}"
  end
end
run
"""
    pcontrol = [str(Path(SCHED_COMMAND[0]).with_name("pcontrol"))]
    try:
        assert start(script).returncode == 0
        first = int((home / "sched.pid").read_text())
        wait_until(lambda: sched(sched_env, "-c", "jobs", "--attach").stdout.count("sleep") >= 3,
                   "three jobs are out", 30)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{first}").exists(), "the server is dead", 10)
        assert start(script).returncode == 0   # the socket and pid file it left are not in the way
        wait_until(lambda: ledger.exists() and len(ledger.read_text().split()) >= 3, "three exit macros", 60)
        assert sched(sched_env, "--stop").returncode == 0
        assert sorted(ledger.read_text().split()) == sorted(set(ledger.read_text().split()))
        assert len(ledger.read_text().split()) == 3
    finally:
        subprocess.run(pcontrol + ["stop", "-kill", "-force"], env=sched_env, capture_output=True, timeout=60)


def test_the_log_rotates_and_reopens_on_sighup(sched_env, tmp_path):
    """`--log-max-bytes` bounds the server's log, macro output included; SIGHUP reopens it."""
    home = Path(sched_env["SCHED_HOME"])
    script = tmp_path / "chatty.sched"
    script.write_text("set i 0\n")
    assert sched(sched_env, "--serve", "--log-max-bytes", "4k", "--log-keep", "2", str(script)).returncode == 0
    pid = int((home / "sched.pid").read_text())
    try:
        for _ in range(5):
            assert sched(sched_env, "-c", "for {set j 0} {$j < 100} {incr j} {puts [string repeat x 60]}",
                         "--attach").returncode == 0
        logs = sorted(p.name for p in home.glob("sched.log*"))
        assert logs == ["sched.log", "sched.log.1", "sched.log.2"]
        assert all(p.stat().st_size < 4096 + 200 for p in home.glob("sched.log*"))
        (home / "sched.log").rename(home / "moved.log")
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: (home / "sched.log").exists(), "the log is reopened", 10)
        assert sched(sched_env, "-c", "puts after-reopen", "--attach").returncode == 0
        wait_until(lambda: "after-reopen" in (home / "sched.log").read_text(), "output in the new log", 10)
    finally:
        assert sched(sched_env, "--stop").returncode == 0
