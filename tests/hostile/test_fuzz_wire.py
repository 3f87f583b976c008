"""Property tests of pcontrol's client protocol decoders (wire.decode_request, used by the
daemon on every line a client sends, and wire.decode_server_message, used by every client):
whatever the bytes, the outcome is a message or a WireError with a code and a message, never
another exception; what encode writes decodes back to the same message; encode always
writes one line of valid UTF-8.

Examples per property: HOSTILE_FUZZ_EXAMPLES (default 150) keeps the suite fast.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pcontrol import auth
from pcontrol.errors import ErrorCode, WireError
from pcontrol.wire import (MAX_ARGS, PIECEWISE_SEPARATORS, ErrorInfo, Event, EventKind, Reply,
                           Request, _PiecewiseRequest, decode_request, decode_server_message,
                           encode)

SETTINGS = settings(max_examples=int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "150")),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- strategies ------------------------------------------------------------------------------

#: Any Python str, lone surrogates included (JSON's "\ud800" decodes to one).
any_text = st.text(st.characters(codec=None), max_size=20)
#: Text that UTF-8 can carry.
valid_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
big_ints = st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
scalars = (st.none() | st.booleans() | big_ints | st.floats(allow_nan=False)
           | any_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(any_text, inner, max_size=4), max_leaves=8)
REQUEST_KEYS = ["id", "argv", "v"]
SERVER_KEYS = ["id", "ok", "text", "data", "error", "event", "seq"]


def near_objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the protocol's keys (and others) holding values of any type."""
    return st.dictionaries(st.sampled_from(keys) | any_text, json_values, max_size=6)


def as_line(obj: Any) -> bytes:
    return json.dumps(obj).encode("ascii") + b"\n"    # ASCII escapes keep lone surrogates


def mutate(data: st.DataObject, line: bytes) -> bytes:
    """Insert, delete or replace a few bytes of a valid line."""
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(line)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        junk = data.draw(st.binary(min_size=1, max_size=4)
                         | st.sampled_from([b"{", b"[", b'"', b"\\", b"\n", b"\\ud800",
                                            b"\xff", b"\xc3", b"1e999", b"NaN", b"null"]))
        if action == "insert":
            line = line[:where] + junk + line[where:]
        elif action == "delete":
            line = line[:where] + line[where + len(junk):]
        else:
            line = line[:where] + junk + line[where + len(junk):]
    return line


def check_request(line: bytes | str) -> Request | None:
    """Decode; a WireError is fine if it is well formed; anything else fails the test."""
    try:
        request = decode_request(line)
    except WireError as exc:
        assert isinstance(exc.code, ErrorCode) and exc.message
        assert exc.request_id is None or type(exc.request_id) is int
        encode(Reply.failure(exc.request_id, exc.code, exc.message))   # the reply goes out
        return None
    assert type(request.id) is int and request.argv
    assert all(isinstance(word, str) for word in request.argv)
    "".join(request.argv).encode("utf-8")          # only real text reaches the controller
    return request


def check_server_message(line: bytes | str) -> Reply | Event | None:
    try:
        message = decode_server_message(line)
    except WireError as exc:
        assert isinstance(exc.code, ErrorCode) and exc.message
        assert len(exc.message) < 2000                 # an excerpt, not the whole line
        return None
    if isinstance(message, Event):
        assert isinstance(message.kind, EventKind) and isinstance(message.data, dict)
    else:
        assert isinstance(message.ok, bool) and isinstance(message.text, str)
    return message


# -- decode_request --------------------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=300))
@example(b"\xff\xfe\n")
@example(b"[" * 100_000)
@example(b'{"a":' * 100_000)
@example(b'{"id": 1, "argv": ["\\ud800"]}')
@example(b'{"id": 1, "argv": ["ping"]' + b"," * 5)
@example(b'{"id": 1' + b"0" * 5000 + b', "argv": ["x"]}')
@example(b'{"id": 1e999, "argv": ["x"]}')
@example(b'{"id": 1, "argv": ["x"], "v": -1}')
@example(b"\x00")
def test_decode_request_on_any_bytes(line: bytes) -> None:
    check_request(line)


@SETTINGS
@given(near_objects(REQUEST_KEYS))
def test_decode_request_on_objects_of_any_shape(obj: dict[str, Any]) -> None:
    request = check_request(as_line(obj))
    if request is not None:
        assert request.id == obj["id"] and list(request.argv) == obj["argv"]


@SETTINGS
@given(st.integers(-(2 ** 63), 2 ** 63), st.lists(any_text, min_size=1, max_size=8),
       st.data())
def test_decode_request_on_mutated_requests(request_id: int, argv: list[str],
                                            data: st.DataObject) -> None:
    check_request(mutate(data, as_line({"id": request_id, "argv": argv})))


