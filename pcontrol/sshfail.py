"""What an agent start that failed said, in one named outcome: a pure function over its output.

    classify(output) -> Said | None        the decisive message, its outcome and its line
    PROMPTS                                the questions that wait for an answer (matched live)

pcontrol.agentlink waits for the hello, a prompt, the end of the output, or its time limit.
Prompts must be seen while the start waits; everything else is judged here, once the start
has ended, on all it said: ssh prints warnings before its error ("Warning: Identity file ...
No such file or directory", then "Permission denied"), and a changed host key comes with
lines about passwords and permissions. So each message has a rank, and the outcome is the
message of the highest rank (the last of them when a rank repeats), not the first pattern
found in the stream.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

__all__ = ["ConnectOutcome", "Said", "classify", "explain", "PROMPTS"]


class ConnectOutcome(enum.Enum):
    """What an agent start came to."""

    HANDSHAKE = "handshake"                   #: the hello line arrived
    PASSWORD_PROMPT = "password prompt"       #: ssh asked for a password or passphrase
    HOST_KEY = "host key"                     #: the host key is unknown (not in known_hosts)
    HOST_KEY_CHANGED = "host key changed"     #: the host key differs from the one known
    PERMISSION_DENIED = "permission denied"   #: authentication refused
    CONNECTION_REFUSED = "connection refused" #: nothing listens on the ssh port
    UNRESOLVED = "unknown host name"          #: the name does not resolve
    UNREACHABLE = "unreachable"               #: no route, network down, timed out
    CLOSED = "connection closed"              #: the far side hung up before logging in
    NOT_FOUND = "not found"                   #: the agent program is missing
    TIMEOUT = "timeout"                       #: nothing decisive within the time limit
    EOF = "eof"                               #: the command ended before the hello


#: Questions that wait for an answer: matched while the start runs, at the end of its output.
PROMPTS: list[tuple[ConnectOutcome, bytes]] = [
    (ConnectOutcome.PASSWORD_PROMPT, rb"(?i)(?:password|passphrase)[^\r\n]*:[ \t]*\Z"),
    (ConnectOutcome.HOST_KEY, rb"(?i)continue connecting[^\r\n]*\?[ \t]*\Z"),
]

#: Messages, highest rank first: the outcome is that of the highest-ranked message said
#: (compiled at the first failure to classify: an agent that starts never needs them).
_MESSAGES: list[tuple[ConnectOutcome, str]] = [
    (ConnectOutcome.HOST_KEY_CHANGED, r"remote host identification has changed|host key for .* has changed"),
    (ConnectOutcome.HOST_KEY, r"host key verification failed|host key is known for|"
                              r"authenticity of host .* can't be established"),
    (ConnectOutcome.UNRESOLVED, r"could not resolve hostname|name or service not known|"
                                r"temporary failure in name resolution|nodename nor servname"),
    (ConnectOutcome.CONNECTION_REFUSED, r"connection refused"),
    (ConnectOutcome.UNREACHABLE, r"no route to host|network is unreachable|connection timed out|"
                                 r"operation timed out"),
    (ConnectOutcome.PERMISSION_DENIED, r"permission denied|too many authentication failures"),
    (ConnectOutcome.CLOSED, r"connection closed by|connection reset by peer|"
                            r"kex_exchange_identification"),
    (ConnectOutcome.NOT_FOUND, r"command not found|no such file or directory|no module named|: not found"),
]


@functools.cache
def _compiled() -> list[tuple[ConnectOutcome, re.Pattern[str]]]:
    return [(outcome, re.compile(pattern, re.I)) for outcome, pattern in _MESSAGES]


_EXPLAIN = {
    ConnectOutcome.PASSWORD_PROMPT: "ssh asked for a password or passphrase; pcontrol needs "
                                    "key authentication without prompts",
    ConnectOutcome.HOST_KEY: "ssh does not accept the host key: it is unknown (connect once by "
                             "hand, or add it to known_hosts)",
    ConnectOutcome.HOST_KEY_CHANGED: "ssh does not accept the host key: it has changed (check the "
                                     "host; then ssh-keygen -R HOST removes the old key)",
    ConnectOutcome.PERMISSION_DENIED: "permission denied (authentication failed)",
    ConnectOutcome.CONNECTION_REFUSED: "connection refused (is sshd running there?)",
    ConnectOutcome.UNRESOLVED: "could not resolve the host name",
    ConnectOutcome.UNREACHABLE: "host unreachable",
    ConnectOutcome.CLOSED: "the host closed the connection before login",
    ConnectOutcome.NOT_FOUND: "the agent program was not found",
}


@dataclass(frozen=True)
class Said:
    """The decisive message of a failed start."""

    outcome: ConnectOutcome
    line: str  #: the line that said it, as printed

    @property
    def reason(self) -> str:
        return f"{explain(self.outcome)}: {self.line}"


def explain(outcome: ConnectOutcome) -> str:
    """The words for an outcome (its value when there are none)."""
    return _EXPLAIN.get(outcome, outcome.value)


def classify(output: bytes | str) -> Said | None:
    """The decisive message in what a failed start printed, or None when nothing known is in it."""
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    best: tuple[int, Said] | None = None
    for raw in text.splitlines():
        line = raw.strip().strip("@").strip()
        if not line or line.startswith("Warning:"):  # ssh's warnings ("Identity file ... not accessible")
            continue
        for rank, (outcome, pattern) in enumerate(_compiled()):
            if best is not None and rank > best[0]:
                break
            if pattern.search(line):
                best = (rank, Said(outcome, line))
                break
    return best[1] if best is not None else None
