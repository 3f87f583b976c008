"""The real programs behind the status page's tests: `pcontrol start` on a private $SCHED_HOME
with a localhost host, `pcontrol web` on a free loopback port, optionally `sched --serve`; jobs
submitted with `pcontrol job`. Everything is stopped by pid at the end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from waiting import wait_until_sync

BIN = Path(sys.executable).parent
PCONTROL = [str(BIN / "pcontrol")] if (BIN / "pcontrol").exists() else [sys.executable, "-m", "pcontrol"]
SCHED = [str(BIN / "sched")] if (BIN / "sched").exists() else [sys.executable, "-m", "psched.shell.cli"]
WAIT = 60.0


class Web:
    """One `pcontrol web` process; `url` once it listens."""

    def __init__(self, world: "World", *args: str):
        self.out = world.home / f"web-{os.getpid()}-{id(self)}.out"
        self.err = self.out.with_suffix(".err")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(PCONTROL + ["web", *args], env=world.env,
                                            stdout=out, stderr=err, start_new_session=True)
        self.url = wait_until_sync(self._url, "pcontrol web prints its address", WAIT)

    def _url(self) -> str | None:
        text = self.out.read_text()
        if "http://" in text:
            return text.split("http://", 1)[1].split("/", 1)[0].join(("http://", ""))
        if self.process.poll() is not None:
            raise AssertionError(f"pcontrol web ended ({self.process.returncode}): "
                                 f"{self.err.read_text()}")
        return None

    def get(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as answer:
                return answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def json(self, path: str) -> dict[str, Any]:
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class World:
    """pcontrol with one localhost host (`slots` slots) in a private home."""

    def __init__(self, slots: int = 4):
        self.home = Path(tempfile.mkdtemp(prefix="web-", dir="/tmp"))
        run_dir = self.home / "run"          # the agents' survivor sockets: this world's own
        run_dir.mkdir(mode=0o700)
        self.env = dict(os.environ, SCHED_HOME=str(self.home), PCLIENT_RUNTIME_DIR=str(run_dir))
        self.webs: list[Web] = []
        self.sched_started = False
        self.pcontrol("start")
        self.pcontrol("host", "add", "localhost", "-slots", str(slots))
        wait_until_sync(lambda: self.host_state() in ("IDLE", "BUSY"), "localhost is up", WAIT)

    def pcontrol(self, *args: str) -> str:
        done = subprocess.run(PCONTROL + list(args), env=self.env, capture_output=True,
                              text=True, timeout=WAIT)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    def pcontrol_json(self, *args: str) -> Any:
        return json.loads(self.pcontrol(*args, "-json"))

    def host_state(self) -> str | None:
        hosts = self.pcontrol_json("hosts")
        return hosts[0]["state"] if hosts else None

    def job(self, *argv: str, task: str = "t") -> int:
        return int(self.pcontrol("job", "-task", task, "--", *argv).strip())

    def jobs(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.pcontrol_json("jobs", "-limit", "2000", "-after", str(after))
            if not page:
                return records
            records += page
            after = page[-1]["id"]

    def web(self, *args: str) -> Web:
        web = Web(self, *args)
        self.webs.append(web)
        return web

    def serve_sched(self, script: str) -> None:
        path = self.home / "served.sched"
        path.write_text(script)
        done = subprocess.run(SCHED + ["--serve", str(path)], env=self.env, capture_output=True,
                              text=True, timeout=WAIT, cwd=self.home)
        assert done.returncode == 0, done.stderr
        self.sched_started = True

    def close(self) -> None:
        for web in self.webs:
            web.stop()
        if self.sched_started:
            subprocess.run(SCHED + ["--stop"], env=self.env, capture_output=True, timeout=WAIT)
            pidfile = self.home / "sched.pid"
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text()), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        subprocess.run(PCONTROL + ["stop", "-kill", "-force"], env=self.env,
                       capture_output=True, timeout=WAIT)
        shutil.rmtree(self.home, ignore_errors=True)
