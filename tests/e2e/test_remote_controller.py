"""A remote controller over TCP: a real `pcontrol serve --listen 127.0.0.1:0` in one home, and
the pcontrol CLI and the sched shell of another home driving it. The right secret works, a
wrong one is refused saying so, nothing listening is an error naming HOST:PORT, and a sched
told to use a TCP controller never starts a daemon of its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from prompts import new_prompt  # a new prompt, not a redraw (tests/tools/prompts.py)

import psched
from pcontrol.client import CONNECT_ENV, SECRET_FILE_ENV, ControllerClient
from pcontrol.controller import Controller
from pcontrol.errors import ControllerDisconnected
from pcontrol.paths import Paths
from pcontrol.server import ControlServer, ServerLimits

from sched_shell import Shell as BaseShell

PCONTROL = [sys.executable, "-m", "pcontrol"]
WAIT = 30.0


def short_home(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o700)
    return path


@dataclass
class Remote:
    """A pcontrol serving TCP on 127.0.0.1 from its own home."""

    home: Path
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secret(self) -> Path:
        return self.home / "secret"

    def stopped(self) -> bool:
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            return False
        return True


@pytest.fixture
def remote() -> Iterator[Remote]:
    home = short_home("rpc.")
    log = home / "serve.log"
    read_end, write_end = os.pipe()
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            [*PCONTROL, "--home", str(home), "serve", "--listen", "127.0.0.1:0",
             "--ready-fd", str(write_end), "--lease", "5"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, pass_fds=(write_end,),
            start_new_session=True, env={k: v for k, v in os.environ.items()
                                         if k not in (CONNECT_ENV, SECRET_FILE_ENV)})
    os.close(write_end)
    try:
        readable, _, _ = select.select([read_end], [], [], WAIT)
        assert readable and b"ready" in os.read(read_end, 64), log.read_text()
        found = re.search(r"listening on TCP 127\.0\.0\.1:(\d+)", log.read_text())
        assert found, log.read_text()
        yield Remote(home, process, int(found.group(1)), log)
    finally:
        os.close(read_end)
        if process.poll() is None:
            subprocess.run([*PCONTROL, "--home", str(home), "stop", "-kill", "-force"],
                           capture_output=True, timeout=60)
        if process.poll() is None and not Remote(home, process, 0, log).stopped():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(WAIT)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def local_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The home of the client side: its own secret, and no daemon unless a test starts one."""
    home = short_home("rpl.")
    monkeypatch.setenv("SCHED_HOME", str(home))
    monkeypatch.delenv(CONNECT_ENV, raising=False)
    monkeypatch.delenv(SECRET_FILE_ENV, raising=False)
    wrong = home / "secret"
    wrong.write_bytes(os.urandom(32))
    wrong.chmod(0o600)
    yield home
    started = Paths.for_home(home).socket.exists()
    shutil.rmtree(home, ignore_errors=True)
    assert not started, "a local pcontrol was started"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pcontrol(*args: str, env: dict[str, str] | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PCONTROL, *args], env=dict(os.environ, **(env or {})), input=stdin,
                          capture_output=True, text=True, timeout=60)


# -- the pcontrol CLI --------------------------------------------------------------------------

