"""The world of the pull-probe and alert-mail e2e tests (tests/e2e/test_pull_probes.py,
test_pull_ahead.py, test_alert_mail_tls.py): one real `pcontrol serve --pull-listen
127.0.0.1:PORT` per module in a short /tmp home, driven through the pcontrol CLI; `pclient
--pull` probes as processes; and a real SMTP server (aiosmtpd) on a free port of 127.0.0.1 that
receives pcontrol's alert mail (plain, or STARTTLS with a login).

    mailbox = Mailbox(); smtp = Smtp(mailbox); smtp.start()
    with pull_world("pull.", "--pull-interval", "0.3") as world:   # started; stopped and removed after
        key = world.add_probe("p1")                                 # host add p1 -pull; its key file
        world.probe("p1", key)                                      # a probe process, killed at the end
        world.done(world.submit("p1", "true"))                      # the job's record once DONE
        mailbox.about("p1")                                         # the mails whose subject names p1
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller as SmtpController
from aiosmtpd.smtp import AuthResult, LoginPassword

from etcdserver import free_port
from waiting import wait_until_sync

PCONTROL = [sys.executable, "-m", "pcontrol"]
PCLIENT = [sys.executable, "-m", "pclient"]
SCHED = str(Path(sys.executable).parent / "sched")


def short_home(prefix: str) -> Path:
    """A private directory under /tmp, short for Unix socket paths."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o700)
    return path


def run_pcontrol(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`pcontrol --home HOME ARGS...`; asserts it succeeded unless `check` is false."""
    done = subprocess.run([*PCONTROL, "--home", str(home), *args], capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def kill(process: subprocess.Popen, wait: float = 30.0) -> None:
    """SIGKILL a probe's process group (it runs in a session of its own) and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(wait)


# -- mail ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    text: str
    over_tls: bool
    login: str
    """The user who logged in ("" without a login)."""


@dataclass
class Mailbox:
    """What the SMTP server received; with `user` and `password`, the only login it accepts."""

    user: str = ""
    password: str = ""
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    """(mechanism, accepted) of every login tried."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        text = envelope.content.decode("utf-8", "replace")
        subject = re.search(r"^Subject: (.*?)\r?$", text, re.M)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        with self.lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), subject.group(1) if subject else "",
                                   text, session.ssl is not None, login))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # aiosmtpd's authenticator
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user.encode(), self.password.encode())
        with self.lock:
            self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)  # not handled: aiosmtpd answers 535

    def about(self, word: str) -> list[Mail]:
        """The mails whose subject has `word` (as whole words)."""
        with self.lock:
            return [m for m in self.mails if re.search(rf"\b{re.escape(word)}\b", m.subject)]


class Smtp:
    """A real SMTP server on 127.0.0.1:port that a test may stop and start again; `options` go to
    aiosmtpd's Controller (tls_context, require_starttls, auth_required, ...)."""

    def __init__(self, mailbox: Mailbox, **options: Any) -> None:
        self.mailbox = mailbox
        self.port = free_port()
        self.options = options
        if mailbox.user:
            self.options.setdefault("authenticator", mailbox.authenticate)
        self.server: SmtpController | None = None

    def start(self) -> None:
        self.server = SmtpController(self.mailbox, hostname="127.0.0.1", port=self.port, **self.options)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


# -- a pcontrol serving pull probes ----------------------------------------------------------------

@dataclass
class PullWorld:
    home: Path
    pull_port: int
    serve_args: list[str]
    wait: float = 30.0
    """How long `done` waits for a job to end."""
    smtp: Smtp | None = None
    """The server pcontrol's alert mail goes to (none: no --alerts)."""
    probes: list[subprocess.Popen] = field(default_factory=list)

    def pcontrol(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_pcontrol(self.home, *args, check=check)

    def start(self) -> None:
        self.pcontrol("start", *self.serve_args)

    def stop(self, *flags: str) -> None:
        self.pcontrol("stop", *flags)

    def add_probe(self, name: str) -> Path:
        """`host add NAME -pull`; the file of its key."""
        self.pcontrol("host", "add", name, "-pull")
        key = self.home / f"{name}.key"
        key.write_text(self.pcontrol("host", "key", name).stdout.strip() + "\n")
        return key

    def probe(self, name: str, key: Path, *extra: str) -> subprocess.Popen:
        """A `pclient --pull` probe process named `name`, logging to HOME/NAME.log."""
        process = subprocess.Popen(
            [*PCLIENT, "--pull", f"127.0.0.1:{self.pull_port}", "--id", name, "--key-file", str(key),
             "--state-dir", str(self.home / "probes"), "--retry-min", "0.1", "--retry-max", "0.5", "-v",
             "--log", str(self.home / f"{name}.log"), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.probes.append(process)
        return process

    def host(self, name: str) -> dict:
        return json.loads(self.pcontrol("check", "host", name, "-json").stdout)

    def job(self, job_id: str) -> dict:
        return json.loads(self.pcontrol("check", "job", job_id, "-json").stdout)

    def submit(self, name: str, *argv: str) -> str:
        return self.pcontrol("job", "-host", name, "-required", "--", *argv).stdout.strip()

    def done(self, job_id: str) -> dict:
        return wait_until_sync(lambda: (lambda j: j if j["state"] == "DONE" else None)(self.job(job_id)),
                               f"job {job_id} ended", self.wait)

    def forget(self, *names: str) -> None:
        for name in names:
            self.pcontrol("host", "delete", name, "-force", check=False)

    def state(self, name: str) -> dict:
        """A probe's state file ({} before it wrote one)."""
        path = self.home / "probes" / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text()

    def sched(self, script: str, name: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """The `sched` program on a script (written to HOME/NAME) with this world's pcontrol."""
        path = self.home / name
        path.write_text(script)
        return subprocess.run([SCHED, str(path)], capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, SCHED_HOME=str(self.home)))


@contextlib.contextmanager
def pull_world(prefix: str, *options: str, wait: float = 30.0, smtp: Smtp | None = None,
               mail: dict[str, Any] | None = None) -> Iterator[PullWorld]:
    """A started `pcontrol serve --pull-listen 127.0.0.1:PORT OPTIONS...` in a new home (with
    `smtp`, also `--alerts HOME/mail.json`: mail to that server, with the `mail` settings); at
    the end its probes are killed, it is stopped (its jobs killed) and its home removed."""
    home = short_home(prefix)
    port = free_port()
    serve = ["--pull-listen", f"127.0.0.1:{port}", *options]
    if smtp is not None:
        alerts = home / "mail.json"
        alerts.write_text(json.dumps({"host": "127.0.0.1", "port": smtp.port, **(mail or {})}))
        serve += ["--alerts", str(alerts)]
    world = PullWorld(home, port, serve, wait, smtp)
    try:
        world.start()
        yield world
    finally:
        for process in world.probes:
            kill(process, wait)
        world.pcontrol("stop", "-kill", "-force", check=False)
        shutil.rmtree(home, ignore_errors=True)
