"""The one check of a sched server's greeting (psched.shell.serverlink.read_hello) and the hello
of a pool member (psched.shell.serverwire): a table of first lines and what a client makes of them."""

from __future__ import annotations

import asyncio

import pytest

from psched.shell.serverlink import ServerGone, read_hello
from psched.shell.serverwire import Hello, Output, Reply, encode, decode_server_message


def _first(line: bytes) -> Hello:
    async def read() -> Hello:
        reader = asyncio.StreamReader()
        reader.feed_data(line)
        reader.feed_eof()
        return await read_hello(reader, timeout=1)
    return asyncio.run(read())


def test_a_hello_is_the_greeting_with_or_without_the_pool():
    assert _first(b'{"v": 1, "type": "hello", "pid": 7, "home": "/h"}\n') == Hello(7, "/h")
    member = Hello(7, "/h", member="b pid 7", standby=True, leader="a pid 3 leads since ...",
                   pool=("10.0.0.1:7000", "10.0.0.2:7000"))
    assert _first(encode(member)) == member
    assert decode_server_message(encode(member)) == member


@pytest.mark.parametrize("line, why", [
    (encode(Reply(0, False, "peer uid 1000 is not the owner")), "the server refused the connection: peer uid 1000"),
    (b"", "the server closed the connection before greeting"),
    (encode(Output("job 1 done\n")), "the server did not greet"),
    (b"HTTP/1.1 400 Bad Request\r\n", "the server's greeting is not of this protocol"),
    (b'{"v": 2, "type": "hello", "pid": 1, "home": "/"}\n', "the server's greeting is not of this protocol"),
])
def test_anything_else_says_why_there_is_no_greeting(line, why):
    with pytest.raises(ServerGone, match=why):
        _first(line)
