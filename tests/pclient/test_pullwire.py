"""The pull protocol's lines (pclient.pullwire): every message round-trips, and bad fields are
refused with pclient.protocol's one field checker (no NaN or infinity, no bool for a number),
naming the message and the field."""

from __future__ import annotations

import pytest

from pclient import protocol
from pclient.pullwire import Answer, Challenge, Hello, Proof, PullError, PullJob, Report, decode, encode

REPORT = Report(job="7", outcome="exit", status=0, signal=None, elapsed=1.5, stdout="out", stderr="", reason=None)
EXAMPLES = [
    Hello("probe1", 1700000000.25),
    Challenge("ab" * 32, 1.0, 2.0),
    Proof("cd" * 32, 1.0, 3.0, REPORT),
    Proof("cd" * 32, 1.0, 3.0),
    Answer(True, next=5.0, job=PullJob("7", ("sh", "-c", "true"), timeout=9.0, env={"A": "b"}), acked=("6",)),
    Answer(False, error="forbidden"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.TYPE)
def test_every_message_round_trips(message):
    assert decode(encode(message), type(message)) == message


@pytest.mark.parametrize("line, cls, error", [
    (b'{"type":"pull_hello","v":1,"id":"p","t0":NaN}', Hello, "expected a pull_hello line"),
    (b'{"type":"pull_hello","v":1,"id":"p","t0":Infinity}', Hello, "expected a pull_hello line"),
    (b'{"type":"pull_hello","v":1,"id":"p","t0":1e999}', Hello, "pull_hello: t0 must be a finite number, got a number"),
    (b'{"type":"pull_hello","v":1,"id":"p","t0":true}', Hello, "pull_hello: t0 must be a finite number, got a boolean"),
    (b'{"type":"pull_hello","v":1,"id":5,"t0":1}', Hello, "pull_hello: id must be a string, got an integer"),
    (b'{"type":"pull_hello","v":1,"t0":1}', Hello, "pull_hello: missing id"),
    (b'{"type":"pull_hello","v":2,"id":"p","t0":1}', Hello, "version 2 is not supported"),
    (b'{"type":"pull_proof","v":1,"proof":"x","t0":1,"t3":2,"report":5}', Proof,
     "pull_proof: report must be a pull_report object or null, got an integer"),
    (b'{"type":"pull_proof","v":1,"proof":"x","t0":1,"t3":2,"report":{"type":"pull_report","job":"1",'
     b'"outcome":"exit","status":true,"signal":null,"elapsed":1}}', Proof,
     "pull_report: status must be an integer or null, got a boolean"),
    (b'{"type":"pull_proof","v":1,"proof":"x","t0":1,"t3":2,"report":{"type":"pull_report","job":"1",'
     b'"outcome":"exit","status":0,"signal":null,"elapsed":NaN}}', Proof, "expected a pull_proof line"),
    (b'{"type":"pull_answer","v":1,"ok":true,"job":{"type":"pull_job","job":"1","argv":["a",3]}}', Answer,
     "pull_job: argv must be a list of strings (item 1 is an integer)"),
    (b'{"type":"pull_answer","v":1,"ok":true,"next":-Infinity}', Answer, "expected a pull_answer line"),
    (b'[1]', Hello, "expected a pull_hello message"),
])
def test_bad_lines_are_refused_naming_the_field(line, cls, error):
    with pytest.raises(PullError, match=error.replace("(", r"\(").replace(")", r"\)")):
        decode(line, cls)


def test_the_field_checks_are_the_agent_protocols():
    import pclient.pullwire as pullwire

    assert pullwire.checker_for is protocol.checker_for
    assert not hasattr(pullwire, "_check")  # no second field checker
