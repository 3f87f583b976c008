"""High availability: one leader among the schedulers of a pool, elected through etcd, and the
state a new leader needs, kept in etcd under the leader's fencing token.

    elector = Elector(Etcd(urls), prefix="/psched/pool", me="host-a pid 4711", ttl=5)
    lead = await elector.campaign()        # waits as a standby until it leads: a Leadership
    lead.token                             # the fencing token: the revision that made our key
    elector.may_act()                      # False from `act_until` on (see below)
    await elector.write(ops)               # refused (Fenced) unless our key is still the leader's
    reason = await elector.hold()          # renews the lease; returns why leading ended

The leader's key (`PREFIX/leader`) is put with a lease of `ttl` seconds in a transaction that
succeeds only if the key does not exist; the revision of that transaction is the key's create
revision, and is the fencing token. A later leader's key has a higher one. Every write of state
is a transaction that compares the leader key's create revision with our token: once our lease
has expired (the key is gone) or another leads (a newer key), the write is refused.

Stepping down before the lease can expire: the lease is renewed every ttl/4; a renewal sent at
monotonic `t` that etcd answers with TTL `T` keeps the lease at least until `t + T` (etcd counts
from when it received the renewal, which is later), so we act until `t + T - guard`, guard =
ttl/4. A leader cut from etcd stops firing and dispatching `guard` seconds before its lease can
end, and the standbys (which poll the key every ttl/8) can lead only once it has ended.

What is kept (`PREFIX/state/...`, JSON values):
    task/NAME         {"made": jobs made in the run, "last_launch": wall time of the last}
    pending/NAME/N    the N-th job of task NAME, from when it is made until its exit macro has
                      run: `placing` once it is being sent; a controller job also `cid` (its id at
                      the controller, chosen under our token: ID_SPAN), `started` and `ran_on`
                      once it runs, and `harvest` (its outcome) once its exit macro begins
    queue/NAME        a queue's items (psched.lang.commands.queues)
    messages/waiting  the switchboard's undelivered messages (psched.scheduler.switchboard)
The scheduler's side (what to write when; restoring it) is FencedDispatcher and restore_state below.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..lang.commands.queues import WorkQueue
from .switchboard import message_records, messages_from
from .etcd import Compare, Etcd, EtcdError, delete, get, put

log = logging.getLogger(__name__)

__all__ = ["HA_KEY", "HAStatus", "Elector", "Leadership", "Fenced", "HAState", "FencedDispatcher", "restore_state", "parse_ha_url",
           "DEFAULT_TTL"]

HA_KEY = "ha"
"""Key in `interp.extensions` of the pool member (an HAStatus): `status` shows who leads."""

RETRY = 0.1
"""Seconds between two tries of a write etcd did not answer (while we may still act)."""

DEFAULT_TTL = 5
"""Seconds of the leader's lease: the longest a dead leader's scheduler stays unreplaced."""

ID_SPAN = 10**9
"""A leader's controller jobs have ids token * ID_SPAN + its job number: ids no other leader of
the pool (a different token) can give, so that the next leader's controller can take them over
from the agents by id (pcontrol.adoption)."""

OUTPUT_KEPT = 8192
"""Characters of a job's output kept in etcd with its outcome when its exit macro begins (the
rest is cut: a macro run again by the next leader sees that much)."""


class HAStatus(Protocol):
    """What `status` asks of the pool member a server is (psched.shell.ha.HAServer)."""

    def summary(self) -> dict[str, Any]:
        """{"role", "leader", "since", "token", "ttl", "text"}: `text` is the line `status` prints."""


class Fenced(Exception):
    """A write under our token was refused: another leads, or our lease has ended."""


@dataclass(frozen=True)
class Leadership:
    """Who leads: the token, since when (wall time), and who."""

    token: int
    since: float
    who: str
    lease: int = 0

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.who} leads since {when} (token {self.token})"


def parse_ha_url(url: str) -> tuple[list[str], str]:
    """`--ha http://e1:2379,http://e2:2379/POOL`: (the endpoints, the key prefix /psched/POOL)."""
    text = url.strip()
    if not text:
        raise ValueError("--ha: give the etcd URL, e.g. http://127.0.0.1:2379/pool")
    endpoints = []
    pool = ""
    for part in text.split(","):
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = "http", part
        hostport, slash, path = rest.partition("/")
        if path:
            pool = path.strip("/")
        endpoints.append(f"{scheme}://{hostport}")
    return endpoints, "/psched/" + (pool or "default")


def default_identity() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class Elector:
    """Campaigns, holds the lease, and writes under its token (see the module docstring)."""

    def __init__(self, etcd: Etcd, prefix: str, me: str, ttl: int = DEFAULT_TTL,
                 monotonic: Callable[[], float] = time.monotonic):
        self.etcd = etcd
        self.prefix = prefix.rstrip("/")
        self.me = me
        self.ttl = max(2, int(ttl))  # etcd's shortest lease is about 2 s
        self.guard = self.ttl / 4
        self.poll = max(0.05, self.ttl / 8)
        self.monotonic = monotonic
        self.leadership: Leadership | None = None
        self.seen: Leadership | None = None   # the leader a standby saw last
        self.act_until = -math.inf
        self.refusals = 0
        self._writes: asyncio.Lock | None = None

    @property
    def leader_key(self) -> bytes:
        return f"{self.prefix}/leader".encode()

    def key(self, *parts: str) -> bytes:
        return "/".join((self.prefix, "state", *parts)).encode()

    # -- leading --------------------------------------------------------------------------------

    def may_act(self) -> bool:
        """True while we lead and our lease is surely ours (the gate of firing and dispatching)."""
        return self.leadership is not None and self.monotonic() < self.act_until

    async def campaign(self) -> Leadership:
        """Wait as a standby until the leader key is free, then take it; our Leadership."""
        said = None
        while True:
            try:
                lead = await self._try_to_lead()
                if lead is not None:
                    return lead
            except EtcdError as exc:
                if said != str(exc):
                    log.warning("standby: etcd does not answer: %s", exc)
                    said = str(exc)
            await asyncio.sleep(self.poll)

    async def _try_to_lead(self) -> Leadership | None:
        held = await self.etcd.get(self.leader_key)
        if held is not None:
            seen = _leadership(held.value, held.create_revision)
            if seen != self.seen:
                log.warning("standby: %s", seen.describe())
                self.seen = seen
            return None
        lease, ttl = await self.etcd.grant(self.ttl)
        sent = self.monotonic()
        since = time.time()
        value = json.dumps({"who": self.me, "since": since}).encode()
        ok, revision, kvs = await self.etcd.txn([Compare.created(self.leader_key, 0)],
                                                [put(self.leader_key, value, lease)], [get(self.leader_key)])
        if not ok:
            await self._revoke(lease)
            return None
        self.leadership = Leadership(revision, since, self.me, lease)
        self.act_until = sent + ttl - self.guard
        log.warning("leading: %s", self.leadership.describe())
        return self.leadership

    async def hold(self) -> str:
        """Renew our lease until it cannot be renewed in time; why we stopped leading."""
        lead = self.leadership
        assert lead is not None, "hold() before campaign()"
        interval = self.ttl / 4
        next_at = self.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - self.monotonic()))
            left = self.act_until - self.monotonic()
            if left <= 0:
                return self._step_down("the lease could not be renewed in time")
            sent = self.monotonic()
            try:
                ttl = await asyncio.wait_for(self.etcd.keepalive(lead.lease), left)
            except asyncio.TimeoutError:
                return self._step_down("the lease could not be renewed in time (etcd did not answer)")
            except EtcdError as exc:
                log.warning("leader: cannot renew the lease yet (%.1f s left to act): %s", left, exc)
                next_at = sent + min(interval, 0.25)
                continue
            if ttl <= 0:
                return self._step_down("the lease has expired")
            self.act_until = sent + ttl - self.guard
            next_at = sent + interval

    def _step_down(self, reason: str) -> str:
        self.act_until = -math.inf
        log.warning("stepping down: %s (token %s)", reason, self.leadership.token if self.leadership else "-")
        return reason

    async def resign(self) -> None:
        """Give the lead up at once (a clean stop): the standbys need not wait out the lease."""
        lead = self.leadership
        self.act_until = -math.inf
        if lead is not None:
            await self._revoke(lead.lease)

    async def _revoke(self, lease: int) -> None:
        try:
            await self.etcd.revoke(lease)
        except EtcdError as exc:
            log.info("could not revoke lease %x: %s", lease, exc)

    async def who_leads(self) -> Leadership | None:
        held = await self.etcd.get(self.leader_key)
        return None if held is None else _leadership(held.value, held.create_revision)

    # -- state under the token ------------------------------------------------------------------

    async def write(self, ops: list[dict]) -> None:
        """Apply `ops` (etcd.put / etcd.delete) only while our key is the leader's; Fenced if not."""
        lead = self.leadership
        if lead is None:
            raise Fenced("not the leader")
        if not self.may_act():  # stepped down: etcd may not have ended our lease yet, but we act no more
            raise Fenced(f"token {lead.token}: this scheduler has stepped down")
        if self._writes is None:
            self._writes = asyncio.Lock()
        async with self._writes:  # in the order they were asked for
            ok, _, kvs = await self.etcd.txn([Compare.created(self.leader_key, lead.token)], ops,
                                             [get(self.leader_key)])
        if not ok:
            self.refusals += 1
            self.act_until = -math.inf
            holder = _leadership(kvs[0].value, kvs[0].create_revision).describe() if kvs else "nobody leads"
            log.warning("etcd refused a write under the old token %d: %s", lead.token, holder)
            raise Fenced(f"token {lead.token} is no longer the leader's ({holder})")

    async def read_state(self) -> dict[str, Any]:
        """What an earlier leader kept: {"task": {NAME: {...}}, "pending": {...}, "queue": {...}}."""
        state: dict[str, dict[str, Any]] = {"task": {}, "pending": {}, "queue": {}, "messages": {}}
        base = self.key("")
        for kv in await self.etcd.get_prefix(base):
            rest = kv.key[len(base):].decode("utf-8", "replace")
            kind, _, name = rest.partition("/")
            if kind in state:
                try:
                    state[kind][name] = json.loads(kv.value)
                except ValueError:
                    log.warning("etcd: %s is not JSON; ignored", kv.key.decode("utf-8", "replace"))
        return state


