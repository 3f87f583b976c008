"""ControllerClient reads what pcontrol sends a chunk at a time and handles each whole line:
lines split across chunks and many lines in one chunk come out the same, in order; a line past
the limit ends the connection saying so."""

from __future__ import annotations

import asyncio

import pcontrol.client as client_module
from pcontrol.client import ControllerClient
from pcontrol.wire import Event, EventKind, Reply, encode


def _run(tmp_path, chunks: list[bytes]) -> tuple[list, str]:
    """What the client makes of `chunks` fed to its reader one by one (each read on its own)."""
    got: list = []

    async def main() -> str:
        import socket

        ours, theirs = socket.socketpair()
        _, writer = await asyncio.open_unix_connection(sock=ours)  # (the client's writer)
        reader = asyncio.StreamReader(limit=client_module.MAX_LINE)
        client = ControllerClient(reader, writer, on_event=got.append)
        for chunk in chunks:
            reader.feed_data(chunk)
            for _ in range(3):
                await asyncio.sleep(0)  # the read loop's turn: it reads this chunk alone
        reader.feed_eof()
        reason = await asyncio.wait_for(client.wait_closed(), 10)
        await client.close()
        theirs.close()
        return reason

    return got, asyncio.run(main())


def test_lines_across_and_within_chunks_come_out_whole_and_in_order(tmp_path):
    events = [Event(EventKind.JOB, {"id": n, "text": "x" * (n * 7)}, seq=n) for n in range(1, 9)]
    data = b"".join(encode(e) for e in events)
    chunks = [data[:5], data[5:90], data[90:91], data[91:400], data[400:]]
    got, reason = _run(tmp_path, chunks)
    assert got == events
    assert reason == "pcontrol closed the connection"


def test_a_line_past_the_limit_ends_the_connection(tmp_path, monkeypatch):
    monkeypatch.setattr(client_module, "MAX_LINE", 1000)
    good = encode(Event(EventKind.JOB, {"id": 1}, seq=1))
    got, reason = _run(tmp_path, [good + b'{"id": 2, "text": "' + b"y" * 600, b"y" * 600, b'"}\n'])
    assert [e.data["id"] for e in got] == [1]
    assert reason == "pcontrol sent a line longer than the limit"


def test_a_reply_resolves_its_request_and_an_unknown_line_is_skipped(tmp_path):
    path = str(tmp_path / "r.sock")

    async def main() -> Reply:
        async def serve(reader, writer):
            await reader.readline()
            writer.write(b"not json\n" + encode(Reply.success(1, "pong")))
            await writer.drain()

        server = await asyncio.start_unix_server(serve, path)
        async with server:
            client = await ControllerClient.connect(socket_path=path)
            try:
                return await client.request(["ping"], timeout=10)
            finally:
                await client.close()

    assert asyncio.run(main()) == Reply.success(1, "pong")
