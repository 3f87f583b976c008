"""Job sequences (pktgen's): each host's jobs in order, the next starting when the previous has ended.

    seq = Sequence("jobs", "jobs.json", ["pktgen", "-rate", "$rate"], plan)   # plan: seqfiles.read_sequences
    spec = seq.task_spec()             # the task underneath: nmax = every job, npending = hosts
    sched.define(spec)                 # the scheduler calls seq.fill / made / ended (TaskSpec.source),
                                       # and resume / adopted when it goes on with an earlier run

A sequence is a task: `status`, `kill`, its exit macros, `joblog` and the rest apply as to any
task (a `task NAME` block adds them). The task's job source (TaskSpec.source) is the sequence:
at each job the scheduler makes, `fill` picks the first host (in the file's order) that has
jobs left and none out, and gives the draft that host (required), the command template filled
with the job's params, and the params as environment variables (plus PSCHED_SEQUENCE_ID and
PSCHED_SEQUENCE_HOST), and $sequence_id / $sequence_host for the exit macro. No host free: no
job this time; a host's job ending (any outcome) frees it, and the scheduler looks again.

A sched restarted on the same home goes on where the last one was: the run ledger names each
job made (`host<TAB>id`, psched.scheduler.runledger), and `resume` takes those out; a job still
running at the controller comes back through `adopted`, holding its host until it ends.

Two sequences loaded from the same file contents with the same template and name compare equal
(their repr), so a `reload` that reads `sequence load` again leaves a running sequence alone.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from typing import TYPE_CHECKING

from .seqfiles import SeqItem, fill_template
from .taskspec import JobDraft, TaskSpec

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["Sequence", "ID_VAR", "HOST_VAR"]

ID_VAR = "PSCHED_SEQUENCE_ID"
HOST_VAR = "PSCHED_SEQUENCE_HOST"


class Sequence:
    """One loaded jobs file as a task's job source (see the module docstring)."""

    def __init__(self, name: str, source: str, template: list[str], plan: dict[str, list[SeqItem]]):
        self.name = name
        self.source = source
        self.template = list(template)
        self.left: dict[str, deque[SeqItem]] = {host: deque(items) for host, items in plan.items()}
        self.out: dict[str, int] = {}  # host -> the id of its job out
        self.total = sum(len(items) for items in plan.values())
        contents = json.dumps([[host, [[i.id, i.params] for i in items]] for host, items in plan.items()])
        self.digest = hashlib.sha256(contents.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Sequence({self.name!r}, {self.source!r}, {self.template!r}, {self.digest})"

    def task_spec(self, base: TaskSpec | None = None) -> TaskSpec:
        """The task underneath: `base`'s macros and directives (a task of that name), if any."""
        spec = base.copy() if base is not None else TaskSpec(self.name)
        spec.argv = list(self.template)
        spec.host, spec.host_required = "NONE", False
        spec.nmax = self.total
        spec.npending = max(1, len(self.left))
        spec.source = self
        return spec

    def fill(self, draft: JobDraft) -> bool:
        """Give the draft the next job of the first free host; False: no host is free."""
        for host, items in self.left.items():
            if items and host not in self.out:
                item = items[0]
                draft.argv = fill_template(self.template, dict(item.params, id=item.params.get("id", item.id)))
                draft.host, draft.host_required = host, True
                draft.env = dict(item.params, **{ID_VAR: item.id, HOST_VAR: host})
                draft.vars = {"sequence_id": item.id, "sequence_host": host}
                return True
        return False

    def made(self, job: Job) -> str | None:
        """The job of the draft `fill` gave is made: its host has it out."""
        host = job.vars.get("sequence_host", "")
        items = self.left.get(host)
        if items and items[0].id == job.vars.get("sequence_id"):
            items.popleft()
            self.out[host] = job.id
            return f"{host}\t{job.vars['sequence_id']}"
        return None

    def resume(self, made: list[str]) -> None:
        """Jobs an earlier sched on this home made (`made`'s names): they are not made again."""
        for name in made:
            host, _, ident = name.partition("\t")
            self._take(host, ident)

    def adopted(self, job: Job, env: dict[str, str]) -> None:
        """A job of an earlier sched is back: its host has it out until it ends, and its exit
        macro gets $sequence_id and $sequence_host."""
        host, ident = env.get(HOST_VAR), env.get(ID_VAR)
        if host is None or ident is None or host not in self.left:
            return
        job.vars.update(sequence_id=ident, sequence_host=host)
        self._take(host, ident)
        self.out[host] = job.id

    def _take(self, host: str, ident: str) -> None:
        items = self.left.get(host)
        if items:
            for item in items:
                if item.id == ident:
                    items.remove(item)
                    return

    def ended(self, job: Job) -> None:
        """A job of the task ended: its host is free for its next one."""
        if self.out.get(job.vars.get("sequence_host", "")) == job.id:
            del self.out[job.vars["sequence_host"]]

    def describe(self) -> str:
        waiting = sum(len(items) for items in self.left.values())
        return f"sequence {self.name} from {self.source}: {self.total} job(s) on {len(self.left)} host(s), {waiting} not started"
