"""Fixtures for the whole-product fault tests: a FaultHome per test ($SCHED_HOME and the
agents' socket directory set in this process too, for an in-process sched), ended and
removed after the test whatever happened."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

# The helper module beside this file imports whatever pytest's import mode.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_harness import FaultHome, Shell  # noqa: E402


@pytest.fixture
def fault_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultHome]:
    home = FaultHome.make()
    monkeypatch.setenv("SCHED_HOME", home.env["SCHED_HOME"])
    monkeypatch.setenv("PCLIENT_RUNTIME_DIR", home.env["PCLIENT_RUNTIME_DIR"])
    try:
        yield home
    finally:
        home.cleanup()


@pytest.fixture
def shells(fault_home: FaultHome) -> Iterator[Callable[[], Shell]]:
    """Make in-process sched shells on the test's home; each leaves (its exit hook) at the
    end of the test, after the controller is stopped."""
    made: list[Shell] = []

    def make() -> Shell:
        made.append(Shell())
        return made[-1]

    try:
        yield make
    finally:
        for shell in reversed(made):
            shell.stop_and_leave(fault_home)
