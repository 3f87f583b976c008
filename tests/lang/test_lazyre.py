"""psched.lang.lazyre: a module-level pattern compiled at its first use, then as re.compile's."""

from __future__ import annotations

import re

import pytest

from psched.lang.lazyre import lazy_compile


def test_a_lazy_pattern_answers_as_the_compiled_one():
    source, flags = r"(\w+)=(\d+)", re.S
    lazy, real = lazy_compile(source, flags), re.compile(source, flags)
    assert "match" not in vars(lazy)  # nothing compiled yet
    text = "a=1 b=22"
    assert lazy.match(text).groups() == real.match(text).groups()
    assert lazy.findall(text) == real.findall(text)
    assert lazy.sub(r"\2", text) == real.sub(r"\2", text)
    assert (lazy.pattern, lazy.flags, lazy.groups) == (real.pattern, real.flags, real.groups)
    assert vars(lazy)["match"].__self__ == real  # later calls go straight to the pattern


def test_a_lazy_pattern_has_no_other_attributes():
    with pytest.raises(AttributeError):
        lazy_compile("x").nothing  # noqa: B018
