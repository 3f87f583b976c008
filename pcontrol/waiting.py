"""Why a pending job waits, in words, as squeue's REASON column says it: a pure function.

    why_pending(job, hosts) -> str

Dispatch is immediate (pcontrol.dispatch): a job that could start, starts. So a job that is
PENDING waits for a host: the one it requires (unknown, OFF, DOWN, connecting, or with every
slot taken), or any host (none at all, none up, or every slot taken). `check job` shows the
reason on its own line, `jobs` in the OUTCOME column of a PENDING job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from .model import Host, HostState, Job

__all__ = ["why_pending"]

_UP = (HostState.IDLE, HostState.BUSY)


def _host_state(name: str, host: Host) -> str | None:
    """Why `host` cannot take the job now, or None when it has a free slot."""
    if not host.enabled or host.state is HostState.OFF:
        return f"host {name} is OFF (pcontrol host on {name})"
    if host.state is HostState.DOWN:
        return f"host {name} is DOWN" + (f": {host.reason}" if host.reason else "")
    if host.state is HostState.CONNECTING:
        return f"host {name} is connecting"
    if host.free_slots == 0:
        return f"no free slot on {name} ({len(host.running)} of {host.agent_slots} busy)"
    return None


def why_pending(job: Job, hosts: Mapping[str, Host]) -> str:
    """Why the PENDING `job` has not started, given the hosts as they are now."""
    if job.host is not None and job.required:
        host = hosts.get(job.host)
        if host is None:
            return f"required host {job.host} unknown (pcontrol host add {job.host})"
        said = _host_state(job.host, host)
        if said is None:
            return "about to start"
        return f"required {said}" if said.startswith("host ") else said
    if not hosts:
        return "no hosts (pcontrol host add NAME)"
    up = [host for host in hosts.values() if host.enabled and host.state in _UP]
    if not up:
        counts = Counter("OFF" if not h.enabled else h.state.value for h in hosts.values())
        return "no host is up (" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ")"
    if not any(host.free_slots for host in up):
        busy = sum(len(host.running) for host in up)
        total = sum(host.agent_slots for host in up)
        return f"no free slot ({busy} of {total} slots busy on {len(up)} host{'s' if len(up) != 1 else ''})"
    return "about to start"
