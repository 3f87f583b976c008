"""Hostile clients against a real daemon (a child process in a temporary SCHED_HOME): half a
request and a stall, a 64 MiB line with no newline, invalid UTF-8, deep nesting, lines of
millions of tiny values, 2,000 idle connections. Each gets an error reply or a bounded
wait, memory and descriptors stay bounded, other clients are served meanwhile, and the
daemon stays up. Finer bounds (the buffer budget, unread replies, no idle connection to
close) are checked on an in-process server with small limits."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from hostile_harness import (PING, WAIT, daemon, exchange, open_unix, ping, read_eof,
                             read_json, run, served)
from pcontrol.server import ServerLimits
from pcontrol.wire import MAX_ARGS, MAX_LINE

MiB = 1024 * 1024


def test_half_a_request_and_a_stall_while_another_client_is_served() -> None:
    with daemon({"line_timeout": 1.0}) as d:
        async def body() -> None:
            stalled_reader, stalled_writer = await open_unix(d.socket)
            stalled_writer.write(b'{"id": 1, "argv": ["pi')
            await stalled_writer.drain()
            dropped = asyncio.ensure_future(read_json(stalled_reader))
            for _ in range(3):
                await ping(d.socket)
            assert not dropped.done()       # the others were served before the drop
            reply = await dropped
            assert reply["ok"] is False and reply["id"] is None
            assert reply["error"]["code"] == "timeout"
            assert reply["text"] == ("request line incomplete after 1 s; "
                                     "closing the connection")
            assert await read_eof(stalled_reader) == b""
            stalled_writer.close()
            await ping(d.socket)
        run(body())
        assert d.alive()
        assert "its request line was not complete within 1 s" in d.log_text()


def test_a_trickled_line_is_bounded_from_its_first_byte() -> None:
    """Progress does not extend the deadline: one byte every 0.1 s is still dropped."""
    with daemon({"line_timeout": 1.0}) as d:
        async def body() -> None:
            reader, writer = await open_unix(d.socket)
            line = b'{"id": 1, "argv": ["ping", "' + b"x" * 100 + b'"]}\n'
            reply_task = asyncio.ensure_future(read_json(reader))
            sent = 0
            for byte in line:
                if reply_task.done():
                    break
                writer.write(bytes([byte]))
                sent += 1
                await asyncio.wait([reply_task], timeout=0.1)    # the attacker's pace
            reply = await reply_task
            assert reply["error"]["code"] == "timeout"
            assert sent < len(line)
            writer.close()
        run(body())


def test_a_64_mib_line_without_newline_costs_bounded_memory() -> None:
    with daemon() as d:
        async def body() -> None:
            await ping(d.socket)
            rss_before = d.status_kib("VmRSS")
            reader, writer = await open_unix(d.socket)
            reply_task = asyncio.ensure_future(read_json(reader))
            chunk = b"x" * MiB
            for _ in range(64):
                writer.write(chunk)
                await writer.drain()
            reply = await reply_task       # sent as soon as the line passed the limit
            assert reply["error"]["code"] == "too_long" and reply["id"] is None
            assert reply["text"] == f"request line longer than {MAX_LINE} bytes; discarded"
            # the connection is still usable once the line ends
            writer.write(b"\n" + PING)
            pong = await read_json(reader)
            assert pong["text"] == "pong"
            writer.close()
            await ping(d.socket)
            growth_kib = d.status_kib("VmHWM") - rss_before
            assert growth_kib * 1024 < 2 * MAX_LINE, f"peak RSS grew by {growth_kib} KiB"
            assert (d.status_kib("VmRSS") - rss_before) * 1024 < 2 * MAX_LINE
        run(body())
        assert d.alive()


MALFORMED = [
    (b"\xff\xfe\xfd\n", "malformed", "line is not valid UTF-8 (invalid start byte at byte 0)"),
    (b'{"id": 1, "argv": ["\xc3\x28"]}\n', "malformed", "line is not valid UTF-8"),
    (b'{"id": 1, "argv": ["\xc0\xaf"]}\n', "malformed", "line is not valid UTF-8"),
    (b'{"id": 1, "argv": ["\xed\xa0\x80"]}\n', "malformed", "line is not valid UTF-8"),
    (b'{"id": 1, "argv": ["\\ud800"]}\n', "malformed",
     "\"argv\" word 0 is not Unicode text (a lone surrogate '\\ud800' at character 0)"),
    (b"[" * (4 * MiB) + b"\n", "malformed", "expected a JSON object"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n", "malformed",
     "JSON nested too deeply"),
    (b'{"id": 1, "argv": ["x"], "pad": ' + b"[" * 150_000 + b"]" * 150_000 + b"}\n",
     "malformed", "'pad' holds a list or an object"),
    (b"\x00" * 1000 + b"\n", "malformed", "not JSON"),
    (b'{"id": NaN, "argv": ["ping"]}\n', "malformed", 'request needs an integer "id"'),
    (b'{"id": 1' + b"0" * 5000 + b', "argv": ["ping"]}\n', "malformed", "not JSON"),
]


def test_malformed_bytes_get_error_replies_on_a_live_connection() -> None:
    with daemon() as d:
        async def body() -> None:
            await ping(d.socket)
            rss_before = d.status_kib("VmRSS")
            reader, writer = await open_unix(d.socket)
            for line, code, message in MALFORMED:
                writer.write(line)
                await writer.drain()
                reply = await read_json(reader)
                assert reply["ok"] is False, line[:60]
                assert reply["error"]["code"] == code, (line[:60], reply)
                assert reply["text"].startswith(message), (line[:60], reply["text"][:200])
            writer.write(PING)
            assert (await read_json(reader))["text"] == "pong"
            writer.close()
            growth_kib = d.status_kib("VmHWM") - rss_before
            assert growth_kib * 1024 < 2 * MAX_LINE, f"peak RSS grew by {growth_kib} KiB"
        run(body())
        assert d.alive()


def _many_values(item: bytes) -> bytes:
    count = (MAX_LINE - 100) // len(item)
    return b'{"id": 7, "argv": [' + item * count + b'"end"]}\n'


@pytest.mark.parametrize("item", [b"[],", b"{},", b'"ab",', b"1.5,", b"0,"])
def test_a_line_of_millions_of_tiny_values_is_refused_cheaply(item: bytes) -> None:
    """json.loads would build them all first (~400 MB for `[],`, 25 times the line); a
    request holds few. What remains is the line itself and its text: under 3x the limit."""
    line = _many_values(item)
    with daemon() as d:
        async def body() -> None:
            await ping(d.socket)
            rss_before = d.status_kib("VmRSS")
            reply = await exchange(d.socket, line)
            assert reply["error"]["code"] == "malformed" and reply["id"] == 7
            assert reply["text"] in ('"argv" must be a list of strings',
                                     f'"argv" has more than {MAX_ARGS} words')
            growth_kib = d.status_kib("VmHWM") - rss_before
            assert growth_kib * 1024 < 3 * MAX_LINE, f"peak RSS grew by {growth_kib} KiB"
            await ping(d.socket)
        run(body())


def test_2000_idle_connections_leave_the_daemon_serving_with_bounded_descriptors() -> None:
    limit = 500
    with daemon({"max_connections": limit}) as d:
        async def body() -> None:
            # A subscribed client (a sched shell) is never closed to make room.
            shell_reader, shell_writer = await open_unix(d.socket)
            shell_writer.write(b'{"id": 1, "argv": ["subscribe"]}\n')
            assert (await read_json(shell_reader))["ok"] is True
            fds_before = d.fd_count()
            idle = []
            for _ in range(0, 2000, 50):
                # Batches the listen backlog can hold (asyncio takes an AF_UNIX connect that
                # found the backlog full for a success); each ping shows all were accepted.
                idle += await asyncio.gather(*[open_unix(d.socket) for _ in range(50)])
                await ping(d.socket)                # others are still served
            # The oldest idle connections were closed to make room, and told why: at least
            # all but the newest limit - 1 (the shell holds a slot; the last ping took one).
            evicted = len(idle) - (limit - 1) + 1
            notices = await asyncio.gather(*[read_eof(r) for r, _ in idle[:evicted]])
            for notice in notices:
                reply = json.loads(notice)
                assert reply["error"]["code"] == "overloaded"
                assert reply["text"] == ("pcontrol reached its limit of 500 connections and "
                                         "closed this one, the longest idle")
            assert d.fd_count() <= fds_before + limit
            # the newest ones are still open and served
            newest_reader, newest_writer = idle[-1]
            newest_writer.write(PING)
            assert (await read_json(newest_reader))["text"] == "pong"
            shell_writer.write(b'{"id": 2, "argv": ["job", "--", "true"]}\n')
            lines = [await read_json(shell_reader) for _ in range(2)]
            assert any(line.get("id") == 2 and line["ok"] for line in lines), lines
            assert any(line.get("event") == "job" for line in lines), lines
            for _, writer in idle:
                writer.close()
            shell_writer.close()
        run(body())
        assert d.alive()


# -- in-process, with small limits -----------------------------------------------------------

def test_no_idle_connection_to_close_means_a_refusal(home: str) -> None:
    async def body() -> None:
        async with served(home, limits=ServerLimits(max_connections=3)) as s:
            subscribed = []
            for _ in range(3):
                reader, writer = await open_unix(s.socket)
                writer.write(b'{"id": 1, "argv": ["subscribe"]}\n')
                assert (await read_json(reader))["ok"] is True
                subscribed.append((reader, writer))
            reader, writer = await open_unix(s.socket)
            writer.write(PING)
            reply = await read_json(reader)
            assert reply["error"]["code"] == "overloaded"
            assert reply["text"] == ("too many connections (limit 3), none of them idle; "
                                     "try again later")
            assert await read_eof(reader) == b""
            writer.close()
            subscribed[0][1].close()
            await read_eof(subscribed[0][0])
            # once one has gone, there is room again (served as soon as it is noticed)
            reply = await _ping_when_room(s.socket)
            assert reply["text"] == "pong"
            for _, w in subscribed[1:]:
                w.close()
    run(body())


async def _ping_when_room(path: str) -> dict:
    """Ping; a refusal for lack of room is retried, a bounded number of times."""
    for _ in range(100):
        reply = await exchange(path, PING)
        if reply.get("error") is None or reply["error"]["code"] != "overloaded":
            return reply
    raise AssertionError("no room after 100 attempts")


def test_unfinished_lines_of_all_clients_share_a_budget(home: str) -> None:
    limits = ServerLimits(max_line=MiB, max_buffered=MiB + MiB // 2, line_timeout=WAIT)
    async def body() -> None:
        async with served(home, limits=limits) as s:
            part = b'{"id": 1, "argv": ["' + b"y" * (700 * 1024)
            held = []
            for _ in range(3):
                reader, writer = await open_unix(s.socket)
                writer.write(part)
                await writer.drain()
                held.append((reader, writer))
            replies = await asyncio.wait_for(_first_reply(held), WAIT)
            assert replies["error"]["code"] == "too_long"
            assert "holds 1572864 bytes of unfinished lines" in replies["text"]
            assert s.server.buffered <= limits.max_buffered + limits.read_chunk
            await ping(s.socket)          # a whole small line still goes through
            for _, w in held:
                w.close()
    run(body())


async def _first_reply(connections: list) -> dict:
    tasks = [asyncio.ensure_future(read_json(r)) for r, _ in connections]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return next(iter(done)).result()


def test_a_client_that_never_reads_its_replies_is_dropped(home: str) -> None:
    limits = ServerLimits(write_timeout=0.5)

    async def body() -> None:
        gave_up = asyncio.Event()

        class Watch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "left a reply unread" in record.getMessage():
                    gave_up.set()

        watch = Watch()
        logging.getLogger("pcontrol.server").addHandler(watch)
        try:
            async with served(home, limits=limits) as s:
                reader, writer = await open_unix(s.socket)
                writer.transport.pause_reading()    # replies stay in the kernel's buffers
                request = json.dumps({"id": 1, "argv": ["help"]}).encode() + b"\n"
                writer.write(request * 20_000)      # megabytes of replies, never read
                await ping(s.socket)                # others are served meanwhile
                await asyncio.wait_for(gave_up.wait(), WAIT)
                writer.transport.resume_reading()
                data = await read_eof(reader)       # what was sent before, then the end
                assert data.count(b"\n") < 20_000
                await ping(s.socket)
                writer.close()
        finally:
            logging.getLogger("pcontrol.server").removeHandler(watch)
    run(body())
