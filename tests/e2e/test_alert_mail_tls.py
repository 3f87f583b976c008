"""Alert mail over STARTTLS with a login (pcontrol.alerts), through the real `pcontrol`: a real
SMTP server (aiosmtpd) started here on 127.0.0.1 that offers STARTTLS with a self-signed
certificate made for the test (openssl), requires TLS before AUTH, and checks a user and
password. A mail arrives encrypted and authenticated; a wrong password is logged saying what
to check and tried again with backoff, while pcontrol answers at once; a server that accepts
the connection and never speaks does not hold pcontrol either."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pullworld import Mailbox, Smtp, run_pcontrol, short_home
from waiting import wait_until_sync

USER, PASSWORD = "pcontrol", "s3cret-pw"
WAIT = 30.0


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl (scripts/setup installs it when run as root)")
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class World:
    root: Path
    cert: Path
    smtp: Smtp
    homes: list[Path] = field(default_factory=list)

    @property
    def mailbox(self) -> Mailbox:
        return self.smtp.mailbox

    def pcontrol(self, home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_pcontrol(home, *args, check=check)

    def start(self, name: str, password: str, **settings) -> Path:
        """A pcontrol whose alert mail goes to the test's server with STARTTLS and this password."""
        home = self.root / name
        home.mkdir(mode=0o700)
        secret = home / "smtp-password"
        secret.write_text(password + "\n")
        alerts = home / "mail.json"
        alerts.write_text(json.dumps({"host": "127.0.0.1", "port": self.smtp.port, "from": "pcontrol@test.example",
                                      "to": ["noc@test.example"], "starttls": True, "user": USER,
                                      "password_file": str(secret), "cafile": str(self.cert),
                                      "retry_min": 0.2, "retry_max": 1.0, **settings}))
        self.pcontrol(home, "start", "--alerts", str(alerts))
        self.homes.append(home)
        return home

    def log(self, home: Path) -> str:
        return (home / "pcontrol.log").read_text()


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = short_home("mailtls.")
    cert, key = make_certificate(root)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    smtp = Smtp(Mailbox(USER, PASSWORD), tls_context=context, require_starttls=True, auth_required=True,
                auth_require_tls=True)
    smtp.start()
    w = World(root, cert, smtp)
    try:
        yield w
    finally:
        for home in w.homes:
            w.pcontrol(home, "stop", "-kill", "-force", check=False)
        smtp.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_an_alert_arrives_over_starttls_with_a_login(world: World) -> None:
    home = world.start("good", PASSWORD)
    world.pcontrol(home, "alert", "tls drill", "sent over STARTTLS after a login")
    mails = wait_until_sync(lambda: world.mailbox.about("tls drill"), "the mail", WAIT)
    subject, recipients, over_tls, login, text = mails[0].subject, mails[0].recipients, mails[0].over_tls, \
        mails[0].login, mails[0].text
    assert subject == "tls drill" and recipients == ["noc@test.example"]
    assert over_tls and login == USER
    assert "sent over STARTTLS after a login" in text and "From: pcontrol@test.example" in text
    # the server has the mail once its DATA is in; pcontrol logs after the server's reply to it
    wait_until_sync(lambda: "alert mailed to noc@test.example: tls drill" in world.log(home),
                    "pcontrol logs the mail as sent", WAIT)


def test_a_wrong_password_is_logged_clearly_and_retried_with_backoff_without_holding_pcontrol(world: World) -> None:
    home = world.start("wrongpw", "not-the-password")
    world.pcontrol(home, "alert", "badpass drill", "never accepted")
    said = "the server refused the login of user 'pcontrol' (535"
    wait_until_sync(lambda: world.log(home).count(said) >= 3, "three refused attempts", WAIT)
    log = world.log(home)
    assert 'check "user" and "password_file" in the mail settings' in log
    waits = [float(w) for w in re.findall(r"alert mail to 127\.0\.0\.1:\d+ failed \(attempt \d+, next in ([\d.]+) s\)",
                                          log)]
    assert waits[:3] == [0.2, 0.4, 0.8], waits  # doubling from retry_min toward retry_max
    # meanwhile pcontrol answers at once, and the mail stays queued (never sent, never dropped)
    began = time.monotonic()
    status = json.loads(world.pcontrol(home, "status", "-json").stdout)
    assert time.monotonic() - began < 5.0 and status["pid"]
    assert world.mailbox.about("badpass drill") == []
    assert any(mechanism in ("LOGIN", "PLAIN") and not ok for mechanism, ok in world.mailbox.logins)


def test_a_mail_server_that_never_answers_does_not_hold_pcontrol(world: World) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never says a word
    try:
        home = world.start("silent", PASSWORD, port=silent.getsockname()[1], timeout=30.0)
        world.pcontrol(home, "alert", "silent drill", "the server never greets")
        for _ in range(3):  # the attempt hangs in smtplib for up to 30 s: pcontrol answers throughout
            began = time.monotonic()
            world.pcontrol(home, "status")
            assert time.monotonic() - began < 5.0
        assert "alert mailed" not in world.log(home)
    finally:
        silent.close()
