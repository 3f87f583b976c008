"""The script parser (psched.lang.parser.parse) against hostile text: deep nesting of every
opener, unbalanced mixtures, lone surrogates and control characters, text decoded from
arbitrary bytes, huge words. Only SchedError may come out, and a parser that refused one
text still parses the next (its state is restored).

tests/lang/test_fuzz.py fuzzes parse and the interpreter with short random scripts; this
file adds size and depth. Examples per property: HOSTILE_FUZZ_EXAMPLES (default 150).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psched.lang.errors import SchedError
from psched.lang.parser import parse

SETTINGS = settings(max_examples=int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "150")),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

OPENERS = ["{", "[", '"', "$(", "${", "$a(", "(", "if 1\n", "while 1\n", "macro m\n",
           "proc p {} {", "expr {", "[set x ", "{*}"]
CLOSERS = ["}", "]", '"', ")", "end\n", "\n", ";", "\\", "\\\n", "#", " "]


def parses_or_sched_error(text: str) -> None:
    try:
        parse(text, "hostile.sched")
    except SchedError as err:
        assert err.message
    # whatever happened, the parser still works
    assert len(parse("set x 1\n", "after.sched").commands) == 1


nesting = st.lists(st.tuples(st.sampled_from(OPENERS), st.integers(1, 400)),
                   min_size=1, max_size=6)


@SETTINGS
@given(nesting, st.lists(st.sampled_from(CLOSERS), max_size=30), st.booleans())
def test_deep_and_unbalanced_nesting(openers: list[tuple[str, int]], closers: list[str],
                                     close_all: bool) -> None:
    text = "".join(opener * depth for opener, depth in openers) + "".join(closers)
    if close_all:
        text += "".join({"{": "}", "[": "]", '"': '"'}.get(o[:1], "end\n") * d
                        for o, d in reversed(openers))
    parses_or_sched_error("set v " + text)


@SETTINGS
@given(st.binary(max_size=400))
def test_text_decoded_from_arbitrary_bytes(data: bytes) -> None:
    """A script file of any bytes, read the way Python reads undecodable input."""
    parses_or_sched_error(data.decode("utf-8", "surrogateescape"))
    parses_or_sched_error(data.decode("latin-1"))


@SETTINGS
@given(st.text(st.characters(codec=None) | st.sampled_from(["\x00", "\r", "\ufeff", "\u2028",
                                                           "\ud800", "\udfff", "{", "}"]),
               max_size=200))
def test_any_code_points(text: str) -> None:
    parses_or_sched_error(text)


@pytest.mark.parametrize("text", [
    "{" * 50_000,
    "[" * 50_000,
    "set x " + "{" * 10_000 + "}" * 10_000,
    "set x " + "[set y " * 5_000 + "1" + "]" * 5_000,
    "if 1\n" * 5_000 + "end\n" * 5_000,
    "$a(" * 20_000,
    "\\" * 50_001,
    '"[' * 20_000,
    "set x " + "y" * 2_000_000,
    "set x 1\n" * 10_000,
    "\x00" * 10_000,
], ids=["braces", "brackets", "closed-braces", "command-substitutions", "blocks",
        "array-indexes", "backslashes", "quoted-brackets", "2MB-word", "10k-lines", "NULs"])
def test_big_hostile_scripts(text: str) -> None:
    parses_or_sched_error(text)
