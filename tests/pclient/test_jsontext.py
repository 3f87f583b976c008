"""pclient.jsontext: the text and the errors of json.JSONEncoder.encode, by a C encoder made once."""

from __future__ import annotations

import json
import math

import pytest

from pclient.jsontext import encoder

OPTIONS = [dict(), dict(separators=(",", ":")), dict(separators=(",", ":"), ensure_ascii=False),
           dict(separators=(",", ":"), allow_nan=False)]
VALUES = [{"a": 1, "b": [1, 2.5, "x\u00e9\ud800", -0.0, 1e300], "c": None, "d": True, "e": {"f": 1765043958.1234567}},
          [1, {"x": []}, ()], {"n": math.nan, "i": -math.inf}, {"big": 10**30}, {1: 2, 2.5: 3, True: 4, None: 5},
          {}, [], "text", 3, None]


def _outcome(encode, value):
    try:
        return encode(value)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize("options", OPTIONS)
def test_same_text_and_errors_as_the_standard_encoder(options: dict) -> None:
    ours, theirs = encoder(**options), json.JSONEncoder(**options).encode
    for value in VALUES:
        assert _outcome(ours, value) == _outcome(theirs, value)
    assert _outcome(ours, {"o": object()}) == _outcome(theirs, {"o": object()})


def test_a_cycle_is_refused_and_an_error_leaves_no_marks() -> None:
    encode = encoder()
    shared = {"k": [1]}
    cyclic: dict = {"shared": shared}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        encode(cyclic)
    with pytest.raises(TypeError):
        encode({"shared": shared, "bad": object()})
    assert encode({"shared": shared, "again": shared}) == json.dumps({"shared": shared, "again": shared})
