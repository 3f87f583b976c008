"""Lets the tests of tests/sched import their shared fake world (sched_world.py); the `home`
fixture of the tests that run the real sched program (sched_process.py) on a $SCHED_HOME."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sched_process import kill_group, kill_home_processes  # noqa: E402


@pytest.fixture
def home(tmp_path: Path):
    """A $SCHED_HOME path and the list of sched processes a test starts there (killed after,
    with every process that still runs with that $SCHED_HOME: the local jobs of a sched the
    test killed run in process groups of their own, and a pcontrol it started)."""
    path = tmp_path / "home"
    runs = []
    yield path, runs
    for run in runs:
        kill_group(run.pid)
    kill_home_processes(path)
