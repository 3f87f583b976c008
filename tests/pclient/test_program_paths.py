"""pclient.spawn.ProgramPaths: the file a job's program name stands for, found once and used while
the directories before it are as they were, always what execvp would run."""

from __future__ import annotations

import os
import shutil

import pytest

from pclient import spawn
from pclient.spawn import ProgramPaths

OLD = 1_500_000_000  # (seconds: a time long past, so a directory's time is not "racy")


def _dirs(tmp_path, *names: str) -> list:
    made = []
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        made.append(folder)
    return made


def _program(folder, name: str = "prog", text: str = "#!/bin/sh\necho {where}\n", mode: int = 0o755):
    path = folder / name
    path.write_text(text.format(where=folder.name))
    path.chmod(mode)
    return path


_TICKS = [0]


def _settle(*folders, same: bool = False) -> None:
    """Give the folders a time long past (a later one at each call, as real changes would have,
    unless `same`)."""
    _TICKS[0] += 0 if same else 1
    for folder in folders:
        os.utime(folder, (OLD + _TICKS[0], OLD + _TICKS[0]))


def _path(*folders) -> bytes:
    return os.fsencode(":".join(str(folder) for folder in folders))


def test_the_file_found_is_the_one_execvp_runs_and_is_remembered(tmp_path, monkeypatch):
    a, b, c = _dirs(tmp_path, "a", "b", "c")
    prog = _program(c)
    _settle(a, b, c)
    programs = ProgramPaths()
    path = _path(a, b, c)
    assert programs.find("prog", path) == os.fsencode(prog)
    assert os.fsencode(shutil.which("prog", path=os.fsdecode(path))) == os.fsencode(prog)
    stats = []
    monkeypatch.setattr(spawn, "_search", lambda *args: stats.append(args))
    assert programs.find("prog", path) == os.fsencode(prog)      # remembered: no search
    assert stats == []


def test_a_program_put_in_an_earlier_directory_is_found_at_once(tmp_path):
    a, b, c = _dirs(tmp_path, "a", "b", "c")
    _program(c)
    _settle(a, b, c)
    programs = ProgramPaths()
    path = _path(a, b, c)
    assert programs.find("prog", path).endswith(b"/c/prog")
    _program(b)                                 # b's time changes: looked at again
    assert programs.find("prog", path) is None  # ... and too recent to be trusted: the search is posix_spawnp's
    _settle(b)
    assert programs.find("prog", path).endswith(b"/b/prog")
    os.replace(b / "prog", a / "prog")          # moved: both directories' times change
    _settle(a, b)
    assert programs.find("prog", path).endswith(b"/a/prog")


def test_an_earlier_directory_made_later_is_looked_in(tmp_path):
    b, c = _dirs(tmp_path, "b", "c")
    _program(c)
    _settle(b, c)
    missing = tmp_path / "not-yet"
    programs = ProgramPaths()
    path = _path(missing, b, c)
    assert programs.find("prog", path).endswith(b"/c/prog")
    missing.mkdir()
    _program(missing)
    _settle(missing)
    assert programs.find("prog", path).endswith(b"/not-yet/prog")


@pytest.mark.parametrize("case", ["not executable", "a directory", "empty entry", "relative entry", "racy", "nowhere"])
def test_nothing_is_remembered_where_execvp_could_differ(tmp_path, case):
    a, c = _dirs(tmp_path, "a", "c")
    _program(c)
    path = _path(a, c)
    if case == "not executable":
        _program(a, mode=0o644)
    elif case == "a directory":
        (a / "prog").mkdir()
    elif case == "empty entry":
        path = b":" + path
    elif case == "relative entry":
        path = b"bin:" + path
    elif case == "nowhere":
        path = _path(a)
    if case != "racy":
        _settle(a, c)
    programs = ProgramPaths()
    assert programs.find("prog", path) is None
    assert programs._known == {}


def test_a_remembered_file_that_is_gone_is_searched_for_again_by_the_start(tmp_path, monkeypatch):
    """The start of a remembered file that fails is made with posix_spawnp's search (both calls)."""
    a, b = _dirs(tmp_path, "a", "b")
    _program(a)
    _program(b)
    _settle(a, b)
    path = _path(a, b)
    monkeypatch.setenv("PATH", os.fsdecode(path))
    env = {**spawn.environ_bytes(), b"PATH": path}
    for libc in (True, False):
        monkeypatch.setattr(spawn, "_SPAWNER", [] if libc else [None])
        monkeypatch.setattr(spawn, "_STARTS", [spawn.LIBC_AFTER])
        monkeypatch.setattr(spawn, "PROGRAMS", ProgramPaths())
        assert spawn.PROGRAMS.find("prog", path).endswith(b"/a/prog")
        (a / "prog").unlink()
        _settle(a, same=True)                    # as if the change came in the same clock tick
        assert spawn.PROGRAMS.find("prog", path).endswith(b"/a/prog")
        r, w = os.pipe()
        try:
            pid, popen = spawn.start(["prog"], env, w, w)
            assert popen is None
            os.close(w)
            assert os.read(r, 100) == b"b\n"
            os.waitpid(pid, 0)
        finally:
            os.close(r)
        assert spawn.PROGRAMS._known == {}       # forgotten
        _program(a)
        _settle(a)
