"""Errors of pcontrol, as data: every failure a client can see has a code and a message.

The hierarchy::

    PcontrolError                    base of everything raised by this package
    +-- CommandError                 a command was refused; becomes an error reply
    |   +-- UsageError               wrong # args, unknown option/subcommand, bad value
    |   +-- NotFoundError            no such host / job
    |   +-- ConflictError            the object's state (or its owner) forbids the action
    |       +-- UnavailableError     refused for now (the journal cannot write): ask again later
    +-- WireError                    a client-protocol line could not be decoded
    +-- ClientError                  raised on the client side only
        +-- ControllerNotRunning     no socket / nothing listening
        +-- ControllerTimeout        no reply within the deadline
        +-- ControllerDisconnected   the connection broke while requests were pending
        +-- CommandFailed            a reply came back with ok=false (carries the Reply)
        +-- AccessDenied             the TCP handshake was refused (defined in auth.py)
        +-- SecretUnavailable        no usable secret file to prove over TCP

Codes cross the wire as strings (ErrorCode values); each class names its code once.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .wire import Reply


class ErrorCode(str, enum.Enum):
    """The `error.code` values of the client protocol."""

    MALFORMED = "malformed"          #: the line is not a valid request
    TOO_LONG = "too_long"            #: the line exceeds the wire limit
    UNSUPPORTED = "unsupported"      #: a wire version this server does not speak
    UNKNOWN_COMMAND = "unknown_command"
    USAGE = "usage"                  #: wrong arguments for a known command
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INTERNAL = "internal"            #: a bug in pcontrol; the daemon carries on
    SHUTTING_DOWN = "shutting_down"
    UNAVAILABLE = "unavailable"      #: refused for now (the journal cannot write): ask again later
    FORBIDDEN = "forbidden"          #: not the socket's owner, or no proof of the secret
    OVERLOADED = "overloaded"        #: refused: too many connections (or handshakes) at once
    TIMEOUT = "timeout"              #: a request line or the TCP handshake did not complete


class PcontrolError(Exception):
    """Base of all pcontrol errors."""


class CommandError(PcontrolError):
    """A command was refused. `code` and `message` become the error reply."""

    code: ErrorCode = ErrorCode.CONFLICT

    def __init__(self, message: str, *, code: ErrorCode | None = None, data: Any = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data


class UsageError(CommandError):
    code = ErrorCode.USAGE


class UnknownCommandError(UsageError):
    code = ErrorCode.UNKNOWN_COMMAND


class NotFoundError(CommandError):
    code = ErrorCode.NOT_FOUND


class ConflictError(CommandError):
    code = ErrorCode.CONFLICT


class UnavailableError(ConflictError):
    """A job refused for now, not for what it is: the journal cannot write (a full disk),
    or pcontrol is stopping. A scheduler keeps it and submits it again later."""

    code = ErrorCode.UNAVAILABLE


class WireError(PcontrolError):
    """A line of the client protocol could not be decoded; `request_id` if it was readable."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.MALFORMED,
                 request_id: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id


class ClientError(PcontrolError):
    """Base of errors raised by pcontrol.client."""


class ControllerNotRunning(ClientError):
    """Nothing answers on the controller's socket."""


class ControllerTimeout(ClientError):
    """The controller did not answer in time."""


class ControllerDisconnected(ClientError):
    """The connection to the controller broke."""


class SecretUnavailable(ClientError):
    """A TCP client has no secret to prove: the file is missing, loose or the wrong size."""


class CommandFailed(ClientError):
    """A command came back with ok=false; `reply` holds the whole reply."""

    def __init__(self, reply: "Reply"):
        message = reply.error.message if reply.error else reply.text
        super().__init__(message)
        self.reply = reply
        self.code = reply.error.code if reply.error else None
        self.message = message
