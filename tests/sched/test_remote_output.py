"""fetch_into_files: pieces from the controller into the task's files; a failed fetch leaves the file."""

import asyncio
import base64

from pclient.output import OutputFile
from pcontrol.errors import ClientError
from psched.scheduler.remote_output import fetch_into_files

DATA = bytes(range(256)) * 10


class Pieces:
    """Answers `output ID STREAM -offset N -json` from DATA, 1000 bytes at a time; fails from `fail_at` on."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.asked: list[tuple[str, int]] = []

    async def call(self, *argv: str):
        stream, offset = argv[2], int(argv[4])
        self.asked.append((stream, offset))
        if self.fail_at is not None and offset >= self.fail_at:
            raise ClientError("host h1 went down")
        piece = DATA[offset:offset + 1000]
        return {"data": base64.b64encode(piece).decode(), "eof": offset + len(piece) >= len(DATA)}


def test_pieces_land_in_the_file_and_append(tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    err.write_bytes(b"before")
    errors = asyncio.run(fetch_into_files(Pieces(), 7, {"stdout": OutputFile(str(out)),
                                                        "stderr": OutputFile(str(err), append=True)}))
    assert errors == []
    assert out.read_bytes() == DATA and err.read_bytes() == b"before" + DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err", "out"]


def test_a_failed_fetch_leaves_the_file_as_it_was_and_says_so(tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"the last job's")
    errors = asyncio.run(fetch_into_files(Pieces(fail_at=2000), 7, {"stdout": OutputFile(str(out))}))
    assert errors == ["could not fetch the stdout from the controller: host h1 went down"]
    assert out.read_bytes() == b"the last job's"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no spool file left


def test_a_missing_directory_is_an_error_not_an_exception(tmp_path):
    errors = asyncio.run(fetch_into_files(Pieces(), 7, {"stdout": OutputFile(str(tmp_path / "no" / "out"))}))
    assert len(errors) == 1 and "cannot write" in errors[0] and "No such file or directory" in errors[0]


def test_a_rotating_file_gets_the_fetched_bytes_rotated(tmp_path):
    out = tmp_path / "out"
    errors = asyncio.run(fetch_into_files(Pieces(), 7, {"stdout": OutputFile(str(out), append=True, rotate=1024, keep=1)}))
    assert errors == []
    whole = DATA  # 2560 bytes: files of 1024, the oldest beyond -keep 1 dropped
    assert out.read_bytes() == whole[2048:] and (tmp_path / "out.1").read_bytes() == whole[1024:2048]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.1"]
