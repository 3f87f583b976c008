"""pcontrol: the background controller that runs jobs on hosts through pclient agents.

Clients (the sched shell, the CLI) use `ControllerClient`, at a `ControllerAddress` (the local
socket, or a TCP listener: `pcontrol serve --listen HOST:PORT`); the daemon is `pcontrol serve`.

The client face (client, wire, errors, paths, secret, address, auth) is what importing pcontrol
loads; the daemon's names (DaemonResult, start_daemon, stop_daemon) load pcontrol.daemon, with
its controller, sqlite3 journal and agent code, only when first used, so that a client (the
sched shell) does not pay for the daemon it talks to.
"""

from typing import Any

from .auth import AccessDenied
from .client import (CONNECT_ENV, SECRET_FILE_ENV, ControllerAddress, ControllerClient,
                     is_running, run_command)
from .errors import (ClientError, CommandError, CommandFailed, ControllerDisconnected,
                     ControllerNotRunning, ControllerTimeout, ErrorCode, PcontrolError,
                     SecretUnavailable)
from .paths import Paths, default_home
from .wire import WIRE_VERSION, Event, EventKind, Reply, Request

__all__ = [
    "AccessDenied", "CONNECT_ENV", "ClientError", "CommandError", "CommandFailed",
    "ControllerAddress", "ControllerClient", "ControllerDisconnected", "ControllerNotRunning",
    "ControllerTimeout", "DaemonResult", "ErrorCode", "Event", "EventKind", "Paths",
    "PcontrolError", "Reply", "Request", "SECRET_FILE_ENV", "SecretUnavailable",
    "WIRE_VERSION", "default_home", "is_running", "run_command", "start_daemon", "stop_daemon",
]

_DAEMON_NAMES = {"DaemonResult", "start_daemon", "stop_daemon"}


def __getattr__(name: str) -> Any:
    if name in _DAEMON_NAMES:
        # imported on first use, not above: pcontrol.daemon loads the controller, sqlite3 and the
        # agent code (~80 ms, -X importtime), which a client never needs
        from . import daemon

        return getattr(daemon, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
