"""The agent's spool: a job run with `spool` keeps every byte of its output for `fetch`, until `drop`."""

from __future__ import annotations

import base64
import os

from agent_harness import async_test, start_agent
from pclient.protocol import Bye, Chunk, Drop, Ended, Fetch, Run, Started, decode, encode

PAYLOAD = (bytes(range(256)) * 4096 + b"\0" * 1000) * 3   # 3 MB: all byte values, NULs


@async_test
async def test_a_spooled_job_is_fetched_piece_by_piece_then_dropped(tmp_path):
    payload_file = tmp_path / "payload"
    payload_file.write_bytes(PAYLOAD)
    spool = tmp_path / "spool"
    agent, _ = await start_agent("--slots", "1", env=dict(os.environ, PCLIENT_SPOOL_DIR=str(spool)))
    await agent.send(Run(job="7", argv=("sh", "-c", f"cat {payload_file}; printf 'e\\0rr' >&2"),
                         output_limit=1000, spool=True))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert ended.spooled and ended.stdout_bytes == len(PAYLOAD) and ended.stdout_truncated
    got, offset = b"", 0
    while True:
        await agent.send(Fetch(job="7", stream="stdout", offset=offset, size=1 << 20))
        chunk = await agent.recv_type(Chunk)
        assert chunk.error is None and chunk.offset == offset
        piece = base64.b64decode(chunk.data)
        got += piece
        offset += len(piece)
        if chunk.eof:
            break
    assert got == PAYLOAD
    await agent.send(Fetch(job="7", stream="stderr", offset=0, size=100))
    err = await agent.recv_type(Chunk)
    assert (base64.b64decode(err.data), err.eof) == (b"e\0rr", True)
    for bad in (Fetch(job="7", stream="stdin", offset=0, size=1), Fetch(job="7", stream="stdout", offset=-1, size=1),
                Fetch(job="../7", stream="stdout", offset=0, size=1)):
        await agent.send(bad)
        refused = await agent.recv_type(Chunk)
        assert refused.error and refused.data == "" and refused.eof, refused
    await agent.send(Drop(job="7"))
    await agent.send(Fetch(job="7", stream="stdout", offset=0, size=10))
    gone = await agent.recv_type(Chunk)
    assert gone.error and "cannot read the stdout of job 7" in gone.error
    assert [list(part.iterdir()) for part in spool.iterdir()] == [[]]  # one controller's part, empty
    await agent.send(Bye())
    assert await agent.wait_exit() == 0


@async_test
async def test_without_spool_nothing_is_kept(tmp_path):
    spool = tmp_path / "spool"
    agent, _ = await start_agent("--slots", "1", env=dict(os.environ, PCLIENT_SPOOL_DIR=str(spool)))
    await agent.send(Run(job="8", argv=("echo", "hi")))
    await agent.recv_type(Started)
    assert not (await agent.recv_type(Ended)).spooled
    assert not spool.exists()
    await agent.send(Bye())
    assert await agent.wait_exit() == 0


def test_the_new_fields_are_optional_for_older_peers():
    old_run = b'{"type":"run","job":"1","argv":["true"]}'
    assert decode(old_run).spool is False
    assert decode(encode(Chunk(job="1", stream="stdout", offset=0, data="", eof=True))).error is None
