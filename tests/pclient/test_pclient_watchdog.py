"""The agent's watchdog on a silent controller: an `auth` with the controller's heartbeat
makes the agent give up a connection that stays silent past heartbeat x missed plus a
slack, and survive it as on EOF; pings keep it quiet; an auth without the heartbeat
means no watchdog. The agent runs in process on a memory channel, its watchdog on a fake
clock that only the test moves; the tests wait on the channel's events, never a fixed
time, so a loaded machine cannot make a ping look late."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from pclient.agent import WATCHDOG_MIN_SLACK, Agent
from pclient.lease import survivor_key
from pclient.protocol import Auth, Ended, Hello, Message, Outcome, Ping, Pong, Resumed, Run, Started, decode, encode
from pclient.stdio import StdioChannel
from agent_harness import alive, async_test
from waiting import wait_until

TOKEN = "a7" * 32
WAIT = 10.0
HEARTBEAT = 0.05
MISSED = 2
SLACK = 0.05
LIMIT = HEARTBEAT * MISSED + SLACK


class FakeClock:
    """Monotonic time that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryChannel:
    """A Channel whose peer is the test: `send` feeds the agent, `recv` reads its output,
    `gone` is set when the agent aborts the connection."""

    def __init__(self, clock: FakeClock) -> None:
        self._incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self._outgoing: asyncio.Queue[Message] = asyncio.Queue()
        self._clock = clock
        self.gone = asyncio.Event()
        self.gone_at: float | None = None

    async def read_chunk(self) -> bytes:
        return await self._incoming.get()

    async def write(self, data: bytes) -> None:
        self.write_nowait(data)

    def write_nowait(self, data: bytes) -> None:
        if self.gone.is_set():
            raise ConnectionError("aborted")
        for line in data.splitlines():
            self._outgoing.put_nowait(decode(line))

    def abort(self) -> None:
        self.gone_at = self._clock()
        self.gone.set()
        self._incoming.put_nowait(b"")

    async def close(self) -> None:
        pass

    def send(self, msg: Message) -> None:
        self._incoming.put_nowait(encode(msg))

    async def recv(self, cls: type | None = None) -> Message:
        while True:
            msg = await asyncio.wait_for(self._outgoing.get(), WAIT)
            if cls is None or isinstance(msg, cls):
                return msg
            assert isinstance(msg, (Pong, Started, Ended)), msg   # nothing else unasked


@pytest.fixture
def run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tempfile.mkdtemp(dir="/tmp", prefix="pcw")
    os.chmod(directory, 0o700)
    monkeypatch.setenv("PCLIENT_RUNTIME_DIR", directory)
    yield Path(directory)
    for leftover in Path(directory).iterdir():
        leftover.unlink()
    os.rmdir(directory)


async def serving(lease: float = 30.0, slack: float | None = SLACK,
                  clock: FakeClock | None = None) -> tuple[Agent, MemoryChannel, asyncio.Task]:
    clock = clock or FakeClock()
    channel = MemoryChannel(clock)
    agent = Agent(channel, slots=2, host="h", kill_grace=0.2, lease=lease, watchdog_slack=slack,
                  monotonic=clock)
    task = asyncio.ensure_future(agent.serve())
    assert isinstance(await channel.recv(), Hello)
    return agent, channel, task


async def authed(channel: MemoryChannel, **heartbeat: float) -> None:
    channel.send(Auth(token=TOKEN, name="n1", **heartbeat))
    assert await channel.recv(Resumed) == Resumed(running=(), finished=(), survivors=0, looks_again=True)


@pytest.mark.parametrize("heartbeat, missed, slack, limit", [
    (0.5, 3, None, 1.5 + WATCHDOG_MIN_SLACK),     # the slack: at least WATCHDOG_MIN_SLACK...
    (2.0, 3, None, 6.0 + 2.0),                    # ...or one heartbeat
    (1.0, 5, 0.25, 5.25),                         # or what --watchdog-slack says
])
@async_test
async def test_the_silence_limit_is_the_controllers_plus_a_slack(run_dir, heartbeat, missed, slack, limit):
    agent, channel, task = await serving(slack=slack)
    await authed(channel, heartbeat=heartbeat, missed=missed)
    assert agent.silence_limit == pytest.approx(limit)
    agent.request_stop()
    await asyncio.wait_for(task, WAIT)


