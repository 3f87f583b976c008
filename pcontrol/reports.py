"""What hosts and agents' reports mean for jobs: the Controller's HostListener half.

A lost host's running jobs are held (BUSY, unknown) when its agent may survive us, else
lost; a lost job runs again while its -retry allows (PENDING again, preferring another
host), else ends DOWN. A new agent's `resumed` report is reconciled with the held jobs:
those it runs carry on, those it finished get their real outcome from the `ended` that
follows, the rest are lost -- except the jobs of a host lost by silence (missed
heartbeats): their agent may not know yet that it was left, so they stay held while the
new agent keeps looking for it (the pings name them), until it takes that agent over (a
second `resumed`), reports them `lost` (no agent that could have them is alive), or the
grace runs out. Not before one of those does such a job run again (-retry): its first run
may still be going on. A held job that no agent ever said it started and that the agents
which outlived the old pcontrol (taken over by the new agent) do not know never reached
them: the journal has a job BUSY before its `run` goes out (outbox.py), and pcontrol was
killed in between. It is queued again, as if never placed (it never ran). Whatever happens, a job gets exactly one outcome: every outcome an
agent reports is acked once journaled (through the outbox), including ones reported twice
or too late, which are otherwise ignored.

A mixin of Controller (controller.py), split out by concern; it uses the controller's
job table, timers and dispatch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from pclient import protocol as agent_protocol

from .clockprobe import ClockProbes
from .config import ControllerConfig
from .dispatch import FreeHosts, TimerHeap
from .fetches import OutputFetches
from .model import Host, Job, JobState, Outcome, RetainedJob
from .outcome import exited, from_agent
from .syncrun import SyncRuns

log = logging.getLogger(__name__)

SWEEP_SHOWN = 20
"""Job ids a spool sweep's log line names at most (the count says the rest)."""


