"""pcontrol: the background controller that runs jobs on hosts through pclient agents.

Clients (the sched shell, the CLI) use `ControllerClient`; the daemon is `pcontrol serve`.
"""

from .client import ControllerClient, is_running, run_command
from .daemon import DaemonResult, start_daemon, stop_daemon
from .errors import (ClientError, CommandError, CommandFailed, ControllerDisconnected,
                     ControllerNotRunning, ControllerTimeout, ErrorCode, PcontrolError)
from .paths import Paths, default_home
from .wire import WIRE_VERSION, Event, EventKind, Reply, Request

__all__ = [
    "ClientError", "CommandError", "CommandFailed", "ControllerClient", "DaemonResult",
    "ControllerDisconnected", "ControllerNotRunning", "ControllerTimeout", "ErrorCode",
    "Event", "EventKind", "Paths", "PcontrolError", "Reply", "Request", "WIRE_VERSION",
    "default_home", "is_running", "run_command", "start_daemon", "stop_daemon",
]
