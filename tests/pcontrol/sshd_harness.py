"""A throwaway sshd on 127.0.0.1 for tests: its own port, host key, client key and config.

Used by test_sshd.py, test_bootstrap_sshd.py and bench/. `start_sshd` raises SshdUnavailable
(with the reason) when this machine cannot run one, so callers can skip cleanly.

`fresh_user` (root only) makes a throwaway system account whose login PATH has python3 but
no pclient or psched, so that a test or bench reaches a "host" that has only sshd and Python
(pcontrol.bootstrap); `ssh_config` writes an ssh client config that names such hosts.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import secrets
import signal
import select
import shlex
import shutil
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
        # the second file serves other users (fresh_user): sshd reads keys as the user
        f"AuthorizedKeysFile {authorized} .ssh/authorized_keys",
        f"PidFile {workdir / 'sshd.pid'}", "PermitUserEnvironment PATH",
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


@dataclass
class FreshUser:
    name: str
    home: Path
    uid: int
    gid: int

    def processes(self) -> list[int]:
        """The live processes of this account."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        found.append(int(entry))
        return found


@contextlib.contextmanager
def fresh_user(sshd: Sshd, prefix: str = "pcb", login_path: str | None = None
               ) -> Iterator[FreshUser]:
    """A new system account (shell /bin/sh, home under /home) that accepts sshd's client
    key; removed afterwards with its home, after its processes (all started through this
    sshd) are killed by pid. `login_path`: its PATH over ssh (default: sshd's own, which
    has python3). Root only: SshdUnavailable otherwise."""
    if os.geteuid() != 0:
        raise SshdUnavailable("making a fresh user account needs root")
    name = f"{prefix}{secrets.token_hex(3)}"
    try:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*",
                        name], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SshdUnavailable(f"useradd failed: {getattr(exc, 'stderr', '') or exc}") from None
    entry = pwd.getpwnam(name)
    user = FreshUser(name, Path(entry.pw_dir), entry.pw_uid, entry.pw_gid)
    try:
        ssh_dir = user.home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(Path(f"{sshd.key}.pub").read_text())
        if login_path is not None:
            (ssh_dir / "environment").write_text(f"PATH={login_path}\n")
        for path in ssh_dir.iterdir():
            os.chown(path, user.uid, user.gid)
        os.chown(ssh_dir, user.uid, user.gid)
        yield user
    finally:
        for pid in user.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(f"/tmp/pclient-{user.uid}", ignore_errors=True)   # its agents' sockets


def ssh_config(sshd: Sshd, user: str, path: Path, users: dict[str, str] | None = None
               ) -> Path:
    """An ssh client config where every host name reaches `user` through `sshd`, except
    the names in `users`, which log in as the account named there."""
    lines = []
    for name, other in (users or {}).items():
        lines += [f"Host {name}", f"  User {other}"]
    lines += ["Host *", "  HostName 127.0.0.1", f"  Port {sshd.port}", f"  User {user}",
              f"  IdentityFile {sshd.key}", "  IdentitiesOnly yes", "  BatchMode yes",
              "  StrictHostKeyChecking no", "  UserKnownHostsFile /dev/null",
              "  LogLevel ERROR", ""]
    path.write_text("\n".join(lines))
    return path


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
