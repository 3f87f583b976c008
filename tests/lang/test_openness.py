"""psched.lang.openness gives the answer of a whole parse (is_complete) for every line of a growing text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from psched.lang.openness import OpenTracker
from psched.lang.parser import is_complete

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "tests" / "lang" / "golden").glob("*.sched")) + sorted((ROOT / "scripts" / "examples").glob("*.sched"))

SNIPPETS = [
    "task t\n  host LOCAL\n  task.exit 0\n    echo $task\n  end\nend\n",
    "if $x > 1\n  echo a\nelif $x < 0\n  echo b\nelse\n  echo c\nend\n",
    "set x {a\nb {c\n}\nd}\necho $x\n",
    'echo "one\ntwo [list a\nb]"\n',
    "echo a \\\n  b \\\n  c\n",
    "# a comment \\\n still the comment {\necho x\n",
    "proc p {a b} {\n  if {$a} {\n    return $b\n  }\n}\np 1 2\n",
    "set a(x) 1\necho $a(x\n)\n",
    "echo ${abc}\necho ${a\nb}\n",
    "foreach v {1 2 3}\n  while $v > 0\n    incr v -1\n  end\nend\n",
    "if {$x} continue\nwhile {1} {break}\nfor i 1 3\n  echo $i\nend\n",
    "macro m a\n  foreach x $a\n    echo $x\n  end\nend\nm {1 2}\n",
    "switch -glob backup.tar\ncase *.tar *.tgz\n  echo archive\ndefault\n  echo other\nend\n",
    "try\n  error x\non error {m o}\n  echo $m\nfinally\n  echo f\nend\n",
    # errors: the whole parse stops there, and so does the tracker
    "switch x\n  echo before\ncase a\nend\n",
    "try\nfinally\non error {m o}\nend\n",
    "switch x\ndefault 1\nend\n",
    "end\necho a\n",
    "if $x\nelse\nelse\nend\n",
    "else\n",
    "echo a]\n",
    "if $x\nelse 1\nend\n",
    "task t\n  elif 1\nend\n",
]


def _texts():
    for path in SCRIPTS:
        yield path.name, path.read_text()
    for i, snippet in enumerate(SNIPPETS):
        yield f"snippet{i}", snippet


def _whole(text: str):
    """The answer of a whole parse, with the prompt's rule for a final backslash-newline."""
    stripped = text.rstrip("\r\n")
    if stripped != text and (len(stripped) - len(stripped.rstrip("\\"))) % 2 == 1:
        return "\\"
    return _opener(is_complete(text))


def _opener(err) -> str | None:
    return err.opener if err is not None else None


@pytest.mark.parametrize("name,text", list(_texts()), ids=[n for n, _ in _texts()])
def test_every_prefix_agrees_with_a_whole_parse(name, text):
    tracker = OpenTracker()
    lines = text.split("\n")
    for n in range(1, len(lines) + 1):
        typed = "\n".join(lines[:n])  # as the prompt's buffer holds it: no newline after the last line
        assert _opener(tracker.at_end(typed)) == _whole(typed), (name, n, typed)
        assert _opener(tracker.at_end(typed + "\n")) == _whole(typed + "\n"), (name, n)
        # the line after: what is open at its start
        expected = is_complete(typed)
        label = tracker.opener_at(typed + "\nnext", n)
        assert label == _opener(expected), (name, n, typed)


def test_an_edit_further_up_is_followed():
    tracker = OpenTracker()
    assert tracker.at_end("task t\n  host LOCAL\n").opener == "task"
    assert tracker.at_end("set x 1\n  host LOCAL\n") is None
    assert tracker.at_end("set x {\n  host LOCAL\n").opener == "{"
    assert tracker.at_end("set x {}\n  host LOCAL\nend") is not None or True
    assert _opener(tracker.at_end("set x {}\n  host LOCAL\nend")) == _opener(is_complete("set x {}\n  host LOCAL\nend"))


def test_messages_say_where_the_construct_opened():
    tracker = OpenTracker()
    err = tracker.at_end("echo a\nset x {\nb")
    assert err.message == is_complete("echo a\nset x {\nb").message
    err = tracker.at_end("task t\n  host LOCAL")
    assert err.message == is_complete("task t\n  host LOCAL").message


def test_a_long_block_costs_each_line_once():
    lines = ["macro long n"] + [f"  set r{i} [expr {{$n * {i}}}]" for i in range(3000)]
    tracker = OpenTracker()
    began = time.perf_counter()
    for n in range(1, len(lines) + 1):
        text = "\n".join(lines[:n])
        assert tracker.at_end(text).opener == "macro"
        tracker.opener_at(text, n - 1)
    assert time.perf_counter() - began < 10  # a whole parse per line took minutes


def test_a_long_braced_body_costs_each_line_once():
    lines = ["proc long {n} {"] + [f"  set r{i} [expr {{$n * {i}}}]" for i in range(3000)]
    tracker = OpenTracker()
    began = time.perf_counter()
    for n in range(1, len(lines) + 1):
        assert tracker.at_end("\n".join(lines[:n])).opener == "{"
    assert tracker.at_end("\n".join(lines) + "\n}") is None
    assert time.perf_counter() - began < 10


@pytest.mark.parametrize("name,text", list(_texts()), ids=[n for n, _ in _texts()])
def test_a_whole_text_at_once_gives_every_line_its_state(name, text):
    """A paste arrives in one piece: the states of all its lines come from one parse."""
    lines = text.split("\n")
    whole = OpenTracker()
    whole.at_end(text)
    for n in range(1, len(lines)):
        assert whole.opener_at(text, n) == _opener(is_complete("\n".join(lines[:n]))), (name, n)


def test_parses_says_whether_a_whole_parse_would_fail():
    tracker = OpenTracker()
    for text in ("echo a]", "end", "if $x\nelse\nelse\nend", "echo ok\necho a]\necho b"):
        assert not tracker.parses(text)
    for text in ("echo a", "task t\n  host LOCAL", "set x {a]", "echo ok\n"):
        assert tracker.parses(text)
