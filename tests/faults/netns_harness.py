"""Hosts in network namespaces for fault tests: each a namespace joined to this one by a veth
pair with addresses in a /24 of its own under 10.231.0.0/16, and an sshd of its own inside
(own config, port, host key, authorized_keys with a throwaway key). The namespaces share
this machine's filesystem and process table, so an agent started there over ssh runs the
same venv's python, and the test can see its processes.

    with namespace_hosts(workdir, count=1, env={...}) as [ns1]:
        ns1.connect_command(agent)   # a -connect command: ssh ... root@10.231.X.2 AGENT
        ns1.cut()                    # link down on our end of the veth: no FIN, no RST
        ns1.restore()

Traffic goes only to the addresses made here. Everything made (namespaces, veth pairs,
sshd processes, keys) is removed on the way out, whatever happened. `NetnsUnavailable`
says why a machine cannot do this (not root, no `ip` or `sshd`, the kernel refuses
namespaces), so that callers can skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

IP = "ip"
SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
SSH_PORT = 2222
START_TIMEOUT = 15.0


class NetnsUnavailable(Exception):
    """This machine cannot make namespace hosts; the message says why."""


@dataclass
class NsHost:
    netns: str
    veth_here: str          # our end, in this namespace
    veth_there: str         # its end, inside the namespace
    address_here: str
    address: str            # the host's address, where its sshd listens
    key: Path               # the client key its authorized_keys accepts
    sshd: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    def ssh_argv(self) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(SSH_PORT),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3",
                f"root@{self.address}"]

    def connect_command(self, remote: str) -> str:
        """A pcontrol -connect command that runs `remote` on this host over ssh."""
        return shlex.join(self.ssh_argv()) + " " + remote

    def cut(self) -> None:
        """Take our end of the link down: packets stop both ways, nobody is told."""
        _ip("link", "set", self.veth_here, "down")

    def restore(self) -> None:
        _ip("link", "set", self.veth_here, "up")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def check_available() -> None:
    """Raise NetnsUnavailable unless this machine can make namespace hosts."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    for tool in (IP, "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise NetnsUnavailable(f"`{tool}` is not installed (iproute2, openssh-client)")
    if not SSHD.exists():
        raise NetnsUnavailable(f"{SSHD} is not installed (openssh-server)")
    probe = f"pfprobe{os.getpid()}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"the kernel refuses network namespaces: {result.stderr.strip()}")
    _ip("netns", "del", probe, check=False)


def _free_subnets(count: int) -> list[int]:
    """Third octets X of 10.231.X.0/24 that no address or route here uses yet."""
    used = _ip("-4", "-o", "addr").stdout + _ip("-4", "route").stdout
    taken = {int(x) for x in re.findall(r"10\.231\.(\d+)\.", used)}
    start = 10 + os.getpid() % 200       # parallel runs are unlikely to meet
    free = [x % 250 + 1 for x in range(start, start + 250) if x % 250 + 1 not in taken]
    if len(free) < count:
        raise NetnsUnavailable("no free /24 left in 10.231.0.0/16")
    return free[:count]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def namespace_hosts(workdir: Path, count: int = 1, env: dict[str, str] | None = None,
                    sshd_options: tuple[str, ...] = ()) -> Iterator[list[NsHost]]:
    """Make `count` namespace hosts (see the module docstring); `env` is set for every ssh
    session there (sshd's SetEnv); `sshd_options` are extra sshd_config lines."""
    check_available()
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "client_key"
    _keygen(key)
    hosts: list[NsHost] = []
    try:
        for n, x in enumerate(_free_subnets(count), start=1):
            tag = f"{os.getpid() % 100000}{n}"
            host = NsHost(netns=f"pf{tag}", veth_here=f"pf{tag}a", veth_there=f"pf{tag}b",
                          address_here=f"10.231.{x}.1", address=f"10.231.{x}.2", key=key)
            hosts.append(host)
            _make_link(host)
            _start_sshd(host, workdir / host.netns, env or {}, sshd_options)
        yield hosts
    finally:
        for host in hosts:
            _remove(host)


def _make_link(host: NsHost) -> None:
    _ip("netns", "add", host.netns)
    _ip("link", "add", host.veth_here, "type", "veth", "peer", "name", host.veth_there)
    _ip("link", "set", host.veth_there, "netns", host.netns)
    _ip("addr", "add", f"{host.address_here}/24", "dev", host.veth_here)
    _ip("link", "set", host.veth_here, "up")
    _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", host.veth_there)
    _ip("-n", host.netns, "link", "set", host.veth_there, "up")
    _ip("-n", host.netns, "link", "set", "lo", "up")


def _start_sshd(host: NsHost, workdir: Path, env: dict[str, str],
                options: tuple[str, ...]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    host_key = workdir / "host_key"
    _keygen(host_key)
    authorized = workdir / "authorized_keys"
    authorized.write_text(Path(str(host.key) + ".pub").read_text())
    authorized.chmod(0o600)
    config = workdir / "sshd_config"
    setenv = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    config.write_text("\n".join([
        f"Port {SSH_PORT}", f"ListenAddress {host.address}", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", f"PidFile {workdir / 'sshd.pid'}",
        "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "LogLevel INFO",
        *([f"SetEnv {setenv}"] if setenv else []), *options, "",
    ]))
    host.sshd = subprocess.Popen([IP, "netns", "exec", host.netns, str(SSHD), "-D", "-e",
                                  "-f", str(config)],
                                 stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_listening(host)


def _wait_listening(host: NsHost) -> None:
    """Read sshd's log (-e: stderr) until it says it listens; no sleeping."""
    assert host.sshd is not None and host.sshd.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen = b""
    want = f"listening on {host.address} port {SSH_PORT}".encode()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([host.sshd.stderr], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(host.sshd.stderr.fileno(), 4096)
        if not chunk:
            raise NetnsUnavailable(f"sshd in {host.netns} exited: {seen.decode(errors='replace')}")
        seen += chunk
        if want in seen:
            host.log.append(seen.decode(errors="replace"))
            return
    raise NetnsUnavailable(f"sshd in {host.netns} did not start listening: "
                           f"{seen.decode(errors='replace')}")


def _remove(host: NsHost) -> None:
    """Stop its sshd (the sessions it forked too), delete the veth pair and the namespace."""
    if host.sshd is not None:
        _kill_namespace_processes(host.netns)
        if host.sshd.poll() is None:
            host.sshd.terminate()
            try:
                host.sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                host.sshd.kill()
                host.sshd.wait()
        if host.sshd.stderr is not None:
            host.sshd.stderr.close()
    _ip("link", "del", host.veth_here, check=False)    # deletes both ends
    _ip("netns", "del", host.netns, check=False)


def _kill_namespace_processes(netns: str) -> None:
    """SIGKILL whatever still runs in the namespace (sshd's sessions, agents, jobs)."""
    result = _ip("netns", "pids", netns, check=False)
    for word in result.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(word), 9)
