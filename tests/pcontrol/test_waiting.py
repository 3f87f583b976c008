"""Why a pending job waits: pcontrol.waiting.why_pending as a table, then through the real
`pcontrol` program (`check job`, `jobs`), as squeue's REASON column."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest

from pcontrol.model import Host, HostState, Job
from pcontrol.waiting import why_pending
from waiting import wait_until_sync

PCONTROL = [sys.executable, "-m", "pcontrol"]
LOCAL_AGENT = f"{shlex.quote(sys.executable)} -m pclient"


def _host(name: str, state: HostState, *, slots: int = 1, running: int = 0, enabled: bool = True,
          reason: str = "") -> Host:
    return Host(name=name, state=state, agent_slots=slots, running=set(range(running)), enabled=enabled,
                reason=reason)


def _job(host: str | None = None, required: bool = False, noskew: bool = False,
         not_before: float | None = None) -> Job:
    return Job(id=7, argv=("true",), submitted=0.0, host=host, required=required, noskew=noskew,
               not_before=not_before)


def _skewed(name: str) -> Host:
    host = _host(name, HostState.IDLE, slots=2)
    host.agent["skewed"] = "clock offset 2.5 s (over 1 s)"
    return host


N1_BUSY = _host("n1", HostState.BUSY, slots=2, running=2)
N1_DOWN = _host("n1", HostState.DOWN, reason="connection refused (is sshd running there?): ...")
N1_OFF = _host("n1", HostState.OFF, enabled=False)
N2_CONNECTING = _host("n2", HostState.CONNECTING)
N2_IDLE = _host("n2", HostState.IDLE, slots=4, running=1)

TABLE = [
    (_job("n1", True), {"n1": N1_BUSY}, "no free slot on n1 (2 of 2 busy)"),
    (_job("n1", True), {"n1": N1_DOWN}, "required host n1 is DOWN: connection refused (is sshd running there?): ..."),
    (_job("n1", True), {"n1": N1_OFF}, "required host n1 is OFF (pcontrol host on n1)"),
    (_job("n1", True), {"n2": N2_CONNECTING}, "required host n1 unknown (pcontrol host add n1)"),
    (_job("n2", True), {"n2": N2_CONNECTING}, "required host n2 is connecting"),
    (_job(), {}, "no hosts (pcontrol host add NAME)"),
    (_job(), {"n1": N1_DOWN}, "no host is up: host n1 is DOWN: connection refused (is sshd running there?): ..."),
    (_job(), {"n3": _host("n3", HostState.CONNECTING, reason="could not resolve the host name: ...")},
     "no host is up: host n3 is connecting (last down: could not resolve the host name: ...)"),
    (_job(), {"n1": N1_DOWN, "n2": N2_CONNECTING}, "no host is up (1 CONNECTING, 1 DOWN)"),
    (_job(), {"n1": N1_OFF, "n2": N2_CONNECTING}, "no host is up (1 CONNECTING, 1 OFF)"),
    (_job("n2"), {"n1": N1_BUSY, "n2": N1_DOWN}, "no free slot (2 of 2 slots busy on 1 host)"),
    (_job(), {"n1": N1_BUSY, "n2": N2_IDLE}, "about to start"),
    # -noskew: a SKEWED host does not take it (a plain job it does)
    (_job("p1", True, noskew=True), {"p1": _skewed("p1")},
     "required host p1 is SKEWED (clock offset 2.5 s (over 1 s)) and the job is -noskew"),
    (_job("p1", True), {"p1": _skewed("p1")}, "about to start"),
    (_job(noskew=True), {"p1": _skewed("p1"), "n1": N1_BUSY}, "every host with a free slot is SKEWED and the job is -noskew"),
    (_job(noskew=True), {"p1": _skewed("p1"), "n2": N2_IDLE}, "about to start"),
    # a planned start still ahead (-not-before)
    (_job("n2", True, not_before=1000.0 + 90), {"n2": N2_IDLE}, "planned start at {at} (-not-before), in 90 s"),
    (_job("n2", True, not_before=1000.0 - 1), {"n2": N2_IDLE}, "about to start"),
]


@pytest.mark.parametrize("job, hosts, reason", TABLE)
def test_why_a_job_waits(job, hosts, reason):
    if job.not_before is not None:
        reason = reason.format(at=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.not_before)))
    assert why_pending(job, hosts, now=1000.0) == reason


def _pcontrol(home: str, *args: str) -> str:
    done = subprocess.run([*PCONTROL, *args], env=dict(os.environ, SCHED_HOME=home), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def daemon(home: str):
    # No automatic retry of a DOWN host within the test (the default's first is after 2 s): on a
    # loaded machine `far` was retried, hence "connecting", between two of the checks below.
    _pcontrol(home, "start", "--retry-min", "600", "--retry-max", "600")
    yield home
    stopped = subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=dict(os.environ, SCHED_HOME=home), capture_output=True,
                             text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr


def _host_state(home: str, name: str) -> str:
    return _pcontrol(home, "check", "host", name).split("state:")[1].split()[0]


def test_check_job_and_jobs_say_why_a_job_waits(daemon: str):
    home = daemon
    _pcontrol(home, "host", "add", "n1", "-slots", "1", "-connect", LOCAL_AGENT)
    _pcontrol(home, "host", "add", "far", "-connect", "false")
    wait_until_sync(lambda: _host_state(home, "n1") == "IDLE", "n1 is up")
    wait_until_sync(lambda: _host_state(home, "far") == "DOWN", "far is down")
    running = _pcontrol(home, "job", "-host", "n1", "-required", "--", "sleep", "30").split()[0]
    wait_until_sync(lambda: "BUSY" in _pcontrol(home, "check", "job", running), "the first job runs")
    slot = _pcontrol(home, "job", "-host", "n1", "-required", "--", "true").split()[0]
    down = _pcontrol(home, "job", "-host", "far", "-required", "--", "true").split()[0]
    anywhere = _pcontrol(home, "job", "--", "true").split()[0]

    assert "waiting:   no free slot on n1 (1 of 1 busy)" in _pcontrol(home, "check", "job", slot)
    assert "waiting:   required host far is DOWN: false exited before the handshake" in _pcontrol(home, "check", "job", down)
    assert "waiting:   no free slot (1 of 1 slots busy on 1 host)" in _pcontrol(home, "check", "job", anywhere)
    table = _pcontrol(home, "jobs")
    assert "no free slot on n1 (1 of 1 busy)" in table and "required host far is DOWN" in table

    _pcontrol(home, "host", "off", "far")
    assert "waiting:   required host far is OFF (pcontrol host on far)" in _pcontrol(home, "check", "job", down)
    _pcontrol(home, "kill", running)


@pytest.mark.parametrize("waiting, short", [
    ("required host n1 is DOWN: connection refused", "required host n1 is DOWN"),
    ("required host n2 is connecting (last down: could not resolve: x)", "required host n2 is connecting"),
    ("no host is up: host n1 is DOWN: refused", "no host is up"),
    ("no host is up (1 CONNECTING, 1 DOWN)", "no host is up (1 CONNECTING, 1 DOWN)"),
])
def test_the_jobs_table_says_the_reason_short(waiting, short):
    from pcontrol.textfmt import _short_waiting  # (the OUTCOME column of a PENDING job)

    assert _short_waiting(waiting) == short
