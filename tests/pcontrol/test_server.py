"""The socket: malformed input gets error replies and the daemon stays up; pipelining;
events by owner; owner rules for kill/delete/harvest; the client's error paths."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from pcontrol.client import ControllerClient
from pcontrol.errors import CommandFailed, ControllerDisconnected, ControllerNotRunning
from pcontrol.wire import MAX_LINE, EventKind, Interest, interest_of
from pcontrol_harness import controller_running, make_config, run


async def raw_exchange(path: str, lines: list[bytes]) -> list[dict]:
    """Send raw lines on a fresh connection; return one decoded reply per line."""
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_LINE)
    replies = []
    try:
        for line in lines:
            writer.write(line)
            await writer.drain()
            replies.append(json.loads(await asyncio.wait_for(reader.readline(), 10)))
    finally:
        writer.close()
    return replies


MALFORMED = [
    (b"not json\n", "malformed", None),
    (b"[1, 2, 3]\n", "malformed", None),
    (b'{"id": "one", "argv": ["ping"]}\n', "malformed", None),
    (b'{"id": 3, "argv": "ping"}\n', "malformed", 3),
    (b'{"id": 4, "argv": []}\n', "malformed", 4),
    (b'{"id": 5, "argv": ["ping"], "v": 3}\n', "unsupported", 5),
    (b'\xc3\x28\xa0\xa1\n', "malformed", None),
    (b"{" * 50_000 + b"\n", "malformed", None),
    (b'{"id": 6, "argv": ["frobnicate"]}\n', "unknown_command", 6),
    (b'{"id": 7, "argv": ["host", "add"]}\n', "usage", 7),
    (b'{"id": 8, "argv": ["host", "add", "x", "-slots", "lots"]}\n', "usage", 8),
    (b'{"id": 9, "argv": ["check", "host", "nobody"]}\n', "not_found", 9),
    (b'{"id": 10, "argv": ["kill", "123456"]}\n', "not_found", 10),
]


def test_malformed_lines_get_error_replies_and_the_daemon_stays_up(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            path = str(h.paths.socket)
            replies = await raw_exchange(path, [line for line, _, _ in MALFORMED]
                                         + [b'{"id": 99, "argv": ["ping"]}\n'])
            for (line, code, request_id), reply in zip(MALFORMED, replies):
                assert reply["ok"] is False, line
                assert reply["error"]["code"] == code, (line, reply)
                assert reply["id"] == request_id
                assert reply["text"] == reply["error"]["message"] != ""
            assert replies[-1]["ok"] is True and replies[-1]["text"] == "pong"
            # blank lines are ignored; a line cut off by a hang-up does no harm
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'\n\n{"id": 1, "argv": ["pi')
            await writer.drain()
            writer.close()
            assert (await h.cmd("ping"))["pong"] is True
    run(body())


def test_an_over_long_line_is_refused_and_skipped(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            huge = b'{"id": 1, "argv": ["' + b"x" * (MAX_LINE + 10) + b'"]}\n'
            replies = await raw_exchange(str(h.paths.socket),
                                         [huge, b'{"id": 2, "argv": ["ping"]}\n'])
            assert replies[0]["error"]["code"] == "too_long"
            assert replies[1] == {"id": 2, "ok": True, "text": "pong",
                                  "data": replies[1]["data"], "error": None}
    run(body())


def test_requests_are_pipelined(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            replies = await asyncio.gather(*[h.reply("job", "--", "echo", str(i))
                                             for i in range(50)])
            ids = [r.data["id"] for r in replies]
            assert len(set(ids)) == 50 and all(r.ok for r in replies)
            assert [r.data["argv"][-1] for r in replies] == [str(i) for i in range(50)]
    run(body())


def test_socket_is_owner_only(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            assert stat.S_IMODE(os.stat(h.paths.socket).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(h.paths.home).st_mode) == 0o700
    run(body())


def test_events_filtered_by_owner(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            mine = await ControllerClient.connect(home)
            try:
                await mine.subscribe(owner="sched-a")
                a = await h.submit("-owner", "sched-a", "-task", "t1", "--", "true")
                b = await h.submit("-owner", "sched-b", "--", "true")
                await h.cmd("host", "add", "localhost")
                await h.wait_job(a)
                await h.wait_job(b)
                seen = []
                async for event in mine.events():
                    seen.append(event)
                    if event.kind is EventKind.JOB and event.data["state"] == "DONE":
                        break
                job_ids = {e.data["id"] for e in seen if e.kind is EventKind.JOB}
                assert job_ids == {a}
                assert any(e.kind is EventKind.HOST for e in seen)   # hosts go to everyone
                assert [e.seq for e in seen] == sorted(e.seq for e in seen)
            finally:
                await mine.close()
    run(body())


def test_a_subscriber_gets_only_the_events_it_asked_for(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            ends = await ControllerClient.connect(home)
            everything = await ControllerClient.connect(home)
            try:
                await ends.subscribe(owner="sched-a", only={Interest.START, Interest.END})
                await everything.subscribe(owner="sched-a")
                await h.cmd("host", "add", "localhost")
                a = await h.submit("-owner", "sched-a", "-task", "t1", "--", "true")
                await h.wait_job(a)
                await h.cmd("harvest", str(a), "-owner", "sched-a")
                last = await h.submit("-owner", "sched-a", "--", "true")  # its end comes after a's harvest
                await h.wait_job(last)

                async def until_last_ends(client: ControllerClient) -> list[tuple[str, object]]:
                    seen = []
                    async for event in client.events():
                        seen.append((event.kind.value, interest_of(event.kind, event.data)))
                        if event.kind is EventKind.JOB and event.data["id"] == last \
                                and event.data["state"] == "DONE":
                            return seen
                    return seen
                chosen = await until_last_ends(ends)
                assert chosen == [("job", Interest.START), ("job", Interest.END)] * 2
                every = {i for _, i in await until_last_ends(everything)}
                assert {Interest.START, Interest.RUNNING, Interest.END, Interest.HARVEST} <= every
            finally:
                await ends.close()
                await everything.close()
    run(body())


def test_a_short_output_comes_whole_with_the_end_a_long_one_does_not(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            mine = await ControllerClient.connect(home)
            try:
                await mine.subscribe(owner="o", only={Interest.END})
                await h.cmd("host", "add", "localhost")
                short = await h.submit("-owner", "o", "--", "sh", "-c", "echo out; echo err >&2")
                long = await h.submit("-owner", "o", "--", "sh", "-c", "head -c 9000 /dev/zero | tr '\\0' x")
                ends = {}
                async for event in mine.events():
                    ends[event.data["id"]] = event.data
                    if len(ends) == 2:
                        break
                assert (ends[short]["stdout"], ends[short]["stderr"]) == ("out\n", "err\n")
                assert "stdout" not in ends[long] and ends[long]["stdout_bytes"] == 9000
            finally:
                await mine.close()
    run(body())


SUBMITTED_WITH = {"argv", "env", "host", "timeout", "output_limit", "priority", "cwd", "retry", "mail", "inbox"}


def test_a_brief_subscriber_gets_short_records_beside_a_whole_one(home: str) -> None:
    """`subscribe -brief` (wire option, issue 13): start and end carry the short record (where
    the job is and how it ended, not what it was submitted with); a subscriber on the same
    controller without it still gets whole records; `job -brief` replies with the short one."""
    async def body() -> None:
        async with controller_running(home) as h:
            brief = await ControllerClient.connect(home)
            whole = await ControllerClient.connect(home)
            try:
                granted = await brief.subscribe(owner="o", only={Interest.START, Interest.END}, brief=True)
                await whole.subscribe(owner="o", only={Interest.START, Interest.END})
                assert granted["brief"] is True and brief.brief and not whole.brief
                await h.cmd("host", "add", "localhost")
                reply = await brief.call("job", "-owner", "o", "-task", "t", "-env", "K=V", "-mail", "-brief",
                                         "--", "sh", "-c", "echo out; echo 'x said' >> $PSCHED_OUTBOX")
                assert not SUBMITTED_WITH & reply.keys() and reply["owner"] == "o" and reply["task"] == "t"
                seen: dict[str, list[dict]] = {"brief": [], "whole": []}
                for name, client in (("brief", brief), ("whole", whole)):
                    async for event in client.events():
                        seen[name].append(event.data)
                        if event.data["state"] == "DONE":
                            break
                for name in ("brief", "whole"):
                    assert [r["state"] for r in seen[name]] == ["BUSY", "DONE"], name
                    assert all(r["id"] == reply["id"] and r["submitted"] == reply["submitted"] for r in seen[name])
                    end = seen[name][-1]
                    assert (end["outcome"], end["status"], end["stdout"], end["outbox"], end["ran_on"]) == \
                        ("EXIT", 0, "out\n", ["x said"], "localhost"), name
                assert not SUBMITTED_WITH & set().union(*seen["brief"])
                assert all(r["env"] == {"K": "V"} and r["argv"][0] == "sh" for r in seen["whole"])
                record = await h.cmd("check", "job", str(reply["id"]), "-json")
                assert record["argv"][0] == "sh" and record["env"] == {"K": "V"}  # the job itself is whole
            finally:
                await brief.close()
                await whole.close()
    run(body())


def test_a_client_asking_an_older_pcontrol_for_brief_records_gets_whole_ones(tmp_path) -> None:
    """An older pcontrol refuses `-brief` as an unknown option of `subscribe` (its own words,
    from its usage line): the client subscribes without it, says so in `brief`, and a
    scheduler then sends its jobs without `-brief` too."""
    from pcontrol.commands import Usage
    from pcontrol.errors import UsageError

    with pytest.raises(UsageError) as refused:
        Usage.parse("?-owner OWNER? ?-only INTERESTS?").bind(["-only", "end", "-brief"], "subscribe")
    asked: list[list[str]] = []

    async def old_pcontrol(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            asked.append(request["argv"])
            ok = "-brief" not in request["argv"]
            writer.write(json.dumps({"id": request["id"], "ok": ok, "text": "subscribed" if ok else refused.value.message,
                                     "data": {"subscribed": True} if ok else None,
                                     "error": None if ok else {"code": "usage", "message": refused.value.message}}
                                    ).encode() + b"\n")
            await writer.drain()

    async def body() -> None:
        path = str(tmp_path / "old.sock")
        server = await asyncio.start_unix_server(old_pcontrol, path)
        try:
            client = await ControllerClient.connect(socket_path=path)
            try:
                assert await client.subscribe(owner="o", only={Interest.END}, brief=True) == {"subscribed": True}
                assert not client.brief
            finally:
                await client.close()
        finally:
            server.close()
            await server.wait_closed()
    run(body())
    assert asked == [["subscribe", "-owner", "o", "-only", "end", "-brief"], ["subscribe", "-owner", "o", "-only", "end"]]


def test_subscribe_only_refuses_an_unknown_interest(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            with pytest.raises(CommandFailed) as caught:
                await h.cmd("subscribe", "-only", "start,finish")
            assert caught.value.reply.text == ("-only: unknown event interest finish: should be a comma "
                                               "list of queued, start, running, end, harvest, host, load, alert")
    run(body())


def test_owned_jobs_kill_delete_harvest(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            job_id = await h.submit("-owner", "/home/u/.sched", "-task", "build", "--", "true")
            with pytest.raises(CommandFailed) as caught:
                await h.cmd("kill", job_id)
            assert caught.value.message == (
                f'job {job_id} belongs to task "build" of scheduler "/home/u/.sched"; '
                "kill it from there, or use -force")
            with pytest.raises(CommandFailed, match="belongs to"):
                await h.cmd("kill", job_id, "-owner", "someone-else")
            await h.cmd("kill", job_id, "-owner", "/home/u/.sched")
            await h.wait_job(job_id)
            with pytest.raises(CommandFailed, match="use -force"):
                await h.cmd("delete", job_id)
            listed = await h.cmd("jobs", "-owner", "/home/u/.sched")
            assert [r["id"] for r in listed] == [job_id]
            assert await h.cmd("jobs", "-owner", "nobody") == []
            with pytest.raises(CommandFailed, match='not "other"'):
                await h.cmd("harvest", job_id, "-owner", "other")
            result = await h.cmd("harvest", job_id, "-owner", "/home/u/.sched")
            assert result == [{"id": job_id, "harvested": True, "known": True}]
            assert (await h.cmd("check", "job", job_id))["harvested"] is not None
            # idempotent: harvesting again, or after it was forgotten, is fine
            assert (await h.cmd("harvest", job_id))[0]["harvested"] is True
            await h.cmd("delete", job_id, "-force")
            assert (await h.cmd("harvest", job_id)) == [
                {"id": job_id, "harvested": True, "known": False}]
            with pytest.raises(CommandFailed, match="no job 999"):
                await h.cmd("harvest", 999)
    run(body())


def test_harvest_refuses_unfinished_jobs_and_changes_nothing(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            done = await h.submit("-host", "ghost", "-required", "--", "true")   # DONE at once
            pending = await h.submit("--", "true")
            with pytest.raises(CommandFailed, match=f"job {pending} is PENDING"):
                await h.cmd("harvest", done, pending)
            assert (await h.cmd("check", "job", done))["harvested"] is None
    run(body())


def test_harvested_jobs_are_forgotten_after_the_retention(home: str) -> None:
    async def body() -> None:
        # retention 0: the forget timer is due at once and fires on the loop's next turn,
        # before the server can read the next request
        async with controller_running(home, make_config(retention=0)) as h:
            job_id = await h.submit("-host", "ghost", "-required", "--", "true")
            await h.cmd("harvest", job_id)
            assert (await h.reply("check", "job", job_id)).error.code == "not_found"
            assert (await h.cmd("status"))["jobs"]["DONE"] == 0
    run(body())


def test_client_reports_a_missing_daemon(home: str) -> None:
    async def body() -> None:
        with pytest.raises(ControllerNotRunning, match="not running"):
            await ControllerClient.connect(home)
    run(body())


def test_requests_fail_once_the_daemon_hangs_up(home: str) -> None:
    async def body() -> None:
        async with controller_running(home) as h:
            other = await ControllerClient.connect(home)
            assert (await other.request(["shutdown"])).ok
            assert h.server.shutting_down
            refused = await other.request(["ping"])
            assert refused.error.code == "shutting_down"
            await h.server.close()            # what the daemon does next
            reason = await asyncio.wait_for(other.wait_closed(), 10)
            assert "closed the connection" in reason
            with pytest.raises(ControllerDisconnected):
                await other.request(["ping"])
            await other.close()
    run(body())
