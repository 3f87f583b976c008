"""A full disk on a host (the agent's side), through the real programs: pcontrol with a host
whose agent has its spool ($PCLIENT_SPOOL_DIR), its temporary directory (TMPDIR: the jobs'
mailboxes) and its HOME on a small tmpfs mounted for the test, filled with a file of zeros.

- Spooled outputs (a task's `stdout PATH`): every job still ends once, with its true outcome;
  its file gets every byte when the output fits in the head that comes back with the end
  (1 MiB), else the head and a last line that says it was cut; sched says so once for the
  task, pcontrol's log once for the host (the agent's word), and the agent keeps nothing of
  those jobs. Once there is room, the same task's outputs are whole again.
- Messages for a job (its inbox) that cannot be written: the job does not run without them;
  it ends EXIT 127 saying why, and nothing is left in its mailbox directory. Once there is
  room, they reach the job again.

The agent stays up throughout. Needs root (mount); skipped otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from fault_harness import LOCAL_AGENT, SCHED, FaultHome
from test_faults_diskfull import _mount_reason, _tmpfs

BIG, SMALL = 200000, 20000
"""Lines of `seq` a job prints after its token: 1288895 bytes (past the 1 MiB head), 108894 bytes."""


class HostDisk:
    """The test's home with host `ag`, whose agent's disk is the tmpfs at `fs`."""

    def __init__(self, home: FaultHome, fs: Path) -> None:
        self.home, self.fs = home, fs
        self.filler = fs / "filler"

    def fill(self) -> None:
        subprocess.run(["dd", "if=/dev/zero", f"of={self.filler}", "bs=64k"], capture_output=True,
                       timeout=60)          # until the disk is full (dd then fails: ENOSPC)
        assert shutil.disk_usage(self.fs).free < 64 * 1024

    def free(self) -> None:
        self.filler.unlink()

    def sched(self, script: Path) -> str:
        """Run sched on the script; what it said (it must succeed)."""
        done = subprocess.run([*SCHED, str(script)], env=self.home.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=180)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        return said

    def host_state(self) -> str:
        return {h["name"]: h["state"] for h in self.home.call_sync("hosts", "-json")}["ag"]

    def pcontrol_log(self) -> str:
        return (self.home.path / "pcontrol.log").read_text()


@pytest.fixture
def host_disk() -> Iterator[HostDisk]:
    home = FaultHome.make("agd")
    fs = Path(tempfile.mkdtemp(dir="/tmp", prefix="agdisk"))
    reason = _tmpfs(fs, "8m")
    assert reason is None, reason
    try:
        for name in ("tmp", "spool", "home"):
            (fs / name).mkdir()
        home.start()
        home.pcontrol("host", "add", "ag", "-slots", "4", "-connect",
                      f"env TMPDIR={fs}/tmp PCLIENT_SPOOL_DIR={fs}/spool HOME={fs}/home {LOCAL_AGENT} --slots 4")
        yield HostDisk(home, fs)
    finally:
        home.cleanup()
        subprocess.run(["umount", "-l", str(fs)], capture_output=True, timeout=30)
        shutil.rmtree(fs, ignore_errors=True)


def _spool_script(task: str, out: Path, exits: Path, jobs: int) -> str:
    """A task of `jobs` jobs, each printing its token then `seq 1 N` (BIG for every other job)
    into `out` (appended), its exit macro logging `ID STATE STATUS K`."""
    return f"""
task {task}
  host ag
  nmax {jobs}
  npending 4
  stdout {out} -append
  task.exec
    command sh -c {{echo "tok$1"; if [ $(($1 % 2)) = 0 ]; then seq 1 {BIG}; else seq 1 {SMALL}; fi}} job $job_count
  end
  task.exit default
    exec sh -c {{echo "$1 $2 $3 $4" >> {exits}}} x $job_id $job_state $exit_status [lindex $job_command end]
  end
end
run
wait
"""


def _seq(n: int) -> bytes:
    return "".join(f"{i}\n" for i in range(1, n + 1)).encode()


def _outputs(out: Path) -> dict[int, bytes]:
    """Each job's part of the appended file, by its number."""
    parts = re.split(rb"(?m)^tok(\d+)\n", out.read_bytes())
    found: dict[int, bytes] = {}
    for number, body in zip(parts[1::2], parts[2::2]):
        assert int(number) not in found, f"job {number} twice in {out}"
        found[int(number)] = body
    return found


