"""`sched --serve FILE... --ha URL`: a server that serves only while it leads its pool.

    sched --serve --foreground --ha http://etcd1:2379,http://etcd2:2379/POOL [--ha-ttl 5] FILE...

Every scheduler machine of the pool runs the same command on the same files. Each one waits as a
standby (psched.scheduler.ha.Elector.campaign) until it wins the leader key in etcd; only then
does it run the files, take up what the earlier leader kept (each task's count and last launch),
and serve. While it leads, a job goes to its backend only once etcd keeps, under its fencing
token, that it was made (FencedDispatcher). When it cannot renew its lease in time, or etcd
refuses a write under its token, it stops firing at once and leaves with STEPPED_DOWN; the CLI
then starts the same command again (exec: a fresh process), which stands by: two leaders never
act at once and an old leader comes back as a standby. A clean stop gives the lease up so a
standby leads at once instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from pcontrol.fencing import FENCE_ENV

from ..lang.errors import QuitRequest
from ..scheduler.attach import controller_of, scheduler_of
from ..scheduler.etcd import Etcd
from ..scheduler.eventloop import leave_soon, run_until
from ..scheduler.hatakeover import take_over_jobs
from ..scheduler.ha import (DEFAULT_TTL, HA_KEY, ID_SPAN, Elector, FencedDispatcher, HAState, Leadership, default_identity,
                            parse_ha_url, restore_state)

log = logging.getLogger(__name__)

__all__ = ["HAServer", "STEPPED_DOWN", "restart_as_standby"]

STEPPED_DOWN = 75
"""The exit status of a leader that stepped down (EX_TEMPFAIL): the CLI starts it again as a standby."""



class HAServer:
    """One scheduler of the pool: stands by, leads, steps down."""

    def __init__(self, url: str, ttl: int = DEFAULT_TTL, me: str | None = None):
        endpoints, prefix = parse_ha_url(url)
        self.elector = Elector(Etcd(endpoints, timeout=max(0.5, ttl / 4)), prefix, me or default_identity(), ttl)
        self.state = HAState(self.elector, self._fenced)
        self.stepped_down: str | None = None
        self._holder: asyncio.Task | None = None
        self.took_over_at: float | None = None
        self.kept: dict[str, Any] = {}
        self.sched: Any = None
        self.dispatcher: FencedDispatcher | None = None

    @property
    def leadership(self) -> Leadership | None:
        return self.elector.leadership

    def summary(self) -> dict[str, Any]:
        """Who leads, since when, the token (the HAStatus that `status` shows)."""
        lead = self.elector.leadership
        role = "leader" if lead is not None and self.elector.may_act() else "standby"
        shown = lead or self.elector.seen
        text = f"{role}; " + (shown.describe() if shown else "no leader seen") + f"; lease {self.elector.ttl} s"
        return {"role": role, "leader": shown.who if shown else None, "since": shown.since if shown else None,
                "token": shown.token if shown else None, "ttl": self.elector.ttl, "text": text}

    def stand_by(self, interp: Any) -> Leadership:
        """Wait (the loop running) until we lead; then read what the earlier leader kept and put
        the gate between the scheduler and its backends, before the files make any task. From
        then on, leaving gives the lease up."""
        log.warning("standing by for the lead of %s (lease %d s)", self.elector.prefix, self.elector.ttl)
        interp.extensions[HA_KEY] = self
        lead = run_until(self.elector.campaign(), "standby", interruptible=False)
        interp.exit_hooks.append(self._resign)
        os.environ[FENCE_ENV] = str(lead.token)  # the pcontrol we start gives it to its agents
        self.kept = run_until(self.elector.read_state(), "taking over", interruptible=False)
        sched = self.sched = scheduler_of(interp)
        sched.dispatcher = self.dispatcher = FencedDispatcher(self.state, sched)
        sched.job_listeners.append(self.dispatcher.job_changed)
        link = controller_of(sched)   # every request carries our token; job ids under it; harvests kept
        link.fence, link.chosen_id, link.gate = lead.token, self.dispatcher.controller_id, self.dispatcher
        link.foreign = lambda record: int(record["id"]) // ID_SPAN != lead.token
        # the lease is renewed from now on: the files may take a while (a `controller` command
        # starting pcontrol), and a lease not renewed meanwhile would end our lead as it begins
        self._holder = asyncio.ensure_future(self._hold(sched))
        return lead

    def take_over(self, interp: Any) -> None:
        """The files have run (the loop has not, since we read the state): go on from the earlier
        leader's counts and launches, and keep the lease."""
        sched = scheduler_of(interp)
        for line in restore_state(sched, self.kept, time.time()):
            log.warning("taken over: %s", line)
        self.state.kept_queues(self.kept.get("queue", {}))
        self.state.kept_messages(self.kept.get("messages", {}).get("waiting") or [])
        pending = sorted(self.kept.get("pending", {}).items(), key=lambda item: _task_and_number(item[0]))
        unsent = [(key, record) for key, record in pending if not record.get("placing")]
        maybe = [key for key, record in pending if record.get("placing") and "cid" not in record]
        at_controller = [(key, record) for key, record in pending if record.get("placing") and "cid" in record]
        if unsent:
            log.warning("taken over: %d job(s) the earlier leader made and never sent go out now: %s",
                        len(unsent), ", ".join(key for key, _ in unsent))
        for _, record in unsent:
            self.dispatcher.redispatch(record)
        if maybe:  # sent as the earlier leader died: they may have started; not sent again
            log.warning("taken over: %d job(s) the earlier leader was sending as it left may have "
                        "started; not sent again: %s", len(maybe), ", ".join(maybe))
            ops = [op for key in maybe for op in self.state.placed_ops(*_task_and_number(key))]
            asyncio.ensure_future(self.state.apply(ops))
        if at_controller:  # the agents ran them: the new controller takes them over (psched.scheduler.hatakeover)
            log.warning("taken over: %d controller job(s) the earlier leader placed are looked for on the agents: %s",
                        len(at_controller), ", ".join(key for key, _ in at_controller))
            asyncio.ensure_future(take_over_jobs(self.dispatcher, controller_of(sched), at_controller))
        self.took_over_at = time.time()

    async def _hold(self, sched: Any) -> None:
        reason = await self.elector.hold()
        self._step_down(sched, reason)

    def _fenced(self, reason: str) -> None:
        self._step_down(self.sched, f"etcd did not keep our state: {reason}")

    def _step_down(self, sched: Any, reason: str) -> None:
        if self.stepped_down is not None:
            return
        self.stepped_down = reason
        self.elector.act_until = float("-inf")
        if sched is not None:
            sched.stop()
        log.warning("no longer the leader (%s): leaving to stand by again", reason)
        leave_soon(QuitRequest(STEPPED_DOWN, force=True))

    def _resign(self, interp: Any) -> None:
        if self._holder is not None:
            self._holder.cancel()
        self.elector.act_until = float("-inf")
        if self.sched is not None:
            # Our controller acts no more, before the next leader can lead: its agents keep
            # their jobs as survivors, for the next leader's agents to take over (pcontrol.adoption)
            outcome = controller_of(self.sched).stop_daemon(force=True)
            (log.warning if outcome.ok else log.error)("stopping our pcontrol: %s", outcome.message)
        try:
            run_until(self.elector.resign(), "resign", interruptible=False, leavable=False)
        except Exception:  # leaving anyway: the lease then ends by itself
            log.exception("could not give the lease up")


def _task_and_number(key: str) -> tuple[str, int]:
    task, _, number = key.rpartition("/")
    return task, int(number) if number.isdigit() else 0


def restart_as_standby() -> None:
    """A stepped-down leader becomes a standby: the same command in a fresh process (exec)."""
    argv = [sys.executable, "-m", "psched", *sys.argv[1:]]
    log.warning("starting again as a standby: %s", " ".join(argv))
    logging.shutdown()
    os.execv(sys.executable, argv)
