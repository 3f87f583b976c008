"""A private etcd for the high-availability tests and bench: Debian's etcd binary on free ports
of 127.0.0.1, its data in a directory of the test's own, stopped by pid. One per test module.

    etcd = EtcdServer.start(tmp_dir)      # or skip: EtcdServer.missing() says why
    etcd.url                              # http://127.0.0.1:PORT
    etcd.stop(); etcd.restart()           # the same data and ports (a restart keeps leases)
    etcd.pause(); etcd.resume()           # SIGSTOP / SIGCONT: etcd unreachable but alive
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from waiting import wait_until_sync

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class EtcdServer:
    directory: Path
    client_port: int
    peer_port: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    @staticmethod
    def missing() -> str | None:
        if not os.access(ETCD, os.X_OK):
            return "etcd is not installed (Debian etcd-server; scripts/setup installs it as root)"
        return None

    @classmethod
    def start(cls, directory: Path) -> "EtcdServer":
        server = cls(Path(directory), free_port(), free_port())
        server.restart()
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def restart(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [ETCD, "--name", "test", "--data-dir", str(self.directory / "data"),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"test={peer}", "--log-level", "warn", "--logger", "zap"]
        log = open(self.directory / "etcd.log", "ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_until_sync(self.healthy, "etcd answers", 30)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as reply:
                return json.loads(reply.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def keys(self, prefix: str) -> list[str]:
        """The keys under `prefix` (for the tests' own checks)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                           "range_end": base64.b64encode(end.encode()).decode(), "keys_only": True}).encode()
        request = urllib.request.Request(self.url + "/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=2) as reply:
            kvs = json.loads(reply.read()).get("kvs", [])
        return [base64.b64decode(kv["key"]).decode() for kv in kvs]

    def get(self, key: str) -> dict:
        """A key's record through the gateway (for the tests' own checks)."""
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        request = urllib.request.Request(self.url + "/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=2) as reply:
            kvs = json.loads(reply.read()).get("kvs", [])
        return kvs[0] if kvs else {}
