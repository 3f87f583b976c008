"""A job's inbox that cannot be written (the temporary directory's disk is full): the job does
not run without its messages, it ends EXIT 127 saying why, and no half-made inbox is left.
(An empty inbox that cannot be made still lets the job run, without a mailbox: nothing of
its is lost.) The full disk is a write that fails with ENOSPC in pclient.mailbox only;
tests/faults/test_faults_agentdisk.py fills a real one under a real agent."""

from __future__ import annotations

import errno
import os
import types
from pathlib import Path

import pytest

from agent_harness import async_test
from pclient import mailbox
from pclient.jobproc import JobSpec, Outcome, StartFailure, start_job
from pclient.mailbox import Mailbox


class _FullDisk(types.SimpleNamespace):
    """pclient.mailbox's `os`, whose writes find no room."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def write(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mailbox, "os", _FullDisk())


def test_an_inbox_that_cannot_be_written_is_an_error_and_leaves_no_file(full_disk, tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        Mailbox.open("7", ["probe-router host unreachable"], base=str(tmp_path))
    assert raised.value.errno == errno.ENOSPC
    assert "cannot write its inbox (1 message(s)) in " in raised.value.strerror
    assert "No space left on device" in raised.value.strerror
    assert [p.name for p in tmp_path.glob("psched-mail-*/*")] == []


def test_an_empty_inbox_needs_no_write(full_disk, tmp_path: Path) -> None:
    box = Mailbox.open("8", [], base=str(tmp_path))
    assert set(box.env) == {mailbox.INBOX_VAR, mailbox.OUTBOX_VAR}
    assert box.collect() == ((), None)


@async_test
async def test_a_job_whose_messages_cannot_be_handed_to_it_does_not_run(full_disk, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    spec = JobSpec("9", ["sh", "-c", f"touch {ran}; cat \"$PSCHED_INBOX\""], mailbox=True,
                   inbox=("sched hello",))
    job = await start_job(spec)
    result = await job.wait()
    assert (result.outcome, result.status, result.pid) == (Outcome.EXIT, StartFailure.NOT_FOUND, None)
    assert result.reason.startswith("cannot start 'sh': cannot write its inbox (1 message(s)) in ")
    assert result.reason.endswith(": No space left on device")
    assert result.stderr.decode() == result.reason + "\n"
    assert not ran.exists()