class AgentReports:
    """HostListener methods of the Controller (see the module docstring)."""

    # Kept by the Controller:
    config: ControllerConfig
    clock: Callable[[], float]
    jobs: dict[int, Job | RetainedJob]
    _free: FreeHosts
    _timers: TimerHeap
    _stopping: bool
    fetches: OutputFetches
    clocks: ClockProbes
    syncs: SyncRuns

    def _job_lost(self, job: Job, reason: str) -> None:
        """A BUSY job ended without an outcome: PENDING again while -retry allows, else
        DONE/DOWN. The caller has taken it off its host."""
        if job.retries_left > 0 and not job.kill_requested and not self._stopping:
            job.retries_left -= 1
            job.attempts += ({"host": job.ran_on, "outcome": Outcome.DOWN.value,
                              "reason": reason, "started": job.started,
                              "ended": self.clock(), "pid": job.pid},)
            log.info("job %d: lost on %s (%s); retrying (%d retr%s left)", job.id, job.ran_on,
                     reason, job.retries_left, "y" if job.retries_left == 1 else "ies")
            self._requeue(job)
        else:
            self._finish(job, Outcome.DOWN, reason=reason)

    def _requeue(self, job: Job) -> None:
        job.avoid = job.ran_on
        job.reason = f"retry {job.retry - job.retries_left} of {job.retry}: " \
                     f"{job.attempts[-1]['reason']}"
        self._pending_again(job)

    def _pending_again(self, job: Job) -> None:
        """PENDING again, as if never placed: off its host, queued now, placed anew."""
        now = self.clock()
        self._set_state(job, JobState.PENDING)
        self._timers.cancel(("held", job.id))
        job.ran_on = job.pid = job.started = job.elapsed = job.unknown_since = None
        job.queued = now
        self._job_changed(job)              # PENDING again, for all to see
        self._place(job, now)

    def _never_sent(self, host: Host, job: Job) -> None:
        """A BUSY job whose `run` never reached an agent: PENDING again, as if it had never
        been placed (it never ran: no attempt is counted)."""
        log.info("job %d: its run never reached %s's agent (pcontrol stopped first); queued again",
                 job.id, host.name)
        self._pending_again(job)

    def agent_message(self, host: Host, message: agent_protocol.Message) -> None:
        if isinstance(message, agent_protocol.ClockReply):
            self.clocks.reply(host, message)
        elif self.syncs.owns(message):
            self.syncs.message(host, message)          # a synchronized run's target
        elif isinstance(message, agent_protocol.Started):
            job = self._running_job(host, message.job)
            if job is not None:
                job.pid, job.started = message.pid, self.clock()
                job.batch_id = message.batch_id
                self._job_changed(job)
        elif isinstance(message, agent_protocol.Ended):
            self._on_ended(host, message)
        elif isinstance(message, agent_protocol.Lost):
            self._on_lost(host, message)
        elif isinstance(message, agent_protocol.Error):
            self._on_agent_error(host, message)
        elif isinstance(message, agent_protocol.Chunk):
            self.fetches.chunk_received(host.name, message)
        elif isinstance(message, agent_protocol.Spooled):
            self._on_spooled(host, message)
        else:
            log.warning("%s: unexpected %s message from the agent", host.name, message.TYPE)

    def host_connected(self, host: Host) -> None:
        self._send_drops(host)
        self._update_load(host)
        self._fill(host)
        if host.slurm is None and not host.pull:  # an agent to probe (a pull probe is measured at check-in)
            self.clocks.measure_soon(host)

    def _send_drops(self, host: Host) -> None:
        """Drop the spooled outputs of the jobs forgotten while the host's agent was away
        (Host.undropped): they are no job's any more, and no later drop would name them."""
        words, host.undropped = host.undropped, set()
        for word in sorted(words):    # (one that cannot go out either is kept again: _send_agent)
            self._to_agent(host, agent_protocol.Drop(job=word))

    def _on_spooled(self, host: Host, message: agent_protocol.Spooled) -> None:
        """The agent's answer to a spool sweep (hosts.py asks, at connect and hourly): the jobs
        with files in our part of its spool that it cannot account for. Drop those that are no
        job of ours either: forgotten (a drop lost with a crash, a journal lost), an earlier
        attempt of a retried job. Said once a sweep, with what the agent removed itself."""
        dropped = [word for word in message.jobs
                   if self._current(word) is None and not self.pool_keeps(word)]  # adoption.py
        for word in dropped:
            self._to_agent(host, agent_protocol.Drop(job=word))
        if not dropped and not message.files:
            log.debug("%s: spool sweep: nothing to remove%s", host.name,
                      " (another live agent of ours is on the host: no job listed)" if message.shared else "")
            return
        said = []
        if dropped:
            shown = ", ".join(dropped[:SWEEP_SHOWN]) + (f" and {len(dropped) - SWEEP_SHOWN} more"
                                                        if len(dropped) > SWEEP_SHOWN else "")
            said.append(f"the spooled output of {len(dropped)} job(s) no longer ours ({shown})")
        if message.files:
            parts = (f", with the spool parts of {len(message.parts)} controller(s) or agent(s) gone "
                     f"for {self.config.spool_abandon / 86400:g} days ({', '.join(message.parts)})"
                     if message.parts and self.config.spool_abandon else "")
            said.append(f"{message.files} leftover file(s) of {message.bytes} bytes{parts}")
        log.info("%s: spool sweep: removing %s", host.name, " and ".join(said))

    def host_lost(self, host: Host, reason: str, survivable: bool) -> list[int]:
        """It takes no more jobs. Its running jobs end DOWN (or go back to PENDING for a
        retry), unless its agent may survive us: then they wait for its successor's report."""
        self._free.discard(host.name)
        self.fetches.host_lost(host.name, reason)
        self.syncs.host_lost(host, reason)
        if not survivable:     # jobs held from an earlier loss still wait for their report
            self._end_running(host, None, f"host {host.name} went down: {reason}", held=False)
            return []
        now = self.clock()
        held = sorted(host.running)
        host.running.clear()
        for job_id in held:
            job = self.jobs.get(job_id)
            if job is not None and job.state is JobState.BUSY:
                self._hold(host, job, now)
        if held:
            log.warning("%s: lost contact with jobs %s; they wait %g s for the host's next "
                        "agent to report them", host.name, ", ".join(map(str, held)),
                        self.config.grace)
        return held

    def _hold(self, host: Host, job: Job, since: float) -> None:
        """The job's agent is out of reach: keep it BUSY, unknown, until a report or the
        grace runs out."""
        host.held.add(job.id)
        if job.unknown_since is None:
            job.unknown_since = since
        self._push_timer(job.unknown_since + self.config.grace - self.clock(), ("held", job.id))
        self._job_changed(job)

    def agent_died(self, host: Host, job_ids: list[int], reason: str) -> None:
        """HostListener: the agent we lost has exited; what it held is gone."""
        for job_id in job_ids:
            if job_id in host.held:
                host.held.discard(job_id)
                self._job_lost(self.jobs[job_id], f"host {host.name} went down: {reason}")

    def host_resumed(self, host: Host, report: agent_protocol.Resumed | None,
                     unaware: frozenset[int] = frozenset()) -> None:
        """HostListener: a new agent on `host` says what it runs and which outcomes follow.

        Reconcile: a held job it runs carries on (BUSY); one it reports finished waits for
        its `ended` (already on its way); one it does not know is lost, unless it is
        `unaware` (lost by silence: its agent may offer it later) and the agent says it
        looks again (`looks_again`; an older agent would not): then it stays held. A job it
        runs that is no longer ours (ended meanwhile, or retried elsewhere) is killed.
        """
        running = set(report.running) if report else set()
        finished = set(report.finished) if report else set()
        awaited = []
        for job_id in sorted(host.held):
            job = self.jobs[job_id]
            word = job.agent_word
            if word in running:
                self._carry_on(host, job)
            elif word in finished:
                continue
            elif report is not None and report.looks_again and job_id in unaware:
                awaited.append(job_id)
            elif job.pid is None and report is not None and report.survivors:
                # never said to have started, and unknown to the agents that outlived us: its
                # `run` never reached them (we died between the journal and the send)
                host.held.discard(job_id)
                self._never_sent(host, job)
            else:
                host.held.discard(job_id)
                self._job_lost(job, f"contact with it was lost and host {host.name}'s new "
                                    "agent does not know it (its agent did not survive)")
        self._kill_strays(host, running)
        if awaited:
            log.warning("%s: the new agent does not know jobs %s, lost by silence: their agent "
                        "may not know yet that it was left; they wait for it (up to the grace "
                        "of %g s)", host.name, ", ".join(map(str, awaited)), self.config.grace)
        if host.held:
            log.info("%s: awaiting the outcomes of jobs %s", host.name,
                     ", ".join(map(str, sorted(host.held))))

    def host_took_over(self, host: Host, report: agent_protocol.Resumed) -> None:
        """HostListener: the host's agent found survivors late (it looked again for the jobs
        held for the host) and took them over. Held jobs they run carry on; those they
        finished wait for their `ended`; the others stay held. A job they run that is no
        longer ours (its grace ran out: it ended or runs elsewhere) is killed."""
        running = set(report.running)
        for job_id in sorted(host.held):
            if self.jobs[job_id].agent_word in running:
                self._carry_on(host, self.jobs[job_id])
        self._kill_strays(host, running)
        self._update_load(host)

    def held_words(self, host: Host) -> tuple[str, ...]:
        """HostListener: the agent words of the jobs held for `host` (named in its pings)."""
        return tuple(self.jobs[job_id].agent_word for job_id in sorted(host.held)
                     if job_id in self.jobs) + self.pool_held_words()  # adoption.py

    def _carry_on(self, host: Host, job: Job) -> None:
        """A held job's agent was found and runs it: it is running on `host` again."""
        host.held.discard(job.id)
        host.running.add(job.id)
        job.unknown_since = None
        self._timers.cancel(("held", job.id))
        self._job_changed(job)
        if job.kill_requested:
            self._to_agent(host, agent_protocol.Kill(job=job.agent_word))

    def _kill_strays(self, host: Host, running: set[str]) -> None:
        """Kill the jobs an agent runs that are not ours (any more) on this host: ended,
        running elsewhere, or an earlier attempt of a job now retried."""
        for word in sorted(running):
            if self._current(word) is None or _job_number(word) not in host.running:
                if self._keep_unclaimed(host, word):  # another controller's of the pool: adoption.py
                    continue
                log.warning("%s: the agent runs job %s, which is no longer ours; killing it",
                            host.name, word)
                self._to_agent(host, agent_protocol.Kill(job=word))

    def _end_running(self, host: Host, outcome: Outcome | None, reason: str, *,
                     held: bool = True) -> None:
        """End the host's running (and held) jobs with `outcome` (None: lost, so DOWN or a
        retry)."""
        for job_id in sorted(host.running | host.held if held else host.running):
            job = self.jobs.get(job_id)
            if job is None or job.state is not JobState.BUSY:
                continue
            if outcome is None:
                self._job_lost(job, reason)
            else:
                self._finish(job, outcome, reason=reason)
        host.running.clear()
        if held:
            host.held.clear()
        self._free.discard(host.name)

    def _current(self, word: str) -> Job | None:
        """The job an agent's word names, if it names the job's current attempt."""
        job = self.jobs.get(_job_number(word))
        return job if job is not None and job.agent_word == word else None

    def _running_job(self, host: Host, job_word: str) -> Job | None:
        job = self._current(job_word)
        if job is None or job.id not in host.running:
            log.warning("%s: the agent reports job %r, which it does not run for us",
                        host.name, job_word)
            return None
        return job

    def _on_lost(self, host: Host, message: agent_protocol.Lost) -> None:
        freed = False
        for word in message.jobs:
            job_id = _job_number(word)
            if self._current(word) is None:
                self.pool_lost(word)        # one `adopt` looks for (adoption.py)?
                continue                    # an earlier attempt: its loss is already known
            if job_id in host.running or job_id in host.held:
                freed = freed or job_id in host.running
                host.running.discard(job_id)
                host.held.discard(job_id)
                self._job_lost(self.jobs[job_id], f"on host {host.name}: {message.reason}")
        if freed:
            self._slot_freed(host)

    def _on_ended(self, host: Host, message: agent_protocol.Ended) -> None:
        job = self._current(message.job)
        job_id = _job_number(message.job)
        if job is None and self._keep_unclaimed_end(host, message):
            return                          # another controller's of the pool: adoption.py
        if job is None or (job_id not in host.running and job_id not in host.held):
            # Reported again (our ack was lost with the last pcontrol), no longer ours, or
            # the outcome of an earlier attempt of a job that has been retried since.
            log.info("%s: outcome of job %s reported again or too late; ignored", host.name,
                     message.job)
            self._ack(host, message.job)
            return
        reconciled = job_id in host.held
        host.running.discard(job.id)
        host.held.discard(job.id)
        outcome = from_agent(message.outcome)
        reason = message.reason or self._default_reason(job, outcome, message)
        job.elapsed = message.elapsed
        job.stdout, job.stderr = message.stdout, message.stderr
        job.stdout_bytes, job.stderr_bytes = message.stdout_bytes, message.stderr_bytes
        job.stdout_truncated = message.stdout_truncated
        job.stderr_truncated = message.stderr_truncated
        job.spooled = message.spooled
        job.outbox = message.outbox
        self._finish(job, outcome, reason=reason, status=message.status, signal=message.signal)
        self._ack_outcome(job, host, message.job)   # in a pool, once harvested (adoption.py)
        if reconciled:
            log.info("job %d: outcome %s reported after contact was lost", job.id, outcome.value)
        else:
            self._slot_freed(host)

    @staticmethod
    def _default_reason(job: Job, outcome: Outcome, message: agent_protocol.Ended) -> str:
        if outcome is Outcome.EXIT:
            return exited(message.status)
        if outcome is Outcome.CRASH:
            return f"ended by signal {message.signal}"
        if outcome is Outcome.TIMEOUT:
            return f"ran longer than its timeout of {job.timeout:g} s"
        return "killed on request" if job.kill_requested else "killed by the agent"

    def _on_agent_error(self, host: Host, message: agent_protocol.Error) -> None:
        about = f" (job {message.job})" if message.job is not None else ""
        excerpt = f" {message.excerpt}" if message.excerpt else ""
        log.warning("%s: the agent reports an error: %s%s%s", host.name, message.reason, about, excerpt)
        if message.job is None:
            return
        job = self._running_job(host, message.job)
        if job is not None and job.started is None:
            host.running.discard(job.id)
            self._finish(job, Outcome.DOWN, reason=f"the agent refused it: {message.reason}")
            self._slot_freed(host)


def _job_number(word: str) -> int:
    """A job id from the agent protocol's string form (`17`, or `17.1` for a retry); -1 for
    anything else."""
    number, _, attempt = word.partition(".")
    if not _DIGITS.fullmatch(number) or (attempt and not _DIGITS.fullmatch(attempt)):
        return -1
    return int(number)


_DIGITS = re.compile(r"[0-9]{1,18}")
