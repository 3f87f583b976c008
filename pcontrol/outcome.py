"""How a job ended: the one Outcome vocabulary of pcontrol and the sched shell.

pcontrol records it on each finished job (and sends it on the wire as its value); the sched
shell's jobs, local or at the controller, end with the same members, and a task.exit macro
sees the value as $job_state. The agent protocol (pclient, standard library only and copied
to remote hosts) keeps its own lower-case copy of the four outcomes a process can have, plus
PENDING, which only pcontrol's Slurm driver reports (a job that never left Slurm's queue);
`from_agent` is the one place where that copy is mapped to this one.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only its values are needed at run time: the scheduler loads no agent code
    from pclient.protocol import Outcome as AgentOutcome

__all__ = ["Outcome", "exited", "from_agent"]


class Outcome(str, enum.Enum):
    """How a job ended."""

    EXIT = "EXIT"
    """The program exited with a status (0 is success); `status` holds it."""
    CRASH = "CRASH"
    """A signal ended it; `signal` holds the number."""
    TIMEOUT = "TIMEOUT"
    """It ran longer than its -timeout and was killed."""
    DOWN = "DOWN"
    """Its host was lost while it ran, or could not be used (no controller, required host unknown)."""
    PENDING = "PENDING"
    """It was not started within its -pending time and was withdrawn."""
    KILLED = "KILLED"
    """Someone killed it (`kill`)."""

    @property
    def selector(self) -> str:
        """The task.exit selector for this outcome (EXIT is selected by its status)."""
        return self.value.lower()


_FROM_AGENT = {
    "exit": Outcome.EXIT,
    "crash": Outcome.CRASH,
    "timeout": Outcome.TIMEOUT,
    "killed": Outcome.KILLED,
    "pending": Outcome.PENDING,     # only from a batch system's queue (slurm.py)
}
"""The agent's outcomes by value (pclient.protocol.Outcome, a str enum), to ours."""


def from_agent(outcome: "AgentOutcome") -> Outcome:
    """The outcome pclient's job runner reported (its own copy of the vocabulary) as ours."""
    return _FROM_AGENT[outcome._value_]


def exited(status: int) -> str:
    """The reason of a job that ended by itself with `status` (its $job_reason, wherever it ran)."""
    return f"exited with status {status}"
