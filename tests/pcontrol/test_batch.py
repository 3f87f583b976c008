"""Batches of submissions (wire version 2): many `job` commands in one line, one reply with
theirs in order; an older pcontrol refuses the version and the client goes one by one."""

from __future__ import annotations

import pytest

from pcontrol import wire
from pcontrol.errors import ErrorCode, WireError
from pcontrol.wire import Request, decode_request, encode
from pcontrol_harness import controller_running, run


def test_a_batch_goes_over_the_wire_and_back() -> None:
    request = Request(7, (), wire.BATCH_VERSION, (("job", "--", "true"), ("job", "-owner", "o", "--", "false")))
    line = encode(request)
    assert line == b'{"id":7,"v":2,"batch":[["job","--","true"],["job","-owner","o","--","false"]]}\n'
    assert decode_request(line) == request


@pytest.mark.parametrize("line, message", [
    (b'{"id":1,"v":1,"batch":[["job"]]}', '"batch" needs wire version 2 ("v": 2)'),
    (b'{"id":1,"v":2,"batch":[]}', '"batch" must be a non-empty list of argv lists'),
    (b'{"id":1,"v":2,"batch":[["job"],[]]}', '"batch" command 1 is empty'),
    (b'{"id":1,"v":2,"batch":[["job"],[1]]}', '"batch" command 1 must be a list of strings'),
    (b'{"id":1,"v":3,"batch":[["job"]]}', "wire version 3 is not supported (this is 2)"),
])
def test_malformed_batches_are_refused_with_their_id(line: bytes, message: str) -> None:
    with pytest.raises(WireError) as caught:
        decode_request(line)
    assert caught.value.message == message and caught.value.request_id == 1


def test_a_batch_submits_in_order_and_refuses_what_it_may_not_carry(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            replies = await h.client.request_batch([
                ["job", "-owner", "o", "--", "true"], ["hosts"], ["job", "-timeout", "x", "--", "true"],
                ["job", "-owner", "o", "--", "false"]])
            assert replies is not None and [r.ok for r in replies] == [True, False, False, True]
            first, last = replies[0].data["id"], replies[3].data["id"]
            assert last == first + 1 and replies[3].data["state"] == "PENDING"
            assert replies[1].error.code == ErrorCode.USAGE.value
            assert replies[1].text == '"hosts" cannot be batched (a batch carries only: job)'
            assert replies[2].error.code == ErrorCode.USAGE.value
            assert [j["id"] for j in await h.cmd("jobs", "-owner", "o")] == [first, last]
    run(body())


def test_an_older_pcontrol_refuses_a_batch_and_the_client_is_told(home: str, monkeypatch) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            monkeypatch.setattr(wire, "WIRE_VERSION", 1)  # the server decodes as version 1 did
            assert await h.client.request_batch([["job", "--", "true"], ["job", "--", "true"]]) is None
            monkeypatch.undo()
            assert (await h.cmd("ping"))["pong"] is True  # and the connection serves on
    run(body())
