"""Many local jobs at once against the limit of open files, through the real `sched` program.

Each running local job holds a few descriptors of sched's (its output pipes, its pidfd, its
cgroup's files). Under systemd's default (soft 1024, hard 524288) a task of a few hundred jobs
at once used to end the jobs past the soft limit as exit status 127, "Too many open files":
sched now raises its soft limit to the hard one when it comes near (pclient.fdlimit), and past
the hard limit a job waits for one of the running ones to end (LocalBackend._hold) instead of
failing for something that is not its fault.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path

from sched_process import SCHED
from waiting import wait_until_sync

JOBS = 60


def _script(tmp_path: Path) -> Path:
    """JOBS jobs at once, each writing a line when it runs and ending when GATE exists; each
    exit macro prints the outcome."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    script = tmp_path / "many.sched"
    script.write_text(f"""task many
  command sh -c {{echo x >> {started}; until [ -e {gate} ]; do sleep 0.02; done}}
  host LOCAL
  nmax {JOBS}
  npending {JOBS}
  task.exit default
    puts "END $job_id $job_state $exit_status [string trim $stderr]"
  end
end
run
wait
""")
    return script


def _run(tmp_path: Path, soft: int, hard: int, until: str) -> tuple[subprocess.Popen, list[str]]:
    """sched on the script with those limits; once `until` holds (see below), the gate opens;
    (the process, the lines of stderr read before the gate opened)."""
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.Popen([*SCHED, str(_script(tmp_path))], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, SCHED_HOME=str(home)),
                            preexec_fn=limited, start_new_session=True)
    lines: list[str] = []
    assert proc.stderr is not None
    try:
        if until == "waiting":  # sched says the jobs past the limit wait
            for line in proc.stderr:
                lines.append(line)
                if "local jobs wait" in line:
                    break
        else:  # every job runs at once
            started = tmp_path / "started"
            wait_until_sync(lambda: started.exists() and len(started.read_text().splitlines()) == JOBS,
                            f"all {JOBS} jobs run")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # (its jobs die with it: sched's guard)
        proc.communicate()
        raise
    finally:
        (tmp_path / "gate").touch()
    return proc, lines


def test_past_the_soft_limit_sched_raises_it_and_every_job_runs_at_once(tmp_path):
    proc, _ = _run(tmp_path, soft=64, hard=4096, until="all started")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ends = [line for line in out.splitlines() if line.startswith("END ")]
    assert len(ends) == JOBS and all(line.split()[2:4] == ["EXIT", "0"] for line in ends), ends
    assert "local jobs wait" not in err


def test_at_the_hard_limit_jobs_wait_for_running_ones_to_end(tmp_path):
    proc, before = _run(tmp_path, soft=128, hard=128, until="waiting")
    out, err = proc.communicate(timeout=60)
    err = "".join(before) + err
    assert proc.returncode == 0, err
    ends = [line for line in out.splitlines() if line.startswith("END ")]
    assert len(ends) == JOBS and all(line.split()[2:4] == ["EXIT", "0"] for line in ends), ends
    started = (tmp_path / "started").read_text().splitlines()
    assert len(started) == JOBS  # (each ran once)
    waits = [line for line in err.splitlines() if "local jobs wait" in line]
    assert len(waits) == 1, err
    assert "cannot start 'sh': Too many open files" in waits[0] and "limit of 128 open files" in waits[0], waits
    assert err.count("local jobs start again") == 1, err


class _Sink:
    """What LocalBackend reports to (a JobSink): the ends, by job id."""

    output_limit = 1024

    def __init__(self) -> None:
        self.ended: dict[int, tuple] = {}
        self.said: list[str] = []

    def job_started(self, job, ran_on="", pid=None) -> None:
        pass

    def job_ended(self, job, outcome, **kw) -> None:
        self.ended[job.id] = (outcome.value, kw.get("reason"))

    def report(self, text: str) -> None:
        self.said.append(text)


class _Short:
    """A start that found the machine short of descriptors (begin_job's answer)."""

    lacking = True
    done = True
    result = None


def test_a_held_job_that_is_killed_or_left_ends_killed_at_once(monkeypatch):
    """The jobs held for want of descriptors are out: `kill` ends one at once (KILLED, not when a
    running job ends), and sched leaving ends the rest so."""
    import asyncio

    from psched.scheduler import local
    from psched.scheduler.jobs import Job

    class Running:
        lacking, done, result = False, False, None

        def when_done(self, fn) -> None:
            pass

        def kill(self) -> None:
            pass

        async def wait(self) -> None:
            pass

    starts = iter([Running(), _Short(), _Short(), _Short()])
    monkeypatch.setattr(local, "_MACHINERY", (lambda *a, **kw: object(), lambda spec, on_started: next(starts),
                                               lambda: None))
    sink = _Sink()
    backend = local.LocalBackend(sink)
    jobs = [Job(id=n, task="t", argv=["true"], host="LOCAL") for n in (1, 2, 3, 4)]
    for job in jobs:
        backend._start(job)
    assert backend.jobs_out() == 4 and len(sink.said) == 1 and sink.said[0].startswith("local jobs wait")
    assert backend.kill(jobs[2]) and sink.ended == {3: ("KILLED", "killed before it could start")}
    asyncio.run(backend.aclose())
    assert sink.ended == {3: ("KILLED", "killed before it could start"),
                          2: ("KILLED", "sched left before it could start it"),
                          4: ("KILLED", "sched left before it could start it")}
    assert backend.jobs_out() == 1  # (the running one: its end comes from its process)
