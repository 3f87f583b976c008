"""The embedded default's pcontrol, warmed up while sched reads a script that will need it
(issue 13: a script's first controller job).

sched starts the pcontrol of $SCHED_HOME at `run` (psched.scheduler.remote), after its own
start-up; the two Python start-ups then run one after the other. A read-time check that the
`sched` program puts first for its files and -c (EarlyStart: before the scheduler's commands
are loaded) looks at the script sched is about to run: when it defines a task that may go to
the controller (`host` other than a constant LOCAL) and says `run`, and no pcontrol runs for
$SCHED_HOME (nor is stopped on purpose, nor is $PCONTROL_CONNECT set), it begins a warm `pcontrol serve` (pcontrol.warmstart): that
process does its imports beside sched's own and waits. `run` then starts pcontrol exactly as
before (pcontrol.launch.start), which takes the warm process instead of starting a cold one.
A script that never gets there (an error, a `run` in a branch not taken) has started no
pcontrol: the warm process exits when sched leaves.

Only the first script that qualifies does this, once per sched; an interpreter used as a
library (the tests' shells) has no such check. The check imports nothing heavy
(pcontrol.launch, .warmstart and .paths are light); a script with no task does not import them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

from ..lang.nodes import Block, Command, Script

if TYPE_CHECKING:
    from pcontrol.paths import Paths

__all__ = ["LOCALHOST_SLOTS_PER_CPU", "localhost_slots", "embedded_serve_args", "EarlyStart"]

LOCALHOST_SLOTS_PER_CPU = 4
"""The embedded default's localhost: slots per CPU. Short jobs spend much of their life in
fork, exec and the messages around them, so several per CPU keep the CPUs busy, and the more
jobs end in one loop turn, the fewer writes and wake-ups each costs (pcontrol and the agent
write a turn's lines at once). Measured with bench/bench_user.py's figure 2 (2,000 `true`
jobs, 2 CPUs): 2 slots ran ~1.5x slower than 4; 8 took ~0.5 ms less CPU a job (all processes)
than 4, 12 no less than 8."""

def localhost_slots() -> int:
    """The slots of the embedded default's localhost."""
    return LOCALHOST_SLOTS_PER_CPU * (os.cpu_count() or 1)


def embedded_serve_args(paths: "Paths") -> list[str]:
    """The `pcontrol serve` options sched starts the pcontrol of `paths` with: those its last
    start had (an operator's `pcontrol start --alerts ...`, which a crash must not lose;
    pcontrol.launch.remembered_options), and the embedded default's localhost's agent started
    ahead, beside the daemon's own start-up (pcontrol.spareagent)."""
    from pcontrol.launch import remembered_options  # pcontrol's names only once a script needs them (start-up)
    from pcontrol.spareagent import OPTION  # (the same)

    return [*remembered_options(paths), OPTION, str(localhost_slots())]


class EarlyStart:
    """The read-time check (psched.lang.interp.READ_CHECKS' shape) that begins the warm pcontrol
    at the first script that will need it; it refuses nothing. The `sched` program puts it
    first in its interpreter's checks (psched.shell.cli), before the scheduler's stand-in
    loads the scheduler."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, script: Script) -> None:
        if self.done:
            return
        if not any(c.name == "run" for c in script.walk()):
            return
        if not any(_may_need_controller(b) for b in _task_blocks(script)):
            return
        self.done = True
        if os.environ.get("PCONTROL_CONNECT", "").strip():
            return  # a controller elsewhere: never started from here
        # pcontrol's light modules only for a script that will need it (`sched -c` never loads them)
        from pcontrol import launch
        from pcontrol.paths import Paths
        from pcontrol.warmstart import WARM, daemon_env

        paths = Paths.for_home()
        if launch.read_pid(paths) is not None or launch.stopped_on_purpose(paths) is not None:
            return
        try:
            paths.check_socket_path()
        except ValueError:
            return  # `run` says why
        WARM.begin(paths, embedded_serve_args(paths), daemon_env(paths))


def _task_blocks(script: Script) -> Iterator[Block]:
    for node in script.commands:
        if isinstance(node, Block):
            if node.header.name == "task":
                yield node
            else:
                yield from _task_blocks(node.body)
                for clause in node.clauses:
                    yield from _task_blocks(clause.body)


def _may_need_controller(task: Block) -> bool:
    """Whether the task's `host` is other than a constant LOCAL (none: NONE, the controller)."""
    for node in task.body.commands:
        if isinstance(node, Command) and node.name == "host" and len(node.words) > 1:
            return node.words[1].const != "LOCAL"
    return True
