"""The agent driven as a real subprocess over pipes, plus its line splitter."""

from __future__ import annotations

import os
import signal

import pytest

from pclient import protocol
from pclient.agent import AGENT_NAME, LineSplitter, LineTooLong, ended_message
from pclient.jobproc import JobResult
from agent_harness import PY, REPO, RECV_TIMEOUT, AgentProcess, alive, async_test, start_agent
from pclient.protocol import (
    MAX_LINE,
    PROTOCOL_VERSION,
    Bye,
    Ended,
    Error,
    Hello,
    Kill,
    Message,
    Outcome,
    Ping,
    Pong,
    Run,
    Started,
    decode,
    encode,
)

@async_test
async def test_hello_comes_first():
    agent, hello = await start_agent("--slots", "3", "--host", "node-7")
    assert hello.version == PROTOCOL_VERSION
    assert (hello.host, hello.slots, hello.agent) == ("node-7", 3, AGENT_NAME)
    assert hello.pid == agent.proc.pid and hello.clock > 0
    await agent.finish()


@async_test
async def test_default_slots_and_host():
    import socket

    agent, hello = await start_agent()
    assert hello.slots == (os.cpu_count() or 1) and hello.host == socket.gethostname()
    await agent.finish()


@async_test
async def test_run_reports_started_then_ended():
    agent, _ = await start_agent()
    await agent.send(Run(job="j1", argv=("sh", "-c", "echo out; echo err >&2; exit 3"), env={"X": "1"}))
    started = await agent.recv_type(Started)
    assert started.job == "j1" and started.pid > 0
    ended = await agent.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.status, ended.signal) == ("j1", Outcome.EXIT, 3, None)
    assert (ended.stdout, ended.stderr, ended.stdout_bytes) == ("out\n", "err\n", 4)
    await agent.finish()


@async_test
async def test_job_output_never_reaches_the_protocol_stream():
    agent, _ = await start_agent()
    fake = '{"type":"bye"}\n{"type":"pong","seq":1,"clock":1,"running":9}\n'
    await agent.send(Run(job="noisy", argv=("sh", "-c", f"printf '{fake}'; printf '{fake}' >&2; printf '\\377\\n'")))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert ended.stdout == fake + "\xff\n" and ended.stderr == fake  # (as Tcl's exec reads a byte no UTF-8 has)
    await agent.send(Ping(seq=1))
    assert (await agent.recv_type(Pong)).running == 0
    await agent.finish()


@async_test
async def test_program_that_cannot_start():
    agent, _ = await start_agent()
    await agent.send(Run(job="bad", argv=("no-such-program-pclient",)))
    started = await agent.recv_type(Started)
    assert started.pid is None
    ended = await agent.recv_type(Ended)
    assert (ended.outcome, ended.status) == (Outcome.EXIT, 127) and "no such program" in ended.reason
    assert "no such program" in ended.stderr
    await agent.send(Run(job="quoted", argv=("ls -l",)))   # `command "ls -l"`: one word
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert ended.reason == ("cannot start 'ls -l': no such program (the command is a list of words: 'ls' is the "
                            "program, the rest its arguments; a shell line needs sh -c)")
    await agent.send(Run(job="tilde", argv=("~/bin/probe",)))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert ended.reason.endswith("no such program (~ is a shell's: nothing expands it here; write the path in "
                                 "full, or $env(HOME)/...)")
    await agent.finish()


@async_test
async def test_ping_pong_counts_running_jobs():
    agent, _ = await start_agent()
    await agent.send(Ping(seq=41))
    pong = await agent.recv_type(Pong)
    assert (pong.seq, pong.running) == (41, 0)
    await agent.send(Run(job="s", argv=("sleep", "30")))
    await agent.recv_type(Started)
    await agent.send(Ping(seq=42))
    assert (await agent.recv_type(Pong)).running == 1
    await agent.send(Kill(job="s"))
    assert (await agent.recv_type(Ended)).outcome is Outcome.KILLED
    await agent.finish()


