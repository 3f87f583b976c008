"""The client protocol: encoding, decoding, and every way a line can be malformed."""

from __future__ import annotations

import json

import pytest

from pcontrol.errors import ErrorCode, WireError
from pcontrol.wire import (MAX_ARGS, Event, EventKind, Reply, Request, decode_request,
                           decode_server_message, encode)


def test_request_round_trip() -> None:
    request = Request(7, ("host", "add", "node1", "-slots", "4"))
    line = encode(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == request


@pytest.mark.parametrize("message", [
    Reply.success(3, "ok text", {"a": [1, 2]}),
    Reply.failure(4, ErrorCode.NOT_FOUND, 'no host "x"'),
    Reply.failure(None, ErrorCode.MALFORMED, "not JSON"),
    Event(EventKind.JOB, {"id": 1, "state": "DONE"}, seq=12),
    Event(EventKind.HOST, {"name": "n", "state": "IDLE"}, seq=1),
])
def test_server_messages_round_trip(message: object) -> None:
    assert decode_server_message(encode(message)) == message


def test_unicode_survives() -> None:
    request = Request(1, ("job", "--", "echo", "héllo ✓"))
    assert decode_request(encode(request)).argv[-1] == "héllo ✓"


@pytest.mark.parametrize("line, code, request_id, words", [
    (b"not json\n", ErrorCode.MALFORMED, None, "not JSON"),
    (b"[1, 2]\n", ErrorCode.MALFORMED, None, "JSON object"),
    (b'{"argv": ["ping"]}\n', ErrorCode.MALFORMED, None, '"id"'),
    (b'{"id": "7", "argv": ["ping"]}\n', ErrorCode.MALFORMED, None, '"id"'),
    (b'{"id": true, "argv": ["ping"]}\n', ErrorCode.MALFORMED, None, '"id"'),
    (b'{"id": 5, "argv": "ping"}\n', ErrorCode.MALFORMED, 5, "list of strings"),
    (b'{"id": 5, "argv": ["ping", 3]}\n', ErrorCode.MALFORMED, 5, "list of strings"),
    (b'{"id": 5, "argv": []}\n', ErrorCode.MALFORMED, 5, "empty"),
    (b'{"id": 5, "argv": ["ping"], "v": 99}\n', ErrorCode.UNSUPPORTED, 5, "version 99"),
    (b'{"id": 5, "argv": ["ping"], "v": "1"}\n', ErrorCode.MALFORMED, 5, '"v"'),
    (b'\xff\xfe{"id": 1}\n', ErrorCode.MALFORMED, None, "UTF-8"),
    (b"[" * 100_000 + b"\n", ErrorCode.MALFORMED, None, ""),
])
def test_malformed_requests(line: bytes, code: ErrorCode, request_id: int | None,
                            words: str) -> None:
    with pytest.raises(WireError) as caught:
        decode_request(line)
    assert caught.value.code is code
    assert caught.value.request_id == request_id
    assert words in caught.value.message


def test_too_many_args_refused() -> None:
    line = json.dumps({"id": 1, "argv": ["x"] * (MAX_ARGS + 1)})
    with pytest.raises(WireError, match="more than"):
        decode_request(line)


def test_extra_fields_are_ignored() -> None:
    assert decode_request('{"id": 1, "argv": ["ping"], "later": {"x": 1}}').argv == ("ping",)


@pytest.mark.parametrize("line", [
    '{"id": 1}', '{"id": 1, "ok": "yes"}', '{"id": "1", "ok": true}',
    '{"id": 1, "ok": false, "error": "bad"}', '{"event": "nonsense", "data": {}}',
    '{"event": "job", "data": [1]}',
])
def test_malformed_server_messages(line: str) -> None:
    with pytest.raises(WireError):
        decode_server_message(line)


@pytest.mark.parametrize("line", [
    b'{"id": 1, "ok": true} x\n', b'{"id": 1, "ok": true}\nx', b'{"id": 1, "ok":', b'{"id": 1, "text": "\x01"}\n',
])
def test_a_line_decoded_at_once_is_refused_as_json_loads_would(line: bytes) -> None:
    """The fast path (an object from the first character, then its newline) takes nothing
    json.loads refuses: trailing data, a cut line, a raw control character."""
    with pytest.raises(WireError, match="not JSON"):
        decode_server_message(line)


def test_whitespace_around_a_line_is_still_read() -> None:
    assert decode_server_message(b' {"id": 1, "ok": true} \r\n') == Reply(1, True)