@async_test
async def test_an_auth_without_the_heartbeat_keeps_no_watchdog(run_dir):
    agent, channel, task = await serving()
    await authed(channel)
    assert agent.silence_limit is None
    agent.request_stop()
    await asyncio.wait_for(task, WAIT)
    assert not channel.gone.is_set()


@async_test
async def test_a_silent_controller_is_given_up_and_the_job_kept_for_a_successor(run_dir, tmp_path):
    clock = FakeClock()
    agent, channel, task = await serving(clock=clock)
    await authed(channel, heartbeat=HEARTBEAT, missed=MISSED)
    gate = tmp_path / "gate"
    channel.send(Run(job="j", argv=("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.01; done")))
    started = await channel.recv(Started)
    # A ping every heartbeat keeps the connection trusted, well past the limit in all.
    for seq in range(8):
        clock.advance(HEARTBEAT)
        channel.send(Ping(seq=seq))
        assert (await channel.recv(Pong)).seq == seq
    assert clock.now - 1000.0 > 2 * LIMIT and not channel.gone.is_set()
    last_word = clock.now
    clock.advance(LIMIT - 0.01)                            # then silence, not yet too long
    assert not channel.gone.is_set()
    clock.advance(0.02)                                    # now too long: given up
    await asyncio.wait_for(channel.gone.wait(), WAIT)
    assert channel.gone_at - last_word >= LIMIT            # not while it was shorter
    key = survivor_key(TOKEN, "n1")
    await wait_until(lambda: list(run_dir.glob(f"{key}-*.sock")), "it waits for a successor", WAIT)
    assert alive(started.pid) and not task.done()          # the job runs on under the lease
    agent.request_stop()
    await asyncio.wait_for(task, WAIT)
    assert not alive(started.pid)                          # stopped: the job is ended
    assert not list(run_dir.glob(f"{key}-*"))              # socket and mark removed


@async_test
async def test_without_a_lease_a_silent_controller_ends_the_jobs_as_eof_does(run_dir):
    clock = FakeClock()
    agent, channel, task = await serving(lease=0.0, clock=clock)
    await authed(channel, heartbeat=HEARTBEAT, missed=MISSED)
    channel.send(Run(job="s", argv=("sleep", "30")))
    started = await channel.recv(Started)
    clock.advance(LIMIT + 0.01)
    await asyncio.wait_for(channel.gone.wait(), WAIT)
    await asyncio.wait_for(task, WAIT)                     # served to the end, at once
    assert not alive(started.pid)
    assert not list(run_dir.glob("*.sock"))


@async_test
async def test_aborting_a_stdio_channel_closes_both_ends_for_the_peer():
    to_agent_r, to_agent_w = os.pipe()
    from_agent_r, from_agent_w = os.pipe()
    channel = await StdioChannel.open(to_agent_r, from_agent_w)
    await channel.write(b"before\n")
    channel.abort()
    assert os.read(from_agent_r, 100) == b"before\n"
    assert os.read(from_agent_r, 100) == b""               # the peer sees our end
    with pytest.raises(BrokenPipeError):
        os.write(to_agent_w, b"x")                         # and nobody reads its writes
    await channel.close()                                  # still safe afterwards
    for fd in (to_agent_r, to_agent_w, from_agent_r, from_agent_w):
        os.close(fd)


@async_test
async def test_an_ended_job_is_reported_to_a_successor_after_the_watchdog(run_dir, tmp_path):
    """The job ends while the agent survives a silent controller; its outcome is what a
    successor gets (Outcome.EXIT with the real status), exactly as after an EOF."""
    from pclient.lease import SurvivorLink

    clock = FakeClock()
    agent, channel, task = await serving(clock=clock)
    await authed(channel, heartbeat=HEARTBEAT, missed=MISSED)
    channel.send(Run(job="e", argv=("sh", "-c", "exit 9")))
    await channel.recv(Started)
    clock.advance(LIMIT + 0.01)
    await asyncio.wait_for(channel.gone.wait(), WAIT)
    key = survivor_key(TOKEN, "n1")
    await wait_until(lambda: list(run_dir.glob(f"{key}-*.sock")), "it waits for a successor", WAIT)
    [path] = list(run_dir.glob(f"{key}-*.sock"))
    link = await SurvivorLink.connect(path, TOKEN)
    assert link.report.finished == ("e",)
    ended = decode(await asyncio.wait_for(link.read_line(), WAIT))
    assert isinstance(ended, Ended) and (ended.outcome, ended.status) == (Outcome.EXIT, 9)
    link.close()
    agent.request_stop()
    await asyncio.wait_for(task, WAIT)
