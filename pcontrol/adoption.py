"""Jobs of another controller of a high-availability pool, taken over through the agents.

In a pool (`sched --serve --ha`: pcontrol runs with a fencing token, pcontrol.fencing), the
jobs an earlier leader's pcontrol placed are found by this one's agents: a new agent takes over
the agents that outlived their controller (pclient.lease, refused to a lower token) and reports
their jobs in `resumed`, then their outcomes in `ended`. Their ids are not in this pcontrol's
table (the earlier leader's scheduler chose them: `job -id N`, ids under its token, which no
other member's can equal), so instead of killing them as strays and dropping their outcomes,
this pcontrol keeps them **unclaimed**, for UNCLAIMED_GRACE seconds:

    running word on host H    -> kept running, not killed
    `ended` of such a job     -> kept, not acknowledged (the agent holds it until we do)

until the new leader's scheduler claims them with `adopt ID -owner O -task T -- ARGV` (it knows
from etcd which jobs the earlier leader placed, with their ids):

    adopt found it running    -> a BUSY job of the owner here, whose end comes as any other
    adopt found its outcome   -> the job, ended with the outcome its agent reported (its true one)
    adopt found nothing       -> None: no agent has it (its run never reached one); the
                                 scheduler runs it now (a job placed and never started)

`adopt` first waits (bounded) until the hosts have reported (their agents are `resumed`), so
that "nothing" means that the agents which outlived the earlier controller do not know the job.
In a pool an outcome is acknowledged to its agent only once the job's owner has harvested it
(its exit macro has run): a controller that dies before leaves it with the agent, for the next.
Unclaimed jobs not adopted within the grace are killed, and their outcomes acknowledged, as
strays are outside a pool. A pcontrol of a pool that starts again does not go on with the jobs
its journal has unfinished (another leader's controller may have taken them over meanwhile):
they leave its table, and those its agents still run are unclaimed like any other. A mixin of Controller (controller.py), beside reports.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pclient import protocol as agent_protocol

from .config import ControllerConfig
from .errors import ConflictError, UsageError
from .model import Host, HostState, Job, JobState, RetainedJob

log = logging.getLogger(__name__)

__all__ = ["PoolAdoption", "UNCLAIMED_GRACE", "ADOPT_WAIT"]

UNCLAIMED_GRACE = 120.0
"""Seconds another controller's job, found on our agents, waits to be adopted before it is killed."""

ADOPT_WAIT = 10.0
"""Seconds `adopt` waits at most for the hosts' agents to report what they run."""


