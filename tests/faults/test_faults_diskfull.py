"""A full disk under $SCHED_HOME (a small tmpfs mounted for the test): pcontrol's journal and
sched's own files cannot be written for a while, through the real programs. The jobs a task
makes meanwhile wait in sched (the controller refuses them *for now*: its reply's code says
so) instead of ending DOWN, and once there is room again every job runs and its exit macro
runs exactly once, with its true outcome."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from fault_harness import PCONTROL, SCHED, job_script, read_exit_log, wait_until_sync

JOBS = 60


def _tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` on `path`; why not, or None."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting a small file system needs root and mount(8)"
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                            capture_output=True, text=True, timeout=30)
    return None if result.returncode == 0 else f"cannot mount a tmpfs: {result.stderr.strip()}"


def _mount_reason() -> str | None:
    probe = Path(tempfile.mkdtemp(dir="/tmp", prefix="fullprobe"))
    try:
        reason = _tmpfs(probe, "1m")
        if reason is None:
            subprocess.run(["umount", str(probe)], capture_output=True, timeout=30)
        return reason
    finally:
        probe.rmdir()


@pytest.fixture
def small_disk():
    top = Path(tempfile.mkdtemp(dir="/tmp", prefix="full"))
    reason = _tmpfs(top, "8m")
    assert reason is None, reason
    try:
        yield top
    finally:
        env = dict(os.environ, SCHED_HOME=str(top / "h"))
        subprocess.run([*PCONTROL, "stop", "-kill", "-force"], env=env,
                       capture_output=True, timeout=60)
        subprocess.run(["umount", "-l", str(top)], capture_output=True, timeout=30)
        shutil.rmtree(top, ignore_errors=True)


class Output:
    """What a process writes on a pipe, read by a thread as it comes."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    def said(self, words: str) -> bool:
        return any(words in line for line in list(self.lines))

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


@pytest.mark.skipif(_mount_reason() is not None, reason=f"no small file system here: {_mount_reason()}")
def test_jobs_made_while_the_homes_disk_is_full_wait_and_run_once_there_is_room(
        small_disk: Path, tmp_path: Path) -> None:
    """pcontrol runs, with localhost; the disk is filled; then sched runs a task of JOBS jobs.
    The test holds a read transaction on the journal meanwhile, so that SQLite cannot go
    back to the start of its write-ahead log: every write must grow it, and fails at once
    (else writes fit in the log's old length for a while, and whether the journal fails at
    all depends on timing)."""
    home = small_disk / "h"
    env = dict(os.environ, SCHED_HOME=str(home))
    for argv in (["start"], ["host", "add", "localhost", "-slots", "4"]):
        done = subprocess.run([*PCONTROL, *argv], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    exit_log = tmp_path / "exits"                 # (on another file system: it has room)
    script = tmp_path / "full.sched"
    script.write_text(job_script("full", exit_log, ["echo out"], nmax=JOBS, npending=4)
                      + "run\nwait\n")
    reader = sqlite3.connect(f"file:{home / 'pcontrol.db'}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True,
                   timeout=60)             # until the disk is full (dd then fails: ENOSPC)
    sched = subprocess.Popen([*SCHED, str(script)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(sched.stdout)
    try:
        wait_until_sync(lambda: output.said("controller takes no jobs for now"),
                        "sched told that the controller refuses jobs for now", timeout=60)
        filler.unlink()
        reader.execute("COMMIT")
        reader.close()
        status = sched.wait(timeout=120)
    finally:
        reader.close()
        if sched.poll() is None:
            sched.kill()
            sched.wait()
    said = output.text()
    assert status == 0, said
    assert "journal write failed" in said and "controller takes jobs again" in said, said
    assert "controller refused the job" not in said and "internal error" not in said, said
    assert "cannot write this sched's pid" in said, said      # the home's lock holds without it
    lines = read_exit_log(exit_log)
    assert len({line.token for line in lines}) == JOBS, said
    assert len(lines) == JOBS, [line for line in lines if [l.token for l in lines].count(line.token) > 1]
    assert {(line.state, line.status) for line in lines} == {("EXIT", "0")}, said
