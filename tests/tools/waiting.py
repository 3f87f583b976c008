"""Bounded waiting for the tests, for state nobody can tell them about (a file there, a
process gone, a count only pcontrol's answers give): poll it, and fail with an
AssertionError naming what did not happen. Shared by every test folder (tests/conftest.py
puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

WAIT = 30.0
POLL = 0.02


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll `condition` (a function, possibly async) until it is truthy; its value. Raises
    AssertionError naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(POLL)


def wait_until_sync(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """`wait_until` for code that runs no event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(POLL)
