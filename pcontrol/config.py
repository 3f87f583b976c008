"""The controller's tunables, set by `pcontrol serve` options (and by tests).

Every period and timeout here is measured on the monotonic clock (the event loop's);
only the times shown to people (since, retry_at, history) come from the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spareagent import LOCAL_AGENT


@dataclass
class ControllerConfig:
    heartbeat: float = 1.0             #: seconds between pings
    missed_heartbeats: int = 3         #: a host silent this many intervals is DOWN
    connect_timeout: float = 15.0      #: seconds for an agent start to reach its hello
    retry_min: float = 2.0             #: first automatic retry of a DOWN host
    retry_max: float = 60.0            #: backoff ceiling
    retention: float = 300.0           #: seconds a harvested job is kept before forgotten
    unowned_retention: float | None = 7 * 86400.0
    """Seconds a finished job with no owner (submitted by hand, not by a scheduler) is kept
    after it ended when nobody harvests or deletes it; None: until then. A scheduler's jobs
    are kept until it harvests them."""
    bye_grace: float = 3.0             #: seconds an agent gets to end after `bye`
    lease: float = 600.0               #: seconds an agent keeps its jobs without a controller
    reconcile_grace: float | None = None
    """Seconds a job whose agent was lost (or that ran when pcontrol stopped) waits for its
    host's agent to report it before it ends DOWN; None: the lease plus a minute."""
    stable_after: float = 60.0         #: a host up this long no longer counts as flapping
    gc_full_interval: float = 3600.0   #: seconds between full garbage collections (daemon)
    agent_nice: int = 0
    """Niceness (0-19) of the commands pcontrol starts for its hosts (local agents and their
    jobs, ssh), and of their autogroups: agents sharing pcontrol's machine then leave it
    the CPU it needs to answer (bench/bench_scale.py --nice measures it)."""
    history_size: int = 20             #: state changes kept per host for `check host`
    local_agent: tuple[str, ...] = LOCAL_AGENT
    ssh_command: tuple[str, ...] = ("ssh", "-o", "BatchMode=yes")
    remote_agent: str | None = None
    """An agent installed on the ssh hosts to try first (e.g. "pclient"); None: always send
    pcontrol's own (pcontrol.bootstrap). Where it is missing, or of another build, pcontrol
    sends its own instead (at once, or once the installed one runs no jobs)."""
    slurm_poll: float = 1.0            #: seconds between a Slurm host's squeue polls
    slurm_output: str | None = None
    """Where Slurm hosts' jobs write stdout and stderr (a folder per host) unless the host
    says (-output); a file system the cluster's nodes share with pcontrol. None:
    $SCHED_HOME/slurm (the daemon sets its home's)."""

    pull_listen: tuple[str, int] | None = None
    """Where pull probes check in (pcontrol serve --pull-listen); None: no pull hosts."""
    alerts: str | None = None
    """The mail settings file (alerts.MailSettings); None: alerts go to the log only."""
    pull_interval: float = 60.0        #: seconds until a probe with nothing to run checks in again
    pull_grace: float = 60.0           #: a run time not reported within this (plus the job's timeout) is missed
    pull_misses: int = 3               #: missed run times in a row that make an alert
    skew_threshold: float = 1.0        #: seconds of clock offset past which a host is SKEWED
    spool_sweep_every: float = 3600.0
    """Seconds between two sweeps of an agent's spool (the first as it connects): files no
    job of ours needs any more (pclient.spool)."""
    spool_sweep_age: float = 3600.0
    """Seconds a spool file must have been left untouched before a sweep takes it."""
    spool_abandon: float | None = 30 * 86400.0
    """Seconds after which an agent removes the spool part of another controller that no live
    agent holds and nothing touched (its pcontrol is gone: a home wiped, a new secret); None:
    never (pcontrol serve --spool-abandon 0)."""

    @property
    def grace(self) -> float:
        return self.lease + 60.0 if self.reconcile_grace is None else self.reconcile_grace
