"""Access: the Unix socket serves only its owner's uid; the TCP listener is off by default and,
when on, admits only a client that proves the shared secret, which never crosses the wire
and is never logged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hostile_harness import (PING, WAIT, daemon, open_unix, ping, read_eof, read_json, run,
                             served)
from pcontrol import auth, server as server_module
from pcontrol.client import ControllerClient
from pcontrol.errors import ControllerNotRunning, ControllerTimeout
from pcontrol.server import ControlServer, ServerLimits, parse_listen

# -- the owner check -------------------------------------------------------------------------


@pytest.mark.parametrize("peer, owner, refused", [
    (1000, 1000, False),
    (None, 1000, False),       # no SO_PEERCRED: the file mode is the only fence
    (0, 1000, True),           # not even root drives another user's controller
    (1001, 1000, True),
    (1000, 0, True),
])
def test_owner_refusal(peer: int | None, owner: int, refused: bool) -> None:
    message = auth.owner_refusal(peer, owner)
    if not refused:
        assert message is None
    else:
        assert message == (f"this pcontrol serves only its owner (uid {owner}); "
                           f"connection from uid {peer} refused")


def test_a_foreign_uid_is_refused_and_the_daemon_carries_on(
        home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated: the peer check reports another uid for the first connection only."""
    real_peer_uid = server_module.peer_uid
    seen: list[int | None] = []

    def first_is_a_stranger(writer: asyncio.StreamWriter) -> int | None:
        uid = real_peer_uid(writer)
        seen.append(uid)
        return uid + 1 if len(seen) == 1 and uid is not None else uid

    monkeypatch.setattr(server_module, "peer_uid", first_is_a_stranger)

    async def body() -> None:
        async with served(home) as s:
            reader, writer = await open_unix(s.socket)
            writer.write(PING)
            reply = await read_json(reader)
            assert reply["ok"] is False and reply["id"] is None
            assert reply["error"]["code"] == "forbidden"
            assert reply["text"] == (f"this pcontrol serves only its owner (uid {os.geteuid()}); "
                                     f"connection from uid {os.geteuid() + 1} refused")
            assert await read_eof(reader) == b""      # no pong: the request was never read
            writer.close()
            await ping(s.socket)                    # the owner is still served
            assert seen[-1] == os.geteuid()
    run(body())


