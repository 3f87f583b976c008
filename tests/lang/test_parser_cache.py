"""The built parser is kept on disk ($XDG_CACHE_HOME/psched) and trusted only for its grammar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PARSE = ("import psched.lang.parser as p; s = p.parse('set x [expr {1 + 2}]\\nputs $x', 'f.sched'); "
         "print(len(s.commands), s.commands[1].words[1].parts[0].name)")


def _run(cache: Path) -> str:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    done = subprocess.run([sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_the_first_run_writes_the_cache_and_the_next_reads_it(tmp_path: Path) -> None:
    first = _run(tmp_path)
    files = list((tmp_path / "psched").iterdir())
    assert [f.name.startswith("grammar-") and f.name.endswith(".lark") for f in files] == [True]
    assert oct(os.stat(tmp_path / "psched").st_mode & 0o777) == "0o700"
    stamp = files[0].stat().st_mtime_ns
    assert _run(tmp_path) == first == "2 x\n"
    assert files[0].stat().st_mtime_ns == stamp  # read, not written again


def test_a_damaged_or_foreign_cache_is_built_afresh(tmp_path: Path) -> None:
    _run(tmp_path)
    (cached,) = (tmp_path / "psched").iterdir()
    cached.write_bytes(b"not a parser\n")  # lark checks its hash line: built and written over
    assert _run(tmp_path) == "2 x\n"


def test_no_usable_cache_directory_still_parses(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert _run(blocked) == "2 x\n"  # $XDG_CACHE_HOME is a file: no cache, same parse
