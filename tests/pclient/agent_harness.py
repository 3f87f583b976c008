"""Helpers for pclient tests: the agent as a real subprocess on pipes, with bounded waits
for its messages, and a check that a process is really alive."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from pathlib import Path

from pclient.protocol import MAX_LINE, Bye, Hello, Message, decode, encode

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
RECV_TIMEOUT = 10.0


def async_test(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 60))
    return wrapper


PF_EXITING = 0x4  # linux/sched.h: set as soon as a process starts to exit


def alive(pid: int) -> bool:
    """Whether pid is a live process: not gone, not a zombie, not already exiting."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state, flags = fields[0], int(fields[6])
    return state not in "ZX" and not flags & PF_EXITING


class AgentProcess:
    """`python -m pclient` on pipes, with bounded waits for its messages."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> AgentProcess:
        log_dir = os.environ.get("PCLIENT_TEST_LOG_DIR")
        if log_dir:   # debugging a flaky test: each agent logs at debug level to a file there
            args = ("-vv", "--log", os.path.join(log_dir, "agents.log"), *args)
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "pclient", "--kill-grace", "0.2", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=REPO, limit=2 * MAX_LINE, env=env,
        )
        return cls(proc)

    async def send(self, msg: Message | bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(msg if isinstance(msg, bytes) else encode(msg))
        await self.proc.stdin.drain()

    async def recv(self) -> Message:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), RECV_TIMEOUT)
        assert line.endswith(b"\n"), f"agent output ended: {line!r}; stderr: {await self.stderr()}"
        return decode(line)

    async def recv_type(self, cls: type) -> Message:
        msg = await self.recv()
        assert isinstance(msg, cls), msg
        return msg

    async def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def wait_exit(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), RECV_TIMEOUT)

    async def stderr(self) -> bytes:
        assert self.proc.stderr is not None
        try:
            return await asyncio.wait_for(self.proc.stderr.read(), 1)
        except asyncio.TimeoutError:
            return b"<stderr still open>"

    async def finish(self) -> None:
        """Say bye, expect a clean exit and nothing more on stdout."""
        await self.send(Bye())
        assert self.proc.stdout is not None
        rest = await asyncio.wait_for(self.proc.stdout.read(), RECV_TIMEOUT)
        assert await self.wait_exit() == 0
        assert rest == b"", rest


async def start_agent(*args: str, env: dict[str, str] | None = None) -> tuple[AgentProcess, Hello]:
    agent = await AgentProcess.start(*args, env=env)
    hello = await agent.recv()
    assert isinstance(hello, Hello), hello
    return agent, hello