def _leadership(value: bytes, revision: int) -> Leadership:
    try:
        info = json.loads(value)
        return Leadership(revision, float(info.get("since", 0.0)), str(info.get("who", "?")))
    except (ValueError, AttributeError, TypeError):
        return Leadership(revision, 0.0, value.decode("utf-8", "replace"))


# --- the scheduler's side ---------------------------------------------------------------------------


class HAState:
    """Writes the state of the run to etcd, in order, one transaction at a time, before dispatch."""

    def __init__(self, elector: Elector, on_fenced: Callable[[str], None]):
        self.elector = elector
        self.on_fenced = on_fenced
        self.failed: str | None = None
        self._queues: dict[str, list[str]] = {}  # as last written
        self._messages: list[list] = []  # as last written

    def queue_ops(self, queues: dict[str, Any]) -> list[dict]:
        """Puts for the queues that changed since the last write, deletes for those gone."""
        ops = []
        now = {name: list(queue) for name, queue in queues.items()}
        for name, lines in now.items():
            if self._queues.get(name) != lines:
                ops.append(put(self.elector.key("queue", name), json.dumps(lines).encode()))
        for name in set(self._queues) - set(now):
            ops.append(delete(self.elector.key("queue", name)))
        self._queues = now
        return ops

    def message_ops(self, switchboard: Any) -> list[dict]:
        """A put of the switchboard's waiting messages when they changed since the last write."""
        now = message_records(switchboard.waiting())
        if now == self._messages:
            return []
        self._messages = now
        return [put(self.elector.key("messages", "waiting"), json.dumps(now).encode())]

    def kept_messages(self, records: list[list]) -> None:
        """What the earlier leader wrote (restored): the base of the next message_ops."""
        self._messages = message_records(messages_from(records))

    def kept_queues(self, queues: dict[str, list[str]]) -> None:
        """What the earlier leader wrote (restored): the base of the next queue_ops."""
        self._queues = {name: list(lines) for name, lines in queues.items()}

    async def apply(self, ops: list[dict]) -> bool:
        """Write `ops` under our token; False (and on_fenced) once that cannot be done. An etcd
        that does not answer (restarting, a lost reply) is asked again while we may act: the
        writes are puts and deletes, the same again if the first did land."""
        tries = 0
        while self.failed is None:
            try:
                await self.elector.write(ops)
                if tries:
                    log.warning("etcd took our state after %d tries", tries + 1)
                return True
            except Fenced as exc:
                self.failed = str(exc)
            except EtcdError as exc:
                if not self.elector.may_act():
                    self.failed = f"etcd did not answer before our lease could end: {exc}"
                else:
                    tries += 1
                    (log.warning if tries == 1 else log.debug)("etcd did not take our state yet (asking again): %s", exc)
                    await asyncio.sleep(RETRY)
                    continue
            self.on_fenced(self.failed)
        return False

    def task_ops(self, task: str, made: int, last_launch: float | None, job_number: int | None,
                 record: dict | None) -> list[dict]:
        ops = [put(self.elector.key("task", task), json.dumps({"made": made, "last_launch": last_launch}).encode())]
        if job_number is not None and record is not None:
            ops.append(put(self.elector.key("pending", f"{task}/{job_number}"), json.dumps(record).encode()))
        return ops

    def placing_ops(self, task: str, job_number: int, record: dict) -> list[dict]:
        """The job's last word before it goes out: from here on it may have started."""
        return [put(self.elector.key("pending", f"{task}/{job_number}"), json.dumps(dict(record, placing=True)).encode())]

    def placed_ops(self, task: str, job_number: int) -> list[dict]:
        return [delete(self.elector.key("pending", f"{task}/{job_number}"))]


