"""A throwaway sshd on 127.0.0.1 for tests: its own port, host key, client key and config.

Used by test_sshd.py and bench/bench_pcontrol.py. `start_sshd` raises SshdUnavailable (with
the reason) when this machine cannot run one, so callers can skip cleanly.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")


class SshdUnavailable(Exception):
    pass


@dataclass
class Sshd:
    port: int
    key: Path
    process: subprocess.Popen

    def ssh_argv(self) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-i", str(self.key), "-p", str(self.port), f"{getpass.getuser()}@127.0.0.1"]

    def connect_command(self, remote: str | None = None) -> str:
        """A -connect command that runs the venv's pclient through this sshd."""
        agent = remote or shlex.join([str(Path(sys.executable).parent / "pclient")])
        return shlex.join(self.ssh_argv()) + " " + agent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)


@contextlib.contextmanager
def start_sshd(workdir: Path, timeout: float = 15.0) -> Iterator[Sshd]:
    if not SSHD.exists():
        raise SshdUnavailable(f"{SSHD} is not installed (apt-get install openssh-server)")
    if not PRIVSEP_DIR.exists():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755)
        except OSError as exc:
            raise SshdUnavailable(f"sshd needs {PRIVSEP_DIR}: {exc}") from None
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_key", workdir / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text((workdir / "client_key.pub").read_text())
    authorized.chmod(0o600)
    port = _free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", f"PidFile {workdir / 'sshd.pid'}",
        "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "LogLevel INFO", "MaxStartups 100:30:200",
        "MaxSessions 100", "",
    ]))
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    drain: threading.Thread | None = None
    try:
        _wait_listening(process, port, timeout)
        # keep reading its log so a full pipe never blocks sshd
        drain = threading.Thread(target=_drain, args=(process,), daemon=True)
        drain.start()
        yield Sshd(port, client_key, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=5)      # sshd is gone: its log pipe is at EOF
        if process.stderr is not None:
            process.stderr.close()


def _drain(process: subprocess.Popen) -> None:
    with contextlib.suppress(OSError, ValueError):
        while process.stderr is not None and os.read(process.stderr.fileno(), 65536):
            pass


def _wait_listening(process: subprocess.Popen, port: int, timeout: float) -> None:
    """Read sshd's log (-e: stderr) until it says it listens; no sleeping."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            raise SshdUnavailable(f"sshd exited: {seen.decode(errors='replace').strip()}")
        seen += chunk
        if f"port {port}".encode() in seen and b"listening" in seen.lower():
            return
    raise SshdUnavailable(f"sshd did not start listening: {seen.decode(errors='replace')}")
