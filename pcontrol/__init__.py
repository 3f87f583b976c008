"""pcontrol: the background controller that runs jobs on hosts through pclient agents.

Clients (the sched shell, the CLI) use `ControllerClient`, at a `ControllerAddress` (the local
socket, or a TCP listener: `pcontrol serve --listen HOST:PORT`); the daemon is `pcontrol serve`.
"""

from .auth import AccessDenied
from .client import (CONNECT_ENV, SECRET_FILE_ENV, ControllerAddress, ControllerClient,
                     is_running, run_command)
from .daemon import DaemonResult, start_daemon, stop_daemon
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
