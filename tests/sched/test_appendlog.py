"""psched.scheduler.appendlog, through the three files that are one: the run ledger, the
switchboard and the harvest log. Each skips a torn last line and says so in the log (never an
exception), cuts it off before appending, and still reads the files the code before
AppendLog wrote (tests/sched/oldlogs, made by that code) and writes them alike to the byte."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import psched.scheduler.appendlog as appendlog
from psched.scheduler.appendlog import AppendLog
from psched.scheduler.remote import HarvestLog
from psched.scheduler.runledger import RunLedger
from psched.scheduler.switchboard import Switchboard

OLD = Path(__file__).parent / "oldlogs"


def write_ledger(path: Path) -> None:
    """What made oldlogs/made.log (with the RunLedger before AppendLog)."""
    ledger = RunLedger(path)
    ledger.record("work", 1)
    ledger.record("work", 2, unsent="s1:2")
    ledger.sent("s1:2")
    ledger.record("work", 3, unsent="s1:3")
    ledger.record("other task", 7)
    ledger.close()


def write_switchboard(path: Path) -> None:
    board = Switchboard(path)
    board.post("child", "parent", "down", now=1.0)
    board.post_lines("probe", ["child unreachable too", "other hello \u00e9"], now=2.0)
    board.take("other")
    board.close()


def write_harvests(path: Path) -> None:
    log = HarvestLog(path)
    log.begin("1@10.0")
    log.end("1@10.0")
    log.begin("2@11.5")
    log._file.close()


def read_ledger(path: Path):
    ledger = RunLedger(path)
    return ledger.load(), ledger.unsent


def read_switchboard(path: Path):
    return [(m.id, m.to, m.line) for m in Switchboard(path).waiting()]


def read_harvests(path: Path):
    log = HarvestLog(path)
    return log.keys, log.unfinished


LOGS = {  # file name: (how the old code's file was written, what reading it gives)
    "made.log": (write_ledger, read_ledger, ({"work": 3, "other task": 7}, {"s1:3": "work"})),
    "switchboard.log": (write_switchboard, read_switchboard,
                        [(1, "child", "parent down"), (2, "child", "probe unreachable too")]),
    "harvested.log": (write_harvests, read_harvests, ({"1@10.0", "2@11.5"}, {"2@11.5"})),
}


@pytest.mark.parametrize("name", LOGS)
def test_a_file_the_old_code_wrote_still_loads_and_the_new_code_writes_the_same(tmp_path, name):
    write, read, expected = LOGS[name]
    assert read(OLD / name) == expected
    write(tmp_path / name)
    assert (tmp_path / name).read_bytes() == (OLD / name).read_bytes()


@pytest.mark.parametrize("name,torn", [("made.log", '[4, "wo'),
                                       ("switchboard.log", '["post", 99, "chi'),
                                       ("harvested.log", "+3@12.")])
def test_a_torn_last_line_is_skipped_reported_and_never_written_onto(tmp_path, caplog, name, torn):
    write, read, expected = LOGS[name]
    path = tmp_path / name
    shutil.copy(OLD / name, path)
    lines = len(path.read_text().splitlines())
    with open(path, "a") as fh:
        fh.write(torn)  # the sched writing it was killed
    with caplog.at_level(logging.WARNING, logger="psched.scheduler.appendlog"):
        assert read(path) == expected
    assert f"{path}:{lines + 1}: skipping a line that is not" in caplog.text
    assert "(a torn write?)" in caplog.text
    write(path)  # a later sched goes on appending: the torn line goes first
    assert torn not in path.read_text() and path.read_text().endswith("\n")
    caplog.clear()
    read(path)
    assert "skipping" not in caplog.text


def test_the_file_is_rewritten_past_the_one_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(appendlog, "COMPACT_AT", 100)
    log = AppendLog(tmp_path / "x.log", "a line")
    log.append(["a" * 60])
    assert not log.full
    log.append(["b" * 60])
    assert log.full
    log.rewrite(["kept"])
    assert not log.full
    assert list(AppendLog(tmp_path / "x.log", "a line").replay()) == [(1, "kept")]
    assert [p.name for p in tmp_path.iterdir()] == ["x.log"]  # no temporary left behind


def test_lines_held_in_a_loop_turn_are_written_at_its_end_in_one_write(tmp_path, monkeypatch):
    """Issue 13: the lines a turn holds (a scheduler's records of the jobs it makes and ends
    in it) cost one write(), at the end of the turn or at `flush`, whichever comes first."""
    import asyncio

    from psched.scheduler.eventloop import get_loop  # the process's loop: held lines wait for its turn

    path = tmp_path / "held.log"
    log = AppendLog(path, "a line")
    writes: list[int] = []
    real_append = AppendLog.append
    monkeypatch.setattr(AppendLog, "append", lambda self, lines: (writes.append(1), real_append(self, lines))[1])

    async def turns() -> list[str]:
        seen = []
        log.hold(["a"])
        log.hold(["b", "c"])
        seen.append(path.read_text() if path.exists() else "")  # nothing yet: the turn goes on
        await asyncio.sleep(0)  # the end of the turn
        seen.append(path.read_text())
        log.hold(["d"])
        log.flush()  # something depending on it is about to leave: at once
        seen.append(path.read_text())
        await asyncio.sleep(0)
        return seen

    assert get_loop().run_until_complete(turns()) == ["", "a\nb\nc\n", "a\nb\nc\nd\n"]
    assert len(writes) == 2


def test_held_lines_go_with_a_rewrite_and_are_written_by_close(tmp_path):
    """A rewrite is the owner's whole state, the held lines' with it; closing writes them."""
    from psched.scheduler.eventloop import get_loop  # the process's loop: held lines wait for its turn

    path = tmp_path / "held.log"
    log = AppendLog(path, "a line")

    async def rewrite_then_close() -> str:
        log.hold(["gone"])
        log.rewrite(["state"])
        log.hold(["kept"])
        log.close()
        return path.read_text()

    assert get_loop().run_until_complete(rewrite_then_close()) == "state\nkept\n"
    log.hold(["no loop"])  # without a running loop: at once
    assert path.read_text() == "state\nkept\nno loop\n"
