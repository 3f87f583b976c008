"""A pull probe: `pclient --pull HOST:PORT --id NAME --key-file F` (for hosts behind NAT).

    check in -> (next run, job) -> wait until then -> run the job -> check in with its outcome -> ...

The probe connects out to pcontrol's pull listener; pcontrol never connects to it. Each
check-in is one short connection (pclient.pullwire): the probe sends only its id, proves its key,
hands over the outcome of the job it ran last, and receives the time of its next run and the
job to run then (or none: check in again then). It waits, by durations measured on its own
monotonic clock (so that its wall clock may be wrong); a run time more than RUN_NEAR away is
confirmed by one more check-in a second before it (a job pcontrol withdrew meanwhile is no
longer given: the probe drops it; pcontrol out of reach then: it runs the job it holds). It runs
the job at its time and checks in again at once with the outcome.

The state file (STATE_DIR/NAME.json, written before every step that matters) makes an outcome
delivered exactly once: the outcome stays there until pcontrol acknowledges it, across
unreachable controllers (retried with backoff, `--retry-min` doubling to `--retry-max`) and
restarts of the probe. A probe killed while its job ran finds the job in the file when it starts
again, kills what is left of the job's process group, and reports it as a crash ("the probe
restarted while the job ran"). A lock on
STATE_DIR/NAME.lock keeps a second probe of the same name from running (it exits 0 saying so),
which is what the cron watchdog (scripts/pclient-watchdog) relies on.

Exit statuses: 0 after --once, or when another probe of this name runs; 2 bad options or files;
3 refused by pcontrol (wrong or revoked key, unknown probe). Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from .containment import find_token_processes
from .jobproc import JobResult, JobSpec, RunningJob, start_job
from .replacefile import replace_file
from .logfile import DEFAULT_KEEP, DEFAULT_MAX_BYTES, RotatingLog, size_argument
from .pullwire import (RUN_NEAR, Answer, Challenge, Hello, Proof, PullError, PullJob, Report, decode,
                       encode, pull_proof)
from .output import as_text
from .spool import Spool

log = logging.getLogger(__name__)

__all__ = ["main", "Probe"]

LOG_FORMAT = "%(asctime)s pclient-probe[%(process)d] %(levelname)s %(message)s"
EXIT_REFUSED = 3
SPOOL_KEPT = 5
"""Jobs whose whole output stays in the probe's spool (STATE_DIR/NAME.spool/JOB.stdout, .stderr)."""


class Refused(Exception):
    """pcontrol refused this probe (its key or its name)."""


