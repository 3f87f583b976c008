"""pcontrol.bootstrap without sshd: the bundle, `pcontrol agent-bundle`, the loader's refusals.

The loader runs here under the machine's own python3 through `sh -c`, as a host's login
shell would run it (and through the fake ssh, under real Pythons 3.10 and 3.6 when pyenv
has them); the real-ssh path is in test_bootstrap_sshd.py.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pclient
from pclient.protocol import Hello, decode
from pcontrol.bootstrap import BootstrapStart, build_bundle, current_bundle, remote_command
from pcontrol_harness import controller_running, run, write_older_pclient

PCONTROL = str(Path(sys.executable).parent / "pcontrol")


def test_the_bundle_is_the_same_bytes_from_the_same_sources() -> None:
    first, second = build_bundle(), build_bundle()
    assert first.data == second.data and first.sha256 == second.sha256
    assert first.build == current_bundle().build


def test_agent_bundle_writes_a_zipapp_that_python3_runs(tmp_path: Path) -> None:
    target = tmp_path / "pclient.pyz"
    done = subprocess.run([PCONTROL, "agent-bundle", str(target)], capture_output=True,
                          text=True, check=True)
    assert f"build {current_bundle().build[:12]}" in done.stdout
    assert os.access(target, os.X_OK)
    version = subprocess.run(["python3", str(target), "--version"], capture_output=True,
                             text=True, check=True, cwd=tmp_path)
    assert version.stdout.strip() == f"pclient {pclient.__version__}"
    # the agent itself: its hello, then it ends at the end of its input
    agent = subprocess.run(["python3", "-I", str(target), "--slots", "3"], input=b"",
                           capture_output=True, check=True, cwd=tmp_path, timeout=30)
    hello = decode(agent.stdout.splitlines()[0])
    assert isinstance(hello, Hello) and hello.slots == 3
    assert hello.build == current_bundle().build


def test_agent_bundle_needs_one_file() -> None:
    done = subprocess.run([PCONTROL, "agent-bundle"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: pcontrol agent-bundle FILE" in done.stderr


def _loader_says(command: str, env: dict[str, str]) -> bytes:
    done = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,
                          capture_output=True, env=env, timeout=30)
    return done.stdout


def test_a_python_too_old_is_named_with_the_version_needed(tmp_path: Path) -> None:
    bundle = current_bundle()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    line = _loader_says(remote_command(bundle, [], need=(3, 99)), env)
    start = BootstrapStart(bundle, need=(3, 99))
    reply = start.answer(line)
    found = subprocess.run(["sh", "-c", "python3 -c 'import platform, sys; "
                            "print(platform.python_version(), sys.executable)'"],
                           capture_output=True, text=True, env=env).stdout.split()
    assert reply.failure == (f"the host's python3 ({found[1]}) is Python {found[0]}; the "
                             "agent needs Python 3.99 or newer")
    assert not (tmp_path / "pclient").exists()      # nothing asked for, nothing cached


def test_no_python3_on_path(tmp_path: Path) -> None:
    line = _loader_says(remote_command(current_bundle(), []),
                        {"PATH": str(tmp_path), "HOME": str(tmp_path)})
    reply = BootstrapStart(current_bundle()).answer(line)
    assert reply.failure == (f"no python3 on the host's PATH ({tmp_path}); the agent needs "
                             "Python 3.10 or newer")


def test_damaged_code_is_refused(tmp_path: Path) -> None:
    bundle = current_bundle()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    damaged = bytearray(bundle.data)
    damaged[100] ^= 0xFF
    wire = BootstrapStart(bundle).answer  # what pcontrol would answer to `send` ...
    assert wire(b"pclient-bootstrap: send x 1\n").send == bundle.wire
    # ... and what arrives instead:
    done = subprocess.run(["sh", "-c", remote_command(bundle, [])], env=env, timeout=30,
                          input=base64.b64encode(bytes(damaged)) + b"\n", capture_output=True)
    last = done.stdout.splitlines()[-1] + b"\n"
    assert BootstrapStart(bundle).answer(last).failure == (
        "the agent's code arrived damaged (sha256 mismatch)")
    assert not any((tmp_path / "pclient").glob("*/pclient.pyz"))


PYENV = Path("/root/.pyenv/versions")


def _python3_first_on_path(home: str, monkeypatch: pytest.MonkeyPatch, version: str) -> str:
    """Put a real interpreter of `version` first on PATH as `python3` (for the fake ssh's
    "host", which is this machine); skip when this machine has none."""
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no Python {version} under {PYENV} to stand for a host's python3")
    bin_dir = Path(home) / f"python{version}"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(found[-1])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return str(bin_dir / "python3")


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_the_agent_runs_on_the_oldest_python_it_supports_and_the_newest(
        home: str, fake_ssh: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """3.10, the oldest it supports; 3.12 and 3.13 removed modules and deprecated APIs that an
    agent written on 3.11 could lean on (a host's python3 is whatever its distribution has)."""
    _python3_first_on_path(home, monkeypatch, version)

    async def body() -> None:
        async with controller_running(home) as h:
            await h.cmd("host", "add", "works")
            host = await h.wait_host("works", "IDLE")
            assert host["agent"]["build"] == current_bundle().build
            assert os.readlink(f"/proc/{host['agent']['pid']}/exe").endswith(f"python{version}")
            job = await h.wait_job(await h.submit("-host", "works", "--", "echo", version))
            assert job["outcome"] == "EXIT"
            assert (await h.cmd("stdout", job["id"]))["stdout"] == f"{version}\n"
    run(body())


def test_a_python_older_than_3_10_is_down_with_both_versions(
        home: str, fake_ssh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python3 = _python3_first_on_path(home, monkeypatch, "3.6")

    async def body() -> None:
        async with controller_running(home) as h:
            await h.cmd("host", "add", "works")
            host = await h.wait_host("works", "DOWN")
            version = subprocess.run([python3, "-c", "import platform; "
                                      "print(platform.python_version())"],
                                     capture_output=True, text=True).stdout.strip()
            assert host["reason"] == (f"the host's python3 ({python3}) is Python {version}; "
                                      "the agent needs Python 3.10 or newer")
    run(body())


def test_an_agent_of_another_build_on_a_connect_host_is_kept_and_said(home: str) -> None:
    old = write_older_pclient(Path(home) / "old")
    connect = f"env PYTHONPATH={old} {sys.executable} -P -m pclient"   # -P: not the cwd's

    async def body() -> None:
        async with controller_running(home) as h:
            await h.cmd("host", "add", "mine", "-connect", connect)
            host = await h.wait_host("mine", "IDLE")
            assert host["agent"]["agent"] == "pclient 0.2.9" and not host["replacing"]
            assert host["agent"]["mismatch"].startswith("the agent is pclient 0.2.9 (build ")
            text = (await h.reply("check", "host", "mine")).text
            assert "version:   the agent is pclient 0.2.9" in text
            job = await h.wait_job(await h.submit("-host", "mine", "--", "true"))
            assert job["outcome"] == "EXIT"
    run(body())
