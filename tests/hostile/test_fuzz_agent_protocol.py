"""Property tests of the agent protocol decoder (pclient.protocol.decode), in both directions:
the lines pcontrol reads from agents (hello, started, ended, pong, error, ...) and the lines
an agent reads from its controller (run, kill, ping, bye, ...). Whatever the line, decode
returns a message or raises ProtocolError with a reason, never another exception; every
valid message survives encode/decode; and a real pclient fed hostile lines answers errors
and keeps serving.

The message types and their fields are read from the module, so new types are covered as
they are added. Examples per property: HOSTILE_FUZZ_EXAMPLES (default 150; a third of
that per message type).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from hostile_harness import WAIT
from pclient import protocol
from pclient.protocol import MESSAGE_TYPES, Message, Outcome, ProtocolError, decode, encode

EXAMPLES = int(os.environ.get("HOSTILE_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Per message type (there are over a dozen): a third as many.
# Valid messages are drawn with filters (a run needs a non-empty argv and job id...), so on a
# loaded machine the filter health check can trip although nothing is wrong.
PER_TYPE = settings(SETTINGS, max_examples=max(20, EXAMPLES // 3),
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])

# Directions, from the module docstring; a type added later lands in OTHER and is still fuzzed.
AGENT_TO_CONTROLLER = {"hello", "started", "ended", "pong", "error", "resumed", "lost",
                       "challenge"}
CONTROLLER_TO_AGENT = {"run", "kill", "ping", "bye", "auth", "ack", "takeover"}
OTHER = set(MESSAGE_TYPES) - AGENT_TO_CONTROLLER - CONTROLLER_TO_AGENT


def direction(tag: str) -> str:
    if tag in AGENT_TO_CONTROLLER:
        return "agent->controller"
    return "controller->agent" if tag in CONTROLLER_TO_AGENT else "other"


TAGS = sorted(MESSAGE_TYPES, key=lambda tag: (direction(tag), tag))
TAG_IDS = [f"{direction(tag)}:{tag}" for tag in TAGS]

# -- strategies ------------------------------------------------------------------------------

any_text = st.text(st.characters(codec=None), max_size=20)
#: Integers up to what a float can hold (larger ones are refused: see the test below).
floatable_ints = st.integers(min_value=-(2 ** 1000), max_value=2 ** 1000)
scalars = (st.none() | st.booleans() | floatable_ints | st.floats(allow_nan=False)
           | any_text | st.sampled_from([o.value for o in Outcome]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(any_text, inner, max_size=4), max_leaves=8)


def field_names(tag: str) -> list[str]:
    return [f.name for f in dataclasses.fields(MESSAGE_TYPES[tag])]


def hostile_object(tag: str) -> st.SearchStrategy[dict[str, Any]]:
    """The type tag (or something near it) and the message's fields holding anything."""
    names = field_names(tag)
    tags = st.just(tag) | st.sampled_from([tag.upper(), tag + " ", None, 1, [tag]])
    fields = (st.fixed_dictionaries({}, optional={n: json_values for n in names})
              if names else st.just({}))
    extra = st.dictionaries(any_text, json_values, max_size=2)
    return st.tuples(tags, fields, extra).map(
        lambda parts: {**parts[2], **parts[1], "type": parts[0]})


def valid_value(hint: Any) -> st.SearchStrategy[Any]:
    """Values a field with type `hint` accepts."""
    text = st.text(max_size=20)
    simple = {
        str: text, int: st.integers(-(2 ** 70), 2 ** 70), bool: st.booleans(),
        float: st.floats(allow_nan=False, allow_infinity=False), Outcome: st.sampled_from(Outcome),
        typing.Tuple[str, ...]: st.lists(text, max_size=4).map(tuple),
        typing.Dict[str, str]: st.dictionaries(text, text, max_size=4),
    }
    if hint in simple:
        return simple[hint]
    inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if len(inner) == 1 and type(None) in typing.get_args(hint):
        return st.none() | valid_value(inner[0])
    raise AssertionError(f"no strategy for field type {hint!r}: extend valid_value()")


@st.composite
def valid_message(draw: st.DrawFn, tag: str) -> Message:
    cls = MESSAGE_TYPES[tag]
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: draw(valid_value(hints[f.name])) for f in dataclasses.fields(cls)}
    try:
        return cls(**kwargs)
    except ValueError:          # a range check in the message itself (e.g. an empty job id)
        reject()
        raise


def check_decode(line: bytes | str) -> Message | None:
    try:
        message = decode(line)
    except ProtocolError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        assert exc.job is None or isinstance(exc.job, str)
        assert len(exc.excerpt) <= protocol.EXCERPT_CHARS + 3
        encode(protocol.Error(reason=exc.reason, job=exc.job, excerpt=exc.excerpt))  # answerable
        return None
    assert type(message) in MESSAGE_TYPES.values()
    return message


