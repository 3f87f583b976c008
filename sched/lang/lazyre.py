"""Regular expressions compiled at their first use instead of at import (start-up, issue 13).

    _WORD_RE = lazy_compile(r"[^ \t]+")      # then _WORD_RE.match(text), as with re.compile

The language's modules keep their patterns at module level, where they are read; compiling all
of them when the modules are imported was about a tenth of the instructions of a `sched -c
'echo hi'`, which uses a few. The first use of the object compiles the pattern and keeps the
compiled pattern's methods and attributes on it, so that later calls cost what they cost on
the pattern itself.
"""

from __future__ import annotations

import re

__all__ = ["LazyPattern", "lazy_compile"]

_FORWARDED = ("match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer", "scanner",
              "pattern", "flags", "groups", "groupindex")


class LazyPattern:
    """A re.Pattern to be: what `re.compile(source, flags)` gives, made when first used."""

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source, self._flags = source, flags

    def __getattr__(self, name: str) -> object:
        if name not in _FORWARDED:
            raise AttributeError(name)
        compiled = re.compile(self._source, self._flags)
        for attr in _FORWARDED:
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_compile({self._source!r}, {self._flags!r})"


def lazy_compile(source: str, flags: int = 0) -> LazyPattern:
    """`re.compile(source, flags)` at the first use of the result."""
    return LazyPattern(source, flags)
