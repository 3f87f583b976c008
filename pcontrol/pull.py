"""Pull probes: hosts pcontrol cannot reach, whose probe client checks in to fetch its next run.

    hub = PullHub(home / "pull", PullSettings(), alerter, hosts)   # made by the daemon
    link = hub.open_link(name, on_message, on_lost)   # hosts.HostTable, for a `host add NAME -pull`
    answer = hub.check_in(hello, proof, t1, t2)       # pullserver.py, once the probe's line is read
    hub.create_key(name) / hub.revoke_key(name)       # `host key NAME ?-revoke?`

A pull host's jobs reach it the way every host's do: the controller dispatches them to the host's
link. Its link is a PullLink, which stands where an AgentLink stands (hosts.HostLink) and speaks
the agent protocol to the controller (`run`, `kill`, `ping`, `ack`, `auth`, `bye` in; `hello`,
`resumed`, `started`, `ended`, `pong` out), like slurm.SlurmLink. Instead of a process it keeps
the jobs in a per-host state file ($SCHED_HOME/pull/NAME.json): the jobs waiting for the probe,
the one the probe has taken, and the reports the controller has not acknowledged yet. When the
probe checks in it proves its own key, hands over the outcome of the job it ran last (taken
exactly once: a report already taken is acknowledged again, never delivered twice), and gets
the time of its next run with the job to run then, or, with nothing to run, the time to check in
again (`interval` later, or the planned start of a job of its own still waiting at the
controller, if sooner). A job with a planned start (`job -not-before`: a rounds run, which sched
sends ahead) is held by the controller until `lead` (one interval + RUN_NEAR) before its start,
then given at the probe's next check-in with that start as its run time: the probe waits, checks
in once more just before it (a job withdrawn meanwhile, killed or its task paused, is then no
longer given, and the probe drops it), and runs it at its time. After a restart of pcontrol,
the state file says which jobs the probe holds (reported `running` in `resumed`) and which
ended unacknowledged; the journal keeps the planned starts of those still at the controller.

Every check-in carries NTP's four timestamps: the probe's clock offset and round trip are kept in
the host's record (`agent.clock_offset`, `clock_delay`, `clock_measured`); past `skew_threshold`
the host is marked SKEWED (`agent.skewed`, with the offset as the reason) and an alert goes out.
A probe that has not reported by a run time plus `grace` (plus the job's timeout) has missed it
(checkins.py; the run time is the one the probe was told: a job's planned start); after
`misses` in a row, one alert; its next check-in, one recovery notice (alerts.py).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pclient import protocol as agent_protocol
from pclient.clockmath import sample
from pclient.replacefile import replace_file
from pclient.pullwire import RUN_NEAR, Answer, Hello, Proof, PullJob, Report, pull_proof

from .alerts import Alerter
from .checkins import CheckIns, Verdict
from .model import Host
from .skew import SkewWatch

log = logging.getLogger(__name__)

__all__ = ["PullSettings", "PullHub", "PullLink"]

KEYS_FILE = "keys.json"
DONE_KEPT = 200
"""Job words whose report was taken, remembered per probe to acknowledge a repeated report."""
RECHECK = 1.0
"""Seconds until a probe whose next job waits at the controller past its planned start (for
the probe's one slot, or for its clock to be back in line) checks in again."""


@dataclass(frozen=True)
class PullSettings:
    interval: float = 60.0
    """Seconds until a probe with nothing to run checks in again."""
    grace: float = 60.0
    """A run time not reported within this is missed (a job's own timeout adds to it)."""
    misses: int = 3
    """Missed run times in a row that make an alert."""
    skew_threshold: float = 1.0
    """Seconds of clock offset past which a host is SKEWED."""


@dataclass
class _Probe:
    """What is kept of one pull host, in memory and in its state file."""

    queue: list[dict[str, Any]] = field(default_factory=list)      # Run records waiting for the probe
    given: dict[str, Any] | None = None                             # the Run record the probe holds
    finished: list[dict[str, Any]] = field(default_factory=list)   # Ended records not yet acked
    done: list[str] = field(default_factory=list)                   # words whose report was taken
    next: float | None = None                                       # the run time it was told last
    started: bool = False                                           # `started` was told of `given`

    def to_record(self) -> dict[str, Any]:
        return {"queue": self.queue, "given": self.given, "finished": self.finished, "done": self.done,
                "next": self.next, "started": self.started}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "_Probe":
        return cls(list(data.get("queue", [])), data.get("given"), list(data.get("finished", [])),
                   list(data.get("done", [])), data.get("next"), bool(data.get("started")))


def _run_record(run: agent_protocol.Run) -> dict[str, Any]:
    return json.loads(agent_protocol.encode(run))


def _message(record: dict[str, Any]) -> agent_protocol.Message:
    return agent_protocol.decode(json.dumps(record))


class PullHub:
    """The pull hosts' state, their keys, check-ins, misses and clocks (module docstring)."""

    def __init__(self, directory: Path, settings: PullSettings, alerter: Alerter,
                 hosts: Mapping[str, Host], clock: Callable[[], float] = time.time) -> None:
        self.dir = Path(directory)
        self.settings = settings
        self.alerter = alerter
        self.hosts = hosts
        self.clock = clock
        self.links: dict[str, PullLink] = {}
        self.books: dict[str, CheckIns] = {}
        self._probes: dict[str, _Probe] = {}
        self._keys_seen: tuple[int, int, int] | None = None   # keys.json's (inode, mtime_ns, size) when read
        self._keys_cache: dict[str, str] = {}
        self._dirty: set[str] = set()               # probes whose state file is behind
        self._flushing: asyncio.Task | None = None
        self._write_lock = asyncio.Lock()
        self._ticker: asyncio.Task | None = None
        self.on_changed: Callable[[Host], None] | None = None  # the controller's host_changed
        self.planned: Callable[[str], float | None] = lambda name: None
        """The earliest planned start of a host's jobs still waiting at the controller (its
        planned_for): when a probe with nothing to take now should come back."""
        self.skew = SkewWatch(alerter, settings.skew_threshold, self._changed)

    @property
    def lead(self) -> float:
        """How long before its planned start a job is given to its probe: one interval (the
        probe checks in at least that often) and RUN_NEAR, so that a probe checking in
        regularly gets it more than RUN_NEAR ahead and checks in once more just before (to
        hear of a withdrawal). The controller holds a pull host's job until then."""
        return self.settings.interval + RUN_NEAR

    # -- keys -------------------------------------------------------------------------------------

    def _keys(self) -> dict[str, str]:
        """The keys, read again only when keys.json changed (a check-in costs one stat)."""
        path = self.dir / KEYS_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            self._keys_seen, self._keys_cache = None, {}
            return {}
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen != self._keys_seen:
            self._keys_cache = json.loads(path.read_text())
            self._keys_seen = seen
        return dict(self._keys_cache)

    def _write(self, name: str, data: Any) -> None:
        _write_file(self.dir, name, json.dumps(data).encode())
        if name == KEYS_FILE:
            self._keys_seen = None

    def create_key(self, name: str) -> str:
        """A new secret key for probe `name` (hex), replacing any earlier one; shown once."""
        keys = self._keys()
        keys[name] = secrets.token_hex(32)
        self._write(KEYS_FILE, keys)
        log.info("%s: a new pull key was made", name)
        return keys[name]

    def revoke_key(self, name: str) -> bool:
        keys = self._keys()
        if keys.pop(name, None) is None:
            return False
        self._write(KEYS_FILE, keys)
        log.info("%s: its pull key was revoked", name)
        return True

    def has_key(self, name: str) -> bool:
        return name in self._keys()

    # -- per-probe state ----------------------------------------------------------------------------

    def _probe(self, name: str) -> _Probe:
        probe = self._probes.get(name)
        if probe is None:
            try:
                probe = _Probe.from_record(json.loads((self.dir / f"{name}.json").read_text()))
            except FileNotFoundError:
                probe = _Probe()
            self._probes[name] = probe
        return probe

    def _save(self, name: str) -> None:
        """The probe's state file is behind: written (fsync'd) by flush, off the event loop,
        once however many changes a check-in or a burst of the controller's messages made."""
        self._dirty.add(name)
        if self._flushing is None or self._flushing.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a tool, a test): write now
                self._write_dirty_now()
                return
            self._flushing = loop.create_task(self._flush_soon(), name="pull state")

    async def _flush_soon(self) -> None:
        try:
            await self.flush()
        except OSError:
            pass  # logged; the next change tries again

    def _snapshot(self) -> list[tuple[str, bytes]]:
        names, self._dirty = sorted(self._dirty), set()
        return [(f"{name}.json", json.dumps(self._probe(name).to_record()).encode()) for name in names]

    def _write_dirty_now(self) -> None:
        for filename, data in self._snapshot():
            _write_file(self.dir, filename, data)

    async def flush(self) -> None:
        """Return once every state change made so far is on disk (the pull listener awaits
        this before it answers: an acknowledged report is never lost to a crash)."""
        async with self._write_lock:  # one writer: a newer snapshot never lands before an older
            while self._dirty:
                batch = self._snapshot()
                try:
                    await asyncio.to_thread(_write_files, self.dir, batch)
                except OSError:
                    log.exception("writing the pull probes' state failed")
                    raise

    def book(self, name: str) -> CheckIns:
        book = self.books.get(name)
        if book is None:
            s = self.settings
            book = self.books[name] = CheckIns(threshold=s.misses, grace=s.grace, interval=s.interval)
            told = self._probe(name).next
            if told is not None:  # what it was told before pcontrol restarted; a new probe: nothing yet
                book.told(told)
        return book

    # -- links ----------------------------------------------------------------------------------------

    def open_link(self, name: str, on_message: Callable[[Any, agent_protocol.Message], None],
                  on_lost: Callable[[Any, str], None], slots: int | None = None) -> "PullLink":
        hello = agent_protocol.Hello(version=2, host=name, pid=os.getpid(), clock=self.clock(),
                                     slots=slots or 1, agent="pull probe")
        link = PullLink(name, hello, self, on_message, on_lost)
        self.links[name] = link
        self.book(name)
        self._start_ticker()
        return link

    def forget(self, name: str, link: "PullLink") -> None:
        if self.links.get(name) is link:
            del self.links[name]

    # -- a check-in -------------------------------------------------------------------------------------

    def check_in(self, hello: Hello, proof: Proof, challenge: bytes, t1: float, t2: float) -> Answer:
        """Answer a probe that proved (or failed to prove) its key; never raises for bad input."""
        name = hello.id
        host = self.hosts.get(name)
        key = self._keys().get(name)
        if host is None or not host.pull or key is None:
            log.warning("pull check-in refused: %r is not a pull host with a key", name)
            return Answer(False, error="forbidden: unknown probe or wrong key")
        if not _same(pull_proof(bytes.fromhex(key), name, challenge), proof.proof):
            log.warning("%s: pull check-in refused: wrong key", name)
            return Answer(False, error="forbidden: unknown probe or wrong key")
        now = self.clock()
        self._clock_check(host, sample(proof.t0, t1, t2, proof.t3))
        probe = self._probe(name)
        acked: tuple[str, ...] = ()
        if proof.report is not None:
            refusal = self._take_report(name, probe, proof.report)
            if refusal is not None:
                return Answer(False, error=refusal)
            acked = (proof.report.job,)
        verdict = self.book(name).checked_in(now)
        if verdict is Verdict.RECOVERED:
            self.alerter.clear(name, "missed", f"pcontrol: probe {name} is back",
                               f"Probe {name} checked in again at {_when(now)} after missing its run times.")
        job, next_run = self._next_job(name, probe, now)
        grace = self.settings.grace + ((job.timeout or 0.0) if job is not None else 0.0)
        book = self.book(name)
        book.grace = grace
        book.told(next_run)
        probe.next = next_run
        self._save(name)
        host.agent["pull_last"] = now
        host.agent["pull_missed"] = 0
        host.agent["pull_next"] = next_run
        return Answer(True, next=next_run, job=job, acked=acked)

    def _take_report(self, name: str, probe: _Probe, report: Report) -> str | None:
        if report.job in probe.done or any(e["job"] == report.job for e in probe.finished):
            log.info("%s: report of job %s again (taken before): acknowledged", name, report.job)
            return None
        if probe.given is None or probe.given["job"] != report.job:
            log.warning("%s: refused a report of job %s, which is not this probe's", name, report.job)
            return f"job {report.job} is not a job of probe {name}"
        try:
            outcome = agent_protocol.Outcome(report.outcome)
        except ValueError:
            return f"unknown outcome {report.outcome!r}"
        stdout, stderr = report.stdout, report.stderr
        out_bytes, err_bytes = len(stdout.encode()), len(stderr.encode())
        out_total = max(out_bytes, report.stdout_bytes or 0)
        err_total = max(err_bytes, report.stderr_bytes or 0)
        ended = agent_protocol.Ended(
            job=report.job, outcome=outcome, status=report.status, signal=report.signal,
            elapsed=report.elapsed, stdout=stdout, stderr=stderr, stdout_bytes=out_total,
            stderr_bytes=err_total, stdout_truncated=out_total > out_bytes, stderr_truncated=err_total > err_bytes,
            reason=report.reason)
        probe.given = None
        probe.finished.append(json.loads(agent_protocol.encode(ended)))
        probe.done = (probe.done + [report.job])[-DONE_KEPT:]
        self._save(name)
        link = self.links.get(name)
        if link is not None and link.ready:
            link.deliver(ended)
        return None

    def _next_job(self, name: str, probe: _Probe, now: float) -> tuple[PullJob | None, float]:
        """The job the probe is to hold and the time to run it; or none and when to come back.

        The waiting job with the earliest planned start is given once that start is at most
        `lead` away (the probe would come back after it otherwise), with that start as
        the run time (now, for a job planned for no time or a time gone by). With none to
        give: come back in one interval, or at the planned start of a job still waiting at
        the controller when that is sooner. `started` is told once the run time is near
        (RUN_NEAR): the probe runs the job then without checking in again."""
        interval = self.settings.interval
        if probe.given is None and probe.queue:
            head = min(probe.queue, key=lambda record: record.get("not_before") or 0.0)
            if (head.get("not_before") or 0.0) <= now + self.lead:
                probe.queue.remove(head)
                probe.given, probe.started = head, False
                self._save(name)
        if probe.given is None:
            waiting = [r.get("not_before") or now for r in probe.queue]
            planned = self.planned(name)
            if planned is not None:
                waiting.append(max(planned, now + min(interval, RECHECK)))
            return None, min([now + interval, *waiting])
        run = _message(probe.given)
        assert isinstance(run, agent_protocol.Run)
        run_at = max(now, run.not_before or now)
        if not probe.started and run_at - now <= RUN_NEAR:
            probe.started = True
            self._save(name)
            link = self.links.get(name)
            if link is not None and link.ready:
                link.deliver(agent_protocol.Started(job=run.job, pid=None, clock=run_at))
        job = PullJob(job=run.job, argv=tuple(run.argv), timeout=run.timeout, cwd=run.cwd, env=dict(run.env),
                      output_limit=run.output_limit)
        return job, run_at

    def _clock_check(self, host: Host, measured: Any) -> None:
        offset = -measured.offset  # the sample is pcontrol's clock minus the probe's
        host.agent["clock_offset"] = round(offset, 6)
        host.agent["clock_delay"] = round(measured.delay, 6)
        host.agent["clock_measured"] = self.clock()
        self.skew.measured(host, offset, measured.delay)

    def _changed(self, host: Host) -> None:
        if self.on_changed is not None:
            self.on_changed(host)

    # -- misses -------------------------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        for name in list(self.links):
            book = self.book(name)
            verdict = book.tick(now)
            if verdict is Verdict.NONE:
                continue
            host = self.hosts.get(name)
            if host is not None:
                host.agent["pull_missed"] = book.misses
            log.info("%s: missed a run time (%d in a row)", name, book.misses)
            if verdict is Verdict.ALERT:
                last = _when(book.last) if book.last is not None else "never since pcontrol started"
                self.alerter.raise_(name, "missed", f"pcontrol: probe {name} missed {book.misses} run times",
                                    f"Probe {name} has not checked in for {book.misses} consecutive run times "
                                    f"(last check-in: {last}).")

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="pull misses")

    async def _tick_loop(self) -> None:
        period = max(0.05, min(1.0, self.settings.interval / 4, self.settings.grace / 4))
        while True:
            await asyncio.sleep(period)
            try:
                self.tick()
            except Exception:
                log.exception("checking pull probes' misses failed")

    async def close(self) -> None:
        try:
            await self.flush()
        except OSError:
            pass  # logged
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass


