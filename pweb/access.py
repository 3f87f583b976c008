"""Who may read the status page: the bind address rule and the token.

The page binds 127.0.0.1 by default. Any address that is not loopback needs a token
(`--token-file FILE`, owner-only like pcontrol's secret): without one the page refuses to
start. With a token every request must carry it: `Authorization: Bearer TOKEN`, or `?token=`
once in the page's address, after which a cookie carries it (so that the page's own requests
and its event stream need not). Nothing the page serves changes anything in any case: its routes
are GET (and HEAD) only.
"""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from pcontrol.address import is_loopback

__all__ = ["AccessError", "COOKIE", "read_token", "check_bind", "token_matches"]

COOKIE = "pweb_token"
#: A token shorter than this is refused: it could be guessed.
MIN_TOKEN = 16


class AccessError(ValueError):
    """The page cannot start with these access settings; the text says why."""


def check_bind(host: str, token: str | None) -> None:
    """AccessError when `host` is not loopback and there is no token."""
    if token is None and not is_loopback(host):
        raise AccessError(f"--listen {host}: an address other than loopback needs a token "
                          f"(--token-file FILE); without one the page binds 127.0.0.1 only")


def read_token(path: str | os.PathLike[str]) -> str:
    """The token in `path` (its first line); AccessError naming the file and what is wrong."""
    path = Path(path).expanduser()
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AccessError(f"--token-file {path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AccessError(f"--token-file {path}: not UTF-8 text") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AccessError(f"--token-file {path}: others may read it (mode "
                          f"{stat.S_IMODE(info.st_mode):03o}); chmod 600 it")
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < MIN_TOKEN:
        raise AccessError(f"--token-file {path}: the token must be at least {MIN_TOKEN} "
                          f"characters (it has {len(token)})")
    return token


def token_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