# -- properties ------------------------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=300))
@example(b"\xff\xfe")
@example(b"[" * 100_000)
@example(b'{"type": "ping", "seq": NaN}')
@example(b'{"type": "pong", "seq": 1, "clock": Infinity, "running": 0}')
@example(b'{"type": "ping", "seq": 1' + b"0" * 5000 + b"}")
@example(b'{"type": "run", "job": "j", "argv": ["\\ud800"], "env": {"\\udfff": "x"}}')
@example(b'{"type": {"type": "ping"}}')
def test_decode_any_bytes(line: bytes) -> None:
    check_decode(line)


@pytest.mark.parametrize("tag", TAGS, ids=TAG_IDS)
def test_decode_objects_of_any_shape(tag: str) -> None:
    @PER_TYPE
    @given(hostile_object(tag))
    def prop(obj: dict[str, Any]) -> None:
        message = check_decode(json.dumps(obj).encode("ascii"))
        if message is not None:
            assert message.TYPE == obj["type"] == tag
            again = decode(encode(message))       # what decode accepts, encode can write
            assert again == message

    prop()


@pytest.mark.parametrize("tag", TAGS, ids=TAG_IDS)
def test_valid_messages_round_trip(tag: str) -> None:
    @PER_TYPE
    @given(valid_message(tag))
    def prop(message: Message) -> None:
        line = encode(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        line.decode("ascii")
        assert decode(line) == message
        assert decode(line.decode("ascii")) == message

    prop()


@SETTINGS
@given(st.sampled_from(TAGS).flatmap(valid_message), st.data())
def test_mutated_lines(message: Message, data: st.DataObject) -> None:
    line = encode(message)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(line)))
        junk = data.draw(st.binary(min_size=1, max_size=3)
                         | st.sampled_from([b"{", b"[", b'"', b"\\", b"\\u", b"1e999", b"-",
                                            b"null", b"\xc3", b"0" * 400]))
        line = line[:where] + junk + line[where + data.draw(st.integers(0, 3)):]
    check_decode(line)


@pytest.mark.parametrize("line", [
    b'{"type": "pong", "seq": 1, "clock": 1' + b"0" * 400 + b', "running": 0}',
    b'{"type": "run", "job": "j", "argv": ["true"], "timeout": 1' + b"0" * 400 + b"}",
], ids=["pong.clock", "run.timeout"])
def test_an_int_beyond_float_range_in_a_float_field(line: bytes) -> None:
    with pytest.raises(ProtocolError, match="finite number"):
        decode(line)


# -- a real agent, fed hostile lines ---------------------------------------------------------

HOSTILE_LINES = [
    b"\xff\xfe\xfd",
    b"[" * 200_000,
    b'{"type": "run"}',
    b'{"type": "run", "job": "", "argv": ["true"]}',
    b'{"type": "run", "job": "j", "argv": []}',
    b'{"type": "run", "job": "j", "argv": ["true"], "timeout": -1}',
    b'{"type": "run", "job": "j", "argv": ["true"], "output_limit": -5}',
    b'{"type": "run", "job": "j", "argv": ["\\ud800"]}',
    b'{"type": "kill", "job": "nobody"}',
    b'{"type": "hello", "version": 1, "host": "x", "pid": 1, "clock": 0, "slots": 1, '
    b'"agent": "impostor"}',
    b'{"type": "ping", "seq": "one"}',
    b'{"type": "ack", "jobs": [1, 2]}',
    b'{"type": "auth", "token": 5, "name": "n"}',
    b'{"type": "nonsense"}',
    b"null",
    b"\x00" * 100,
    b'{"type": "ping", "seq": 1' + b"0" * 5000 + b"}",
]


def test_a_real_agent_answers_hostile_lines_with_errors_and_keeps_serving() -> None:
    stdin = b"".join(line + b"\n" for line in HOSTILE_LINES) + b'{"type": "ping", "seq": 7}\n'
    # The ping is answered before stdin's end makes the agent leave: it was still serving.
    result = subprocess.run([sys.executable, "-m", "pclient"], input=stdin,
                            capture_output=True, timeout=WAIT, cwd="/tmp")
    replies = [decode(line) for line in result.stdout.splitlines()]
    assert isinstance(replies[0], protocol.Hello)
    errors = [r for r in replies if isinstance(r, protocol.Error)]
    pongs = [r for r in replies if isinstance(r, protocol.Pong)]
    assert [p.seq for p in pongs] == [7], result.stderr.decode(errors="replace")[-2000:]
    assert len(errors) >= len(HOSTILE_LINES) - 2       # a kill of an unknown job may be quiet
    assert all(e.reason for e in errors)
    assert b"Traceback" not in result.stderr
