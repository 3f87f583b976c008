"""JSON text made by the standard library's C encoder made once, not once a call.

`json.JSONEncoder.encode` makes a new C encoder (json.encoder.c_make_encoder) for every
object it encodes, with a closure and the option checks in Python around it: about a third
of the cost of encoding a job's record of twenty fields. pcontrol encodes several a job (its
journal's rows, its subscribers' events, its agents' `run` and `ack`), so `encoder()` makes
the C encoder once and calls it. The text is exactly `JSONEncoder(**options).encode(obj)`'s,
errors included: a circular structure is refused by the same check (its marks are cleared
after an error), a value JSON cannot hold raises the same TypeError, an out-of-range float
with allow_nan=False the same ValueError. Without the C accelerator (another Python), it is
JSONEncoder.encode itself.

Standard library only (pclient is copied to agents' hosts).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _stdlib
from typing import Any

__all__ = ["encoder"]


def encoder(*, separators: tuple[str, str] = (", ", ": "), ensure_ascii: bool = True,
            allow_nan: bool = True) -> Callable[[Any], str]:
    """A function giving `json.JSONEncoder(separators=..., ensure_ascii=..., allow_nan=...)
    .encode(obj)` for a dict or list `obj` (anything else goes to JSONEncoder.encode)."""
    plain = json.JSONEncoder(separators=separators, ensure_ascii=ensure_ascii, allow_nan=allow_nan)
    make = _stdlib.c_make_encoder
    if make is None:
        return plain.encode
    markers: dict[int, Any] = {}
    escape = _stdlib.encode_basestring_ascii if ensure_ascii else _stdlib.encode_basestring
    item_separator, key_separator = separators
    c_encode = make(markers, plain.default, escape, None, key_separator, item_separator,
                    False, False, allow_nan)
    join = "".join

    def encode(obj: Any) -> str:
        if type(obj) is not dict and type(obj) is not list:
            return plain.encode(obj)
        try:
            return join(c_encode(obj, 0))
        except BaseException:
            markers.clear()  # what an error left marked is not a cycle next time
            raise

    return encode
