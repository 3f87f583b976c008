"""The parser runs LALR tables lark made of the grammar (psched.lang.lalr, psched.lang.lalrrun): the
package ships them made from lang/grammar/sched.lark, and a grammar that differs from the shipped
tables' is made again and kept in $XDG_CACHE_HOME/psched, trusted only for its grammar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from psched.lang import lalr
from psched.lang.grammar import lalr as shipped
from psched.lang.lalrrun import Parser
from psched.lang.nodes import Script
from psched.lang.parser import _Builder

PARSE = ("import psched.lang.parser as p; s = p.parse('set x [expr {1 + 2}]\\nputs $x', 'f.sched'); "
         "print(len(s.commands), s.commands[1].words[1].parts[0].name)")


def test_the_shipped_parser_is_made_from_the_grammar_as_it_is() -> None:
    text = Path(lalr.GRAMMAR).read_text(encoding="utf-8")
    assert shipped.GRAMMAR_STAMP == lalr.stamp(text), "the grammar changed: run scripts/gentables"
    # (not compared with a module made now: lark numbers its states differently from run to run)
    assert lalr.parser_module() is shipped


def test_a_run_on_the_shipped_grammar_loads_neither_lark_nor_a_cache(tmp_path: Path) -> None:
    probe = PARSE + "; import sys; print('lark' in sys.modules, 'regex' in sys.modules)"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2 x\nFalse False\n"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def changed() -> str:
    """A grammar that is not the shipped module's (a comment more)."""
    return Path(lalr.GRAMMAR).read_text(encoding="utf-8") + "\n// changed\n"


def _parses(module) -> bool:
    script = Parser(module, _Builder()).parse("set x [expr {1 + 2}]\nputs $x\n")
    return isinstance(script, Script) and [c.name for c in script.commands] == ["set", "puts"]


def test_a_changed_grammar_is_made_once_and_kept(changed: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    want = lalr.stamp(changed)
    assert _parses(lalr._made(changed, want))
    (kept,) = (tmp_path / "psched").iterdir()
    assert kept.name == f"lalr-{want}.py"
    assert oct(os.stat(tmp_path / "psched").st_mode & 0o777) == "0o700"
    stamp = kept.stat().st_mtime_ns
    assert _parses(lalr._made(changed, want))
    assert kept.stat().st_mtime_ns == stamp  # read, not made again


def test_a_damaged_kept_parser_is_made_afresh(changed: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    want = lalr.stamp(changed)
    lalr._made(changed, want)
    (kept,) = (tmp_path / "psched").iterdir()
    kept.write_text("not a parser\n")
    assert _parses(lalr._made(changed, want))
    assert f"GRAMMAR_STAMP = {want!r}" in kept.read_text()


def test_no_usable_cache_directory_still_parses(changed: str, tmp_path: Path, monkeypatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # a file: made in memory, same parse
    assert _parses(lalr._made(changed, lalr.stamp(changed)))