NOBODY_CLIENT = r"""
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
sock.sendall(b'{"id": 1, "argv": ["ping"]}\n')
data = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"received": data.decode()}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None
                    or not Path("/usr/bin/python3").exists(),
                    reason="needs root, setpriv and /usr/bin/python3 to run a client as nobody")
def test_another_user_is_refused_by_a_real_daemon_even_with_open_file_modes() -> None:
    nobody = pwd.getpwnam("nobody")
    with daemon() as d:
        # Loosen the fences the kernel applies to the file, so only the uid check remains.
        os.chmod(d.home, 0o755)
        os.chmod(d.socket, 0o666)
        result = subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
             "--clear-groups", "/usr/bin/python3", "-c", NOBODY_CLIENT, d.socket],
            capture_output=True, text=True, timeout=WAIT, cwd="/")
        assert result.returncode == 0, result.stderr
        lines = json.loads(result.stdout)["received"].splitlines()
        assert len(lines) == 1, lines            # the refusal, then the close: no pong
        reply = json.loads(lines[0])
        assert reply["error"]["code"] == "forbidden"
        assert f"connection from uid {nobody.pw_uid} refused" in reply["text"]
        run(ping(d.socket))
        assert d.alive()
        assert f"refused a connection on the socket from uid {nobody.pw_uid}" in d.log_text()


# -- TCP: off by default ---------------------------------------------------------------------

def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":           # LISTEN
                inodes.add(fields[9])
    return inodes


def test_the_daemon_listens_on_no_tcp_port_by_default() -> None:
    with daemon() as d:
        run(ping(d.socket))
        sockets = set()
        for fd in os.listdir(f"/proc/{d.pid}/fd"):
            try:
                sockets.add(os.readlink(f"/proc/{d.pid}/fd/{fd}"))
            except FileNotFoundError:   # closed since the listing (a journal file, a pipe)
                pass
        inodes = {link[len("socket:["):-1] for link in sockets if link.startswith("socket:[")}
        assert inodes, "the daemon should hold its Unix socket at least"
        assert not inodes & _listening_tcp_inodes()


def _serve_takes_listen() -> bool:
    from pcontrol import cli
    try:
        cli._serve_parser("pcontrol serve").parse_args(["--listen", "127.0.0.1:0"])
    except SystemExit:
        return False
    return True


@pytest.mark.skipif(not _serve_takes_listen(),
                    reason="`pcontrol serve --listen` is not wired up in cli.py/daemon.py yet")
def test_the_daemon_serves_tcp_when_asked() -> None:
    with daemon(serve_args=("--listen", "127.0.0.1:0")) as d:
        found = re.search(r"listening on TCP 127\.0\.0\.1:(\d+)", d.log_text())
        assert found, d.log_text()
        address = ("127.0.0.1", int(found.group(1)))

        async def body() -> None:
            client = await ControllerClient.connect(d.home, tcp=address)
            assert (await client.call("ping"))["pid"] == d.pid
            await client.close()
            with pytest.raises(auth.AccessDenied, match="wrong proof"):
                await ControllerClient.connect(d.home, tcp=address, secret=b"\0" * 32)
        run(body())
        assert d.alive()


def test_a_tcp_listener_needs_the_secret() -> None:
    with pytest.raises(ValueError, match="needs the shared secret"):
        ControlServer(None, Path("/tmp/x.sock"), listen=("127.0.0.1", 0))   # type: ignore[arg-type]


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:7000", ("127.0.0.1", 7000)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:65535", ("::1", 65535)),
    ("0.0.0.0:22", ("0.0.0.0", 22)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text, message", [
    ("7000", "expected HOST:PORT"),
    (":7000", "expected HOST:PORT"),
    ("host:", "port must be a number"),
    ("host:http", "port must be a number"),
    ("host:70000", "port must be a number"),
    ("::1:80", "IPv6 address in brackets"),
])
def test_parse_listen_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_listen(text)


# -- TCP: the challenge-response -------------------------------------------------------------

LOOPBACK = ("127.0.0.1", 0)
FAST_AUTH = ServerLimits(auth_timeout=0.5)


def test_a_client_with_the_secret_is_admitted_and_served(home: str) -> None:
    async def body() -> None:
        async with served(home, listen=LOOPBACK) as s:
            client = await ControllerClient.connect(home, tcp=s.tcp)
            try:
                assert (await client.call("ping"))["pong"] is True
                await client.subscribe()
                job = await client.call("job", "--", "true")
                event = await asyncio.wait_for(client.events().__anext__(), WAIT)
                assert event.data["id"] == job["id"]
            finally:
                await client.close()
    run(body())


def test_a_wrong_secret_is_refused_and_the_server_carries_on(home: str) -> None:
    async def body() -> None:
        async with served(home, listen=LOOPBACK) as s:
            with pytest.raises(auth.AccessDenied) as caught:
                await ControllerClient.connect(home, tcp=s.tcp, secret=b"\x01" * 32)
            assert str(caught.value) == (
                "pcontrol refused the connection: wrong proof: this client does not hold "
                "pcontrol's secret; closing")
            # raw: the refusal is an error reply, then the connection is closed
            reader, writer = await asyncio.open_connection(*s.tcp)
            challenge = auth.decode_challenge(await reader.readline())
            writer.write(auth.proof_line(b"\x02" * 32, challenge) + PING)
            reply = await read_json(reader)
            assert reply["error"]["code"] == "forbidden" and reply["id"] is None
            assert await read_eof(reader) == b""      # the pipelined ping was never run
            writer.close()
            client = await ControllerClient.connect(home, tcp=s.tcp)
            assert (await client.call("ping"))["pong"] is True
            await client.close()
    run(body())


def test_a_proof_is_good_for_its_own_challenge_only(home: str) -> None:
    async def body() -> None:
        async with served(home, listen=LOOPBACK) as s:
            assert s.secret is not None
            first_reader, first_writer = await asyncio.open_connection(*s.tcp)
            first = auth.decode_challenge(await first_reader.readline())
            recorded = auth.proof_line(s.secret, first)     # what an eavesdropper saw
            reader, writer = await asyncio.open_connection(*s.tcp)
            second = auth.decode_challenge(await reader.readline())
            assert second != first
            writer.write(recorded)
            reply = await read_json(reader)
            assert reply["error"]["code"] == "forbidden"
            assert "wrong proof" in reply["text"]
            first_writer.write(recorded)                    # on its own challenge: welcome
            assert (await read_json(first_reader))["ok"] is True
            for w in (writer, first_writer):
                w.close()
    run(body())


BAD_ANSWERS = [
    (b"not json\n", "malformed authentication: expected an authentication proof line"),
    (b'{"auth": "proof"}\n', 'malformed authentication: "proof" must be a string'),
    (b'{"auth": "proof", "proof": 12}\n', 'malformed authentication: "proof" must be a string'),
    (b'{"auth": "hello", "proof": "00"}\n', 'malformed authentication: expected {"auth": "proof"'),
    (b'{"id": 1, "argv": ["ping"]}\n', 'malformed authentication: expected {"auth": "proof"'),
    ('{"auth": "proof", "proof": "\u00e9\u00e9\u00e9"}\n'.encode(), "wrong proof"),
    (b'{"auth": "proof", "proof": "\\ud800"}\n', "wrong proof"),
    (b'{"auth": "proof", "proof": "' + b"0" * 64 + b'"}\n', "wrong proof"),
    (b"\xff\xfe\n", "malformed authentication: expected an authentication proof line"),
    (b"[" * 900 + b"\n", "malformed authentication"),
    (b"x" * 5000 + b"\n", "authentication line longer than 1024 bytes"),
]


@pytest.mark.parametrize("answer, message", BAD_ANSWERS)
def test_a_malformed_answer_is_refused(home: str, answer: bytes, message: str) -> None:
    async def body() -> None:
        async with served(home, listen=LOOPBACK) as s:
            reader, writer = await asyncio.open_connection(*s.tcp)
            auth.decode_challenge(await reader.readline())
            writer.write(answer)
            reply = await read_json(reader)
            assert reply["error"]["code"] == "forbidden"
            assert reply["text"].startswith(message) and reply["text"].endswith("; closing")
            await read_eof(reader)
            writer.close()
    run(body())


def test_a_client_that_does_not_answer_is_dropped(home: str) -> None:
    async def body() -> None:
        async with served(home, limits=FAST_AUTH, listen=LOOPBACK) as s:
            silent_reader, silent_writer = await asyncio.open_connection(*s.tcp)
            half_reader, half_writer = await asyncio.open_connection(*s.tcp)
            auth.decode_challenge(await silent_reader.readline())
            auth.decode_challenge(await half_reader.readline())
            half_writer.write(b'{"auth": "proof", "proof": "00')      # and then nothing
            # meanwhile an honest client is admitted and served
            client = await ControllerClient.connect(home, tcp=s.tcp)
            assert (await client.call("ping"))["pong"] is True
            for reader in (silent_reader, half_reader):
                reply = await read_json(reader, timeout=WAIT)
                assert reply["error"]["code"] == "timeout"
                assert reply["text"] == ("no answer to the authentication challenge within "
                                         "0.5 s; closing")
                await read_eof(reader)
            assert (await client.call("ping"))["pong"] is True
            await client.close()
            for writer in (silent_writer, half_writer):
                writer.close()
    run(body())


def test_clients_waiting_to_authenticate_are_limited(home: str) -> None:
    async def body() -> None:
        limits = ServerLimits(max_unauthenticated=2, auth_timeout=WAIT)
        async with served(home, limits=limits, listen=LOOPBACK) as s:
            waiting = [await asyncio.open_connection(*s.tcp) for _ in range(2)]
            for reader, _ in waiting:
                auth.decode_challenge(await reader.readline())
            reader, writer = await asyncio.open_connection(*s.tcp)
            reply = await read_json(reader)
            assert reply["error"]["code"] == "overloaded"
            assert "too many clients authenticating at once (limit 2)" in reply["text"]
            await read_eof(reader)
            writer.close()
            with pytest.raises(auth.AccessDenied, match="too many clients authenticating"):
                await ControllerClient.connect(home, tcp=s.tcp)
            # the Unix socket is not affected
            await ping(s.socket)
            for _, w in waiting:
                w.close()
    run(body())


def test_the_secret_never_crosses_the_wire_and_is_never_logged(
        home: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def body() -> None:
        async with served(home, listen=LOOPBACK) as s:
            assert s.secret is not None
            secret = s.secret
            reader, writer = await asyncio.open_connection(*s.tcp)
            first_line = await reader.readline()
            challenge = auth.decode_challenge(first_line)
            sent = auth.proof_line(secret, challenge)
            writer.write(sent + PING)
            received = first_line + await reader.readline() + await reader.readline()
            assert json.loads(received.splitlines()[-1])["text"] == "pong"
            writer.close()
            bad_reader, bad_writer = await asyncio.open_connection(*s.tcp)
            await bad_reader.readline()
            bad_writer.write(b'{"auth": "proof", "proof": "' + secret.hex().encode() + b'"}\n')
            assert (await read_json(bad_reader))["error"]["code"] == "forbidden"
            bad_writer.close()
            proof = auth.expected_proof(secret, challenge)
            for form in (secret, secret.hex().encode(), secret.hex().upper().encode()):
                assert form not in received and form not in sent
            logged = "\n".join(record.getMessage() for record in caplog.records)
            assert "admitted 127.0.0.1:" in logged and "wrong proof" in logged
            for form in (secret.hex(), secret.hex().upper(), repr(secret), proof):
                assert form not in logged
    run(body())


def test_a_client_facing_a_server_without_handshake_is_told_so() -> None:
    async def body() -> None:
        async def talker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
            await writer.drain()
            writer.close()

        listener = await asyncio.start_server(talker, "127.0.0.1", 0)
        address = listener.sockets[0].getsockname()[:2]
        try:
            with pytest.raises(auth.AccessDenied, match="sent no authentication challenge"):
                await ControllerClient.connect(tcp=address, secret=b"s" * 32)
        finally:
            listener.close()
    run(body())


def test_a_client_gets_clear_errors_without_a_listener() -> None:
    async def body() -> None:
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()           # says nothing until the client gives up

        listener = await asyncio.start_server(mute, "127.0.0.1", 0)
        address = listener.sockets[0].getsockname()[:2]
        try:
            with pytest.raises(ControllerTimeout, match="did not finish authentication"):
                await ControllerClient.connect(tcp=address, secret=b"s" * 32, timeout=0.3)
        finally:
            listener.close()
            await listener.wait_closed()
        with pytest.raises(ControllerNotRunning, match="not listening on TCP 127.0.0.1"):
            await ControllerClient.connect(tcp=address, secret=b"s" * 32)
    run(body())
