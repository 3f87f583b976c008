"""The probe's service units and its cron watchdog (scripts/systemd, scripts/pclient-watchdog),
run for real: the units pass `systemd-analyze verify` (else they are parsed), and the watchdog
starts a probe that is not running, restarts a killed one, and never starts a second one."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from waiting import wait_until_sync

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
WATCHDOG = SCRIPTS / "pclient-watchdog"
UNITS = [SCRIPTS / "systemd" / "pcontrol.service", SCRIPTS / "systemd" / "sched.service",
         SCRIPTS / "systemd" / "pclient-probe@.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_units_are_valid_and_hardened(unit: Path, tmp_path: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    service = parser["Service"]
    assert service["Restart"] in ("always", "on-failure")
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectSystem", "ProtectHome"):
        assert key in service, key
    assert "WantedBy" in parser["Install"]
    if unit.name in ("pcontrol.service", "sched.service"):
        # a stop signals pcontrol or sched alone: agents and jobs run on for the next start
        assert service["KillMode"] == "process"
    if shutil.which("systemd-analyze") is None:
        return
    name = unit.name.replace("@.", "@probe17.")  # a template is verified as one of its instances
    copy = tmp_path / name
    copy.write_text(unit.read_text())
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 0 and complaints == [], complaints


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.log = root / "probe.log"
        key = root / "probe.key"
        key.write_text(os.urandom(32).hex())
        self.config = root / "probe.env"
        # nothing listens on the port: the probe retries with backoff, which is all it needs here
        self.config.write_text(f"PROBE_ID=wprobe\nPULL=127.0.0.1:{_free_port()}\nKEY_FILE={key}\n"
                               f"STATE_DIR={self.state}\nLOG={self.log}\n"
                               f"PCLIENT='{sys.executable} -m pclient'\n")

    def watchdog(self) -> subprocess.CompletedProcess:
        return subprocess.run([str(WATCHDOG), str(self.config)], capture_output=True, text=True, timeout=60)

    def probes(self) -> list[int]:
        """Pids of the running probes named wprobe (read from /proc)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if b"--pull" in words and b"wprobe" in words and str(self.state).encode() in words and state != "Z":
                found.append(int(entry))
        return found

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "pclient-watchdog" in line]


@pytest.fixture
def site() -> Iterator[Site]:
    root = Path(tempfile.mkdtemp(prefix="wdog.", dir="/tmp"))
    s = Site(root)
    try:
        yield s
    finally:
        for pid in s.probes():
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def test_the_watchdog_starts_restarts_and_never_starts_two(site: Site) -> None:
    assert site.watchdog().returncode == 0, site.log.read_text()
    assert "was not running: started it" in site.lines()[-1]
    first = wait_until_sync(site.probes, "the probe runs")
    assert len(first) == 1
    assert site.watchdog().returncode == 0
    assert f"is running (pid {first[0]}); nothing done" in site.lines()[-1]
    assert site.probes() == first
    os.kill(first[0], signal.SIGKILL)
    wait_until_sync(lambda: site.probes() == [], "the probe is gone")
    assert site.watchdog().returncode == 0
    assert "was not running: started it" in site.lines()[-1]
    second = wait_until_sync(site.probes, "the probe runs again")
    assert len(second) == 1 and second != first


def test_watchdogs_at_once_start_one_probe(site: Site) -> None:
    runs = [subprocess.Popen([str(WATCHDOG), str(site.config)]) for _ in range(4)]
    assert all(run.wait(60) in (0, 1) for run in runs)
    wait_until_sync(site.probes, "a probe runs")
    # a probe started by hand beside it exits at once: the lock is held
    extra = subprocess.run([sys.executable, "-m", "pclient", "--pull", "127.0.0.1:9", "--id", "wprobe",
                            "--key-file", str(site.root / "probe.key"), "--state-dir", str(site.state)],
                           capture_output=True, text=True, timeout=60)
    assert extra.returncode == 0 and "already running" in extra.stderr
    assert len(site.probes()) == 1