class Probe:
    def __init__(self, address: Tuple[str, int], name: str, key: bytes, state_dir: Path, *,
                 retry_min: float = 1.0, retry_max: float = 300.0, clock_offset: float = 0.0,
                 connect_timeout: float = 10.0) -> None:
        self.address = address
        self.name = name
        self.key = key
        self.state_path = state_dir / f"{name}.json"
        self.spool = Spool(state_dir / f"{name}.spool")
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.clock_offset = clock_offset  # added to every time this probe reports (drills, tests)
        self.connect_timeout = connect_timeout
        self.state: Dict[str, Any] = self._load()

    # -- the state file ---------------------------------------------------------------------------

    def _load(self) -> Dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"job": None, "running": False, "report": None}

    def _save(self) -> None:
        replace_file(self.state_path, json.dumps(self.state), mode=0o600, durable=True)

    def recover(self) -> None:
        """A job that was running when this probe died: report it as a crash."""
        job = self.state.get("job")
        if self.state.get("running") and job is not None and self.state.get("report") is None:
            log.warning("job %s was running when the probe stopped: reporting it as a crash", job["job"])
            _kill_leftovers(self.state.get("pid"), self.state.get("token"))
            self.state["report"] = asdict(Report(job=job["job"], outcome="crash", status=None, signal=None,
                                                 elapsed=0.0, reason="the probe restarted while the job ran"))
            self.state["running"] = False
            self.state["job"] = None
            self._save()

    # -- one check-in ------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def check_in(self) -> Tuple[Answer, float]:
        """One exchange; the answer and how many seconds from now its `next` is."""
        report = self.state.get("report")
        with socket.create_connection(self.address, timeout=self.connect_timeout) as sock:
            reader = sock.makefile("rb")
            t0 = self.now()
            sock.sendall(encode(Hello(self.name, t0)))
            challenge = decode(_line(reader), Challenge)
            t3 = self.now()
            mono3 = time.monotonic()
            proof = pull_proof(self.key, self.name, bytes.fromhex(challenge.challenge))
            sock.sendall(encode(Proof(proof, t0, t3, _report(report))))
            answer = decode(_line(reader), Answer)
        if not answer.ok:
            error = answer.error or "refused"
            if error.startswith("forbidden"):
                raise Refused(error)
            raise PullError(error)
        if report is not None and report["job"] in answer.acked:
            self.state["report"] = None
        # pcontrol's clock at t2 ~ our t3: the wait is a duration from then
        wait = max(0.0, (answer.next or challenge.t2) - challenge.t2 - (time.monotonic() - mono3))
        # what pcontrol gives is what this probe holds: a job it held and is not given again
        # was withdrawn before its run time
        held = self.state.get("job")
        if held is not None and (answer.job is None or answer.job.job != held["job"]):
            log.info("job %s was withdrawn before its run time: dropped", held["job"])
        self.state["job"] = asdict(answer.job) if answer.job is not None else None
        self.state["run_at"] = time.time() + wait if answer.job is not None else None
        self.state["running"] = False
        self._save()
        return answer, wait

    # -- running a job -------------------------------------------------------------------------------

    def run_job(self) -> None:
        """Run the held job as the agent runs its jobs (pclient.jobproc): contained (a cgroup, or
        a keeper: its kill or timeout ends every process it started), its output streamed to the
        spool, every byte, with only the head (its output limit) kept for the report."""
        job = PullJob(**{**self.state["job"], "argv": tuple(self.state["job"]["argv"])})
        self.state["running"] = True
        self._save()
        log.info("running job %s: %s", job.job, " ".join(job.argv))
        out_file = err_file = None
        try:
            self._prune_spool(job.job)
            out_file, err_file = self.spool.files(job.job)
        except (OSError, ValueError) as exc:
            log.warning("job %s: cannot spool its output (%s); only its head is kept", job.job, exc)
        spec = JobSpec(job.job, job.argv, cwd=job.cwd or None, env=job.env, timeout=job.timeout,
                       output_limit=job.output_limit, stdout_file=out_file, stderr_file=err_file)
        result = asyncio.run(self._run(spec))
        for error in result.output_errors:
            log.warning("job %s: %s", job.job, error)
        report = _fitting(Report(
            job=job.job, outcome=result.outcome.value, status=result.status, signal=result.signal,
            elapsed=round(result.elapsed, 6), stdout=as_text(result.stdout),
            stderr=as_text(result.stderr), reason=result.reason,
            stdout_bytes=result.stdout_bytes, stderr_bytes=result.stderr_bytes))
        self.state.update(report=asdict(report), running=False, job=None, pid=None, token=None, run_at=None)
        self._save()
        log.info("job %s ended: %s %s", job.job, result.outcome.value,
                 result.status if result.status is not None else result.signal)

    async def _run(self, spec: JobSpec) -> JobResult:
        def started(running: RunningJob) -> None:  # what recover() needs if this probe dies now
            self.state.update(pid=running.pid, token=running.token)
            self._save()

        running = await start_job(spec, on_started=started)
        try:
            return await running.wait()
        except asyncio.CancelledError:  # the probe is stopping (SIGTERM): the job goes with it
            running.kill()
            await asyncio.wait_for(running.wait(), spec.kill_grace + 5.0)
            raise

    def _prune_spool(self, keep: str) -> None:
        """Keep the spooled output of the SPOOL_KEPT most recent jobs (and of `keep`)."""
        try:
            files = sorted(self.spool.directory.iterdir(), key=lambda p: p.stat().st_mtime)
        except FileNotFoundError:
            return
        words = []
        for path in files:
            word = path.name.rsplit(".", 1)[0]
            if word not in words and word != keep:
                words.append(word)
        for word in words[:max(0, len(words) - SPOOL_KEPT + 1)]:
            self.spool.drop(word)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self, once: bool = False) -> int:
        self.recover()
        backoff = self.retry_min
        while True:
            try:
                answer, wait = self.check_in()
            except Refused as exc:
                log.error("pcontrol refused probe %s: %s", self.name, exc)
                return EXIT_REFUSED
            except (OSError, PullError) as exc:
                due = self._held_due()
                if due is not None and due <= 0.0:  # out of reach at the run time: run what it holds
                    log.warning("check-in failed (%s); running job %s at its run time anyway", exc,
                                self.state["job"]["job"])
                    self.run_job()
                    continue
                pause = backoff if due is None else min(backoff, due)
                log.warning("check-in failed (%s); again in %.3g s", exc, pause)
                time.sleep(pause)
                backoff = min(self.retry_max, backoff * 2)
                continue
            backoff = self.retry_min
            log.info("checked in: next run in %.3f s%s", wait,
                     f", job {answer.job.job}" if answer.job is not None else "")
            if once and answer.job is None:
                return 0
            if answer.job is not None and wait > RUN_NEAR:
                time.sleep(wait - RUN_NEAR / 2)  # come back just before the run time: still wanted?
                continue
            time.sleep(wait)
            if self.state.get("job") is not None:
                self.run_job()

    def _held_due(self) -> Optional[float]:
        """Seconds until the run time of the job this probe holds (None: it holds none)."""
        if self.state.get("job") is None or self.state.get("run_at") is None:
            return None
        return float(self.state["run_at"]) - time.time()


