"""Fixtures for the shell tests: a private SCHED_HOME, and `sched` run through a pipe or a pty."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for psched_test_command, in either import mode

from psched_test_command import SCHED_COMMAND  # noqa: E402
from prompts import new_prompt  # noqa: E402

PROMPT = "sched>"
"""The prompt as it reaches a terminal (the renderer draws the trailing blank as a cursor move)."""

NEW_PROMPT = new_prompt(PROMPT)
"""A new prompt, not a redraw of the one being typed at (see tests/tools/prompts.py)."""


@pytest.fixture
def sched_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a `sched` process: its own state directory, no terminal queries."""
    env = dict(os.environ)
    env.update(SCHED_HOME=str(tmp_path / "home"), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="200")
    return env


class Terminal:
    """`sched` on a real pty: send keys, expect output, with a timeout on every wait."""

    def __init__(self, env: dict[str, str], args: list[str], cwd: Path, timeout: float = 10):
        self.child = pexpect.spawn(SCHED_COMMAND[0], SCHED_COMMAND[1:] + args, env=env, cwd=str(cwd),
                                   encoding="utf-8", timeout=timeout, dimensions=(40, 200))

    def prompt(self) -> None:
        self.child.expect(NEW_PROMPT)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def line(self, text: str) -> None:
        """Type a line and press Enter."""
        self.child.send(text + "\r")

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)

    def expect_exit(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def terminal(sched_env: dict[str, str], tmp_path: Path):
    """Start `sched` (with extra arguments) on a pty; every session is closed at the end."""
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        term = Terminal(sched_env, list(args), tmp_path)
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()