@async_test
async def test_malformed_lines_get_errors_and_the_agent_carries_on():
    agent, _ = await start_agent()
    cases = [
        (b"this is not json\n", "malformed JSON", None),
        (b"[1,2]\n", "expected a JSON object", None),
        (b'{"type":"launch","job":"j"}\n', "unknown message type 'launch'", "j"),
        (b'{"type":"run","job":"j"}\n', "missing field 'argv'", "j"),
        (b'{"type":"run","job":"j","argv":"ls"}\n', "must be a list of strings", "j"),
        (b'{"type":"kill"}\n', "missing field 'job'", None),
        (encode(Hello(version=1, host="h", pid=1, clock=0.0, slots=1, agent="x")), "unexpected 'hello'", None),
        (b"\xff\xfe\n", "not valid UTF-8", None),
    ]
    for line, words, job in cases:
        await agent.send(line)
        error = await agent.recv_type(Error)
        assert words in error.reason and error.job == job, (line, error)
        assert error.excerpt
    await agent.send(b"\n   \n")  # blank lines are ignored
    await agent.send(Ping(seq=1))
    assert (await agent.recv_type(Pong)).seq == 1
    await agent.finish()


@async_test
async def test_overlong_line_is_refused_and_skipped():
    agent, _ = await start_agent()
    await agent.send(b'{"type":"ping","seq":1,"pad":"' + b"x" * (MAX_LINE + 10) + b'"}\n')
    error = await agent.recv_type(Error)
    assert "longer than MAX_LINE" in error.reason and error.excerpt.startswith('{"type":"ping"')
    await agent.send(Ping(seq=2))
    assert (await agent.recv_type(Pong)).seq == 2
    await agent.finish()


@async_test
async def test_kill_and_unknown_kill():
    agent, _ = await start_agent()
    await agent.send(Kill(job="ghost"))
    error = await agent.recv_type(Error)
    assert error.job == "ghost" and "no running job" in error.reason
    await agent.send(Run(job="k", argv=("sleep", "30")))
    pid = (await agent.recv_type(Started)).pid
    await agent.send(Kill(job="k"))
    ended = await agent.recv_type(Ended)
    assert (ended.job, ended.outcome, ended.signal, ended.status) == ("k", Outcome.KILLED, signal.SIGTERM, None)
    assert not alive(pid)
    await agent.finish()


@async_test
async def test_timeout_from_the_run_message():
    agent, _ = await start_agent()
    await agent.send(Run(job="t", argv=("sleep", "30"), timeout=0.1))
    await agent.recv_type(Started)
    ended = await agent.recv_type(Ended)
    assert ended.outcome is Outcome.TIMEOUT and "timed out" in ended.reason
    await agent.finish()


@async_test
async def test_slots_and_duplicate_ids_are_refused():
    agent, _ = await start_agent("--slots", "1")
    await agent.send(Run(job="a", argv=("sleep", "30")))
    await agent.recv_type(Started)
    await agent.send(Run(job="a", argv=("true",)))
    error = await agent.recv_type(Error)
    assert error.job == "a" and "already running" in error.reason
    await agent.send(Run(job="b", argv=("true",)))
    error = await agent.recv_type(Error)
    assert error.job == "b" and "slots are busy" in error.reason
    await agent.send(Kill(job="a"))
    assert (await agent.recv_type(Ended)).job == "a"
    await agent.send(Run(job="b", argv=("true",)))  # the slot is free once "a" is reported
    assert (await agent.recv_type(Started)).job == "b"
    assert (await agent.recv_type(Ended)).status == 0
    await agent.finish()


async def _run_two_sleepers(agent: AgentProcess) -> list[int]:
    pids = []
    for job in ("x", "y"):
        await agent.send(Run(job=job, argv=("sleep", "30")))
        pids.append((await agent.recv_type(Started)).pid)
    return pids


