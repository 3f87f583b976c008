"""sched, pcontrol and a probe as a container's first process (PID 1 of a PID namespace, as
`docker run IMAGE sched FILE` makes them): they become a minimal init first (pclient.pidone), so
the orphans of jobs are reaped, signals reach the program and its exit status is the
container's. Run for real under `unshare --pid --fork --mount-proc` (skipped where this machine
cannot make a PID namespace)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import children_of
from waiting import wait_until_sync

BIN = Path(sys.executable).parent
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _can_unshare(), reason="cannot make a PID namespace here (unshare --pid)")


@pytest.fixture
def home():
    path = Path(tempfile.mkdtemp(prefix="pid1.", dir="/tmp"))
    path.chmod(0o700)
    yield path
    subprocess.run([str(BIN / "pcontrol"), "stop", "-kill", "-force"], env=dict(os.environ, SCHED_HOME=str(path)),
                   capture_output=True, timeout=60)
    shutil.rmtree(path, ignore_errors=True)


ORPHANS = """\
foreach host {LOCAL NONE}
  task orphans-$host
    command sh -c "sh -c {exit 0} & exit 0"
    host $host
    nmax 10
    npending 3
  end
end
run
wait
# the orphans of the 20 jobs end at once; as PID 1, sched (its init) must have reaped them
set tries 0
while {[incr tries] <= 200}
  set zombies [exec sh -c {ps -eo stat= | grep -c ^Z || true}]
  if {$zombies == 0} break
  after 20
end
puts "zombies: $zombies"
exit 7
"""


def test_sched_as_pid_1_reaps_the_orphans_of_jobs_and_exits_with_its_status(home: Path) -> None:
    script = home / "orphans.sched"
    script.write_text(ORPHANS)
    done = subprocess.run([*UNSHARE, str(BIN / "sched"), str(script)], env=dict(os.environ, SCHED_HOME=str(home)),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["zombies: 0"], (done.stdout, done.stderr)
    assert done.returncode == 7, done.stderr


STANDING = """\
task standing
  command sleep 60
  host LOCAL
  task.exit default
    puts "ended $job_state"
  end
end
run
wait
"""


def test_a_stop_signal_to_pid_1_reaches_sched(home: Path) -> None:
    """`docker stop` signals PID 1 alone: the init passes it on, and sched stops as it does on
    SIGTERM (its local job KILLED, its exit macro run, status 143)."""
    script = home / "standing.sched"
    script.write_text(STANDING)
    outer = subprocess.Popen([*UNSHARE, str(BIN / "sched"), str(script)], env=dict(os.environ, SCHED_HOME=str(home)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        init = wait_until_sync(lambda: _child_of(outer.pid), "unshare's child (PID 1 inside) is there")
        wait_until_sync(lambda: _child_of(_child_of(init)), "sched (the init's child) runs its job")
        os.kill(init, signal.SIGTERM)
        out, err = outer.communicate(timeout=60)
    finally:
        if outer.poll() is None:
            outer.kill()
    assert out.splitlines() == ["ended KILLED"], (out, err)
    assert outer.returncode == 143, err


def _child_of(pid: int | None) -> int | None:
    """The first child of `pid`, or None."""
    children = children_of(pid) if pid is not None else []
    return children[0] if children else None


def test_pcontrol_serve_as_pid_1_stops_on_sigterm(home: Path) -> None:
    outer = subprocess.Popen([*UNSHARE, str(BIN / "pcontrol"), "serve"], env=dict(os.environ, SCHED_HOME=str(home)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        init = wait_until_sync(lambda: _child_of(outer.pid), "unshare's child (PID 1 inside) is there")
        wait_until_sync(lambda: subprocess.run([str(BIN / "pcontrol"), "ping"], env=dict(os.environ, SCHED_HOME=str(home)),
                                               capture_output=True, timeout=30).returncode == 0, "pcontrol answers")
        os.kill(init, signal.SIGTERM)
        _, err = outer.communicate(timeout=60)
    finally:
        if outer.poll() is None:
            outer.kill()
    assert outer.returncode == 0 and "stopped" in err, err
