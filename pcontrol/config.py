"""The controller's tunables, set by `pcontrol serve` options (and by tests)."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class ControllerConfig:
    heartbeat: float = 1.0             #: seconds between pings
    missed_heartbeats: int = 3         #: unanswered pings in a row that make a host DOWN
    connect_timeout: float = 15.0      #: seconds for an agent start to reach its hello
    retry_min: float = 2.0             #: first automatic retry of a DOWN host
    retry_max: float = 60.0            #: backoff ceiling
    retention: float = 300.0           #: seconds a harvested job is kept before forgotten
    bye_grace: float = 3.0             #: seconds an agent gets to end after `bye`
    local_agent: tuple[str, ...] = (sys.executable, "-m", "pclient")
    ssh_command: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes")
    remote_agent: str = "pclient"
