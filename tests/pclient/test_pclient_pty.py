"""The agent on a pseudo-terminal, as pcontrol starts it through pexpect over ssh, and on
pipes, as pcontrol starts a local one (stdout and stderr one pipe in both)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect

from pclient.protocol import Bye, Ended, Hello, Message, Ping, Pong, Run, Started, decode, encode

REPO = Path(__file__).resolve().parents[2]


def recv(child: pexpect.spawn) -> Message:
    child.expect(b"\n")
    return decode(child.before)


def test_long_line_passes_intact_through_a_pty():
    # echo left on (pexpect's default): the agent itself must switch it off.
    child = pexpect.spawn(sys.executable, ["-m", "pclient", "--slots", "2"], cwd=str(REPO),
                          timeout=15, maxread=65536)
    try:
        hello = recv(child)
        assert isinstance(hello, Hello) and hello.slots == 2
        # 100 kB on one line, far beyond a canonical-mode terminal's 4 kB, with
        # characters a cooked terminal would act on (^C, ^D, ^U, ^S, DEL, CR).
        payload = ("0123456789" * 10_000) + "\x03\x04\x15\x13\x7f\r\u00e9\u4e2d"
        line = encode(Run(job="big", argv=(sys.executable, "-c", "import sys; sys.stdout.write(sys.argv[1])",
                                           payload)))
        assert len(line) > 100_000
        child.send(line)
        started = recv(child)  # not an echo of the run line
        assert isinstance(started, Started) and started.job == "big"
        ended = recv(child)
        assert isinstance(ended, Ended) and ended.status == 0, ended
        assert ended.stdout == payload
        child.send(encode(Ping(seq=9)))
        pong = recv(child)
        assert isinstance(pong, Pong) and pong.seq == 9
        child.send(encode(Bye()))
        child.expect(pexpect.EOF)
        assert child.before == b""  # no log lines or stray output on the terminal
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_an_agent_whose_stderr_is_its_output_pipe_logs_nothing_there():
    # -vv: it would log at every line; stderr is the protocol's own pipe, so it must not.
    child = subprocess.Popen([sys.executable, "-m", "pclient", "--slots", "1", "-vv"], cwd=str(REPO),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdin is not None and child.stdout is not None
    try:
        hello = decode(child.stdout.readline())
        assert isinstance(hello, Hello)
        child.stdin.write(encode(Run(job="j", argv=("sh", "-c", "echo out; echo err >&2"))) + encode(Ping(seq=3)))
        child.stdin.flush()
        seen = [decode(child.stdout.readline()) for _ in range(3)]
        assert sorted(type(m).__name__ for m in seen) == ["Ended", "Pong", "Started"]
        child.stdin.write(encode(Bye()))
        child.stdin.close()
        assert child.stdout.read() == b""  # nothing more: no log lines, no stray output
        assert child.wait(timeout=15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