@SETTINGS
@given(st.integers(-(2 ** 63), 2 ** 63), st.lists(valid_text, min_size=1, max_size=8))
def test_requests_round_trip(request_id: int, argv: list[str]) -> None:
    request = Request(request_id, tuple(argv))
    assert decode_request(encode(request)) == request
    assert decode_request(encode(request).decode("utf-8")) == request


@SETTINGS
@given(st.integers(-(2 ** 63), 2 ** 63), st.lists(any_text, min_size=0, max_size=6),
       st.dictionaries(any_text, json_values, max_size=3), st.data())
def test_the_piecewise_decoder_agrees_with_json(request_id: int, argv: list[str],
                                                extra: dict[str, Any],
                                                data: st.DataObject) -> None:
    """Lines with very many separators are decoded piece by piece: the same object as
    json.loads gives, or a WireError where json.loads fails or finds a shape no request has."""
    obj = {**extra, "id": request_id, "argv": argv}
    line = mutate(data, as_line(obj)) if data.draw(st.booleans()) else as_line(obj)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        expected = None
    try:
        got = _PiecewiseRequest(text).parse()
    except WireError as exc:
        assert exc.message
        shapely = (isinstance(expected, dict)
                   and all(not isinstance(v, (list, dict)) for k, v in expected.items()
                           if k != "argv")
                   and (not isinstance(expected.get("argv"), (list, dict))
                        or (isinstance(expected["argv"], list)
                            and len(expected["argv"]) <= MAX_ARGS
                            and all(isinstance(w, str) for w in expected["argv"]))))
        assert not shapely, f"piecewise refused what json accepts: {text[:200]!r}"
        return
    assert got == expected


@pytest.mark.parametrize("filler", [b"[],", b"{},", b'"a",', b"1,", b"1.5,", b"null,"])
def test_a_request_of_millions_of_values_is_refused(filler: bytes) -> None:
    many = b'{"id": 5, "argv": [' + filler * (PIECEWISE_SEPARATORS + 1) + b'"end"]}'
    with pytest.raises(WireError) as caught:
        decode_request(many)
    assert caught.value.code is ErrorCode.MALFORMED and caught.value.request_id == 5
    assert caught.value.message in ('"argv" must be a list of strings',
                                    f'"argv" has more than {MAX_ARGS} words')


def test_a_request_with_separators_in_its_words_is_decoded_whole() -> None:
    argv = ["sh", "-c", "echo {a,b}[1]," * (PIECEWISE_SEPARATORS // 3)]
    assert decode_request(as_line({"id": 3, "argv": argv})) == Request(3, tuple(argv))


# -- decode_server_message -------------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=300))
@example(b'{"event": [' + b"[]," * 10_000 + b"[]]}")
@example(b'{"event": "job", "data": []}')
@example(b'{"id": null, "ok": true, "error": {"code": 1}}')
def test_decode_server_message_on_any_bytes(line: bytes) -> None:
    check_server_message(line)


@SETTINGS
@given(near_objects(SERVER_KEYS))
def test_decode_server_message_on_objects_of_any_shape(obj: dict[str, Any]) -> None:
    check_server_message(as_line(obj))


reply_data = st.recursive(st.none() | st.booleans() | big_ints | valid_text,
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(valid_text, inner, max_size=4), max_leaves=8)


@SETTINGS
@given(st.none() | big_ints, st.booleans(), any_text, reply_data,
       st.none() | st.tuples(any_text, any_text))
def test_replies_encode_to_valid_utf8_and_round_trip(request_id: int | None, ok: bool,
                                                     text: str, data: Any,
                                                     error: tuple[str, str] | None) -> None:
    reply = Reply(request_id, ok, text, data, ErrorInfo(*error) if error else None)
    line = encode(reply)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("utf-8")                    # even with lone surrogates in the text
    decoded = decode_server_message(line)
    assert isinstance(decoded, Reply)
    assert (decoded.id, decoded.ok, decoded.text, decoded.data) == (request_id, ok, text, data)


@SETTINGS
@given(st.sampled_from(list(EventKind)), st.dictionaries(valid_text, reply_data, max_size=5),
       st.integers(0, 2 ** 40))
def test_events_round_trip(kind: EventKind, data: dict[str, Any], seq: int) -> None:
    assert decode_server_message(encode(Event(kind, data, seq))) == Event(kind, data, seq)


# -- the TCP handshake lines -----------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=200) | near_objects(["auth", "proof", "challenge", "v"]).map(as_line))
def test_handshake_decoders_refuse_with_wire_errors_only(line: bytes) -> None:
    for decode in (auth.decode_proof, auth.decode_challenge):
        try:
            decode(line)
        except WireError as exc:
            assert exc.message
    try:
        proof = auth.decode_proof(line)
    except WireError:
        return
    assert auth.proof_matches(b"k" * 32, b"c" * 32, proof) is False
