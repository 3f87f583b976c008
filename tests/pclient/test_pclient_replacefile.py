"""pclient.replacefile: a small file written whole, or not at all."""

import os
import stat

import pytest

from pclient.replacefile import replace_file


def test_written_whole_in_place_of_the_old_with_its_mode(tmp_path):
    path = tmp_path / "marks.json"
    path.write_text("old")
    replace_file(path, "néw\n", mode=0o600, durable=True)
    assert path.read_bytes() == "néw\n".encode() and stat.S_IMODE(path.stat().st_mode) == 0o600
    replace_file(str(path), b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    assert os.listdir(tmp_path) == ["marks.json"]          # no temporary file left


def test_missing_directories_are_made_with_dir_mode(tmp_path):
    path = tmp_path / "a" / "b" / "state"
    replace_file(path, "x", dir_mode=0o700)
    assert path.read_text() == "x" and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_failure_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "taken"
    path.mkdir()                                            # a directory: the rename fails
    with pytest.raises(OSError):
        replace_file(path, "x")
    assert os.listdir(tmp_path) == ["taken"] and path.is_dir()
