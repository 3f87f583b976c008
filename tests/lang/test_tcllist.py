"""Tcl list syntax (psched.lang.tcllist): splitting, canonical joining, backslash substitution."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psched.lang.errors import ListError, SchedError
from psched.lang.tcllist import (
    backslash_at,
    backslash_subst,
    join_list,
    quote_element,
    split_list,
    split_tuple,
)

SPLIT_ROWS = [
    ("", []),
    ("   \t\n ", []),
    ("a b c", ["a", "b", "c"]),
    ("  a \n\t b\r\fc\v", ["a", "b", "c"]),
    ("a\xa0b", ["a\xa0b"]),  # only ASCII white space separates
    ("a\x1cb", ["a\x1cb"]),
    ("{a b} c", ["a b", "c"]),
    ("{a {b c} d}", ["a {b c} d"]),
    ("{}", [""]),
    ("{} {}", ["", ""]),
    ('"a b" c', ["a b", "c"]),
    ('""', [""]),
    ('"a\\tb"', ["a\tb"]),
    ('"a {b" c', ["a {b", "c"]),
    ("{a\\nb}", ["a\\nb"]),  # braces keep backslashes literally
    ("{a\\}b}", ["a\\}b"]),  # an escaped brace does not close
    ("{a\\{b}", ["a\\{b"]),
    ("a\\ b c", ["a b", "c"]),
    ("a\\nb", ["a\nb"]),
    ("a\\", ["a\\"]),
    ("\\", ["\\"]),
    ("a\\\n   b", ["a b"]),  # backslash-newline inside a bare element
    ('a"b c', ['a"b', "c"]),  # a quote inside a bare word is literal
    ("a{b} c", ["a{b}", "c"]),
    ("}", ["}"]),
    ("a}b", ["a}b"]),
    ("\\{a", ["{a"]),
    ("{a\nb} c", ["a\nb", "c"]),
    ("\\x41\\u00e9\\101", ["A\u00e9A"]),
    ("x\\$y \\[z\\]", ["x$y", "[z]"]),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT_ROWS)
def test_split_list(text: str, expected: list[str]) -> None:
    assert split_list(text) == expected


SPLIT_ERRORS = [
    ("{a b", "unmatched open brace in list", 0),
    ("x {a {b}", "unmatched open brace in list", 2),
    ('a "b c', "unmatched open quote in list", 2),
    ('"abc\\"', "unmatched open quote in list", 0),
    ("{a}x y", 'list element in braces followed by "x" instead of space', 3),
    ("{a}{b}", 'list element in braces followed by "{b}" instead of space', 3),
    ('"a"bc', 'list element in quotes followed by "bc" instead of space', 3),
    ("{a\\}", "unmatched open brace in list", 0),
]


@pytest.mark.parametrize(("text", "message", "offset"), SPLIT_ERRORS)
def test_split_list_errors(text: str, message: str, offset: int) -> None:
    with pytest.raises(ListError) as info:
        split_list(text)
    assert info.value.message == message
    assert info.value.offset == offset
    assert isinstance(info.value, SchedError)


# Expected texts are what Tcl 8.6's [list ...] produces for the same elements.
JOIN_ROWS = [
    ([], ""),
    ([""], "{}"),
    (["a", "b"], "a b"),
    (["a b"], "{a b}"),
    (["a", "#b"], "a #b"),
    (["#a"], "{#a}"),
    (["#c d", "x"], "{#c d} x"),
    (["#{a"], "\\#\\{a"),
    (["a{b}"], "a{b}"),
    (["a{b"], "a\\{b"),
    (["a\\"], "a\\\\"),
    (["{a"], "\\{a"),
    (["a}b"], "a\\}b"),
    (['x"y'], 'x\\"y'),
    (['"x'], '{"x}'),
    (["a]"], "a\\]"),
    (["a b]"], "{a b]}"),
    (["{a}"], "{{a}}"),
    (["a\\\nb"], "a\\\\\\nb"),
    (["a\nb"], "{a\nb}"),
    (["\\{"], "{\\{}"),
    (["a\\{"], "{a\\{}"),
    (["\\}"], "{\\}}"),
    (["a", "#"], "a #"),
    (["$x", "[y]", "a;b"], "{$x} {[y]} {a;b}"),
]


@pytest.mark.parametrize(("items", "expected"), JOIN_ROWS)
def test_join_list_is_canonical_tcl(items: list[str], expected: str) -> None:
    assert join_list(items) == expected
    assert split_list(expected) == items


def test_quote_element_hash_only_when_asked() -> None:
    assert quote_element("#a") == "{#a}"
    assert quote_element("#a", quote_hash=False) == "#a"
    assert quote_element("") == "{}"
    assert quote_element("plain") == "plain"


BACKSLASH_ROWS = [
    ("plain", "plain"),
    (r"\n\t\r\a\b\f\v", "\n\t\r\a\b\f\v"),
    (r"\\ \" \$ \[ \] \{ \}", '\\ " $ [ ] { }'),
    ("a\\\n   \t b", "a b"),
    (r"\x41\x414\x", "AA4x"),
    (r"\u00e9\uZ", "\u00e9uZ"),
    (r"\U0001F600", "\U0001F600"),
    (r"\U00110000", "\U00011000" + "0"),  # stops before passing U+10FFFF
    (r"\101\08\777\400", "A\x008?7 0"),  # at most 0o377
    (r"\q\z", "qz"),
    ("\\", "\\"),
    ("abc\\", "abc\\"),
]


@pytest.mark.parametrize(("text", "expected"), BACKSLASH_ROWS)
def test_backslash_subst(text: str, expected: str) -> None:
    assert backslash_subst(text) == expected


def test_backslash_at_reports_the_end() -> None:
    assert backslash_at("ab\\x41cd", 2) == ("A", 6)
    assert backslash_at("\\\n  x", 0) == (" ", 4)


def test_split_is_cached_but_lists_are_fresh() -> None:
    text = "alpha {beta gamma} delta"
    assert split_tuple(text) is split_tuple(text)
    first = split_list(text)
    first.append("mutated")
    assert split_list(text) == ["alpha", "beta gamma", "delta"]


def test_long_lists_split_without_the_cache() -> None:
    items = [f"item {i}" if i % 3 else f"w{i}" for i in range(5000)]
    text = join_list(items)
    assert len(text) > 16384
    assert split_list(text) == items


# --- properties ----------------------------------------------------------------------------

_tricky = st.text(alphabet=st.sampled_from(list('ab #{}[]"$;\\ \t\n\r\x0b\x0c\xa0é')), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=10), _tricky), max_size=6))
def test_join_then_split_round_trips(items: list[str]) -> None:
    assert split_list(join_list(items)) == items


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), _tricky))
def test_quote_element_is_one_element(s: str) -> None:
    assert split_list(quote_element(s)) == [s]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list('ab {}"\\ \n\t') + ["\\\n", "\\x4", "\\u00e9"]), max_size=20).map("".join))
def test_split_list_raises_only_list_error(text: str) -> None:
    try:
        elements = split_list(text)
    except ListError as e:
        assert e.offset is not None and 0 <= e.offset <= len(text)
    else:
        # whatever was read must write back to something that reads the same
        assert split_list(join_list(elements)) == elements


# --- against the real thing ----------------------------------------------------------------

_TCLSH = shutil.which("tclsh")
_JOIN_SCRIPT = r"""
fconfigure stdin -encoding binary; fconfigure stdout -encoding binary
while {[gets stdin line] >= 0} {
  set l {}
  foreach h [split $line " "] {
    if {$h eq ""} continue
    if {$h eq "-"} {lappend l ""} else {lappend l [encoding convertfrom utf-8 [binary format H* $h]]}
  }
  binary scan [encoding convertto utf-8 [list {*}$l]] H* out
  puts $out
}
"""
_SPLIT_SCRIPT = r"""
fconfigure stdin -encoding binary; fconfigure stdout -encoding binary
while {[gets stdin line] >= 0} {
  if {$line eq "-"} {set s ""} else {set s [encoding convertfrom utf-8 [binary format H* $line]]}
  if {[catch {llength $s} err]} { puts "E $err"; continue }
  set o {}
  foreach e $s { binary scan [encoding convertto utf-8 $e] H* h; lappend o "=$h" }
  puts "OK [join $o { }]"
}
"""


def _run_tcl(script: str, lines: list[str], tmp_path) -> list[str]:
    path = tmp_path / "check.tcl"
    path.write_text(script)
    done = subprocess.run(
        [_TCLSH, str(path)], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.split("\n")
    assert len(out) >= len(lines)
    return out


@pytest.mark.skipif(_TCLSH is None, reason="tclsh (Debian package tcl) is not installed")
def test_join_list_matches_tclsh(tmp_path) -> None:
    rnd = random.Random(5)
    alphabet = list('ab #{}[]"$;\\ \t\n\rx\x0bé')
    cases = [
        ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6))) for _ in range(rnd.randint(0, 4))]
        for _ in range(1500)
    ]
    lines = [" ".join(x.encode().hex() or "-" for x in case) for case in cases]
    out = _run_tcl(_JOIN_SCRIPT, lines, tmp_path)
    for case, expected_hex in zip(cases, out):
        assert join_list(case) == bytes.fromhex(expected_hex).decode(), case


@pytest.mark.skipif(_TCLSH is None, reason="tclsh (Debian package tcl) is not installed")
def test_split_list_matches_tclsh(tmp_path) -> None:
    rnd = random.Random(7)
    alphabet = list('ab {}"\\ \t\nxn0u7') + ["\\\n  ", "\\x4", "\\u00e9", "\\17", "\\n"]
    cases = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12))) for _ in range(2000)]
    out = _run_tcl(_SPLIT_SCRIPT, [c.encode().hex() or "-" for c in cases], tmp_path)
    for case, tcl in zip(cases, out):
        try:
            ours = "OK " + " ".join("=" + e.encode().hex() for e in split_list(case))
        except ListError as e:
            ours = "E " + e.message
        assert ours.rstrip() == tcl.rstrip(), case
