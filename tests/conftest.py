"""Settings for the whole suite.

Hypothesis: no per-example deadline and no "too slow" health check. CI has 2 cores shared by
daemons, agents and jobs that the other tests start, so timing-based checks would make
property tests flaky without making them stricter; each test bounds its own example count.

tests/tools: helpers every test folder imports, on sys.path from here.
pclient's runtime directory: see _own_pclient_runtime_dir.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Shared helpers of every test folder (waiting.py, sched_shell.py) and the ssh stand-in.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))


def _own_directory(var: str, **mkdtemp):
    """$var names a directory of this run (made with tempfile.mkdtemp(**mkdtemp), 0700; removed
    after the run), unless the environment gives one already."""
    if os.environ.get(var):
        yield
        return
    path = tempfile.mkdtemp(**mkdtemp)
    os.chmod(path, 0o700)
    os.environ[var] = path
    try:
        yield
    finally:
        os.environ.pop(var, None)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _own_sched_home():
    """Tests never use the user's ~/.sched (nor its lock: one sched per $SCHED_HOME): the run
    has one of its own, short for Unix socket paths. Folders and tests set their own."""
    yield from _own_directory("SCHED_HOME", dir="/tmp", prefix="sh-")


@pytest.fixture(scope="session", autouse=True)
def _own_pclient_runtime_dir():
    """Agents started by any test leave their survivor sockets and liveness marks in a
    directory of this run (removed after it), never in the user's /tmp/pclient-UID.
    Folders whose tests need one directory per test set their own (monkeypatch wins)."""
    yield from _own_directory("PCLIENT_RUNTIME_DIR", prefix="pcl-")


@pytest.fixture(scope="session", autouse=True)
def _own_pclient_spool_dir():
    """Agents started by any test on this machine spool into a directory of this run (removed
    after it), never the user's ~/.cache/pclient/spool. Tests that need their own set it."""
    yield from _own_directory("PCLIENT_SPOOL_DIR", prefix="pcs-")
