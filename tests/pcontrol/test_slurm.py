"""A Slurm cluster as a pcontrol host, against a REAL one-node Slurm that this module starts
(tests/tools/slurmcluster.py) and the real pcontrol daemon and sched programs. One cluster
and one pcontrol for the whole module; a handful of tests, each covering what Slurm can
produce quickly: exit n, a signal, our timeout, kill, a cancel by someone else, a pending
timeout, -slots, a job sbatch refuses, the controller down and back, munge broken, a
pcontrol restart with jobs in the cluster, and a sched task whose exit macros see the
outcomes. (Slurm's own TIMEOUT takes over a minute: its mapping is tested on recorded
output in test_slurmstate.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from slurmcluster import SlurmCluster, missing
from waiting import wait_until_sync

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

PCONTROL = [sys.executable, "-m", "pcontrol"]
SCHED = [str(Path(sys.executable).parent / "sched")]        # the installed program
WAIT = 40.0


@pytest.fixture(scope="module")
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="slurm.", dir="/tmp"))
    cluster = SlurmCluster(directory)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


class Pcontrol:
    """The real pcontrol daemon in a private home, talking to the test's cluster."""

    def __init__(self, cluster: SlurmCluster):
        self.cluster = cluster
        self.home = Path(tempfile.mkdtemp(prefix="pcslurm.", dir="/tmp"))
        self.env = dict(cluster.env, SCHED_HOME=str(self.home))

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*PCONTROL, *args], env=self.env, capture_output=True,
                              text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"pcontrol {' '.join(args)}: {done.stderr}{done.stdout}")
        return done.stdout

    def start(self) -> None:
        self("start", "--slurm-poll", "0.2", "--retry-min", "0.5", "--retry-max", "1",
             "--heartbeat", "0.5")

    def json(self, *args: str):
        return json.loads(self(*args, "-json"))

    def job(self, host: str, *argv: str, options: tuple[str, ...] = ()) -> int:
        return int(self("job", "-host", host, "-required", *options, "--", *argv))

    def record(self, job_id: int) -> dict:
        return self.json("check", "job", str(job_id), "-output")

    def wait_job(self, job_id: int, what: str = "it is DONE", predicate=None) -> dict:
        predicate = predicate or (lambda r: r["state"] == "DONE")
        return wait_until_sync(lambda: (lambda r: r if predicate(r) else None)(
            self.record(job_id)), f"job {job_id}: {what}", timeout=WAIT)

    def wait_host(self, name: str, state: str) -> dict:
        return wait_until_sync(lambda: (lambda r: r if r["state"] == state else None)(
            self.json("check", "host", name)), f"host {name} is {state}", timeout=WAIT)

    def wait_down(self, name: str, words: str) -> dict:
        """The host went DOWN with `words` in its reason. It may be retrying already
        (CONNECTING, for as long as Slurm's commands take to fail): its last DOWN reason
        stays in the record."""
        def down() -> dict | None:
            record = self.json("check", "host", name)
            return record if record["state"] in ("DOWN", "CONNECTING") \
                and words.lower() in record["reason"].lower() else None
        return wait_until_sync(down, f"host {name} is DOWN with {words!r}", timeout=WAIT)

    def slurm_state(self, batch_id: str) -> str:
        rows = {row[0]: row[1] for row in self.cluster.squeue("JobID", "State")}
        return rows.get(batch_id, "")


@pytest.fixture(scope="module")
def pc(cluster):
    pc = Pcontrol(cluster)
    pc.start()
    pc("host", "add", "c1", "-slurm", "-slots", "8")
    pc("host", "add", "one", "-slurm", "-slots", "1")
    pc("host", "add", "held", "-slurm", "-sbatch", "--hold")
    pc("host", "add", "nowhere", "-slurm", "-partition", "nosuchpartition")
    for name in ("c1", "one", "held", "nowhere"):
        pc.wait_host(name, "IDLE")
    try:
        yield pc
    finally:
        pc("stop", "-kill", "-force", check=False)
        shutil.rmtree(pc.home, ignore_errors=True)