class FencedDispatcher:
    """The scheduler's Dispatcher in a leader: a made job goes to its backend only once etcd keeps,
    under our token, that its task made it (and never while we may not act).

    Two writes before a job goes out, so that the next leader knows which of the jobs it finds
    pending never went out: (1) the task's count, the queues and the job `placing: false`;
    (2) the job `placing: true`, the last word before the backend has it. A job still `placing:
    false` never went out (held back at a step-down or a stop, or its leader was killed between
    the two writes) and the next leader sends it; one `placing: true` may have started, and is
    not sent again. The record goes once the job has started."""

    def __init__(self, state: HAState, sched: Any):
        self.state = state
        self.sched = sched
        self.held_back = 0
        self._unplaced: dict[int, tuple[str, int]] = {}  # job id -> (task, number) of state/pending
        self.records: dict[int, tuple[str, int, dict]] = {}  # controller jobs: job id -> (task, number, record)

    def controller_id(self, job: Any) -> int | None:
        """The id a controller job of ours has at the controller (ControllerLink.chosen_id)."""
        kept = self.records.get(job.id)
        return None if kept is None else kept[2].get("cid")

    def keep(self, job: Any, task: str, number: int, record: dict) -> None:
        """Follow a controller job's record until its exit macro has run."""
        self.records[job.id] = (task, number, record)

    def dispatch(self, job: Any, backend: Any) -> None:
        entry = self.sched.tasks.get(job.task)
        made = entry.timing.made if entry is not None else 0
        record = {"task": job.task, "argv": job.argv, "host": job.host, "required": job.host_required,
                  "timeout": job.timeout, "pending": job.pending, "number": made, "placing": False,
                  "noskew": job.noskew, "not_before": job.not_before, "cwd": job.cwd}
        if not job.local:
            record["cid"] = self.state.elector.leadership.token * ID_SPAN + job.id
            self.keep(job, job.task, made, record)
        # the queues in the same transaction: a line that task.exec took for this job is gone
        # from the kept queue exactly when the job is counted made
        # (and the switchboard's messages: those this job took are gone with it)
        ops = (self.state.task_ops(job.task, made, time.time(), made, record)
               + self.state.queue_ops(self.sched.interp.queues) + self.state.message_ops(self.sched.switchboard))
        self._unplaced[job.id] = (job.task, made)
        asyncio.ensure_future(self._dispatch(job, backend, ops, self.state.placing_ops(job.task, made, record)))

    async def _dispatch(self, job: Any, backend: Any, ops: list[dict], placing: list[dict]) -> None:
        elector = self.state.elector
        if (not elector.may_act() or not await self.state.apply(ops) or not elector.may_act()
                or not await self.state.apply(placing)):
            self.held_back += 1
            log.warning("job %s of task %s not dispatched: this scheduler no longer leads", job.id, job.task)
            self._unplaced.pop(job.id, None)
            self.records.pop(job.id, None)
            self._forget(job)
            return
        # etcd took `placing` under our token: nobody else led then, and the next leader will
        # not send it again, so it goes out even if we have just stopped acting
        backend.submit(job)

    def redispatch(self, record: dict[str, Any]) -> Any:
        """A job the earlier leader made (counted, its queue line taken) and that never went out:
        it goes out now, as it was made (the job, or None when its task is not defined here)."""
        job = self.sched.adopt(record)  # in the tables, counted as made by the earlier leader
        if job is None:
            return None
        self.send_again(job, record)
        return job

    def send_again(self, job: Any, record: dict[str, Any]) -> None:
        """Send out `job`, made by an earlier leader (record), which never reached a backend."""
        number = int(record.get("number") or 0)
        record = {key: value for key, value in record.items() if key not in ("cid", "started", "ran_on", "harvest")}
        if not job.local:
            record["cid"] = self.state.elector.leadership.token * ID_SPAN + job.id
            self.keep(job, job.task, number, record)
        self._unplaced[job.id] = (job.task, number)
        backend = self.sched.local if job.local else self.sched.remote
        asyncio.ensure_future(self._dispatch(job, backend, [], self.state.placing_ops(job.task, number, record)))

    async def begin(self, job: Any, outcome: dict[str, Any]) -> bool:
        """The HarvestGate of the controller link: etcd keeps, under our token, that the job's
        exit macro begins, with its outcome, before the macro runs (a leader killed in the
        macro: the next one runs it again in full, from that outcome; one that ended: the
        record is gone, not run again)."""
        kept = self.records.get(job.id)
        if kept is None:
            return True
        task, number, record = kept
        harvest = {key: outcome.get(key) for key in ("outcome", "status", "signal", "elapsed", "reason", "ran_on")}
        for stream in ("stdout", "stderr"):
            harvest[stream] = (outcome.get(stream) or "")[:OUTPUT_KEPT]
        record = dict(record, harvest=harvest)
        self.records[job.id] = (task, number, record)
        return await self.state.apply([put(self.state.elector.key("pending", f"{task}/{number}"),
                                           json.dumps(record).encode())])

    def job_changed(self, job: Any) -> None:
        """The scheduler's job listener: a local job that has started is placed, its pending
        record goes; a controller job's record says it started, and goes once its exit macro
        has run (the listeners are told after it)."""
        if job.started is None and not job.done:
            return
        placed = self._unplaced.pop(job.id, None)
        kept = self.records.get(job.id)
        if kept is not None and job.done:
            del self.records[job.id]
            asyncio.ensure_future(self.state.apply(self.state.placed_ops(kept[0], kept[1])))
        elif kept is not None:
            task, number, record = kept
            if not record.get("started"):
                record = dict(record, placing=True, started=True, ran_on=job.ran_on)
                self.records[job.id] = (task, number, record)
                asyncio.ensure_future(self.state.apply([put(self.state.elector.key("pending", f"{task}/{number}"),
                                                            json.dumps(record).encode())]))
        elif placed is not None:
            asyncio.ensure_future(self.state.apply(self.state.placed_ops(*placed)))

    def _forget(self, job: Any) -> None:
        """A job held back was never made as far as the pool knows: it leaves the tables (no
        exit macro runs for it here; the next leader makes that run)."""
        sched = self.sched
        sched.jobs.pop(job.id, None)
        entry = sched.tasks.get(job.task)
        if entry is not None and job.id in entry.jobs_out:
            entry.jobs_out.discard(job.id)
            entry.timing.ended()
        sched.totals["made"] -= 1