def _exits(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


@pytest.mark.skipif(_mount_reason() is not None, reason=f"no small file system here: {_mount_reason()}")
def test_spooled_outputs_on_a_full_host_disk_end_once_whole_or_said_cut(host_disk: HostDisk, tmp_path: Path) -> None:
    jobs = 12
    host_disk.fill()
    script = tmp_path / "full.sched"
    script.write_text(_spool_script("full", tmp_path / "full.out", tmp_path / "full.exits", jobs))
    said = host_disk.sched(script)

    exits = _exits(tmp_path / "full.exits")
    assert len(exits) == jobs and len({e[0] for e in exits}) == jobs, exits
    assert Counter((e[1], e[2]) for e in exits) == {("EXIT", "0"): jobs}, said
    outputs = _outputs(tmp_path / "full.out")
    assert sorted(outputs) == list(range(jobs))
    for k, body in outputs.items():
        if k % 2:
            assert body == _seq(SMALL), f"job {k}: the head held it all"
        else:
            whole = f"tok{k}\n".encode() + _seq(BIG)
            note = f"\n[sched: output cut: kept 1048576 of {len(whole)} bytes]\n".encode()
            assert body.endswith(note), f"job {k}: {body[-100:]!r}"
            assert (f"tok{k}\n".encode() + body)[:1048576] == whole[:1048576], f"job {k}"
    assert said.count("did not keep its whole stdout") == 1, said
    assert re.search(r"task full job \d+: host ag did not keep its whole stdout \(12889\d\d bytes\) "
                     r"\(not spooled there: pcontrol's log says why\)", said), said
    log = host_disk.pcontrol_log()
    assert log.count("cannot spool the output of job") == 1, log
    assert "ag: the agent reports an error: cannot spool the output of job" in log and "No space left on device" in log
    assert [p.name for p in (host_disk.fs / "spool").rglob("*") if p.is_file()] == []
    assert host_disk.host_state() == "IDLE"

    host_disk.free()
    again = tmp_path / "again.sched"
    again.write_text(_spool_script("again", tmp_path / "again.out", tmp_path / "again.exits", 4))
    said = host_disk.sched(again)
    assert "did not keep" not in said, said
    assert Counter((e[1], e[2]) for e in _exits(tmp_path / "again.exits")) == {("EXIT", "0"): 4}
    assert _outputs(tmp_path / "again.out") == {k: _seq(BIG if k % 2 == 0 else SMALL) for k in range(4)}
    assert host_disk.host_state() == "IDLE"


def _mail_script(task: str, exits: Path, jobs: int) -> str:
    """A task whose every job gets a message (sent from task.exec to its next job, the first one
    from the script) and prints its inbox; its exit macro logs what it saw."""
    return f"""
task {task}
  host ag
  nmax {jobs}
  npending 1
  task.exec
    send {task} "hello [expr {{$job_count + 1}}]"
    command sh -c {{cat "$PSCHED_INBOX"}}
  end
  task.exit default
    exec sh -c {{echo "$1|$2|$3|$4|$5|$6" >> {exits}}} x $job_id $job_state $exit_status [queuelist inbox] [string trim $stdout] [string trim $stderr]
  end
end
send {task} "hello 0"
run
wait
"""


@pytest.mark.skipif(_mount_reason() is not None, reason=f"no small file system here: {_mount_reason()}")
def test_messages_that_cannot_reach_a_job_keep_it_from_running(host_disk: HostDisk, tmp_path: Path) -> None:
    warm = tmp_path / "warm.sched"
    warm.write_text(_mail_script("warm", tmp_path / "warm.exits", 1))   # the agent's mailbox directory is made
    host_disk.sched(warm)
    assert [line.split("|")[1:5] for line in (tmp_path / "warm.exits").read_text().splitlines()] == \
        [["EXIT", "0", "{sched hello 0}", "sched hello 0"]]

    host_disk.fill()
    full = tmp_path / "full.sched"
    full.write_text(_mail_script("full", tmp_path / "full.exits", 3))
    host_disk.sched(full)
    lines = [line.split("|") for line in (tmp_path / "full.exits").read_text().splitlines()]
    assert len(lines) == 3, lines
    for job_id, state, status, inbox, stdout, stderr in lines:
        assert (state, status, stdout) == ("EXIT", "127", ""), lines
        assert inbox.startswith("{") and "hello" in inbox  # the macro still has the messages
        assert re.fullmatch(r"cannot start 'sh': cannot write its inbox \(1 message\(s\)\) in "
                            + re.escape(str(host_disk.fs / "tmp")) + r"/psched-mail-\d+-\w+: No space left on device",
                            stderr), stderr
    assert [p.name for p in (host_disk.fs / "tmp").rglob("*") if p.is_file()] == []
    assert host_disk.host_state() == "IDLE"

    host_disk.free()
    again = tmp_path / "again.sched"
    again.write_text(_mail_script("again", tmp_path / "again.exits", 2))
    host_disk.sched(again)
    assert [line.split("|")[1:5] for line in (tmp_path / "again.exits").read_text().splitlines()] == \
        [["EXIT", "0", "{sched hello 0}", "sched hello 0"], ["EXIT", "0", "{again hello 1}", "again hello 1"]]
