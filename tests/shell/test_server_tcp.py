"""A sched server on TCP through the real programs: `sched --serve --listen`, `--attach --connect`
(pexpect), `-c ... --attach --connect`, `--stop --connect`; a wrong secret, a bad handshake and a
proof made for pcontrol (the same secret, pcontrol's label) refused."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from pcontrol import auth

from psched_test_command import SCHED_COMMAND

pytestmark = pytest.mark.timeout(90)

SCRIPT = """\
proc shout {} { return SHOUT-[expr {6 * 7}] }
task busy
  host LOCAL
  command sleep 600
end
"""


def sched(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SCHED_COMMAND + list(args), env=env, capture_output=True, text=True, timeout=60)


def test_attach_over_tcp_with_the_secret_only(sched_env, tmp_path, terminal):
    home = Path(sched_env["SCHED_HOME"])
    script = tmp_path / "served.sched"
    script.write_text(SCRIPT)
    started = sched(sched_env, "--serve", "--listen", "127.0.0.1:0", str(script))
    assert started.returncode == 0, started.stderr
    address = re.search(r"on TCP (127\.0\.0\.1:\d+)", started.stderr).group(1)
    pid = int((home / "sched.pid").read_text())
    try:
        assert oct((home / "secret").stat().st_mode & 0o777) == "0o600"
        shout = sched(sched_env, "-c", "shout", "--attach", "--connect", address)
        assert (shout.returncode, shout.stdout) == (0, "SHOUT-42\n"), shout.stderr

        wrong = tmp_path / "wrong-secret"
        wrong.write_bytes(os.urandom(32))
        wrong.chmod(0o600)
        refused = sched(sched_env, "-c", "shout", "--attach", "--connect", address, "--secret-file", str(wrong))
        assert refused.returncode == 1 and refused.stdout == ""
        assert "refused the connection: wrong proof" in refused.stderr
        assert "refused a prompt from" in (home / "sched.log").read_text()

        host, port = address.split(":")
        with socket.create_connection((host, int(port))) as sock:    # no proof, a made-up request
            stream = sock.makefile("rwb")
            assert json.loads(stream.readline())["auth"] == "challenge"
            stream.write(b'{"v": 1, "op": "eval", "id": 1, "script": "shout"}\n')
            stream.flush()
            reply = json.loads(stream.readline())
            assert reply["ok"] is False and "malformed authentication" in reply["text"]
            assert stream.readline() == b""                          # and the server hung up

        with socket.create_connection((host, int(port))) as sock:    # the right secret, pcontrol's proof
            stream = sock.makefile("rwb")
            challenge = auth.decode_challenge(stream.readline())
            stream.write(auth.proof_line((home / "secret").read_bytes(), challenge))
            stream.flush()
            reply = json.loads(stream.readline())
            assert reply["ok"] is False and "wrong proof" in reply["text"]

        prompt = terminal("--attach", "--connect", address)
        prompt.expect(f"attached to the server in {home} at {address}")
        prompt.prompt()
        prompt.line("echo [shout]-over-tcp")
        prompt.expect("SHOUT-42-over-tcp")
        prompt.prompt()
        prompt.line("run; wait")                  # a standing task: waits until interrupted
        prompt.send("\x03")
        prompt.expect("interrupted")
        prompt.prompt()
        prompt.line("detach")
        assert prompt.expect_exit() == 0

        stopped = sched(sched_env, "--stop", "--connect", address)
        assert stopped.returncode == 0, stopped.stderr
        assert not (home / "sched.pid").exists()
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_listen_needs_serve_and_connect_needs_attach(sched_env):
    assert "--listen goes with --serve" in sched(sched_env, "--listen", "127.0.0.1:0").stderr
    assert "go with --attach or --stop" in sched(sched_env, "--connect", "127.0.0.1:1").stderr
    no_secret = sched(sched_env, "-c", "set x", "--attach", "--connect", "127.0.0.1:1")
    assert no_secret.returncode == 1 and "no secret file" in no_secret.stderr
    home = Path(sched_env["SCHED_HOME"])
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "secret").write_bytes(os.urandom(32))
    (home / "secret").chmod(0o600)
    nobody = sched(sched_env, "-c", "set x", "--attach", "--connect", "127.0.0.1:1")
    assert nobody.returncode == 1 and "no server listens on TCP 127.0.0.1:1" in nobody.stderr