def test_the_cli_drives_a_remote_pcontrol_with_its_secret(remote: Remote, local_home: Path) -> None:
    pong = pcontrol("--connect", remote.address, "--secret-file", str(remote.secret), "ping")
    assert pong.returncode == 0 and pong.stdout == "pong\n", pong.stderr
    by_env = pcontrol("status", "-json", env={CONNECT_ENV: remote.address,
                                              SECRET_FILE_ENV: str(remote.secret)})
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["pid"] == remote.process.pid
    lines = pcontrol(f"--connect={remote.address}", f"--secret-file={remote.secret}",
                     stdin="host add far -slots 1 -connect false\nhosts\n")
    assert lines.returncode == 0, lines.stderr
    assert "host far added" in lines.stdout and re.search(r"^far\s", lines.stdout, re.M)
    help_text = pcontrol("--connect", remote.address, "help", "jobs")   # from the table: no daemon
    assert help_text.stdout.startswith("jobs ?-state STATE? ?-owner OWNER? ?-host H? "
                                       "?-limit N? ?-after ID? ?-json?")
    # the local side's own secret is not the remote's: refused, saying with what
    wrong = pcontrol("--connect", remote.address, "ping")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith(f"pcontrol: pcontrol at TCP {remote.address}: pcontrol "
                                   "refused the connection: wrong proof")
    assert str(local_home / "secret") in wrong.stderr
    # the remote's `stop` is its shutdown command, which refuses nothing here: no jobs out
    assert "refused" in remote.log.read_text()          # it logged the wrong proof
    stopped = pcontrol("--connect", remote.address, "--secret-file", str(remote.secret), "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("pcontrol is stopping"), \
        stopped.stderr
    assert remote.stopped()


def test_the_cli_names_the_address_when_nothing_listens(local_home: Path) -> None:
    port = free_port()
    result = pcontrol("--connect", f"127.0.0.1:{port}", "--secret-file",
                      str(local_home / "secret"), "jobs")
    assert result.returncode == 1
    assert result.stderr == f"pcontrol: pcontrol is not listening on TCP 127.0.0.1:{port}\n"
    by_env = pcontrol("ping", env={CONNECT_ENV: f"127.0.0.1:{port}"})
    assert by_env.returncode == 1 and f"127.0.0.1:{port}" in by_env.stderr
    missing = pcontrol("--connect", f"127.0.0.1:{port}", "--secret-file", "/no/such/secret", "ping")
    assert missing.returncode == 1
    assert "no secret file /no/such/secret: copy the controller's $SCHED_HOME/secret" \
        in missing.stderr


def test_the_interactive_prompt_talks_to_a_remote_pcontrol(remote: Remote,
                                                             local_home: Path) -> None:
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(PCONTROL[0], [*PCONTROL[1:], "--connect", remote.address,
                                        "--secret-file", str(remote.secret)],
                          env=env, encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        child.expect(new_prompt("pcontrol>"))
        child.sendline("version")
        child.expect(f"pid {remote.process.pid}")
        child.expect(new_prompt("pcontrol>"))
        child.sendline("start")
        child.expect(f"pcontrol at TCP {remote.address} starts on its own machine")
        child.expect(new_prompt("pcontrol>"))
        child.sendline("stop")                 # its shutdown command
        child.expect("pcontrol is stopping")
        child.expect(new_prompt("pcontrol>"))
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert remote.stopped()


@pytest.mark.parametrize("args, env, message", [
    (["--connect", "nowhere", "ping"], {}, "pcontrol: --connect: expected HOST:PORT, got 'nowhere'"),
    (["--connect", "h:99999", "ping"], {}, "port must be a number from 1 to 65535"),
    (["--connect"], {}, "pcontrol: --connect needs a value"),
    (["ping"], {CONNECT_ENV: "h:x"}, "pcontrol: $PCONTROL_CONNECT: port must be a number"),
    (["--connect", "127.0.0.1:7000", "start"], {},
     "pcontrol: --connect is for client commands; `start` runs pcontrol on this machine"),
])
def test_bad_connect_options_are_usage_errors(local_home: Path, args: list[str],
                                              env: dict[str, str], message: str) -> None:
    result = pcontrol(*args, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr


# -- the sched shell ---------------------------------------------------------------------------

class Shell(BaseShell):
    source = "remote.sched"


def test_sched_runs_jobs_on_a_remote_controller(remote: Remote, local_home: Path) -> None:
    sh = Shell()
    try:
        assert sh.run("controller connect") == \
            f"controller: pcontrol at the socket of {local_home} (not connected)"
        with pytest.raises(psched.SchedError) as refused:
            sh.run(f"controller connect {remote.address}")       # with the local secret
        assert str(refused.value).startswith(
            f"controller connect: pcontrol at TCP {remote.address}: pcontrol refused the "
            "connection: wrong proof")
        assert str(refused.value).endswith(f"; still using pcontrol at the socket of {local_home}")
        assert sh.run(f"controller connect {remote.address} -secret {remote.secret}") == \
            f"controller: connected to pcontrol at TCP {remote.address}"
        sh.run("controller host add localhost -slots 1")
        sh.run("""
task hello
  command echo hi from afar
  nmax 1
  task.exit 0
    echo "[string trim $stdout] on $job_host"
  end
end
run
wait -timeout 60
""")
        assert sh.out.getvalue().splitlines() == ["hi from afar on localhost"]
        status = sh.run("controller status")
        assert f"pcontrol pid {remote.process.pid}" in status
        assert f"sched: connected (pcontrol at TCP {remote.address}); owner " \
               f"sched:{socket.gethostname()}:{local_home}" in status
        held = json.loads(sh.run("controller jobs -json"))
        assert [(j["owner"], j["harvested"] is not None) for j in held] == \
            [(sh.sched.remote.owner, True)]
        with pytest.raises(psched.SchedError, match="starts on its own machine"):
            sh.run("controller start")
        assert sh.run("controller stop").startswith("pcontrol is stopping")   # its shutdown
        assert remote.stopped()
    finally:
        sh.close()


def test_sched_names_the_address_and_starts_no_daemon_when_nothing_listens(
        local_home: Path) -> None:
    port = free_port()
    sh = Shell()
    try:
        with pytest.raises(psched.SchedError) as caught:
            sh.run(f"controller connect 127.0.0.1:{port}")
        assert str(caught.value) == (f"controller connect: pcontrol is not listening on TCP "
                                     f"127.0.0.1:{port}; still using pcontrol at the socket of "
                                     f"{local_home}")
        for bad, message in ((["nowhere"], "expected HOST:PORT, got 'nowhere'"),
                             (["local", "-secret", "x"], "-secret is for a TCP controller"),
                             (["a:1", "-frob"], 'unknown option "-frob"'),
                             (["a:1", "b:2"], "wrong # args")):
            with pytest.raises(psched.SchedError, match=re.escape(message)):
                sh.run("controller connect " + " ".join(bad))
    finally:
        sh.close()


def test_sched_reads_the_controller_address_from_the_environment_at_start(
        remote: Remote, local_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONNECT_ENV, remote.address)
    monkeypatch.setenv(SECRET_FILE_ENV, str(remote.secret))
    sh = Shell()
    try:
        assert f"pcontrol pid {remote.process.pid}" in sh.run("controller status")
        assert sh.run("controller connect").startswith(
            f"controller: pcontrol at TCP {remote.address} (connected")
    finally:
        sh.close()
    port = free_port()
    monkeypatch.setenv(CONNECT_ENV, f"127.0.0.1:{port}")
    down = Shell()
    try:
        with pytest.raises(psched.SchedError) as caught:
            down.run("controller hosts")
        assert str(caught.value) == f"controller: pcontrol is not listening on TCP 127.0.0.1:{port}"
        # reported, to be retried; and no local daemon was started (see local_home)
        assert down.messages == [f"controller: pcontrol is not listening on TCP 127.0.0.1:{port}; "
                                 "will retry"]
    finally:
        down.close()
    monkeypatch.setenv(CONNECT_ENV, "garbage")
    bad = Shell()
    try:
        with pytest.raises(psched.SchedError,
                           match=re.escape("$PCONTROL_CONNECT: expected HOST:PORT, got 'garbage'")):
            bad.run("controller hosts")
    finally:
        bad.close()


# -- the client learns why it was refused ----------------------------------------------------

def test_a_client_refused_at_the_connection_limit_is_told_overloaded(local_home: Path) -> None:
    async def body() -> None:
        paths = Paths.for_home(local_home)
        controller = Controller(None)
        server = ControlServer(controller, paths.socket, limits=ServerLimits(max_connections=1))
        await controller.start()
        await server.start()
        try:
            first = await ControllerClient.connect(local_home)
            await first.subscribe()                   # busy: not a candidate for eviction
            second = await ControllerClient.connect(local_home)
            with pytest.raises(ControllerDisconnected) as caught:
                await second.request(["ping"], timeout=WAIT)
            assert "too many connections (limit 1)" in str(caught.value)
            assert str(caught.value).endswith("(overloaded)")
            assert (await first.call("ping"))["pong"] is True
            await first.close()
            await second.close()
        finally:
            await server.close()
            await controller.stop()
            paths.socket.unlink(missing_ok=True)
    asyncio.run(body())
