"""`sched --attach` to any member of a pool reaches the leader (psched.shell.harelay), through the
real programs: a private etcd, three `sched --serve --ha URL --listen` members sharing the pool's
secret, and real `sched --attach` prompts on ptys (pexpect).

A prompt on a standby's Unix socket runs `status` in the leader (and Ctrl-C interrupts a `wait`
there); when the leader is killed (-9)
the prompts say so, and their next command reaches the new leader: the prompt on the member that
takes the lead is served there, the one on a member that stays a standby is relayed to the new
leader, and one attached to the killed leader over TCP goes on through another member."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest

from hapool import Pool
from prompts import new_prompt
from waiting import wait_until_sync

pytestmark = pytest.mark.timeout(150)

TTL = 2
PERIOD = 1.0
SCHED = Path(sys.executable).with_name("sched")
PROMPT = new_prompt("sched>")


@pytest.fixture
def pool(etcd, tmp_path: Path, request):
    made = Pool(tmp_path, f"{etcd.url}/{request.node.name[:40]}", ttl=TTL, period=PERIOD)
    yield made
    made.close()


class Prompt:
    """`sched --attach [ARGS]` on a pty, with a member's $SCHED_HOME."""

    def __init__(self, home: Path, *args: str):
        env = dict(os.environ, SCHED_HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="400")
        command = [str(SCHED)] if SCHED.exists() else [sys.executable, "-m", "psched"]
        self.child = pexpect.spawn(command[0], command[1:] + ["--attach", *args], env=env, encoding="utf-8",
                                   timeout=30, dimensions=(60, 400))

    def expect(self, text: str, timeout: float = 30) -> None:
        self.child.expect_exact(text, timeout=timeout)

    def expect_all(self, *texts: str) -> None:
        """Each of `texts`, in any order (the server's notes and the prompt's own lines race)."""
        left = list(texts)
        while left:
            left.pop(self.child.expect_exact(left))

    def run(self, line: str) -> None:
        """Wait for a new prompt, type `line` and Enter."""
        self.child.expect(PROMPT)
        self.child.send(line + "\r")

    def token(self) -> int:
        """The token in the `ha:` line of the `status` just typed."""
        self.child.expect(r"ha: leader; (.+?) leads since [-0-9: ]+ \(token (\d+)\); lease")
        return int(self.child.match.group(2))

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def test_attach_to_any_member_reaches_the_leader_and_follows_a_failover(pool):
    a = pool.member("a", listen=True)
    a.wait_log("serving")
    b = pool.member("b", listen=True)
    c = pool.member("c", listen=True)
    b.wait_log("standby: ")
    c.wait_log("standby: ")
    prompts = []
    try:
        on_b = Prompt(b.home)                                   # the standby's own Unix socket
        prompts.append(on_b)
        on_b.expect_all("a standby of its pool: commands go on to the leader (" + a.name_in_pool,
                        f"this standby carries your commands to the leader: {a.name_in_pool} leads since ")
        on_b.run("status")
        on_b.expect("tick")                                     # the leader's task, in its table
        first = on_b.token()
        assert on_b.child.match.group(1) == a.name_in_pool

        on_b.run("wait")                                        # the leader's scheduler runs on: waits ...
        on_b.expect("wait")
        on_b.child.send("\x03")                                 # ... until Ctrl-C, carried to the leader
        on_b.expect("interrupted")
        assert a.alive() and b.alive()

        on_c = Prompt(c.home)
        prompts.append(on_c)
        on_c.run("status")
        assert on_c.token() == first and on_c.child.match.group(1) == a.name_in_pool

        on_a = Prompt(a.home, "--connect", a.address)         # the leader itself, over TCP
        prompts.append(on_a)
        on_a.expect(f"the leader of its pool ({a.name_in_pool} leads since ")     # no relay: no note
        on_a.run("status")
        assert on_a.token() == first

        a.kill9()
        on_b.expect(f"the leader at {a.address} has gone")     # told at once, before any command
        on_c.expect(f"the leader at {a.address} has gone")
        on_a.expect("your next command goes to the leader through another member of the pool (")
        wait_until_sync(lambda: "leading: " in b.text() + c.text(), "b or c leads", 3 * TTL + 15)
        new, other, on_new, on_other = (b, c, on_b, on_c) if "leading: " in b.text() else (c, b, on_c, on_b)
        new.wait_log("serving", 30)

        on_new.expect(f"this server leads the pool now: {new.name_in_pool} leads since ")
        on_new.run("status")
        second = on_new.token()
        assert on_new.child.match.group(1) == new.name_in_pool and second > first

        on_other.run("status")                                 # a standby still: relayed to the new leader
        on_other.expect(f"the leader has changed: {new.name_in_pool} leads since ")
        assert on_other.token() == second and on_other.child.match.group(1) == new.name_in_pool

        on_a.run("status")                                     # its server is dead: another member carries it
        on_a.expect("attached to the server in ")
        assert on_a.token() == second and on_a.child.match.group(1) == new.name_in_pool

        on_other.run("detach")
        on_other.child.expect(pexpect.EOF)
        assert other.alive()
    finally:
        for prompt in prompts:
            prompt.close()


def test_a_hung_leader_does_not_hold_a_relayed_prompt(etcd, tmp_path):
    """The leader stopped (SIGSTOP: its connection open, nothing answered): Ctrl-C at a prompt
    relayed to it is answered by the standby within its grace, long before the leader's lease
    of 5 s ends; then the standby leads and serves the prompt itself."""
    pool = Pool(tmp_path, f"{etcd.url}/hung", ttl=5, period=PERIOD)
    prompt = None
    a = None
    try:
        a = pool.member("a", listen=True)
        a.wait_log("serving")
        b = pool.member("b", listen=True)
        b.wait_log("standby: ")
        prompt = Prompt(b.home)
        prompt.expect_all("a standby of its pool: commands go on to the leader (" + a.name_in_pool,
                          f"this standby carries your commands to the leader: {a.name_in_pool} leads since ")
        prompt.run("status")
        first = prompt.token()
        os.kill(a.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        prompt.run("status")
        prompt.expect("status")
        prompt.child.send("\x03")
        prompt.expect(f"interrupted here: the leader at {a.address} did not answer within 2 s")
        assert time.monotonic() - stopped < 5, "answered only once the lease had ended"
        prompt.expect(f"this server leads the pool now: {b.name_in_pool} leads since ", timeout=30)
        b.wait_log("serving")
        prompt.run("status")
        assert prompt.token() > first and prompt.child.match.group(1) == b.name_in_pool
    finally:
        if a is not None:
            os.kill(a.pid, signal.SIGCONT)
        if prompt is not None:
            prompt.close()
        pool.close()