def _kill_leftovers(pid: Any, token: Any) -> None:
    """What is left of a job of a probe that died while it ran: its process group, and every
    process carrying its job token (pclient.containment), also one that left the group."""
    if isinstance(pid, int) and pid > 1:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if isinstance(token, str) and token:
        for left in find_token_processes(token):
            try:
                os.kill(left, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _fitting(report: Report) -> Report:
    """The report, its output heads cut until its check-in line fits in MAX_PULL_LINE (escaping
    can make text grow six-fold); the whole sizes stay in stdout_bytes / stderr_bytes."""
    while True:
        try:
            encode(Proof("0" * 64, 0.0, 0.0, report))
            return report
        except PullError:
            if not report.stdout and not report.stderr:
                return report
            report = dataclasses.replace(report, stdout=report.stdout[: len(report.stdout) // 2],
                                         stderr=report.stderr[: len(report.stderr) // 2])


def _line(reader: Any) -> bytes:
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise PullError("pcontrol closed the connection")
    return line


def _report(record: Optional[Dict[str, Any]]) -> Optional[Report]:
    return None if record is None else Report(**record)


def _address(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pclient --pull", description="A pull probe: checks in to pcontrol's "
                                     "pull listener for its next run, runs it, reports its outcome.")
    parser.add_argument("--pull", type=_address, required=True, metavar="HOST:PORT", help="pcontrol's pull listener")
    parser.add_argument("--id", required=True, help="this probe's name (its host name in pcontrol)")
    parser.add_argument("--key-file", required=True, metavar="F", help="the key `pcontrol host key NAME` printed")
    parser.add_argument("--state-dir", default=os.path.expanduser("~/.pclient-probe"), metavar="DIR",
                        help="where the probe keeps its job and unacknowledged outcome (default %(default)s)")
    parser.add_argument("--retry-min", type=float, default=1.0, metavar="S", help="first wait after a failed check-in")
    parser.add_argument("--retry-max", type=float, default=300.0, metavar="S", help="longest wait between check-ins that fail")
    parser.add_argument("--clock-offset", type=float, default=0.0, metavar="S",
                        help="add S seconds to the times this probe reports (drills of the clock check)")
    parser.add_argument("--once", action="store_true", help="check in (and run what is due) until nothing is left, then exit")
    parser.add_argument("--log", metavar="FILE", help="append the log to FILE (default stderr); rotated by size, "
                        "reopened on SIGHUP (logrotate)")
    parser.add_argument("--log-max-bytes", type=size_argument, default=DEFAULT_MAX_BYTES, metavar="SIZE",
                        help="with --log: rotate FILE past SIZE (10M, 512k; 0: never; default 10M)")
    parser.add_argument("--log-keep", type=int, default=DEFAULT_KEEP, metavar="N",
                        help="with --log: rotated files kept (default %(default)s)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    handler: logging.Handler
    try:
        handler = (RotatingLog(args.log, args.log_max_bytes, args.log_keep) if args.log
                   else logging.StreamHandler(sys.stderr))
    except OSError as exc:
        print(f"pclient: --log {args.log}: {exc}", file=sys.stderr)
        return 2
    if isinstance(handler, RotatingLog):
        signal.signal(signal.SIGHUP, lambda *_: handler.reopen())  # type: ignore[union-attr]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        key = bytes.fromhex(Path(args.key_file).read_text().strip())
    except (OSError, ValueError) as exc:
        print(f"pclient: --key-file {args.key_file}: {exc}", file=sys.stderr)
        return 2
    state_dir = Path(args.state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(state_dir / f"{args.id}.lock", "a")
    except OSError as exc:
        print(f"pclient: --state-dir {state_dir}: {exc}", file=sys.stderr)
        return 2
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.warning("probe %s is already running (%s is locked): not starting another", args.id, lock.name)
        print(f"pclient: probe {args.id} is already running", file=sys.stderr)
        return 0
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    probe = Probe(args.pull, args.id, key, state_dir, retry_min=args.retry_min, retry_max=args.retry_max,
                  clock_offset=args.clock_offset)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return probe.run(once=args.once)
    except KeyboardInterrupt:
        return 130
