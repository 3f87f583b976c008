"""The real programs: `pcontrol start/stop`, one-shot commands with exit status, stdin
lines, and the interactive prompt (driven through pexpect)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from prompts import drawn, new_prompt

from pcontrol.client import ControllerClient
from pcontrol.wire import EventKind
from pcontrol_harness import run
from waiting import wait_until_sync

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


def test_version_works_without_a_daemon(home: str) -> None:
    from pclient.protocol import AGENT_VERSION

    result = pcontrol(home, "--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("pcontrol ") and f"pclient {AGENT_VERSION}" in result.stdout
    assert "unknown" not in result.stdout  # the installed distribution's version


def test_commands_from_stdin(home: str, daemon: subprocess.CompletedProcess) -> None:
    result = pcontrol(home, stdin="# a comment\nping\n\nstatus\n")
    assert result.returncode == 0 and result.stdout.startswith("pong\n")
    failed = pcontrol(home, stdin="ping\nbogus\n")
    assert failed.returncode == 1 and 'unknown command "bogus"' in failed.stderr


PROMPT = new_prompt("pcontrol>")  # a new prompt, not a redraw (tests/tools/prompts.py)


def test_interactive_prompt(home: str, daemon: subprocess.CompletedProcess) -> None:
    env = dict(os.environ, SCHED_HOME=home, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(PCONTROL[0], PCONTROL[1:], env=env, encoding="utf-8", timeout=20,
                          dimensions=(40, 200))
    try:
        child.expect(PROMPT)
        child.sendline("host add localhost")
        child.expect("host localhost added")
        child.expect(PROMPT)
        child.sendline("help check")
        child.expect("check host NAME")
        child.expect(PROMPT)
        child.sendline("nosuch")
        child.expect('unknown command "nosuch"')
        child.expect(PROMPT)
        child.send("check ho\t")                 # completes the subcommand...
        child.expect(drawn("check host"))
        child.send("loc\t")                      # ...and the host name
        child.expect(drawn("localhost"))
        child.send("\r")
        child.expect("state:")
        child.expect(PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "host add localhost" in (Path(home) / "pcontrol_history").read_text()


# -- where the client connects: --connect, $PCONTROL_CONNECT, the local socket -----------------

@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:7000", ("127.0.0.1", 7000)),
    ("ctl.example.org:1", ("ctl.example.org", 1)),
    ("[::1]:65535", ("::1", 65535)),
    (" host:22 ", ("host", 22)),
])
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    from pcontrol.client import format_address, parse_address
    assert parse_address(text) == expected
    assert parse_address(format_address(*expected)) == expected


@pytest.mark.parametrize("text, message", [
    ("7000", "expected HOST:PORT, got '7000'"),
    (":7000", "expected HOST:PORT"),
    ("host:0", "port must be a number from 1 to 65535, got '0'"),
    ("host:http", "port must be a number from 1 to 65535"),
    ("::1:80", "write an IPv6 address in brackets, as [::1]:80"),
])
def test_parse_address_refuses(text: str, message: str) -> None:
    from pcontrol.client import parse_address
    with pytest.raises(ValueError) as caught:
        parse_address(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("connect, secret_file, environ, expected", [
    (None, None, {}, (None, None)),
    (None, None, {"PCONTROL_CONNECT": ""}, (None, None)),               # empty: local
    (None, None, {"PCONTROL_CONNECT": "h:1"}, (("h", 1), None)),
    (None, None, {"PCONTROL_CONNECT": "h:1", "PCONTROL_SECRET_FILE": "/s"}, (("h", 1), "/s")),
    ("k:2", None, {"PCONTROL_CONNECT": "h:1"}, (("k", 2), None)),       # the option wins
    ("k:2", "/mine", {"PCONTROL_SECRET_FILE": "/s"}, (("k", 2), "/mine")),
])
def test_the_address_comes_from_the_option_then_the_environment(
        connect: str | None, secret_file: str | None, environ: dict[str, str],
        expected: tuple) -> None:
    from pcontrol.client import ControllerAddress
    address = ControllerAddress.chosen("/tmp/h", connect=connect, secret_file=secret_file,
                                       environ=environ)
    assert (address.tcp, str(address.secret_file) if address.secret_file else None) == expected
    assert address.home == Path("/tmp/h")
    if address.tcp is None:
        assert str(address) == "the socket of /tmp/h"
    else:
        assert str(address) == f"TCP {address.tcp[0]}:{address.tcp[1]}"
        assert address.secret_path() == (address.secret_file or Path("/tmp/h/secret"))


def test_a_bad_environment_address_is_named() -> None:
    from pcontrol.client import ControllerAddress
    with pytest.raises(ValueError, match=r"^\$PCONTROL_CONNECT: expected HOST:PORT, got 'x'$"):
        ControllerAddress.chosen("/tmp/h", environ={"PCONTROL_CONNECT": "x"})


def test_a_tcp_client_never_makes_up_a_secret(home: str) -> None:
    from pcontrol.client import ControllerAddress
    from pcontrol.errors import SecretUnavailable

    async def body() -> None:
        with pytest.raises(SecretUnavailable) as caught:
            await ControllerAddress.remote("127.0.0.1:9", home).connect()
        assert str(caught.value).startswith(
            f"pcontrol at TCP 127.0.0.1:9: no secret file {home}/secret: copy the "
            "controller's $SCHED_HOME/secret there (mode 600)")
        assert not (Path(home) / "secret").exists()
        loose = Path(home) / "loose"
        loose.write_bytes(b"x" * 32)
        loose.chmod(0o644)
        with pytest.raises(SecretUnavailable, match="readable by others"):
            await ControllerAddress.remote("127.0.0.1:9", home, loose).connect()
    run(body())


def test_a_reader_that_leaves_early_gets_no_traceback(home: str) -> None:
    """`pcontrol help | head -1`: the broken pipe ends pcontrol quietly."""
    reader = subprocess.Popen([*PCONTROL, "--home", home, "help"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, bufsize=0)
    reader.stdout.close()                        # the reader leaves before pcontrol writes
    err = reader.stderr.read().decode()
    assert reader.wait(30) == 1, err
    assert err == ""


def test_the_daemon_log_rotates_by_size_and_sighup_reopens_it(home: str) -> None:
    started = pcontrol(home, "start", "--log-max-bytes", "2k", "--log-keep", "2")
    assert started.returncode == 0, started.stderr
    logs = Path(home)
    try:
        # each failing host add logs a few lines; one client for the 40 commands (stdin lines)
        pcontrol(home, stdin="".join(f"host add h{i} -connect false\n" for i in range(40)))
        wait_until_sync(lambda: (logs / "pcontrol.log.2").exists(), "the log has rotated twice")
        names = sorted(p.name for p in logs.glob("pcontrol.log*"))
        assert names == ["pcontrol.log", "pcontrol.log.1", "pcontrol.log.2"]
        assert all(p.stat().st_size <= 2048 for p in logs.glob("pcontrol.log.*"))
        (logs / "pcontrol.log").rename(logs / "moved.log")
        os.kill(int((logs / "pcontrol.pid").read_text()), signal.SIGHUP)   # what logrotate's postrotate does
        assert pcontrol(home, "hosts").returncode == 0                       # still serving
        wait_until_sync(lambda: (logs / "pcontrol.log").exists(), "the log is reopened")
    finally:
        assert pcontrol(home, "stop", "-force").returncode == 0
    assert "stopped" in (logs / "pcontrol.log").read_text()


def test_serve_options_are_kept_without_those_of_one_start_and_with_files_made_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcontrol.cli import _settled_options

    monkeypatch.chdir(tmp_path)
    given, kept = _settled_options(["--retention=5", "--alerts", "mail.conf", "--ready-fd", "7",
                                    "--spare-local-agent", "8", "--log-file=x/p.log"])
    mail, log = str(tmp_path / "mail.conf"), str(tmp_path / "x" / "p.log")
    assert given == ["--retention", "5", "--alerts", mail, "--ready-fd", "7",
                     "--spare-local-agent", "8", "--log-file", log]
    assert kept == ["--retention", "5", "--alerts", mail, "--log-file", log]
    # launch.start names the home's log first, a kept --log-file after it: kept once, the last
    _, again = _settled_options(["--log-file", "/h/pcontrol.log", *kept, "--spare-local-agent", "8"])
    assert again == ["--retention", "5", "--alerts", mail, "--log-file", log]


@pytest.mark.parametrize("text", ["not json", '{"a": 1}', '["--retention", 5]'])
def test_unusable_remembered_options_are_ignored_with_a_warning(
        tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture) -> None:
    from pcontrol.launch import remembered_options
    from pcontrol.paths import Paths

    paths = Paths.for_home(tmp_path)
    assert remembered_options(paths) == []
    paths.options.write_text(text)
    assert remembered_options(paths) == []
    assert "pcontrol.options is not a JSON list of options; ignored" in caplog.text
    paths.options.write_text('["--retention", "5"]')
    assert remembered_options(paths) == ["--retention", "5"]


def test_remembered_options_leave_out_the_homes_own_log(tmp_path: Path) -> None:
    """Every start names the home's log (warmstart.serve_argv): a kept copy of it is not given
    again (it showed twice in `ps`); another log file kept is."""
    import json

    from pcontrol.launch import remembered_options
    from pcontrol.paths import Paths

    paths = Paths.for_home(tmp_path)
    paths.options.write_text(json.dumps(["--retention", "5", "--log-file", str(paths.log), "--alerts", "/a"]))
    assert remembered_options(paths) == ["--retention", "5", "--alerts", "/a"]
    paths.options.write_text(json.dumps(["--log-file", "/var/log/pcontrol.log"]))
    assert remembered_options(paths) == ["--log-file", "/var/log/pcontrol.log"]