def _write_file(directory: Path, name: str, data: bytes) -> None:
    replace_file(directory / name, data, mode=0o600, durable=True, dir_mode=0o700)


def _write_files(directory: Path, batch: list[tuple[str, bytes]]) -> None:
    for name, data in batch:
        _write_file(directory, name, data)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


class PullLink:
    """A pull host's link (hosts.HostLink): jobs wait in the hub's state for the probe."""

    def __init__(self, name: str, hello: agent_protocol.Hello, hub: PullHub,
                 on_message: Callable[[Any, agent_protocol.Message], None],
                 on_lost: Callable[[Any, str], None]) -> None:
        self.name = name
        self.hello = hello
        self.hub = hub
        self.on_message = on_message
        self.on_lost = on_lost
        self.authed = False
        self.ready = False  # `resumed` was sent: ends may be reported
        self._lost: str | None = None

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def agent_is_child(self) -> bool:
        return False

    @property
    def is_open(self) -> bool:
        return self._lost is None

    def write_buffer_size(self) -> int:
        return 0

    def send(self, message: agent_protocol.Message) -> bool:
        if not self.is_open:
            return False
        hub, name = self.hub, self.name
        probe = hub._probe(name)
        if isinstance(message, agent_protocol.Run):
            held = {r["job"] for r in probe.queue} | ({probe.given["job"]} if probe.given else set())
            if message.job not in held:
                probe.queue.append(_run_record(message))
                hub._save(name)
        elif isinstance(message, agent_protocol.Kill):
            self._kill(probe, message.job, "killed before the probe took it")
        elif isinstance(message, agent_protocol.Ping):
            self.deliver(agent_protocol.Pong(seq=message.seq, clock=hub.clock(),
                                             running=len(probe.queue) + (probe.given is not None)))
        elif isinstance(message, agent_protocol.Ack):
            probe.finished = [e for e in probe.finished if e["job"] not in message.jobs]
            hub._save(name)
        elif isinstance(message, agent_protocol.Auth):
            self._resume(probe)
        elif isinstance(message, agent_protocol.Bye):
            for word in [r["job"] for r in probe.queue] + ([probe.given["job"]] if probe.given else []):
                self._kill(probe, word, "pull host closed")
        else:
            log.debug("%s: a pull host has no use for %s", name, message.TYPE)
        return True

    def _kill(self, probe: _Probe, word: str, reason: str) -> None:
        """A queued job is withdrawn; one the probe holds ends KILLED here (the probe's later report
        of it is then only acknowledged: it cannot be reached to stop it)."""
        if probe.given is not None and probe.given["job"] == word:
            started = probe.started
            probe.given, probe.started = None, False
            probe.done = (probe.done + [word])[-DONE_KEPT:]
            reason = ("killed here; the probe (out of reach) runs it to its end" if started else
                      "withdrawn before its run time; the probe drops it at its next check-in")
        elif any(r["job"] == word for r in probe.queue):
            probe.queue = [r for r in probe.queue if r["job"] != word]
        else:
            return
        self.hub._save(self.name)
        self.deliver(agent_protocol.Ended(job=word, outcome=agent_protocol.Outcome.KILLED, status=None, signal=None,
                                          elapsed=0.0, stdout="", stderr="", stdout_bytes=0, stderr_bytes=0,
                                          stdout_truncated=False, stderr_truncated=False, reason=reason))

    def _resume(self, probe: _Probe) -> None:
        running = [r["job"] for r in probe.queue] + ([probe.given["job"]] if probe.given else [])
        finished = [e["job"] for e in probe.finished]
        self.deliver(agent_protocol.Resumed(running=tuple(running), finished=tuple(finished)))
        for record in probe.finished:
            self.deliver(_message(record))
        self.ready = True

    def deliver(self, message: agent_protocol.Message) -> None:
        """Hand a message to the controller as an agent's would arrive: later, not inside its call."""
        def deliver() -> None:
            if self.is_open:
                try:
                    self.on_message(self, message)
                except Exception:
                    log.exception("%s: handling %s failed", self.name, type(message).__name__)
        asyncio.get_running_loop().call_soon(deliver)

    async def close(self, *, reason: str, grace: float = 3.0, polite: bool = True) -> None:
        self.lost(reason)

    def hang_up(self, reason: str) -> None:
        self.lost(reason)

    async def wait_gone(self, timeout: float | None) -> bool:
        return True

    def lost(self, reason: str) -> None:
        if self._lost is not None:
            return
        self._lost = reason
        self.hub.forget(self.name, self)
        try:
            self.on_lost(self, reason)
        except Exception:
            log.exception("%s: on_lost handler failed", self.name)
