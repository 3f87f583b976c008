"""Alerts: mail through SMTP (smtplib), once per episode, retried with backoff, never blocking.

    alerter = Alerter(MailSettings.load(path))          # None settings: log only
    alerter.raise_("probe17", "missed", subject, body)  # an episode starts: one mail
    alerter.raise_("probe17", "missed", ...)            # the same episode: nothing more
    alerter.clear("probe17", "missed", subject, body)   # it ended: one recovery mail
    alerter.send(subject, body)                         # a one-off (the `alert` command)
    await alerter.close()

Every alert goes to the log at once and, when the settings name a mail server, into a queue
that one sender task empties in order: each mail is handed to smtplib in a worker thread
(`asyncio.to_thread`), so a slow or dead server never holds the daemon's loop. A mail that
fails (server down, refused) stays at the head of the queue and is tried again after a
backoff that doubles from `retry_min` to `retry_max`; nothing is dropped, and the order is
kept. An episode (a key such as ("probe17", "missed")) mails once when it starts and once
when it ends, however often the condition is seen in between: no storms.

The mail settings are a small JSON file (`pcontrol serve --alerts FILE`):

    {"host": "smtp.example.org", "port": 587, "from": "pcontrol@example.org",
     "to": ["noc@example.org"], "starttls": true, "user": "pcontrol", "password_file": "/etc/pcontrol/smtp",
     "cafile": "/etc/pcontrol/smtp-ca.pem"}

With `starttls` the server's certificate is verified (against the system's CAs, or only
`cafile`'s, for a server with a private CA) and must name `host`. A server that refuses the
login, or whose certificate does not verify, is logged with what to check, and tried again
with the same backoff: such mail waits in the queue until the settings are fixed (and
pcontrol restarted) or the server accepts it.

Listeners (`on_alert`) are told of every alert, raise and clear, as an AlertNotice: the
controller turns those of an episode (a host's missed run times, its SKEWED clock) into `alert`
events for its subscribers (`subscribe -only alert`); a one-off alert, which a script sent, is
not sent back to scripts.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

__all__ = ["MailSettings", "Alerter", "AlertError", "AlertNotice"]


@dataclass(frozen=True)
class AlertNotice:
    """One alert, as listeners see it (and subscribers, in an `alert` event's data)."""

    state: str       #: "alert" (an episode starts, or a one-off) or "recovery" (the episode ended)
    host: str        #: whom an episode is about ("" for a one-off)
    condition: str   #: the episode's kind: "missed" (run times), "skew" (clock); "" for a one-off
    subject: str
    body: str

    def to_record(self) -> dict[str, str]:
        return {"state": self.state, "host": self.host, "condition": self.condition,
                "subject": self.subject, "body": self.body}


class AlertError(ValueError):
    """Mail settings that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class MailSettings:
    """Where alert mail goes: the SMTP server and the envelope."""

    host: str
    port: int = 25
    sender: str = "pcontrol@localhost"
    to: tuple[str, ...] = ()
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    cafile: str | None = None
    timeout: float = 20.0
    retry_min: float = 1.0
    retry_max: float = 300.0

    @classmethod
    def load(cls, path: str | Path) -> "MailSettings":
        where = str(path)
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise AlertError(f"{where}: cannot read the mail settings: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise AlertError(f"{where}: not valid JSON: {exc}") from None
        return cls.from_record(data, where)

    @classmethod
    def from_record(cls, data: Any, where: str = "mail settings") -> "MailSettings":
        if not isinstance(data, dict):
            raise AlertError(f"{where}: expected a JSON object")
        known = {"host", "port", "from", "to", "starttls", "user", "password_file", "cafile", "timeout", "retry_min",
                 "retry_max"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AlertError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        host = data.get("host")
        if not isinstance(host, str) or not host:
            raise AlertError(f"{where}: \"host\" must name the SMTP server")
        to = data.get("to", [])
        if isinstance(to, str):
            to = [to]
        if not to or not all(isinstance(t, str) and "@" in t for t in to):
            raise AlertError(f"{where}: \"to\" must be one or more mail addresses")
        port = data.get("port", 25)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise AlertError(f"{where}: \"port\" must be a port number, got {port!r}")
        password = None
        if data.get("password_file"):
            try:
                password = Path(data["password_file"]).read_text().strip()
            except OSError as exc:
                raise AlertError(f"{where}: cannot read password_file: {exc.strerror or exc}") from None
        cafile = data.get("cafile")
        if cafile is not None and (not isinstance(cafile, str) or not Path(cafile).is_file()):
            raise AlertError(f"{where}: \"cafile\" must name a file of CA certificates, got {cafile!r}")
        if data.get("user") is not None and not data.get("starttls"):
            log.warning("%s: the SMTP login of %s goes without STARTTLS: its password crosses the network "
                        "in the clear", where, data.get("user"))
        return cls(host=host, port=port, sender=str(data.get("from", "pcontrol@localhost")), to=tuple(to),
                   starttls=bool(data.get("starttls", False)), user=data.get("user"), password=password,
                   cafile=cafile,
                   timeout=float(data.get("timeout", 20.0)), retry_min=float(data.get("retry_min", 1.0)),
                   retry_max=float(data.get("retry_max", 300.0)))


@dataclass
class _Mail:
    subject: str
    body: str
    attempts: int = 0
    last_error: str = ""


@dataclass
class Alerter:
    """The alert queue and its one sender task (see the module docstring)."""

    settings: MailSettings | None
    on_alert: list[Callable[[AlertNotice], None]] = field(default_factory=list)
    _queue: collections.deque[_Mail] = field(default_factory=collections.deque)
    _open: set[tuple[str, str]] = field(default_factory=set)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task | None = None
    sent: int = 0
    failures: int = 0

    # -- what callers use ---------------------------------------------------------------------

    def raise_(self, subject_of: str, kind: str, subject: str, body: str) -> bool:
        """Start an episode (once): mail and log. False when it was already open."""
        key = (subject_of, kind)
        if key in self._open:
            return False
        self._open.add(key)
        self._alert(AlertNotice("alert", subject_of, kind, subject, body))
        return True

    def clear(self, subject_of: str, kind: str, subject: str, body: str) -> bool:
        """End an episode: one recovery mail. False when none was open."""
        key = (subject_of, kind)
        if key not in self._open:
            return False
        self._open.discard(key)
        self._alert(AlertNotice("recovery", subject_of, kind, subject, body))
        return True

    def is_open(self, subject_of: str, kind: str) -> bool:
        return (subject_of, kind) in self._open

    def send(self, subject: str, body: str) -> None:
        """A one-off alert (a script's `alert`)."""
        self._alert(AlertNotice("alert", "", "", subject, body))

    def status(self) -> dict[str, Any]:
        return {"mail": self.settings is not None, "queued": len(self._queue), "sent": self.sent,
                "failures": self.failures, "open": sorted(f"{a}:{b}" for a, b in self._open),
                "last_error": self._queue[0].last_error if self._queue else ""}

    async def close(self, grace: float = 0.0) -> None:
        """Stop the sender (after up to `grace` s to empty the queue); unsent mail is logged."""
        if self._task is not None and grace > 0 and self._queue:
            deadline = asyncio.get_running_loop().time() + grace
            while self._queue and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for mail in self._queue:
            log.warning("alert not mailed (pcontrol stopping): %s", mail.subject)

    # -- internals ------------------------------------------------------------------------------

    def _alert(self, notice: AlertNotice) -> None:
        log.warning("%s: %s\n%s", notice.state, notice.subject, notice.body)
        for listener in list(self.on_alert):
            try:
                listener(notice)
            except Exception:
                log.exception("an alert listener failed")
        if self.settings is None:
            return
        self._queue.append(_Mail(notice.subject, notice.body))
        self._start()

    def _start(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sender(), name="alert mail")

    async def _sender(self) -> None:
        import smtplib  # here, not at the top: a pcontrol that mails nothing starts without it (~8 ms)

        assert self.settings is not None and self._wake is not None
        settings = self.settings
        backoff = settings.retry_min
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            mail = self._queue[0]
            mail.attempts += 1
            try:
                await asyncio.to_thread(_deliver, settings, mail.subject, mail.body)
            except Exception as exc:  # OSError, SMTPException, SSLError; anything else is a bug, logged, and retried
                if not isinstance(exc, (OSError, smtplib.SMTPException, ssl.SSLError)):
                    log.exception("alert mail: unexpected error")
                mail.last_error = _explain(settings, exc)
                self.failures += 1
                log.warning("alert mail to %s:%d failed (attempt %d, next in %.3g s): %s", settings.host,
                            settings.port, mail.attempts, backoff, mail.last_error)
                await asyncio.sleep(backoff)
                backoff = min(settings.retry_max, backoff * 2)
                continue
            self._queue.popleft()
            self.sent += 1
            backoff = settings.retry_min
            log.info("alert mailed to %s: %s", ", ".join(settings.to), mail.subject)


def _deliver(settings: MailSettings, subject: str, body: str) -> None:
    """One mail through smtplib (in a worker thread)."""
    import smtplib
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="pcontrol")
    message.set_content(body)
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile))
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message, from_addr=settings.sender, to_addrs=list(settings.to))


def _explain(settings: MailSettings, exc: BaseException) -> str:
    """What went wrong with one attempt, with what to check for the failures a setting causes."""
    import smtplib  # loaded by now: _sender imported it

    said = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return (f"the server refused the login of user {settings.user!r} ({exc.smtp_code} {detail}): "
                f"check \"user\" and \"password_file\" in the mail settings")
    if isinstance(exc, smtplib.SMTPNotSupportedError) and settings.starttls:
        return f"{said} (does the server offer STARTTLS on port {settings.port}?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        trust = f"cafile {settings.cafile}" if settings.cafile else "the system's CAs (set \"cafile\" for a private CA)"
        return f"the server's certificate does not verify against {trust}: {exc.verify_message or exc}"
    return said
