"""The switchboard: messages between jobs, as SHAFT's satellite scheduler kept them.

A message is addressed to a task and waits here until that task's next job is made; it is then
delivered to that job: in its task.exec and task.exit macros as the queue `inbox`, and to the
job itself as the file named by $PSCHED_INBOX (pclient.mailbox). Each delivered line reads
`SENDER TEXT`.

    board = Switchboard(home.switchboard_path)     # None: kept in memory only (tests' schedulers)
    board.post("child", "parent", "unreachable")   # `send child unreachable` in parent's macro
    board.post_lines("parent", ("child unreachable",))  # a job's $PSCHED_OUTBOX lines, `TASK TEXT`
    taken = board.take("child")                   # for the job being made: the messages, oldest first
    board.put_back(taken)                         # no job was made after all (skipped, failed)
    board.waiting("child")                        # what waits (`messages ?TASK?`)

Undelivered messages survive a restart: each change is one JSON line appended to
$SCHED_HOME/switchboard.log and flushed (as the run ledger, psched.scheduler.runledger):
`["post", ID, TO, FROM, TEXT, WALL]` and `["taken", ID]`. A torn last line (sched killed while
writing) is skipped (the file is an appendlog.AppendLog). The file is rewritten compactly when it
grows past appendlog.COMPACT_AT, and removed when nothing waits. A message is taken for good
once its job is made: a sched killed while that job runs does not deliver it again.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..lang.errors import TaskError
from .appendlog import AppendLog

log = logging.getLogger(__name__)

__all__ = ["Message", "Switchboard", "SWITCHBOARD_NAME", "parse_outbox_line", "message_records", "messages_from"]

SWITCHBOARD_NAME = "switchboard.log"


@dataclass(frozen=True)
class Message:
    """One message waiting for a task's next job."""

    id: int
    to: str
    sender: str
    text: str
    sent: float  # wall clock

    @property
    def line(self) -> str:
        """As the addressee's job and macros see it."""
        return f"{self.sender} {self.text}"


def parse_outbox_line(line: str) -> tuple[str, str] | None:
    """`TASK TEXT` from a job's outbox: (task, text), or None for a line without a task."""
    words = line.strip().split(None, 1)
    if not words:
        return None
    return words[0], words[1] if len(words) > 1 else ""


def check_text(text: str) -> str:
    """A message is one line (it is one line of the addressee's inbox)."""
    if "\n" in text or "\r" in text:
        raise TaskError("a message is one line: it holds a newline")
    return text


class Switchboard:
    """The messages waiting for each task (see the module docstring)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._waiting: dict[int, Message] = {}  # by id, in the order posted
        self._next = 1
        self._loaded = path is None
        self._file = AppendLog(self.path, "a switchboard record") if self.path is not None else None

    # --- the file ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Read what an earlier sched left waiting (once; later calls do nothing)."""
        if self._loaded:
            return
        self._loaded = True
        assert self._file is not None
        try:
            for number, line in self._file.replay():
                try:
                    record = json.loads(line)
                    message = _message(record)
                    if message is not None:
                        self._waiting[message.id] = message
                        self._next = max(self._next, message.id + 1)
                        continue
                    if record[0] == "taken" and len(record) == 2:
                        self._waiting.pop(int(record[1]), None)
                        continue
                except (ValueError, TypeError, IndexError):
                    pass
                self._file.skip(number)
        except OSError as exc:
            log.warning("cannot read %s: %s; no messages from the earlier sched", self.path, exc)

    def _write(self, records: Iterable[list] = (), rewrite: bool = False) -> None:
        """Append `records`; the file goes when nothing waits, and is rewritten with what waits
        when it has grown too long (or `rewrite`)."""
        if self._file is None:
            return
        try:
            if records:
                self._file.append(json.dumps(record) for record in records)  # one write()
            if not self._waiting:
                self._file.remove()
            elif rewrite or self._file.full:
                self._file.rewrite(json.dumps(_record(m)) for m in self._waiting.values())
        except OSError as exc:  # the messages live on in memory; only a restart would lose them
            if self._file.failed():
                log.warning("cannot write %s: %s", self.path, exc)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    # --- messages ------------------------------------------------------------------------------

    def post(self, to: str, sender: str, text: str, now: float | None = None) -> Message:
        """A message for task `to`'s next job."""
        self.load()
        message = Message(self._next, to, sender, check_text(text), time.time() if now is None else now)
        self._next += 1
        self._waiting[message.id] = message
        self._write([_record(message)])
        return message

    def post_lines(self, sender: str, lines: Iterable[str], now: float | None = None) -> list[Message]:
        """A job's outbox lines (`TASK TEXT`), in one write."""
        self.load()
        posted = []
        for line in lines:
            parsed = parse_outbox_line(line)
            if parsed is None:
                continue
            message = Message(self._next, parsed[0], sender, parsed[1], time.time() if now is None else now)
            self._next += 1
            self._waiting[message.id] = message
            posted.append(message)
        if posted:
            self._write([_record(m) for m in posted])
        return posted

    def take(self, task: str) -> list[Message]:
        """The messages waiting for `task`, oldest first; they wait no more."""
        self.load()
        taken = [m for m in self._waiting.values() if m.to == task]
        if taken:
            for message in taken:
                del self._waiting[message.id]
            self._write([["taken", m.id] for m in taken])
        return taken

    def put_back(self, messages: list[Message]) -> None:
        """Messages taken for a job that was not made after all: they wait again, as they were."""
        if not messages:
            return
        for message in messages:
            self._waiting[message.id] = message
        self._waiting = dict(sorted(self._waiting.items()))
        self._write([_record(m) for m in messages])

    def replace(self, messages: list[Message]) -> None:
        """These messages wait, and no other (an HA leader taking over: psched.scheduler.ha)."""
        self.load()
        self._waiting = {m.id: m for m in sorted(messages, key=lambda m: m.id)}
        self._next = max([self._next] + [m.id + 1 for m in messages])
        self._write(rewrite=True)

    def waiting(self, task: str | None = None) -> list[Message]:
        self.load()
        return [m for m in self._waiting.values() if task is None or m.to == task]


def _record(message: Message) -> list:
    return ["post", message.id, message.to, message.sender, message.text, message.sent]


def message_records(messages: Iterable[Message]) -> list[list]:
    """Messages as JSON-able records (kept in etcd by an HA leader)."""
    return [_record(m) for m in messages]


def _message(record: object) -> Message | None:
    """The message of a `post` record (None: not one)."""
    if not isinstance(record, list) or len(record) != 6 or record[0] != "post":
        return None
    _, ident, to, sender, body, sent = record
    return Message(int(ident), str(to), str(sender), str(body), float(sent))  # ValueError, TypeError: not one


def messages_from(records: Iterable) -> list[Message]:
    """The messages of `message_records`' records; a malformed record is left out."""
    out = []
    for record in records:
        try:
            message = _message(record)
        except (TypeError, ValueError):
            message = None
        if message is None:
            log.warning("a kept message that is not a message record: %r", record)
        else:
            out.append(message)
    return out

