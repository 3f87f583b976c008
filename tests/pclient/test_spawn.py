"""pclient.spawn: posix_spawn gives a job what Popen gave it (own session, pipes, default
SIGPIPE, no stray descriptors, the job's PATH, Popen's errors)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pclient.spawn import spawn


def _run(argv: list[str], env: dict[bytes, bytes] | None = None, cwd: str | None = None) -> tuple[int, str, bool]:
    out_r, out_w = os.pipe()
    try:
        pid, popen = spawn(argv, env if env is not None else dict(os.environb), cwd, out_w, out_w)
    finally:
        os.close(out_w)
    with os.fdopen(out_r, "rb") as fh:
        text = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    if popen is not None:
        popen.returncode = os.waitstatus_to_exitcode(status)
    return pid, text, popen is not None


def test_own_session_default_sigpipe_and_no_stray_descriptors() -> None:
    stray = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(stray, True)  # Popen's close_fds would not have let it through
    try:
        pid, text, by_popen = _run(["sh", "-c", "ps -o sid=,pgid= -p $$; grep SigIgn /proc/self/status; "
                                    f"[ -e /proc/self/fd/{stray} ] && echo leaked || echo closed"])
    finally:
        os.close(stray)
    sid, pgid, _, ignored, verdict = text.split()
    assert not by_popen and int(sid) == int(pgid) == pid
    assert not int(ignored, 16) & (1 << 12)  # SIGPIPE (13) is not ignored, though Python ignores it
    assert verdict == "closed"


def test_the_program_is_looked_up_on_the_jobs_path(tmp_path: Path) -> None:
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\necho found me\n")
    tool.chmod(0o755)
    env = dict(os.environb)
    env[b"PATH"] = os.fsencode(f"/nonexistent:{tmp_path}:/usr/bin:/bin")
    assert _run(["mytool"], env)[1] == "found me\n"


def test_errors_are_those_popen_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        _run(["no-such-program-here"])
    assert missing.value.errno == errno.ENOENT and missing.value.filename == "no-such-program-here"
    plain = tmp_path / "plain"
    plain.write_text("data")
    with pytest.raises(PermissionError):
        _run([str(plain)])
    with pytest.raises(ValueError):
        _run(["echo", "nul\0byte"])


def test_a_working_directory_goes_through_popen(tmp_path: Path) -> None:
    _, text, by_popen = _run(["pwd"], cwd=str(tmp_path))
    assert by_popen and text.strip() == str(tmp_path)
