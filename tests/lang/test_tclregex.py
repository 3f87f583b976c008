"""Tcl's regular expressions on the `regex` package (psched.lang.tclregex): the preference
rule (longest or shortest), the matches it gives where Python's first-alternative rule would
not, and Ctrl-C stopping a match that backtracks for ages."""

from __future__ import annotations

import io
import signal
import time

import pytest

import psched
from psched.lang.errors import Interrupted
from psched.lang.tclregex import prefers_shortest, regex_search, tcl_regex

PREFERENCES = [
    ("a|ab", False), ("a*?", True), ("(.*?)(\\d+)", True), ("(a|b)*?c", False), ("x+?y*", True),
    ("x{2}?y+?", True), ("x{2,3}?", True), ("abc", False), ("(a+)(b*?)", False), ("[*?]+?", True),
]


@pytest.mark.parametrize("pattern, shortest", PREFERENCES)
def test_preference_follows_the_first_quantifier(pattern, shortest):
    assert prefers_shortest(pattern) is shortest


MATCHES = [  # (pattern, text, Tcl's whole match)
    ("a|ab", "ab", "ab"),
    ("x(\\d+|\\d+\\.\\d+)", "x3.25", "x3.25"),
    ("(.*?)(\\d+)", "abc123", "abc1"),
    ("in|int|integer", "integers", "integer"),
    ("(a*)(ab)*b", "aabb", "aabb"),
    ("a*?", "aaa", ""),
]


@pytest.mark.parametrize("pattern, text, whole", MATCHES)
def test_leftmost_longest_or_shortest_as_tcl(pattern, text, whole):
    interp = psched.Interp(stdout=io.StringIO())
    assert regex_search(interp, tcl_regex(pattern), text).group(0) == whole


def test_ctrl_c_stops_a_backtracking_match_at_once():
    """SIGINT's handler calls Interp.interrupt (as the shell's does); inside the match that
    raises Interrupted, which the package lets through from its signal check."""
    interp = psched.Interp(stdout=io.StringIO())
    previous = signal.signal(signal.SIGALRM, lambda *_: interp.interrupt())
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            interp.eval("regexp {(a|aa)+$} [string repeat a 60]b")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10  # the match alone would take longer than a lifetime
    assert interp.eval("regexp {a|ab} ab m; set m") == "ab"  # and the interpreter goes on
