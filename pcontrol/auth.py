"""Who may drive pcontrol: the owner check on the Unix socket, and the TCP challenge-response.

Unix socket: the kernel reports the peer's uid (SO_PEERCRED); only the daemon's own uid is
admitted. The 0600 socket in a 0700 $SCHED_HOME is the first fence, this is the second (it
holds even if someone loosens the file modes).

TCP (`pcontrol serve --listen HOST:PORT`, off by default): before anything else the client
proves it holds the secret in $SCHED_HOME (pcontrol.secret), without sending it:

    server -> {"auth": "challenge", "v": 1, "challenge": "<64 hex digits, fresh random>"}
    client -> {"auth": "proof", "proof": "<secret.proof(secret, TCP_PROOF_LABEL + challenge)>"}
    server -> a reply with id null: ok ("welcome"), or error "forbidden" and the connection
              is closed. A client that does not answer within the auth timeout is dropped.

TCP_PROOF_LABEL keeps these proofs apart from every other HMAC computed under the secret
(agent tokens, agents' challenges): nobody can get a TCP proof out of pcontrol by asking it
to answer some other challenge. sched's server (`sched --serve --listen`, psched.shell.server)
runs the same handshake with the same secret under a label of its own. Neither side logs the
secret or a proof. The stream itself is not encrypted: use the listener on loopback, through an
ssh tunnel or a trusted network.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import json
import secrets
import socket
import struct
from typing import Any

from . import secret as shared_secret
from .errors import ClientError, ControllerDisconnected, ControllerTimeout, WireError
from .wire import Reply, decode_server_message

AUTH_VERSION = 1
#: Prefix of every message the TCP proof signs; see the module docstring.
TCP_PROOF_LABEL = b"pcontrol tcp client v1\0"
#: Random bytes in one challenge.
CHALLENGE_BYTES = 32
#: Longest authentication line either side accepts (newline included).
MAX_AUTH_LINE = 1024
#: Hex digits of a proof (HMAC-SHA256).
PROOF_HEX_DIGITS = 64


class AuthStep(str, enum.Enum):
    """The `auth` tag of the two handshake lines."""

    CHALLENGE = "challenge"   #: server -> client: the random challenge
    PROOF = "proof"           #: client -> server: the HMAC of it


class AccessDenied(ClientError):
    """The controller refused this client (wrong uid, wrong secret, malformed handshake)."""


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED), if known."""
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED") or sock.family != socket.AF_UNIX:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def owner_refusal(peer_uid: int | None, owner_uid: int) -> str | None:
    """Why a Unix-socket peer with `peer_uid` is refused, or None if it is the owner.

    An unknown uid (no SO_PEERCRED on this system) is admitted: the socket's 0600 mode is
    then the only fence.
    """
    if peer_uid is None or peer_uid == owner_uid:
        return None
    return (f"this pcontrol serves only its owner (uid {owner_uid}); "
            f"connection from uid {peer_uid} refused")


# -- the challenge ---------------------------------------------------------------------------

def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def challenge_line(challenge: bytes) -> bytes:
    obj = {"auth": AuthStep.CHALLENGE.value, "v": AUTH_VERSION, "challenge": challenge.hex()}
    return json.dumps(obj, separators=(",", ":")).encode("ascii") + b"\n"


def expected_proof(secret: bytes, challenge: bytes, label: bytes = TCP_PROOF_LABEL) -> str:
    """The proof of `challenge`; `label` names the service (pcontrol's by default; sched's
    server has its own), so that a proof made for one is worth nothing to the other."""
    return shared_secret.proof(secret, label + challenge)


def proof_line(secret: bytes, challenge: bytes, label: bytes = TCP_PROOF_LABEL) -> bytes:
    obj = {"auth": AuthStep.PROOF.value, "proof": expected_proof(secret, challenge, label)}
    return json.dumps(obj, separators=(",", ":")).encode("ascii") + b"\n"


def _auth_object(line: bytes, step: AuthStep) -> dict[str, Any]:
    if len(line) > MAX_AUTH_LINE:
        raise WireError(f"authentication line longer than {MAX_AUTH_LINE} bytes")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError(f"expected an authentication {step.value} line (JSON)") from None
    if not isinstance(obj, dict) or obj.get("auth") != step.value:
        raise WireError(f'expected {{"auth": "{step.value}", ...}}')
    return obj


def decode_proof(line: bytes) -> str:
    """The proof a client sent; WireError if the line is not a proof message."""
    proof = _auth_object(line, AuthStep.PROOF).get("proof")
    if not isinstance(proof, str):
        raise WireError('"proof" must be a string')
    return proof


def decode_challenge(line: bytes) -> bytes:
    """The challenge a server sent; WireError if the line is not a challenge message."""
    obj = _auth_object(line, AuthStep.CHALLENGE)
    version = obj.get("v")
    if version != AUTH_VERSION:
        raise WireError(f"authentication version {version!r} is not supported "
                        f"(this client speaks {AUTH_VERSION})")
    text = obj.get("challenge")
    try:
        challenge = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        challenge = b""
    if len(challenge) != CHALLENGE_BYTES:
        raise WireError(f'"challenge" must be {2 * CHALLENGE_BYTES} hex digits')
    return challenge


def proof_matches(secret: bytes, challenge: bytes, given: str, label: bytes = TCP_PROOF_LABEL) -> bool:
    """Constant-time check of a client's proof (any string, even a hostile one)."""
    expected = expected_proof(secret, challenge, label).encode("ascii")
    return hmac.compare_digest(expected, given.encode("utf-8", "replace"))


# -- the client's side -----------------------------------------------------------------------

async def prove(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes,
                timeout: float) -> Reply:
    """Answer the server's challenge; return its welcome reply.

    Raises AccessDenied if the server refuses or speaks no handshake, ControllerTimeout if
    the handshake does not finish within `timeout`, ControllerDisconnected if it hangs up.
    """
    try:
        return await asyncio.wait_for(_prove(reader, writer, secret), timeout)
    except asyncio.TimeoutError:
        raise ControllerTimeout(f"pcontrol did not finish authentication within "
                                f"{timeout:g} s") from None
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ControllerDisconnected(f"pcontrol hung up during authentication: {exc}") from None


async def _prove(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 secret: bytes) -> Reply:
    line = await reader.readuntil(b"\n")
    try:
        challenge = decode_challenge(line)
    except WireError as exc:
        try:      # a server that refuses at once (e.g. too many connections) sends a reply
            reply = decode_server_message(line)
        except WireError:
            raise AccessDenied(f"pcontrol sent no authentication challenge: "
                               f"{exc.message}") from None
        raise AccessDenied(f"pcontrol refused the connection: {reply.text}") from None
    writer.write(proof_line(secret, challenge))
    await writer.drain()
    answer = await reader.readuntil(b"\n")
    try:
        reply = decode_server_message(answer)
    except WireError as exc:
        raise AccessDenied(f"pcontrol answered the proof with a malformed line: "
                           f"{exc.message}") from None
    if not isinstance(reply, Reply) or not reply.ok:
        text = reply.text if isinstance(reply, Reply) else "an event"
        raise AccessDenied(f"pcontrol refused the connection: {text}")
    return reply
