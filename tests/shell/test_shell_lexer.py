"""psched.shell.highlight: token types for a sample, no error tokens, and `pygmentize -l sched`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Punctuation, String, Text, Whitespace

import psched  # noqa: F401  (registers the builtins the lexer recognises)
from psched.shell.highlight import SchedLexer

SAMPLE = """\
# fetch pages every minute
task fetch
  command wget -q $url
  periods -poll 5 -exec 0.5
  task.exit 0
    echo "done: $job_id [clock seconds]\\t$a(k)"
  end
end
mymacro ${odd name} {body {nested}} [expr {$x + 1}]; set n 0x1f
if {$x > 1} { echo yes } else { echo no }
"""


def tokens(text: str) -> list[tuple]:
    return [(tok, value) for tok, value in SchedLexer().get_tokens(text) if tok not in (Whitespace, Text.Whitespace)]


def test_sample_token_types():
    toks = tokens(SAMPLE)
    expect = [
        (Comment.Single, "# fetch pages every minute"),
        (Keyword, "task"),
        (Name.Function, "command") if "command" not in psched.lang.registry.BUILTINS.commands else (Name.Builtin, "command"),
        (Name.Attribute, "-q"),
        (Name.Variable, "$url"),
        (Name.Attribute, "-poll"),
        (Number.Integer, "5"),
        (Number.Float, "0.5"),
        (Keyword, "task.exit"),
        (Name.Builtin, "echo"),
        (String.Double, "done: "),
        (Name.Variable, "$job_id"),
        (Punctuation, "["),
        (String.Escape, "\\t"),
        (Name.Variable, "$a("),
        (Keyword, "end"),
        (Name.Function, "mymacro"),
        (Name.Variable, "${odd name}"),
        (Punctuation, "{"),
        (Name.Builtin, "expr"),
        (Punctuation, ";"),
        (Number.Hex, "0x1f"),
        (Keyword, "if"),
        (Keyword, "else"),
    ]
    for item in expect:
        assert item in toks, item
    # the order of the first few is the order of the text
    assert toks[:3] == [(Comment.Single, "# fetch pages every minute"), (Keyword, "task"), (Text, "fetch")]


def test_no_error_tokens_and_text_round_trips():
    text = SAMPLE + 'echo "unclosed [and $odd\n} ] stray\n$ \\\nx\n'
    pieces = list(SchedLexer().get_tokens(text))
    assert "".join(value for _, value in pieces) == text
    assert not [p for p in pieces if p[0] is Error]


def test_a_hash_inside_a_command_is_no_comment():
    assert (Comment.Single, "#x") not in tokens("echo a#x\n")
    assert (Comment.Single, "# x") in tokens("echo a; # x\n")


def test_pygments_finds_the_lexer_by_name_and_file_name():
    assert isinstance(get_lexer_by_name("sched"), SchedLexer)
    assert isinstance(get_lexer_for_filename("jobs.sched"), SchedLexer)
    assert SchedLexer.name == "Sched" and SchedLexer.aliases == ["sched"] and SchedLexer.filenames == ["*.sched"]


def test_pygmentize_command(tmp_path: Path):
    pygmentize = Path(sys.executable).with_name("pygmentize")
    if not pygmentize.exists():
        pytest.skip("no pygmentize next to this Python")
    script = tmp_path / "sample.sched"
    script.write_text(SAMPLE)
    done = subprocess.run([str(pygmentize), "-l", "sched", "-f", "terminal", str(script)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" in done.stdout and "mymacro" in done.stdout
    raw = subprocess.run([str(pygmentize), "-l", "sched", "-f", "raw", str(script)],
                         capture_output=True, text=True, timeout=30)
    assert "Token.Keyword\t'task'" in raw.stdout
