"""Fixtures for the hostile-input tests: a short temporary SCHED_HOME under /tmp."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

# The helper module beside this file imports whatever pytest's import mode.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_harness import short_home  # noqa: E402


@pytest.fixture
def home() -> Any:
    path = short_home()
    yield path
    shutil.rmtree(path, ignore_errors=True)
