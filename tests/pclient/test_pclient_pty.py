"""The agent on a pseudo-terminal, as pcontrol starts it through pexpect."""

from __future__ import annotations

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
