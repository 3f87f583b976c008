"""pclient.logfile: rotation by size with N kept, reopen, descriptors that follow the file; sizes."""

from __future__ import annotations

import logging
import os

import pytest

from pclient.logfile import RotatingLog, parse_size


@pytest.mark.parametrize("text,expected", [("1048576", 1 << 20), ("512k", 512 << 10), ("10M", 10 << 20),
                                           ("1g", 1 << 30), ("2MB", 2 << 20), ("0", 0), ("1.5k", 1536)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "5x", "-1k", "M"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="expected a size|negative"):
        parse_size(text)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test-logfile-{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def test_rotates_by_size_and_keeps_n(tmp_path):
    path = tmp_path / "agent.log"
    handler = RotatingLog(path, max_bytes=1000, keep=2)
    logger = _logger(handler)
    for i in range(200):
        logger.info("line %03d %s", i, "x" * 40)
    handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["agent.log", "agent.log.1", "agent.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert "line 199" in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_followed_descriptors_write_into_the_current_file_and_count(tmp_path):
    path = tmp_path / "daemon.log"
    read_end, spare = os.pipe()
    os.close(read_end)
    handler = RotatingLog(path, max_bytes=500, keep=1, follow_fds=(spare,))
    try:
        os.write(spare, b"y" * 600)       # written outside logging, like a traceback on stderr
        assert path.stat().st_size == 600
        handler.check()                   # past max_bytes: rotated, and the descriptor follows
        os.write(spare, b"after\n")
        assert path.read_bytes() == b"after\n"
        assert (tmp_path / "daemon.log.1").read_bytes() == b"y" * 600
        path.rename(tmp_path / "moved.log")
        handler.reopen()                  # logrotate moved it: a new file by the same name
        os.write(spare, b"reopened\n")
        assert path.read_bytes() == b"reopened\n"
    finally:
        handler.close()
        os.close(spare)


def test_zero_never_rotates(tmp_path):
    handler = RotatingLog(tmp_path / "x.log", max_bytes=0, keep=3)
    logger = _logger(handler)
    for i in range(500):
        logger.info("%s", "z" * 50)
    handler.check()
    handler.close()
    assert [p.name for p in tmp_path.iterdir()] == ["x.log"]
