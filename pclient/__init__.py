"""pclient: the host agent of pcontrol, and the job runner the sched shell shares.

    protocol  -- the agent protocol: message dataclasses, encode / decode
    jobproc   -- run one job as a local process group (used by the agent and by sched)
    stdio     -- stdin/stdout as an asyncio channel; terminal set-up
    agent     -- serves the protocol: runs jobs, reports them, survives a lost controller
    lease     -- the survivor's socket and the successor's takeover of its jobs
    __main__  -- the `pclient` command (also `python -m pclient`)

Standard library only, Python 3.10+: it is copied to and run on remote hosts.

The job runner's names (JobSpec, start_job, ...) are loaded from jobproc when first asked for:
pcontrol, which imports pclient's protocol and log file but runs no job itself, then starts
without jobproc, asyncio's subprocess support and containment (start-up, issue 13).
"""

from typing import Any

from .protocol import AGENT_VERSION as __version__
from .protocol import PROTOCOL_VERSION, Outcome, ProtocolError, decode, encode

__all__ = [
    "PROTOCOL_VERSION",
    "JobResult",
    "JobSpec",
    "Outcome",
    "ProtocolError",
    "RunningJob",
    "StartFailure",
    "__version__",
    "decode",
    "encode",
    "start_job",
]

_JOBPROC = ("JobResult", "JobSpec", "RunningJob", "StartFailure", "start_job")


def __getattr__(name: str) -> Any:
    if name in _JOBPROC:
        from . import jobproc  # on first use (see the module docstring)

        return getattr(jobproc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
