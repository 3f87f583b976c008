"""What operators ask of jobs and hosts at the controller, with `-force` safety.

`kill`, `delete` and `harvest` of jobs; `host delete`, `host off`, `host on`, `host retry`;
and what `shutdown` would do to the jobs out. What would end work is refused unless forced,
and the refusal says what would happen: `delete` of a live job, `host delete`/`host off` of a
host with jobs, `shutdown` with jobs out. Refusals carry data NEEDS_FORCE ({"needs_force":
true}), so the prompt can ask instead.

A mixin of the Controller (controller.py), like AgentReports (reports.py): it runs on the
daemon's loop and uses the Controller's tables and its _finish/_job_changed/_to_agent.
"""

from __future__ import annotations

from typing import Any

from pclient import protocol as agent_protocol

from .config import ControllerConfig
from .dispatch import DispatchIndex
from .errors import ConflictError, NotFoundError, UsageError
from .fetches import OutputFetches
from .model import Host, HostState, Job, JobState, Outcome, RetainedJob
from .wire import EventKind

__all__ = ["OperatorRequests", "NEEDS_FORCE", "IDS_SHOWN"]

#: Job ids named in a refusal before "..." (a host may run hundreds).
IDS_SHOWN = 10
#: The data of a refusal that `-force` would overcome.
NEEDS_FORCE = {"needs_force": True}


