"""Fixtures for pcontrol tests: a short temporary SCHED_HOME and a fake ssh on PATH (whose
"hosts" cache the agent pcontrol sends them in the test's own directory).

No agent may outlive its test: after each test the agents started for its home (found by
the socket directory in their environment) get a few seconds to exit; any still there
are killed and the test errors.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

# The helper modules beside this file import whatever pytest's import mode.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from pcontrol_harness import FAKE_SSH  # noqa: E402
from procs import agents_with_runtime  # noqa: E402


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Unix socket paths are limited to ~107 bytes: keep the home short, under /tmp.
    path = tempfile.mkdtemp(dir="/tmp", prefix="pc")
    # Surviving agents of this test wait for a successor in a directory of its own.
    run_dir = Path(path) / "run"
    run_dir.mkdir(mode=0o700)
    monkeypatch.setenv("PCLIENT_RUNTIME_DIR", str(run_dir))
    yield path
    leftover = _agents_of(run_dir, deadline=time.monotonic() + AGENT_EXIT_WAIT)
    for pid in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(path, ignore_errors=True)
    assert not leftover, f"agents {leftover} outlived the test"


#: Seconds the agents of a finished test get to exit.
AGENT_EXIT_WAIT = 5.0


def _agents_of(run_dir: Path, deadline: float) -> list[int]:
    """The live agents whose survivor socket directory is `run_dir`, once they stay so
    until `deadline` (polled: their exit is nothing we can wait on)."""
    while True:
        found = agents_with_runtime(run_dir)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def fake_ssh(home: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `ssh` first on PATH (for this process and the agents it starts)."""
    bin_dir = Path(home) / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    # the "hosts" are this machine: their agent cache (pcontrol.bootstrap) is the test's
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(home) / "cache"))
    return script
