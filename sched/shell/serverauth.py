"""Who may attach to a sched server over TCP: pcontrol's challenge-response (pcontrol.auth), with
the same secret ($SCHED_HOME/secret) under a label of sched's own.

    server -> {"auth": "challenge", "v": 1, "challenge": "<64 hex digits>"}
    prompt -> {"auth": "proof", "proof": "<HMAC-SHA256 of SCHED_PROOF_LABEL + challenge>"}
    server -> the usual `hello` (psched.shell.serverwire), or a `reply` with ok false and the
              reason, and the connection is closed (both read by psched.shell.serverlink)

The label keeps a proof made for a sched server from being of any use to pcontrol, and the
other way round, although both hold the same secret. Neither side logs the secret or a proof.
The stream is not encrypted: listen on loopback, or reach the port through an ssh tunnel.
"""

from __future__ import annotations

import asyncio

from pcontrol import auth
from pcontrol.errors import WireError as AuthWireError


__all__ = ["SCHED_PROOF_LABEL", "AUTH_TIMEOUT", "admit", "prove", "Refused"]

SCHED_PROOF_LABEL = b"sched tcp prompt v1\0"
#: Seconds a TCP prompt has to answer the challenge.
AUTH_TIMEOUT = 5.0


class Refused(Exception):
    """The server refused this prompt (wrong secret, no handshake); the text says why."""


async def admit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> str | None:
    """The server's side: None when the peer proved the secret, else why it is refused."""
    challenge = auth.new_challenge()
    writer.write(auth.challenge_line(challenge))
    try:
        line = await asyncio.wait_for(reader.readline(), AUTH_TIMEOUT)
    except asyncio.TimeoutError:
        return f"no answer to the authentication challenge within {AUTH_TIMEOUT:g} s"
    except (ValueError, ConnectionError):
        return "the authentication line is too long or the connection broke"
    try:
        if auth.proof_matches(secret, challenge, auth.decode_proof(line), SCHED_PROOF_LABEL):
            return None
    except AuthWireError as err:
        return f"malformed authentication: {err.message}"
    return "wrong proof: this prompt does not hold the server's secret ($SCHED_HOME/secret)"


async def prove(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> None:
    """The prompt's side: answer the challenge (Refused when there is none). The server's answer,
    its hello or its refusal, is read as any greeting is (psched.shell.serverlink.read_hello)."""
    line = await asyncio.wait_for(reader.readline(), AUTH_TIMEOUT)
    try:
        challenge = auth.decode_challenge(line)
    except AuthWireError as err:
        raise Refused(f"the server sent no authentication challenge: {err.message}") from None
    writer.write(auth.proof_line(secret, challenge, SCHED_PROOF_LABEL))
    await writer.drain()
