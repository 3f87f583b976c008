"""The real programs: `pcontrol start/stop`, one-shot commands with exit status, stdin
lines, and the interactive prompt (driven through pexpect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pcontrol.client import ControllerClient
from pcontrol.wire import EventKind
from pcontrol_harness import run

PCONTROL = [sys.executable, "-m", "pcontrol"]


def pcontrol(home: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, SCHED_HOME=home)
    return subprocess.run([*PCONTROL, *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60)


async def wait_done(home: str, job_id: int) -> dict:
    client = await ControllerClient.connect(home)
    try:
        await client.subscribe()
        record = await client.call("check", "job", str(job_id))
        if record["state"] == "DONE":
            return record
        async for event in client.events():
            if event.kind is EventKind.JOB and event.data["id"] == job_id \
                    and event.data["state"] == "DONE":
                return event.data
        raise AssertionError("connection closed before the job ended")
    finally:
        await client.close()


@pytest.fixture
def daemon(home: str):
    started = pcontrol(home, "start", "--heartbeat", "0.2")
    assert started.returncode == 0, started.stderr
    yield started
    pcontrol(home, "stop", "-kill")


def test_start_commands_stop_and_start_again(home: str, daemon: subprocess.CompletedProcess) -> None:
    assert daemon.stdout.startswith("pcontrol started (pid ")
    again = pcontrol(home, "start")
    assert again.returncode == 0 and "already running" in again.stdout
    assert pcontrol(home, "host", "add", "localhost", "-slots", "2").returncode == 0
    submitted = pcontrol(home, "job", "--", "sh", "-c", "echo hi there")
    assert submitted.returncode == 0
    job_id = int(submitted.stdout)
    record = run(wait_done(home, job_id))
    assert record["outcome"] == "EXIT"
    out = pcontrol(home, "stdout", str(job_id))
    assert out.returncode == 0 and out.stdout == "hi there\n"
    status = json.loads(pcontrol(home, "status", "-json").stdout)
    assert status["jobs"]["DONE"] == 1 and status["hosts"]["IDLE"] == 1
    bad = pcontrol(home, "host", "frob")
    assert bad.returncode == 1
    assert 'unknown subcommand "frob" of "host"' in bad.stderr and bad.stdout == ""

    stopped = pcontrol(home, "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("pcontrol stopped")
    assert not (Path(home) / "pcontrol.sock").exists()
    assert not (Path(home) / "pcontrol.pid").exists()
    assert "not running" in pcontrol(home, "stop").stdout
    gone = pcontrol(home, "status")
    assert gone.returncode == 1 and "not running" in gone.stderr

    assert pcontrol(home, "start").returncode == 0
    hosts = json.loads(pcontrol(home, "hosts", "-json").stdout)
    assert [h["name"] for h in hosts] == ["localhost"]
    kept = json.loads(pcontrol(home, "check", "job", str(job_id), "-json").stdout)
    assert kept["outcome"] == "EXIT"
    assert (Path(home) / "pcontrol.log").stat().st_mode & 0o077 == 0


def test_help_works_without_a_daemon(home: str) -> None:
    result = pcontrol(home, "help", "host", "add")
    assert result.returncode == 0
    assert result.stdout.startswith("host add NAME ?-slots SLOTS? ?-connect COMMAND?")


def test_commands_from_stdin(home: str, daemon: subprocess.CompletedProcess) -> None:
    result = pcontrol(home, stdin="# a comment\nping\n\nstatus\n")
    assert result.returncode == 0 and result.stdout.startswith("pong\n")
    failed = pcontrol(home, stdin="ping\nbogus\n")
    assert failed.returncode == 1 and 'unknown command "bogus"' in failed.stderr


def test_interactive_prompt(home: str, daemon: subprocess.CompletedProcess) -> None:
    env = dict(os.environ, SCHED_HOME=home, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(PCONTROL[0], PCONTROL[1:], env=env, encoding="utf-8", timeout=20,
                          dimensions=(40, 200))
    try:
        child.expect("pcontrol>")
        child.sendline("host add localhost")
        child.expect("host localhost added")
        child.expect("pcontrol>")
        child.sendline("help check")
        child.expect("check host NAME")
        child.expect("pcontrol>")
        child.sendline("nosuch")
        child.expect('unknown command "nosuch"')
        child.expect("pcontrol>")
        child.send("check ho\t")                 # completes the subcommand...
        child.expect("check host")
        child.send("loc\t")                      # ...and the host name
        child.expect("localhost")
        child.send("\r")
        child.expect("state:")
        child.expect("pcontrol>")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "host add localhost" in (Path(home) / "pcontrol_history").read_text()
