"""Fixtures for pcontrol tests: a short temporary SCHED_HOME and a fake ssh on PATH."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pcontrol_harness import FAKE_SSH


@pytest.fixture
def home() -> Any:
    # Unix socket paths are limited to ~107 bytes: keep the home short, under /tmp.
    path = tempfile.mkdtemp(dir="/tmp", prefix="pc")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_ssh(home: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `ssh` first on PATH (for this process and the agents it starts)."""
    bin_dir = Path(home) / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHON_FOR_FAKE_SSH", sys.executable)
    return script
