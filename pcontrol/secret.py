"""The controller's shared secret: 32 random bytes in $SCHED_HOME/secret, owner-only.

Two users of it:
- the TCP listener (server.py) admits a client that answers a challenge with `proof()`;
- agents: right after an agent's hello the controller sends it `agent_token()`, a key derived
  from the secret (never the secret itself). A surviving agent hands its jobs only to a successor
  that proves the same token, so only a controller holding the same secret can take them over.

The secret is never logged and never crosses the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "secret"
SECRET_BYTES = 32
#: Domain label that keeps the agent token distinct from any challenge proof.
_AGENT_TOKEN_LABEL = b"pclient agent token v1"


class SecretError(Exception):
    """The secret file exists but cannot be used (wrong size, loose permissions, unreadable)."""


def secret_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / SECRET_FILE


def load_or_create_secret(home: str | os.PathLike[str]) -> bytes:
    """The secret in HOME/secret, created (0600, atomically) when missing."""
    home = Path(home)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = secret_path(home)
    try:
        return read_secret(path)
    except FileNotFoundError:
        pass
    tmp = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_bytes(SECRET_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if another process created the secret meanwhile: then theirs wins.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return read_secret(path)


def read_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in `path`, after the daemon's checks: owner-only mode, this user's, 32 bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077:
            raise SecretError(f"{path} is readable by others (mode {st.st_mode & 0o777:o}); "
                              f"chmod 600 it")
        if st.st_uid != os.getuid():
            raise SecretError(f"{path} is not owned by this user")
        data = os.read(fd, SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != SECRET_BYTES:
        raise SecretError(f"{path} holds {len(data)} bytes, expected {SECRET_BYTES}")
    return data


def proof(secret: bytes, challenge: bytes) -> str:
    """HMAC-SHA256 of CHALLENGE under SECRET, as lowercase hex."""
    return hmac.new(secret, challenge, hashlib.sha256).hexdigest()


def agent_token(secret: bytes) -> str:
    """The key an agent keeps to recognise a successor controller (hex, derived, one-way)."""
    return proof(secret, _AGENT_TOKEN_LABEL)
