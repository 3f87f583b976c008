"""Controller jobs through a real pcontrol and pclient agent: nothing of a job outlives its
timeout or its kill, also a process that called setsid, double-forked and cleared its
environment (the agent runs jobs with the same pclient.jobproc as sched's local jobs); and the
task's stdout/stderr files get the job's exact bytes, however many (spooled by the agent,
fetched through pcontrol)."""

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from psched.scheduler.eventloop import get_loop, run_until
from psched.scheduler.jobs import JobState
from sched_shell import Shell as BaseShell
from waiting import wait_until
from procs import alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


class Shell(BaseShell):
    source = "contained.sched"

    def wait_job(self, job_id: int, state: JobState, timeout: float = 30):
        fut = get_loop().create_future()

        def listener(job):
            if job.id == job_id and job.state is state and not fut.done():
                fut.set_result(job)

        job = self.sched.jobs.get(job_id)
        if job is not None and job.state is state:
            return job
        self.sched.job_listeners.append(listener)
        try:
            return run_until(asyncio.wait_for(fut, timeout))
        finally:
            self.sched.job_listeners.remove(listener)


@pytest.fixture
def home():
    """A pcontrol (with its localhost agent) per test: one sched per $SCHED_HOME."""
    path = Path(tempfile.mkdtemp(prefix="e2e.", dir="/tmp"))
    patch = pytest.MonkeyPatch()
    patch.setenv("SCHED_HOME", str(path))
    patch.setenv("PCLIENT_SPOOL_DIR", str(path / "spool"))  # the agent's, inherited through pcontrol
    yield path
    from pcontrol import daemon
    from pcontrol.paths import Paths

    daemon.stop(Paths.for_home(path), kill=True, force=True)
    shutil.rmtree(path, ignore_errors=True)
    patch.undo()


def escaping_task(name: str, tmp: Path, stop: str) -> tuple[str, list[Path]]:
    escaped, daemon = tmp / f"{name}.escaped", tmp / f"{name}.daemon"
    fork = tmp / f"{name}.py"
    fork.write_text(f"import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                    f"        open('{daemon}', 'w').write(str(os.getpid()))\n"
                    f"        os.execve('/bin/sleep', ['sleep', '1000'], {{}})\n    os._exit(0)\nos.wait()\n")
    return f"""
task {name}
  command sh -c {{env -i setsid sh -c 'sleep 1000 & echo $! > {escaped}'; {sys.executable} {fork}; sleep 1000}}
  {stop}
  nmax 1
  task.exit default
    echo "{name} $job_state"
  end
end
""", [escaped, daemon]


def escapees(files: list[Path]) -> list[int]:
    run_until(wait_until(lambda: all(f.exists() and f.read_text().strip() for f in files),
                         "the job's escapees started"))  # sched's loop runs meanwhile
    pids = [int(f.read_text()) for f in files]
    assert all(alive(pid) for pid in pids)
    return pids


def test_timeout_on_an_agent_leaves_nothing(home, tmp_path):
    sh = Shell()
    task, files = escaping_task("remote_timeout", tmp_path, "periods -timeout 3")
    sh.run(task + "run")
    pids = escapees(files)
    job = sh.wait_job(1, JobState.DONE, timeout=60)
    assert job.outcome.value == "TIMEOUT" and job.ran_on
    run_until(wait_until(lambda: not any(alive(pid) for pid in pids), "every process of the job is gone", timeout=5))
    sh.close()


def test_kill_on_an_agent_leaves_nothing(home, tmp_path):
    sh = Shell()
    task, files = escaping_task("remote_kill", tmp_path, "")
    sh.run(task + "run")
    pids = escapees(files)
    sh.wait_job(1, JobState.RUNNING)
    sh.run("kill 1")
    job = sh.wait_job(1, JobState.DONE, timeout=60)
    assert job.outcome.value == "KILLED"
    run_until(wait_until(lambda: not any(alive(pid) for pid in pids), "every process of the job is gone", timeout=5))
    sh.close()


def test_output_files_of_a_controller_job_get_its_exact_bytes(home, tmp_path):
    writer = tmp_path / "bytes.py"
    writer.write_text("import sys\n"
                      "block = bytes(range(256)) * 4096 + b'\\0' * 4096\n"
                      "for i in range(12):\n"
                      "    sys.stdout.buffer.write(block)\n"
                      "sys.stderr.buffer.write(bytes(range(256)))\n")
    out_file, err_file = tmp_path / "out.bin", tmp_path / "err.bin"
    err_file.write_bytes(b"before\n")
    sh = Shell()
    sh.run(f"""
task remote_bytes
  command {sys.executable} {writer}
  stdout {out_file}
  stderr -append {err_file}
  nmax 1
  task.exit 0
    echo "len [string length $stdout]"
  end
end
run""")
    job = sh.wait_job(1, JobState.DONE, timeout=120)
    assert job.outcome.value == "EXIT" and job.status == 0, job.reason
    block = bytes(range(256)) * 4096 + b"\0" * 4096
    assert out_file.read_bytes() == block * 12  # 12.6 MB, byte for byte, through agent and pcontrol
    assert err_file.read_bytes() == b"before\n" + bytes(range(256))
    assert int(sh.out.getvalue().split()[1]) < 1.2 * (1 << 20), "$stdout is bounded (1 MiB kept)"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")], "no spool file is left"
    assert not [m for m in sh.messages if "could not" in m], sh.messages
    sh.close()