async def _expect_both_killed(agent: AgentProcess, pids: list[int]) -> None:
    ended = [await agent.recv_type(Ended) for _ in pids]
    assert sorted(e.job for e in ended) == ["x", "y"]
    assert all(e.outcome is Outcome.KILLED for e in ended)
    assert await agent.wait_exit() == 0
    assert not any(alive(pid) for pid in pids)


@async_test
async def test_eof_kills_running_jobs_and_exits_0():
    agent, _ = await start_agent()
    pids = await _run_two_sleepers(agent)
    await agent.close_stdin()
    await _expect_both_killed(agent, pids)


@async_test
async def test_bye_kills_running_jobs_and_exits_0():
    agent, _ = await start_agent()
    pids = await _run_two_sleepers(agent)
    await agent.send(Bye())
    await _expect_both_killed(agent, pids)


@async_test
async def test_sigterm_kills_running_jobs_and_exits_0():
    agent, _ = await start_agent()
    pids = await _run_two_sleepers(agent)
    agent.proc.send_signal(signal.SIGTERM)
    await _expect_both_killed(agent, pids)


@async_test
async def test_logs_go_to_the_log_file_not_stdout(tmp_path):
    log = tmp_path / "agent.log"
    agent, _ = await start_agent("-vv", "--log", str(log))
    await agent.send(Run(job="j", argv=("true",)))
    await agent.recv_type(Started)
    await agent.recv_type(Ended)
    await agent.finish()
    assert "job j: started" in log.read_text()


# -- in-process pieces ------------------------------------------------------------


@pytest.mark.parametrize("chunks, expected", [
    ([b"a\nb\n"], [b"a", b"b"]),
    ([b"a", b"b\nc", b"\n"], [b"ab", b"c"]),
    ([b"\n\n"], [b"", b""]),
    ([b"12345\n"], [b"12345"]),
    ([b"123456\nok\n"], [LineTooLong(b"123456"), b"ok"]),
    ([b"1234", b"5678", b"9\nok\n"], [LineTooLong(b"12345678"), b"ok"]),
])
def test_line_splitter(chunks, expected):
    splitter = LineSplitter(limit=5)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert lines == expected
    assert splitter.flush() is None


def test_line_splitter_flushes_an_unterminated_last_line():
    splitter = LineSplitter(limit=5)
    assert splitter.feed(b"a\nbc") == [b"a"]
    assert splitter.flush() == b"bc"


def test_ended_message_fits_in_max_line(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_LINE", 2000)
    result = JobResult(job_id="j", outcome=Outcome.EXIT, status=0, signal=None, elapsed=1.0,
                       stdout=b"\x01" * 1000, stderr=b"ok", stdout_bytes=5000, stderr_bytes=2,
                       stdout_truncated=True, stderr_truncated=False, reason=None, pid=1)
    line = ended_message(result)
    assert len(line) <= 2001
    msg = decode(line)
    assert isinstance(msg, Ended) and msg.stdout_bytes == 5000 and msg.stdout_truncated
    assert 0 < len(msg.stdout) < 1000 and set(msg.stdout) == {"\x01"}


def test_lost_output_kills_jobs_and_exits_1():
    import selectors
    import subprocess

    proc = subprocess.Popen([PY, "-m", "pclient", "--kill-grace", "0.2"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None

    def recv() -> Message:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            assert selector.select(RECV_TIMEOUT), "agent said nothing"
        return decode(proc.stdout.readline())

    try:
        assert isinstance(recv(), Hello)
        proc.stdin.write(encode(Run(job="s", argv=("sleep", "30"))))
        proc.stdin.flush()
        started = recv()
        assert isinstance(started, Started)
        proc.stdout.close()  # the controller goes away without a word
        proc.stdin.write(encode(Ping(seq=1)))  # the pong hits a closed pipe
        proc.stdin.flush()
        assert proc.wait(RECV_TIMEOUT) == 1
        assert not alive(started.pid)
        assert b"output lost" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