class PoolAdoption:
    """Controller methods: unclaimed jobs of a pool, and `adopt` (see the module docstring)."""

    # Kept by the Controller:
    config: ControllerConfig
    clock: Callable[[], float]
    jobs: dict[int, Job | RetainedJob]
    host_table: Any
    journal: Any

    def _pool_state(self) -> tuple[dict[str, tuple[str, float]], dict[str, tuple[str, agent_protocol.Ended]]]:
        """(running word -> (host, since), word -> (host, its `ended`)) of unclaimed jobs."""
        try:
            return self._unclaimed_running, self._unclaimed_ends
        except AttributeError:
            self._unclaimed_running: dict[str, tuple[str, float]] = {}
            self._unclaimed_ends: dict[str, tuple[str, agent_protocol.Ended]] = {}
            return self._unclaimed_running, self._unclaimed_ends

    @property
    def in_pool(self) -> bool:
        return self.host_table.fence is not None

    # -- fencing of requests ----------------------------------------------------------------

    def fence_refusal(self, fence: int | None, peer: str) -> str | None:
        """Why a request carrying `fence` is refused (a lower token than ours: a deposed
        leader's scheduler); a higher one becomes ours. None: accepted."""
        if fence is None:
            return None
        mine = self.host_table.fence
        if mine is not None and fence < mine:
            reason = f"fenced: token {fence} is lower than {mine}, which leads the pool now"
            log.warning("refused a request of %s: %s", peer, reason)
            return reason
        if mine is None or fence > mine:
            log.warning("fencing token %d (from %s): the agents are given it from now on", fence, peer)
            self.host_table.fence = fence
            for host in self.hosts.values():   # those up now take it (pclient.agent: `fence`)
                if host.slurm is None and not host.pull and host.state in (HostState.IDLE, HostState.BUSY):
                    self.host_table.send(host, agent_protocol.Fence(token=fence))
        return None

    # -- found on our agents ----------------------------------------------------------------

    def _keep_unclaimed(self, host: Host, word: str) -> bool:
        """A running job of another controller of the pool: kept for `adopt` (True), or not ours to keep."""
        if not self.in_pool or _number(word) in self.jobs:
            return False
        running, _ = self._pool_state()
        if word not in running:
            running[word] = (host.name, self.clock())
            log.warning("%s: the agent runs job %s of an earlier controller of the pool; kept "
                        "%g s for its scheduler to adopt", host.name, word, UNCLAIMED_GRACE)
            asyncio.get_running_loop().call_later(UNCLAIMED_GRACE, self._unclaimed_expired, word)
        return True

    def _keep_unclaimed_end(self, host: Host, message: agent_protocol.Ended) -> bool:
        """The outcome of another controller's job: kept unacknowledged for `adopt` (True)."""
        if not self.in_pool or _number(message.job) in self.jobs:
            return False
        running, ends = self._pool_state()
        running.pop(message.job, None)
        if message.job not in ends:
            asyncio.get_running_loop().call_later(UNCLAIMED_GRACE, self._unclaimed_expired, message.job)
        ends[message.job] = (host.name, message)
        log.warning("%s: outcome of job %s of an earlier controller of the pool (%s); kept for "
                    "its scheduler to adopt", host.name, message.job, message.outcome.value)
        return True

    def _unclaimed_expired(self, word: str) -> None:
        running, ends = self._pool_state()
        if word in running:
            name, _ = running.pop(word)
            host = self.hosts.get(name)
            log.warning("%s: job %s of an earlier controller was not adopted within %g s; killing it",
                        name, word, UNCLAIMED_GRACE)
            if host is not None:
                self._to_agent(host, agent_protocol.Kill(job=word))
        if word in ends:
            name, _ = ends.pop(word)
            host = self.hosts.get(name)
            log.warning("%s: the outcome of job %s of an earlier controller was not adopted "
                        "within %g s; dropped", name, word, UNCLAIMED_GRACE)
            if host is not None:
                self._ack(host, word)

    def _left_to_pool(self, job: Job) -> None:
        """A job this pcontrol had not finished when it stopped: in a pool, another leader's
        controller may have taken it over from the agents since, so it is not ours to go on
        with (run again, or call lost): it leaves the table, and if an agent still runs it, it
        is unclaimed like any other, for the leader to adopt."""
        log.warning("job %d (of %s, task %s) was %s when this pcontrol stopped: in a pool it is "
                    "the leader's to adopt", job.id, job.owner, job.task, job.state.value)
        if self.journal is not None:
            self.journal.job_forgotten(job.id)

    # -- outcomes acknowledged once harvested ------------------------------------------------

    def _ack_outcome(self, job: Job, host: Host, word: str) -> None:
        """Acknowledge a job's outcome to its agent: at once, but in a pool only once its
        owner has harvested it (its exit macro has run): until then the agent keeps it, and
        hands it to the next controller's agent if this controller dies first."""
        if not self.in_pool or job.owner is None:
            self._ack(host, word)
            return
        self._pool_acks()[job.id] = (host.name, word)

    def _harvested_in_pool(self, job: Job) -> None:
        due = self._pool_acks().pop(job.id, None)
        if due is not None:
            host = self.hosts.get(due[0])
            if host is not None:
                self._ack(host, due[1])

    def _pool_acks(self) -> dict[int, tuple[str, str]]:
        try:
            return self._acks_due
        except AttributeError:
            self._acks_due: dict[int, tuple[str, str]] = {}
            return self._acks_due

    # -- adopt ------------------------------------------------------------------------------

    async def adopt(self, job_id: int, spec: Any, wait: float = ADOPT_WAIT) -> Job | None:
        """Claim job `job_id` of an earlier controller of the pool for `spec.owner` (see the
        module docstring); None when no agent has it."""
        if not self.in_pool:
            raise ConflictError("adopt: this pcontrol is not in a pool (no fencing token)")
        if spec.owner is None or spec.task is None:
            raise UsageError("adopt needs -owner and -task")
        have = self.jobs.get(job_id)
        if have is not None:
            if have.owner != spec.owner:
                raise ConflictError(f"adopt: job {job_id} is another owner's")
            return have
        await self._hosts_reported(spec.host, wait)
        running, ends = self._pool_state()
        word = await self._look_for(job_id, spec.host, wait)
        if word is None:
            log.warning("adopt: no agent has job %d (of %s, task %s): it never reached one",
                        job_id, spec.owner, spec.task)
            return None
        name = ends[word][0] if word in ends else running[word][0]
        host = self.hosts.get(name)
        if host is None:
            return None
        now = self.clock()
        job = Job(id=job_id, argv=tuple(spec.argv), submitted=now, host=spec.host, required=spec.required,
                  timeout=spec.timeout, env=dict(spec.env), owner=spec.owner, task=spec.task,
                  spool=spec.spool, mail=spec.mail, inbox=tuple(spec.inbox), noskew=spec.noskew)
        attempt = word.partition(".")[2]
        if attempt:  # the agent runs a retry: the attempts before it ran under the earlier controller
            job.attempts = tuple({"host": name, "reason": "an attempt under an earlier controller"}
                                 for _ in range(int(attempt)))
        self._register(job)
        self._set_state(job, JobState.BUSY)
        job.ran_on, job.started = name, now
        host.running.add(job.id)
        self._job_changed(job)
        self._update_load(host)
        if word in ends:
            _, message = ends.pop(word)
            log.warning("adopt: job %d of %s (task %s) ended on %s while no controller led: %s",
                        job_id, spec.owner, spec.task, name, message.outcome.value)
            self._on_ended(host, message)
        else:
            running.pop(word, None)
            log.warning("adopt: job %d of %s (task %s) runs on %s: taken over", job_id, spec.owner, spec.task, name)
        return job

    async def _look_for(self, job_id: int, name: str | None, wait: float) -> str | None:
        """The agent word of job `job_id` among the unclaimed, else looked for: the hosts' pings
        name it (the agents look again for survivors: an agent still serving a deposed
        controller leaves it once fenced, pclient.agent) until an agent has it or one says
        it is lost (no agent that could have it is alive there), or `wait` s have passed."""
        running, ends = self._pool_state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        word = str(job_id)
        wanted = self._wanted_words()
        lost = self._lost_words()
        wanted.add(word)
        try:
            while True:
                found = next((w for w in list(ends) + list(running) if _number(w) == job_id), None)
                if found is not None:
                    return found
                if word in lost or loop.time() >= deadline:
                    return None
                await asyncio.sleep(0.05)
        finally:
            wanted.discard(word)
            lost.discard(word)

    def _wanted_words(self) -> set[str]:
        try:
            return self._wanted
        except AttributeError:
            self._wanted: set[str] = set()
            self._lost: set[str] = set()
            return self._wanted

    def _lost_words(self) -> set[str]:
        self._wanted_words()
        return self._lost

    def pool_held_words(self) -> tuple[str, ...]:
        """Words an `adopt` looks for, named in every host's pings (reports.held_words)."""
        return tuple(sorted(self._wanted_words())) if self.in_pool else ()

    def pool_keeps(self, word: str) -> bool:
        """Whether a spooled job's files may yet be wanted in the pool: another controller's job
        kept unclaimed, or one an `adopt` looks for (a spool sweep never drops them, reports.py)."""
        if not self.in_pool:
            return False
        running, ends = self._pool_state()
        number = _number(word)
        return any(_number(other) == number for other in (*running, *ends, *self._wanted_words()))

    def pool_lost(self, word: str) -> bool:
        """An agent reports lost a job no longer (or not yet) ours: one `adopt` looks for?"""
        if word in self._wanted_words():
            self._lost.add(word)
            return True
        return False

    async def _hosts_reported(self, name: str | None, wait: float) -> None:
        """Until the host (None: every enabled host) has an agent that reported, or `wait` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait

        def reported() -> bool:
            hosts = [self.hosts[name]] if name in self.hosts else \
                [h for h in self.hosts.values() if h.enabled]
            return all(h.state in (HostState.IDLE, HostState.BUSY) for h in hosts)

        while not reported() and loop.time() < deadline:
            await asyncio.sleep(0.05)


def _number(word: str) -> int:
    number = word.partition(".")[0]
    return int(number) if number.isdigit() else -1