def test_outcomes(pc):
    exit3 = pc.job("c1", "sh", "-c", "echo out; echo err >&2; exit 3")
    crash = pc.job("c1", "sh", "-c", "kill -SEGV $$")
    slow = pc.job("c1", "sleep", "60", options=("-timeout", "1.5"))
    killed = pc.job("c1", "sleep", "60")
    theirs = pc.job("c1", "sleep", "60")
    pending = pc.job("held", "true", options=("-pending", "1"))
    refused = pc.job("nowhere", "true")
    first = pc.job("one", "sleep", "0.5")
    second = pc.job("one", "true")

    r = pc.wait_job(exit3)
    assert (r["outcome"], r["status"], r["stdout"], r["stderr"]) == ("EXIT", 3, "out\n", "err\n")
    assert r["batch_id"] and f"Slurm job {r['batch_id']} FAILED, ExitCode 3:0" in r["reason"]
    assert f"batch job {r['batch_id']}" in pc("check", "job", str(exit3))

    r = pc.wait_job(crash)
    assert (r["outcome"], r["signal"]) == ("CRASH", 11)

    r = pc.wait_job(slow)
    assert r["outcome"] == "TIMEOUT" and "timeout of 1.5 s" in r["reason"]
    assert 1.0 <= r["elapsed"] <= 5.0      # ours, to the second: not Slurm's whole minute
    limits = {row[0]: row[1] for row in pc.cluster.squeue("JobID", "TimeLimit")}
    assert limits[r["batch_id"]] == "1:00"        # --time: our 1.5 s rounded up, a ceiling

    for job_id in (killed, theirs):
        pc.wait_job(job_id, "it runs in Slurm", lambda r: r["batch_id"]
                    and pc.slurm_state(r["batch_id"]) == "RUNNING")
    pc("kill", str(killed))
    r = pc.wait_job(killed)
    assert r["outcome"] == "KILLED" and r["reason"].startswith("killed on request")
    pc.cluster.run("scancel", pc.record(theirs)["batch_id"])
    r = pc.wait_job(theirs)
    assert r["outcome"] == "KILLED" and "cancelled in Slurm, not by pcontrol" in r["reason"]

    r = pc.wait_job(pending)
    assert r["outcome"] == "PENDING" and "still pending in Slurm" in r["reason"]
    assert "Reason=JobHeldUser" in r["reason"]
    assert pc.slurm_state(r["batch_id"]) == "CANCELLED"

    r = pc.wait_job(refused)
    assert r["outcome"] == "DOWN" and "sbatch refused it" in r["reason"]
    assert "invalid partition" in r["reason"].lower()

    one, two = pc.wait_job(first), pc.wait_job(second)      # -slots 1: one at a time
    assert one["outcome"] == two["outcome"] == "EXIT"
    assert two["started"] >= one["ended"]


def test_controller_down_then_back(pc):
    job = pc.job("c1", "sh", "-c", "sleep 3; echo survived")
    pc.wait_job(job, "it runs in Slurm", lambda r: r["batch_id"]
                and pc.slurm_state(r["batch_id"]) == "RUNNING")
    pc.cluster.stop_controller()
    try:
        host = pc.wait_down("c1", "Unable to contact slurm controller")
        assert host["reason"].startswith("squeue failed: ")
        assert pc.record(job)["state"] == "BUSY"           # held: it lives on in Slurm
        later = pc.job("c1", "echo", "later")               # waits for the host
        assert pc.record(later)["state"] == "PENDING"
    finally:
        pc.cluster.start_controller()
    r = pc.wait_job(job)
    assert (r["outcome"], r["status"], r["stdout"]) == ("EXIT", 0, "survived\n")
    r = pc.wait_job(later)
    assert (r["outcome"], r["stdout"]) == ("EXIT", "later\n")


def test_munge_broken_then_mended(pc):
    pc.cluster.stop_munge()
    try:
        host = pc.wait_down("c1", "Munge encode failed")
        assert host["reason"].startswith("squeue failed: ")
    finally:
        pc.cluster.start_munge()
    pc.wait_host("c1", "IDLE")
    r = pc.wait_job(pc.job("c1", "echo", "mended"))
    assert (r["outcome"], r["stdout"]) == ("EXIT", "mended\n")


def test_pcontrol_restart_with_jobs_in_the_cluster(pc):
    quick = pc.job("c1", "sh", "-c", "echo quick")
    slower = pc.job("c1", "sh", "-c", "sleep 4; echo slower")
    capped = pc.job("c1", "sleep", "60", options=("-timeout", "3"))
    waiting = pc.job("held", "true", options=("-pending", "3"))
    ids = {job_id: pc.wait_job(job_id, "it is in Slurm", lambda r: r["batch_id"])["batch_id"]
           for job_id in (quick, slower, capped, waiting)}
    pc("stop", "-force")
    wait_until_sync(lambda: pc.slurm_state(ids[quick]) == "COMPLETED",
                    "the quick job completed in Slurm while pcontrol was down", timeout=WAIT)
    pc.start()
    r = pc.wait_job(quick)
    assert (r["outcome"], r["stdout"]) == ("EXIT", "quick\n")
    r = pc.wait_job(slower)
    assert (r["outcome"], r["stdout"]) == ("EXIT", "slower\n")
    r = pc.wait_job(capped)
    assert r["outcome"] == "TIMEOUT" and r["elapsed"] < 10
    r = pc.wait_job(waiting)
    assert r["outcome"] == "PENDING"
    names = [row[1] for row in pc.cluster.squeue("JobID", "Name")]
    for job_id in (quick, slower, capped, waiting):     # nothing was submitted twice
        assert sum(name.endswith(f".{job_id}") for name in names) == 1


def test_a_sched_task_with_exit_macros(pc, tmp_path):
    script = tmp_path / "slurm.sched"
    script.write_text("""\
task fails
  command sh -c {echo from-slurm; exit 4}
  host c1 -required
  nmax 2
  task.exit 4
    echo "exit4 $exit_status [string trim $stdout] on $job_host"
  end
end
task crashes
  command sh -c {kill -SEGV $$}
  host c1 -required
  nmax 1
  task.exit crash
    echo "crash $job_state $job_signal"
  end
end
task slow
  command sleep 60
  host c1 -required
  nmax 1
  periods -timeout 1
  task.exit timeout
    echo "timeout $job_state"
  end
end
run
wait -timeout 60
""")
    done = subprocess.run([*SCHED, str(script)], env=pc.env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = sorted(line for line in done.stdout.splitlines()
                   if line.split()[:1] in (["exit4"], ["crash"], ["timeout"]))
    assert lines == ["crash CRASH 11", "exit4 4 from-slurm on c1", "exit4 4 from-slurm on c1",
                     "timeout TIMEOUT"]
