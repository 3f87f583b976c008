"""The agent protocol: every message round-trips, every bad line is refused with a reason."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pclient import protocol
from pclient.protocol import (
    DEFAULT_OUTPUT_LIMIT,
    MAX_LINE,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Ack,
    Auth,
    Bye,
    Challenge,
    ClockProbe,
    ClockReply,
    Ended,
    Error,
    Go,
    Hello,
    Kill,
    Fence,
    Launched,
    Lost,
    Outcome,
    Ping,
    Pong,
    Prepare,
    ProtocolError,
    Ready,
    Resumed,
    Run,
    Started,
    Takeover,
    Fetch,
    Chunk,
    Drop,
    Spooled,
    Sweep,
    decode,
    encode,
)

EXAMPLES = [
    Hello(version=PROTOCOL_VERSION, host="node-1", pid=4242, clock=1700000000.25, slots=8, agent="pclient 0.1.0"),
    Started(job="j1", pid=77, clock=1700000001.5),
    Started(job="j2", pid=None, clock=1700000001.5),
    Ended(job="j1", outcome=Outcome.EXIT, status=0, signal=None, elapsed=0.5, stdout="héllo\n", stderr="",
          stdout_bytes=7, stderr_bytes=0, stdout_truncated=False, stderr_truncated=False, reason=None),
    Ended(job="j1", outcome=Outcome.CRASH, status=None, signal=11, elapsed=2.0, stdout="", stderr="\x00\x1b[31m",
          stdout_bytes=0, stderr_bytes=10_000_000, stdout_truncated=False, stderr_truncated=True,
          reason="terminated by signal SIGSEGV (11)"),
    Pong(seq=3, clock=1700000002.0, running=2),
    Error(reason="run: job 'a' is already running", job="a", excerpt='{"type":"run"'),
    Error(reason="malformed JSON", job=None, excerpt=""),
    Run(job="j1", argv=("sh", "-c", "echo $X"), cwd="/tmp", env={"X": "1"}, timeout=2.5, output_limit=10),
    Run(job="j2", argv=("true",)),
    Kill(job="j1"),
    Ping(seq=0),
    Ping(seq=9, held=("12", "40")),
    Bye(),
    Auth(token="9f" * 32, name="node-1", lease=600.0),
    Auth(token="ab", name="n", lease=None),
    Auth(token="ab", name="n", lease=60.0, heartbeat=0.5, missed=3),
    Ack(jobs=("1", "2")),
    Resumed(running=("3",), finished=("1", "2"), survivors=1),
    Resumed(running=(), finished=("4",), survivors=0, looks_again=True),
    Lost(jobs=("4",), reason="the agent that ran them (pid 9) ended without reporting them"),
    Challenge(nonce="00ff", pid=12),
    Takeover(proof="aa" * 32, pid=13),
    # a Slurm host's (pcontrol/slurm.py): the batch id, the pending time left, PENDING
    Started(job="j3", pid=None, clock=1700000001.5, batch_id="4711"),
    Run(job="j3", argv=("true",), pending=12.5),
    Ended(job="j3", outcome=Outcome.PENDING, status=None, signal=None, elapsed=0.0, stdout="",
          stderr="", stdout_bytes=0, stderr_bytes=0, stdout_truncated=False,
          stderr_truncated=False, reason="still pending in Slurm"),
    Fetch(job="7", stream="stdout", offset=1048576, size=1048576),
    Chunk(job="7", stream="stderr", offset=0, data="AAEC/w==", eof=True),
    Drop(job="7"),
    ClockProbe(seq=1, sent=1700000000.125),
    ClockReply(seq=1, sent=1700000000.125, received=1700000000.5, replied=1700000000.5001),
    Prepare(job="sync1.1", argv=("./fio.sh", "4k"), cwd=None, env={"A": "b"}, output_limit=100),
    Prepare(job="sync1.2", argv=("true",)),
    Ready(job="sync1.1", pid=99, clock=1700000000.75),
    Go(jobs=("sync1.1", "sync1.2"), at=1700000001.0, offset=-0.0025),
    Launched(job="sync1.1", clock=1700000001.00004, late=0.00004),
    Fence(token=17),
    Hello(version=PROTOCOL_VERSION, host="n", pid=1, clock=0.0, slots=1, agent="pclient", build="ab", sweep=1),
    Sweep(seq=2, age=3600.0, abandon=2592000.0),
    Sweep(seq=3, age=0.0),
    Spooled(seq=2, jobs=("17", "18.1"), files=3, bytes=4096, parts=("0123456789abcdef",), shared=False),
    Spooled(seq=3, shared=True),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(msg):
    line = encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    line.decode("ascii")  # pure ASCII: safe through any pipe or raw terminal
    assert decode(line) == msg
    assert decode(line.decode()) == msg
    assert decode(line.rstrip(b"\n") + b"\r\n") == msg


def test_every_type_has_an_example_and_a_unique_tag():
    assert {m.TYPE for m in EXAMPLES} == set(MESSAGE_TYPES)
    assert all(MESSAGE_TYPES[cls.TYPE] is cls for cls in MESSAGE_TYPES.values())


def test_wire_form_uses_plain_strings_for_outcome():
    obj = json.loads(encode(EXAMPLES[3]))
    assert obj["type"] == "ended" and obj["outcome"] == "exit"
    assert [o.value for o in Outcome] == ["exit", "crash", "timeout", "killed", "pending"]
    assert Outcome("timeout") is Outcome.TIMEOUT and Outcome.KILLED == "killed"


def test_run_defaults_and_extra_fields_ignored():
    msg = decode('{"type":"run","job":"a","argv":["ls"],"future_field":{"x":1}}')
    assert msg == Run(job="a", argv=("ls",))
    assert (msg.cwd, msg.env, msg.timeout, msg.output_limit) == (None, {}, None, DEFAULT_OUTPUT_LIMIT)
    assert decode('{"type":"ping","seq":5,"extra":true}') == Ping(seq=5)


def test_numbers_are_normalised():
    msg = decode('{"type":"run","job":"a","argv":["ls"],"timeout":3}')
    assert isinstance(msg.timeout, float) and msg.timeout == 3.0
    assert isinstance(decode('{"type":"pong","seq":1,"clock":5,"running":0}').clock, float)


def test_run_is_immutable_and_hashable():
    msg = Run(job="a", argv=["x", "y"], env={"A": "1"})
    assert msg.argv == ("x", "y")
    with pytest.raises(AttributeError):
        msg.job = "b"  # type: ignore[misc]
    assert hash(msg) == hash(Run(job="a", argv=("x", "y"), env={"A": "2"}))
    assert Run(job="a", argv=["x"], env=None).env == {}


BAD_LINES = [
    # (line, words the reason must contain, job the error must carry)
    (b"not json", "malformed JSON", None),
    (b'{"type":"ping","seq":1', "malformed JSON", None),
    (b'{"type":"ping","seq":NaN}', "NaN", None),
    (b'{"type":"ping","seq":Infinity}', "Infinity", None),
    (b"[1, 2]", "expected a JSON object, got a list", None),
    (b'"run"', "expected a JSON object, got a string", None),
    (b"null", "expected a JSON object, got null", None),
    (b"{}", "message type is missing", None),
    (b'{"type":3}', "message type is an integer", None),
    (b'{"type":"launch","job":"j9"}', "unknown message type 'launch'", "j9"),
    (b'{"type":"run","job":"j1"}', "run: missing field 'argv'", "j1"),
    (b'{"type":"run","argv":["ls"]}', "run: missing field 'job'", None),
    (b'{"type":"run","job":7,"argv":["ls"]}', "field 'job' must be a string, got an integer", None),
    (b'{"type":"run","job":"j1","argv":"ls -l"}', "field 'argv' must be a list of strings, got a string", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls",1]}', "item 1 is an integer", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"env":{"A":1}}', "'A' is an integer", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"env":["A"]}', "field 'env' must be an object", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"cwd":5}', "field 'cwd' must be a string or null", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"timeout":"1s"}', "field 'timeout' must be a finite number", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"output_limit":1.5}', "'output_limit' must be an integer", "j1"),
    (b'{"type":"run","job":"j1","argv":[]}', "argv must not be empty", "j1"),
    (b'{"type":"run","job":"","argv":["ls"]}', "job id must not be empty", None),
    (b'{"type":"run","job":"j1","argv":["ls"],"timeout":-1}', "timeout must be", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"output_limit":-1}', "output_limit must be", "j1"),
    (b'{"type":"ping","seq":true}', "field 'seq' must be an integer, got a boolean", None),
    (b'{"type":"run","job":"j1","argv":["ls"],"spool":1}', "field 'spool' must be a boolean", "j1"),
    (b'{"type":"run","job":"j1","argv":["ls"],"timeout":1e999}', "field 'timeout' must be a finite number", "j1"),
    (b'{"type":"started","job":"j1","pid":false,"clock":1}', "field 'pid' must be an integer", "j1"),
    (b'{"type":"ping"}', "ping: missing field 'seq'", None),
    (b'{"type":"kill","job":null}', "field 'job' must be a string, got null", None),
    (b'{"type":"ended","job":"j","outcome":"exploded","status":0,"signal":null,"elapsed":1,'
     b'"stdout":"","stderr":"","stdout_bytes":0,"stderr_bytes":0,"stdout_truncated":false,'
     b'"stderr_truncated":false,"reason":null}', "field 'outcome' must be one of 'exit'", "j"),
    (b'{"type":"ended","job":"j","outcome":"exit","status":0,"signal":null,"elapsed":1,'
     b'"stdout":"","stderr":"","stdout_bytes":0,"stderr_bytes":0,"stdout_truncated":0,'
     b'"stderr_truncated":false,"reason":null}', "'stdout_truncated' must be a boolean", "j"),
    (b'{"type":"hello","version":1}', "hello: missing field 'host'", None),
    (b'{"type":"auth","token":"","name":"n"}', "token must not be empty", None),
    (b'{"type":"auth","token":"t","name":"n","lease":-5}', "lease must be a finite number >= 0", None),
    (b'{"type":"auth","name":"n"}', "auth: missing field 'token'", None),
    (b'{"type":"auth","token":"t","name":"n","heartbeat":1}', "heartbeat and missed go together", None),
    (b'{"type":"auth","token":"t","name":"n","missed":3}', "heartbeat and missed go together", None),
    (b'{"type":"auth","token":"t","name":"n","heartbeat":0,"missed":3}', "heartbeat must be a finite number > 0", None),
    (b'{"type":"auth","token":"t","name":"n","heartbeat":1,"missed":0}', "missed must be at least 1", None),
    (b'{"type":"auth","token":"t","name":"n","heartbeat":1,"missed":2.5}', "'missed' must be an integer or null", None),
    (b'{"type":"ping","seq":1,"held":[3]}', "field 'held' must be a list of strings", None),
    (b'{"type":"ack","jobs":[1]}', "field 'jobs' must be a list of strings", None),
    (b'{"type":"resumed","running":[]}', "resumed: missing field 'finished'", None),
    (b'\xff\xfe{"type":"bye"}', "not valid UTF-8", None),
    (b"[" * 100_000 + b"]" * 100_000, "malformed JSON", None),
]


@pytest.mark.parametrize("line, words, job", BAD_LINES, ids=[str(i) for i in range(len(BAD_LINES))])
def test_decode_errors(line, words, job):
    with pytest.raises(ProtocolError) as info:
        decode(line)
    assert words in info.value.reason
    assert str(info.value) == info.value.reason
    assert info.value.job == job
    assert len(info.value.excerpt) <= protocol.EXCERPT_CHARS + 3


def test_error_excerpt_quotes_the_line():
    with pytest.raises(ProtocolError) as info:
        decode(b'{"type":"nope","job":"x"}\n')
    assert info.value.excerpt == '{"type":"nope","job":"x"}'


def test_line_longer_than_max_line_is_refused():
    line = b'{"type":"ping","seq":1,"pad":"' + b"x" * MAX_LINE + b'"}'
    with pytest.raises(ProtocolError, match="longer than MAX_LINE"):
        decode(line)
    with pytest.raises(ProtocolError, match="longer than MAX_LINE"):
        decode(line.decode())


def test_encode_refuses_an_overlong_message(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_LINE", 50)
    assert decode(encode(Ping(seq=1))) == Ping(seq=1)
    with pytest.raises(ProtocolError, match="longer than MAX_LINE") as info:
        encode(Kill(job="k" * 60))
    assert info.value.job == "k" * 60


def test_older_peers_still_understood():
    """The watchdog and held-jobs fields are optional: an older controller's auth and ping
    decode (no watchdog, nothing held), and their newer forms carry the limit and the jobs."""
    old_auth = decode(b'{"type":"auth","token":"t","name":"n","lease":30}')
    assert (old_auth.heartbeat, old_auth.missed, old_auth.silence_limit) == (None, None, None)
    assert Auth(token="t", name="n", heartbeat=0.5, missed=3).silence_limit == 1.5
    assert decode(b'{"type":"ping","seq":4}').held == ()
    assert Ping(seq=1, held=["7"]).held == ("7",)       # a list becomes a tuple


def test_the_spool_sweep_is_optional_for_older_peers():
    """An older agent's hello says no sweep version (it is sent none); a sweep's limits are checked."""
    old_hello = decode(b'{"type":"hello","version":2,"host":"h","pid":1,"clock":0,"slots":1,"agent":"pclient 0.2.9"}')
    assert old_hello.sweep == 0
    assert decode(b'{"type":"spooled","seq":1}') == Spooled(seq=1)
    for bad in (b'{"type":"sweep","seq":1,"age":-1}', b'{"type":"sweep","seq":1,"age":1,"abandon":-5}'):
        with pytest.raises(ProtocolError, match="must be a finite number >= 0"):
            decode(bad)


def test_constructing_a_bad_run_fails():
    with pytest.raises(ValueError, match="argv must not be empty"):
        Run(job="a", argv=())
    with pytest.raises(ValueError, match="timeout"):
        Run(job="a", argv=("x",), timeout=float("nan"))


texts = st.text(max_size=30)


@given(job=st.text(min_size=1, max_size=20), argv=st.lists(texts, min_size=1, max_size=5),
       cwd=st.none() | texts, env=st.dictionaries(texts, texts, max_size=4),
       timeout=st.none() | st.floats(min_value=0, max_value=1e9),
       output_limit=st.integers(min_value=0, max_value=2**40))
def test_any_run_round_trips(job, argv, cwd, env, timeout, output_limit):
    msg = Run(job=job, argv=tuple(argv), cwd=cwd, env=env, timeout=timeout, output_limit=output_limit)
    line = encode(msg)
    assert line.count(b"\n") == 1
    assert decode(line) == msg


@given(st.binary(max_size=200))
def test_decode_never_fails_with_anything_but_protocol_error(data):
    try:
        decode(data)
    except ProtocolError as exc:
        assert exc.reason


def test_every_message_type_has_a_wire_check_for_each_field() -> None:
    """decode works out a type's field checks at its first use (start-up): each must exist."""
    for cls in protocol.MESSAGE_TYPES.values():
        assert [name for name, *_ in protocol._field_specs(cls)] == [f.name for f in dataclasses.fields(cls)]
