"""pcontrol: the background controller that runs jobs on hosts through pclient agents.

Clients (the sched shell, the CLI) use `ControllerClient`, at a `ControllerAddress` (the local
socket, or a TCP listener: `pcontrol serve --listen HOST:PORT`); the daemon is `pcontrol serve`.

Every name below is loaded with its module on first use (the client face: client, wire,
errors, paths, auth; the daemon's DaemonResult, start_daemon, stop_daemon: pcontrol.daemon,
with its controller, sqlite3 journal and agent code), so that a client (the sched shell) does
not pay for the daemon it talks to, nor a `sched -c` that talks to none for the client.
"""

import importlib
from typing import Any

__all__ = [
    "AccessDenied", "CONNECT_ENV", "ClientError", "CommandError", "CommandFailed",
    "ControllerAddress", "ControllerClient", "ControllerDisconnected", "ControllerNotRunning",
    "ControllerTimeout", "DaemonResult", "ErrorCode", "Event", "EventKind", "Paths",
    "PcontrolError", "Reply", "Request", "SECRET_FILE_ENV", "SecretUnavailable",
    "WIRE_VERSION", "default_home", "is_running", "run_command", "start_daemon", "stop_daemon",
]

_HOMES = {
    "AccessDenied": "auth",
    **dict.fromkeys(("CONNECT_ENV", "SECRET_FILE_ENV", "ControllerAddress", "ControllerClient",
                     "is_running", "run_command"), "client"),
    **dict.fromkeys(("ClientError", "CommandError", "CommandFailed", "ControllerDisconnected",
                     "ControllerNotRunning", "ControllerTimeout", "ErrorCode", "PcontrolError",
                     "SecretUnavailable"), "errors"),
    "Paths": "paths", "default_home": "paths",
    **dict.fromkeys(("WIRE_VERSION", "Event", "EventKind", "Reply", "Request"), "wire"),
    "DaemonResult": "daemon", "start_daemon": "daemon", "stop_daemon": "daemon",
}
"""Each exported name and the module it lives in, imported on first use: `import pcontrol.X`
of one module (psched.scheduler.jobs needs only pcontrol.outcome) does not load the client,
its asyncio and its hashing, and a client never loads pcontrol.daemon (the controller,
sqlite3 and the agent code, ~80 ms by -X importtime)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
