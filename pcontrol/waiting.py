"""Why a pending job waits, in words, as squeue's REASON column says it: a pure function.

    why_pending(job, hosts, now) -> str

A job with a planned start still ahead (-not-before) waits for that time. Dispatch is immediate (pcontrol.dispatch): a job that could start, starts. So a job that is
PENDING waits for a host: the one it requires (unknown, OFF, DOWN, connecting, or with every
slot taken, or SKEWED for a -noskew job), or any host (none at all, none up, every slot taken,
or every free one SKEWED for a -noskew job). `check job` shows the
reason on its own line, `jobs` in the OUTCOME column of a PENDING job.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from .model import Host, HostState, Job

__all__ = ["why_pending"]

_UP = (HostState.IDLE, HostState.BUSY)


def _host_state(name: str, host: Host, noskew: bool = False) -> str | None:
    """Why `host` cannot take the job now, or None when it has a free slot."""
    if not host.enabled or host.state is HostState.OFF:
        return f"host {name} is OFF (pcontrol host on {name})"
    if host.state is HostState.DOWN:
        return f"host {name} is DOWN" + (f": {host.reason}" if host.reason else "")
    if host.state is HostState.CONNECTING:  # (a retry after a failure: that failure says most)
        return f"host {name} is connecting" + (f" (last down: {host.reason})" if host.reason else "")
    if host.free_slots == 0:
        return f"no free slot on {name} ({len(host.running)} of {host.agent_slots} busy)"
    if noskew and host.agent.get("skewed"):
        return f"host {name} is SKEWED ({host.agent['skewed']}) and the job is -noskew"
    return None


def why_pending(job: Job, hosts: Mapping[str, Host], now: float | None = None) -> str:
    """Why the PENDING `job` has not started, given the hosts as they are now."""
    now = time.time() if now is None else now
    if job.not_before is not None and job.not_before > now:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.not_before))
        return f"planned start at {when} (-not-before), in {job.not_before - now:.0f} s"
    if job.host is not None and job.required:
        host = hosts.get(job.host)
        if host is None:
            return f"required host {job.host} unknown (pcontrol host add {job.host})"
        said = _host_state(job.host, host, job.noskew)
        if said is None:
            return "about to start"
        return f"required {said}" if said.startswith("host ") else said
    if not hosts:
        return "no hosts (pcontrol host add NAME)"
    up = [host for host in hosts.values() if host.enabled and host.state in _UP]
    if not up:
        if len(hosts) == 1:  # (the one host a first script adds, say: what is wrong with it)
            name, host = next(iter(hosts.items()))
            return f"no host is up: {_host_state(name, host)}"
        counts = Counter("OFF" if not h.enabled else h.state.value for h in hosts.values())
        return "no host is up (" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ")"
    if not any(host.free_slots for host in up):
        busy = sum(len(host.running) for host in up)
        total = sum(host.agent_slots for host in up)
        return f"no free slot ({busy} of {total} slots busy on {len(up)} host{'s' if len(up) != 1 else ''})"
    if job.noskew and all(host.agent.get("skewed") for host in up if host.free_slots):
        return "every host with a free slot is SKEWED and the job is -noskew"
    return "about to start"
