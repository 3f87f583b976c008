"""A script's text from its bytes, as tclsh reads it.

    text = read_script_file(path)               # `sched FILE`, `source FILE`, a reload
    stream.reconfigure(errors=SCRIPT_ERRORS)    # commands read from stdin

Scripts are UTF-8. A byte that is not part of valid UTF-8 stands for the Latin-1 character of
its value, as in Tcl 8.6 (`puts "café"` saved by a Latin-1 editor prints café, not a
replacement character, and stdin read under a strict locale does not stop at it). A UTF-8 byte
order mark at the start of a file (what some editors write) is dropped, as Tcl's `source` drops
it; elsewhere it is a character like any other.
"""

from __future__ import annotations

import codecs

__all__ = ["SCRIPT_ERRORS", "read_script_file"]

SCRIPT_ERRORS = "psched-latin1"
"""The decoding error handler named so: each byte that is not UTF-8 as its Latin-1 character."""


def _latin1(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("latin-1"), error.end


codecs.register_error(SCRIPT_ERRORS, _latin1)

_BOM = "\ufeff"


def read_script_file(path: str) -> str:
    """The text of the script file at `path` (OSError if it cannot be read)."""
    with open(path, encoding="utf-8", errors=SCRIPT_ERRORS) as fh:
        text = fh.read()
    return text[1:] if text.startswith(_BOM) else text