class OperatorRequests:
    """Controller methods for operators' requests (see the module docstring)."""

    # Kept by the Controller:
    config: ControllerConfig
    jobs: dict[int, Job | RetainedJob]
    fetches: OutputFetches
    _index: DispatchIndex
    _job_counts: Any
    _next_id: int

    # == jobs ===============================================================================

    @staticmethod
    def _check_owner(job: Job, action: str, force: bool, owner: str | None) -> None:
        if job.owner is None or force or owner == job.owner:
            return
        task = f'task "{job.task}"' if job.task else "a task"
        raise ConflictError(f'job {job.id} belongs to {task} of scheduler "{job.owner}"; '
                            f"{action} it from there, or use -force")

    def kill(self, job_id: int | str, *, force: bool = False, owner: str | None = None) -> str:
        job = self.job(job_id)
        self._check_owner(job, "kill", force, owner)
        if job.state is JobState.DONE:
            raise ConflictError(f"job {job.id} has already ended ({job.outcome.value})")
        if job.state is JobState.PENDING:
            self._index.remove(job.id)
            job.kill_requested = True
            self._finish(job, Outcome.KILLED, reason="killed while pending")
            return f"job {job.id} killed (it was pending)"
        if job.kill_requested:
            return f"job {job.id} is already being killed"
        job.kill_requested = True
        host = self.hosts.get(job.ran_on or "")
        self._job_changed(job)
        if host is not None and job.id in host.held:
            return (f"job {job.id} will be killed on {job.ran_on} once its agent reports it "
                    f"(contact lost)")
        if host is not None:
            self._to_agent(host, agent_protocol.Kill(job=job.agent_word))
        return f"job {job.id} is being killed on {job.ran_on}"

    def delete(self, job_id: int | str, *, force: bool = False,
               owner: str | None = None) -> str:
        """Forget a finished job. A pending or running one only with `force`: a pending
        one is cancelled (KILLED) and forgotten at once; a running one is killed and
        forgotten once its end is reported (subscribers still see that end)."""
        job = self.job(job_id)
        self._check_owner(job, "delete", force, owner)
        if job.state is JobState.DONE:
            self._forget(job)
            return f"job {job.id} deleted"
        if not force:
            raise ConflictError(self._delete_consequence(job), data=NEEDS_FORCE)
        if job.state is JobState.PENDING:
            job.delete_requested = True
            self.kill(job.id, force=True)
            return f"job {job.id} deleted (it was pending: it never ran)"
        job.delete_requested = True
        said = self.kill(job.id, force=True)
        if job.id not in self.jobs:
            return f"job {job.id} deleted"
        return f"{said}; it will be deleted once it has ended"

    def _delete_consequence(self, job: Job) -> str:
        if job.state is JobState.PENDING:
            return (f"job {job.id} is PENDING; deleting it cancels it (it never runs); "
                    f"use -force to cancel and delete it")
        host = self.hosts.get(job.ran_on or "")
        if host is not None and job.id in host.held:
            where = (f"ran on {job.ran_on}, whose agent is out of reach (its outcome is "
                     f"awaited)")
        else:
            where = f"is running on {job.ran_on}" + (f" (pid {job.pid})" if job.pid else "")
        return (f"job {job.id} {where}; deleting it kills it and its outcome is lost; use "
                f"-force to kill it and delete it once it has ended")

    async def output(self, job_id: str, stream: str, offset: int, size: int) -> tuple[bytes, bool]:
        """A piece of a finished job's spooled stream, read from its agent (pcontrol.fetches)."""
        if stream not in ("stdout", "stderr"):
            raise UsageError(f'expected stdout or stderr but got "{stream}"')
        if offset < 0 or size < 1:
            raise UsageError(f"-offset must be >= 0 and -size >= 1, got {offset} and {size}")
        job = self.job(job_id)
        if job.state is not JobState.DONE:
            raise ConflictError(f"job {job.id} is {job.state.value}; its output is read once it has ended")
        if not job.spooled:
            raise ConflictError(f"job {job.id} was not spooled by its agent (submitted without -spool, "
                                "or an older agent): only its head is kept (check job -output)")
        host = self.hosts.get(job.ran_on or "")
        if host is None or host.state not in (HostState.IDLE, HostState.BUSY):
            raise ConflictError(f"job {job.id}'s output is on host {job.ran_on}, which is not "
                                "connected now; read it once the host is back")
        return await self.fetches.fetch(lambda message: self._to_agent(host, message), host.name,
                                        job.agent_word, stream, offset, size)

    def harvest(self, job_ids: list[str], *, owner: str | None = None) -> list[dict[str, Any]]:
        """The owner has collected these finished jobs; keep them `retention` s, then forget.

        Idempotent: a job already harvested, or already forgotten after its harvest, is fine.
        All ids are checked before any is marked, so a refusal changes nothing.
        """
        results: list[dict[str, Any]] = []
        marks: list[Job] = []
        for word in job_ids:
            try:
                number = int(word)
            except ValueError:
                raise UsageError(f'expected a job id but got "{word}"') from None
            job = self.jobs.get(number)
            if job is None:
                if 0 < number < self._next_id or self.in_pool:  # (a pool's ids: adoption.py)
                    results.append({"id": number, "harvested": True, "known": False})
                    continue
                raise NotFoundError(f"no job {number}")
            if owner is not None and job.owner is not None and job.owner != owner:
                raise ConflictError(f'job {job.id} belongs to scheduler "{job.owner}", '
                                    f'not "{owner}"')
            if job.state is not JobState.DONE:
                raise ConflictError(f"job {job.id} is {job.state.value}; only finished jobs "
                                    "can be harvested")
            results.append({"id": job.id, "harvested": True, "known": True})
            if job.harvested is None:
                marks.append(job)
        now = self.clock()
        for job in marks:
            self._harvested_in_pool(job)
            job.harvested = now
            self._retain(job)
            # The Job, not its retained form, goes to the journal and the subscribers: the same
            # records, made in half the time; it is freed once its row is written.
            self._job_changed(job, lazy=True)  # sched keeps its record HARVEST_DURABLE s
            self._push_forget(self.config.retention, job)
        return results

    # == hosts ==============================================================================

    def _refuse_if_running(self, host: Host, action: str, force: bool, *,
                           required: list[int] | None = None) -> None:
        """Refuse (unless forced) an action that ends the host's jobs, saying which and
        how: its running ones end KILLED, and (host delete) pending ones that require it
        end DOWN."""
        live = sorted(host.running | host.held)
        required = required or []
        if force or not (live or required):
            return
        if live:
            text = (f"host {host.name} runs {_count(len(live), 'job')} ({_ids(live)}); "
                    f"{action} ends {_them(len(live))} KILLED")
            if required:
                text += (f", and {_count(len(required), 'pending job')} that "
                         f"{_verb(len(required), 'require')} it ({_ids(required)}) "
                         f"{_verb(len(required), 'end')} DOWN")
        else:
            text = (f"{_count(len(required), 'pending job')} "
                    f"{_verb(len(required), 'require')} host {host.name} ({_ids(required)}); "
                    f"{action} ends {_them(len(required))} DOWN")
        raise ConflictError(text + "; use -force to do it anyway", data=NEEDS_FORCE)

    def delete_host(self, name: str, *, force: bool = False) -> str:
        host = self.host(name)
        self._refuse_if_running(host, "deleting it", force,
                                required=self._required_on(name))
        self._end_running(host, Outcome.KILLED, f"host {name} was deleted")
        self.host_table.remove(host)
        for job_id in self._required_on(name):
            self._index.remove(job_id)
            self._finish(self.jobs[job_id], Outcome.DOWN,
                         reason=f"required host {name} was deleted")
        if self.journal is not None:
            self.journal.host_forgotten(name)
        self._host_configs.pop(name, None)
        record = host.to_record()
        record["deleted"] = True
        self._emit(EventKind.HOST, record)
        return f"host {name} deleted"

    def host_off(self, name: str, *, force: bool = False) -> str:
        host = self.host(name)
        if not host.enabled:
            return f"host {name} is already off"
        self._refuse_if_running(host, "switching it off", force)
        self._end_running(host, Outcome.KILLED, f"host {name} was switched off")
        self.host_table.switch_off(host)
        return f"host {name} is off"

    def host_on(self, name: str) -> str:
        host = self.host(name)
        if host.enabled:
            return f"host {name} is already on ({host.state.value})"
        self.host_table.switch_on(host)
        return f"host {name} is on; connecting"

    def host_retry(self, name: str) -> str:
        host = self.host(name)
        if not host.enabled:
            raise ConflictError(f'host "{name}" is OFF; use "host on {name}"')
        if host.state is not HostState.DOWN:
            return f"host {name} is {host.state.value}; nothing to retry"
        self.host_table.retry(host)
        return f"host {name}: connecting"

    # == stopping ===========================================================================

    def stop_refusal(self, *, kill: bool) -> str | None:
        """What `shutdown` would do to the jobs out, in words; None when no job is out."""
        running = self._job_counts.get(JobState.BUSY, 0)
        pending = self._job_counts.get(JobState.PENDING, 0)
        if not running and not pending:
            return None
        out = " and ".join(part for part in (
            f"{_count(running, 'job')} running" if running else "",
            f"{_count(pending, 'job')} pending" if pending else "") if part)
        if kill:
            return (f"pcontrol has {out}; stopping with -kill ends {_them(running + pending)} "
                    f"KILLED; use -kill -force to do it anyway")
        parts = []
        if running:
            lease = self.config.lease
            parts.append("the running ones go on under their agents, which kill them if no "
                         f"pcontrol takes them over within {lease:g} s" if lease > 0 else
                         "the running ones are killed by their agents (lease 0)")
        if pending:
            parts.append("the pending ones wait until pcontrol is started again")
        return (f"pcontrol has {out}; if it stops, " + ", and ".join(parts)
                + "; use -force to stop anyway (or -kill -force to end every job now)")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _them(number: int) -> str:
    return "that job" if number == 1 else ("both" if number == 2 else f"all {number}")


def _verb(number: int, verb: str) -> str:
    """`verb` agreeing with `number` subjects: 1 requires, 2 require."""
    return verb + "s" if number == 1 else verb


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > IDS_SHOWN else "")
