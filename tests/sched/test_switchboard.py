"""psched.scheduler.switchboard and pclient.mailbox: messages kept across restarts (torn lines
skipped), put back when no job was made, a job's outbox read and bounded."""

from __future__ import annotations

import json
import os
from unittest import mock

import pytest

from pclient import mailbox
from pclient.mailbox import OUTBOX_LIMIT, SPARE, Mailbox
from psched.scheduler.switchboard import Switchboard


def test_messages_survive_a_new_switchboard_and_a_torn_line(tmp_path):
    path = tmp_path / "switchboard.log"
    board = Switchboard(path)
    board.post("child", "parent", "down", now=1.0)
    board.post_lines("probe", ["child unreachable too", "   ", "other hello world", "lonely"], now=2.0)
    taken = board.take("other")
    assert [m.line for m in taken] == ["probe hello world"]
    with open(path, "a") as fh:
        fh.write('["post", 99, "chi')  # sched killed in the middle of a write
    again = Switchboard(path)
    assert [(m.to, m.line) for m in again.waiting()] == [
        ("child", "parent down"), ("child", "probe unreachable too"), ("lonely", "probe ")]
    again.put_back(taken)
    assert [m.line for m in Switchboard(path).waiting("other")] == ["probe hello world"]


def test_the_file_goes_when_nothing_waits(tmp_path):
    path = tmp_path / "switchboard.log"
    board = Switchboard(path)
    board.post("a", "sched", "x")
    assert json.loads(path.read_text().splitlines()[0])[:5] == ["post", 1, "a", "sched", "x"]
    board.take("a")
    assert not path.exists()
    assert Switchboard(path).waiting() == []


def test_a_message_is_one_line():
    with pytest.raises(Exception, match="one line"):
        Switchboard().post("a", "sched", "two\nlines")


def test_mailbox_gives_the_inbox_and_reads_a_bounded_outbox(tmp_path):
    (tmp_path / "psched-mail-4194999-stale").mkdir()  # left by a killed process (no such pid)
    (tmp_path / "psched-mail-99999999999999999999-x").mkdir()  # not a pid at all
    box = Mailbox.open("7", ["parent down"], base=str(tmp_path))
    assert open(box.env["PSCHED_INBOX"]).read() == "parent down\n"
    with open(box.env["PSCHED_OUTBOX"], "w") as fh:
        fh.write("a first\n\n" + "b " + "x" * OUTBOX_LIMIT + "\n")
    lines, note = box.collect()
    assert lines == ("a first",) and "passed" in note
    assert [list(d.iterdir()) for d in tmp_path.iterdir()] == [[]]  # this process's directory, empty
    quiet = Mailbox.open("8", [], base=str(tmp_path))
    assert open(quiet.env["PSCHED_INBOX"]).read() == ""
    assert quiet.collect() == ((), None)
    [directory] = tmp_path.iterdir()
    [spare] = directory.iterdir()  # its emptied inbox, kept for the next empty one (SpareInboxes)
    assert spare.name.startswith(SPARE) and spare.stat().st_size == 0
    again = Mailbox.open("9", [], base=str(tmp_path))
    assert again.env["PSCHED_INBOX"] == str(spare) and open(again.env["PSCHED_INBOX"]).read() == ""
    with open(again.env["PSCHED_INBOX"], "w") as fh:  # a job that writes to its inbox
        fh.write("mine now\n")
    assert again.collect() == ((), None)
    assert list(directory.iterdir()) == []  # not kept: the next job's inbox must be empty
    later = Mailbox.open("10", [], base=str(tmp_path))
    assert open(later.env["PSCHED_INBOX"]).read() == ""
    assert later.collect() == ((), None)
    [kept] = directory.iterdir()
    kept.unlink()  # a cleaner of /tmp took it
    gone = Mailbox.open("11", [], base=str(tmp_path))  # not given again: a new one
    assert open(gone.env["PSCHED_INBOX"]).read() == ""


def test_a_killed_process_s_directory_goes_with_its_spares_and_job_files(tmp_path):
    stale = tmp_path / "psched-mail-4194999-stale"  # left by a killed process (no such pid)
    stale.mkdir()
    (stale / f"{SPARE}3").write_text("")
    (stale / "4.job.in").write_text("a message\n")  # its jobs' files go too
    (stale / "4.job.out").write_text("an answer\n")
    spares = tmp_path / "psched-mail-4194998-spares"
    spares.mkdir()
    (spares / f"{SPARE}1").write_text("")
    mine = tmp_path / f"psched-mail-{os.getpid()}-mine"  # a live process's (this one's): kept
    mine.mkdir()
    (mine / "1.job.in").write_text("")
    with mock.patch.dict(mailbox._DIRECTORIES, clear=True):
        Mailbox.open("1", [], base=str(tmp_path)).collect()
    assert not stale.exists() and not spares.exists()
    assert [p.name for p in mine.iterdir()] == ["1.job.in"]


def test_a_directory_is_kept_while_its_pid_lives():
    """Only a gone or zombie pid's directory goes (a live one's, whatever the wall clock says of
    its start: a clock stepped forward must not lose a live process's job files)."""
    assert mailbox.owner_lives(os.getpid())
    assert not mailbox.owner_lives(4194999)  # no such process


def test_a_skipped_job_leaves_its_messages_waiting(tmp_path, monkeypatch):
    import io

    import psched
    from psched.scheduler.attach import scheduler_of

    monkeypatch.setenv("SCHED_HOME", str(tmp_path / "home"))
    interp = psched.Interp(stdout=io.StringIO())
    sched = scheduler_of(interp)
    interp.eval("""
task t
  host LOCAL
  command true
  nmax 1
  task.exec
    set seen [queuelist inbox]
    skip
  end
end
send t {hello there}
""", "t.sched")
    entry = sched.tasks["t"]
    sched.running = True
    sched.look(entry)
    sched.running = False
    assert interp.get_var("seen") == "{sched hello there}"
    assert interp.eval("messages t", "t.sched") == "t sched {hello there}"
    assert (tmp_path / "home" / "switchboard.log").exists()