def restore_state(sched: Any, state: dict[str, Any], now_wall: float) -> list[str]:
    """Go on from what the earlier leader kept: each task's count and last launch (so that
    `nmax` and `-exec` spacing hold across the failover) and the queues' lines (in place of
    what the files put there). Returns what was restored, for the log."""
    said = []
    for name, lines in state.get("queue", {}).items():
        if isinstance(lines, list):
            sched.interp.queues[name] = WorkQueue(str(line) for line in lines)
            said.append(f"queue {name}: {len(lines)} line(s)")
    kept = state.get("messages", {}).get("waiting")
    if isinstance(kept, list):
        messages = messages_from(kept)
        sched.switchboard.replace(messages)
        said.append(f"messages: {len(messages)} waiting")
    for name, kept in state.get("task", {}).items():
        entry = sched.tasks.get(name)
        if entry is None:
            continue
        made = int(kept.get("made") or 0)
        entry.resumed = True  # counted here: a job taken back (redispatch) is not counted again
        if made > entry.timing.made:
            entry.timing.made = made
        last = kept.get("last_launch")
        if isinstance(last, (int, float)):
            ago = max(0.0, now_wall - float(last))
            entry.timing.last_launch_mono = sched.clock.monotonic() - ago
        said.append(f"task {name}: made {made}, last launch {ago_text(now_wall, last)}")
    return said


def ago_text(now_wall: float, last: Any) -> str:
    if not isinstance(last, (int, float)):
        return "never"
    return f"{max(0.0, now_wall - float(last)):.2f} s ago"
