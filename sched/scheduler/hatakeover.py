"""A pool's new leader takes over the controller jobs of the earlier one (sched --serve --ha).

The earlier leader kept each controller job in etcd from when it was made until its exit macro
had run (psched.scheduler.ha: `state/pending/TASK/N`, with the job's controller id `cid`, chosen
under its token, `started` once it ran, and `harvest`, its outcome, once its exit macro began).
The new leader's controller finds the jobs on the agents, which outlived the earlier controller
and were taken over by this one's agents under the higher token (pcontrol.adoption); each
record left in etcd is settled here exactly once:

    harvest kept       the macro began under the earlier leader, which died before it ended:
                       it runs again, in full, from the kept outcome (`$job_rerun` 1)
    agent has it       adopted (`adopt CID`): followed as if sent here; a job that ended while
                       no controller led brings its true outcome, and its macro runs here
    no agent has it    started: its agent died with its host (DOWN, said so); never started:
                       its run never reached an agent, and it goes out now, once

    asyncio.ensure_future(take_over_jobs(dispatcher, link, [(key, record), ...]))
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pcontrol.errors import ClientError

from .jobs import Outcome

log = logging.getLogger(__name__)

__all__ = ["take_over_jobs"]

CLAIM_TRIES = 5
"""Tries of one `adopt` while the new controller starts (a second apart)."""


async def take_over_jobs(dispatcher: Any, link: Any, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Settle each controller job the earlier leader left in etcd (see the module docstring);
    the jobs are looked for at the controller all at once."""
    sched = dispatcher.sched
    settling = []
    for key, record in records:
        job = sched.adopt(record)  # in the tables, counted as made by the earlier leader
        if job is None:
            log.warning("taken over: job %s is of a task not defined here; its record stays in etcd", key)
            continue
        task, number = record.get("task") or job.task, int(record.get("number") or 0)
        dispatcher.keep(job, task, number, record)
        cid = int(record["cid"])
        harvest = record.get("harvest")
        if isinstance(harvest, dict):
            _macro_again(sched, job, key, cid, harvest)
        else:
            settling.append(_settle(dispatcher, link, job, key, record, cid))
    await asyncio.gather(*settling)


async def _settle(dispatcher: Any, link: Any, job: Any, key: str, record: dict[str, Any], cid: int) -> None:
    try:
        found = await _claim(link, job, cid, key)
    except ClientError as exc:
        log.error("taken over: job %s (controller job %d) not settled: %s", key, cid, exc)
        return
    if found is not None:
        state = found.get("state")
        log.warning("taken over: job %s (controller job %d) %s on %s", key, cid,
                    "ended while no controller led; its true outcome goes to its exit macro"
                    if state == "DONE" else "runs", found.get("ran_on"))
    elif record.get("started"):
        reason = f"no agent had controller job {cid} after the failover: its agent died with its host"
        log.warning("taken over: job %s started under the earlier leader, but %s", key, reason)
        dispatcher.sched.job_ended(job, Outcome.DOWN, reason=reason, stderr=reason + "\n",
                                   ran_on=record.get("ran_on") or "")
    else:
        log.warning("taken over: job %s (controller job %d) never reached an agent: it goes out now", key, cid)
        dispatcher.send_again(job, record)


def _macro_again(sched: Any, job: Any, key: str, cid: int, harvest: dict[str, Any]) -> None:
    log.warning("taken over: the exit macro of job %s (controller job %d) began under the earlier leader, "
                "which died before it ended: it runs again, in full", key, cid)
    job.controller_id = str(cid)
    job.vars["job_rerun"] = "1"
    try:
        outcome = Outcome(harvest.get("outcome"))
    except ValueError:
        outcome = Outcome.DOWN
    sched.job_ended(job, outcome, status=harvest.get("status"), signal=harvest.get("signal"),
                    stdout=harvest.get("stdout") or "", stderr=harvest.get("stderr") or "",
                    elapsed=harvest.get("elapsed"), reason=harvest.get("reason") or "",
                    ran_on=harvest.get("ran_on") or "")


async def _claim(link: Any, job: Any, cid: int, key: str) -> dict[str, Any] | None:
    for attempt in range(CLAIM_TRIES):
        try:
            return await link.claim(job, cid)
        except ClientError as exc:
            log.warning("taken over: cannot adopt job %s (controller job %d) yet: %s", key, cid, exc)
            if attempt + 1 < CLAIM_TRIES:
                await asyncio.sleep(1.0)
    raise ClientError(f"the controller did not take `adopt {cid}` in {CLAIM_TRIES} tries")
