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


@pytest.fixture(scope="session", autouse=True)
def _own_sched_home():
    """Tests never use the user's ~/.sched (nor its lock: one sched per $SCHED_HOME): the run
    has one of its own, short for Unix socket paths. Folders and tests set their own."""
    if os.environ.get("SCHED_HOME"):
        yield
        return
    path = tempfile.mkdtemp(dir="/tmp", prefix="sh-")
    os.environ["SCHED_HOME"] = path
    try:
        yield
    finally:
        os.environ.pop("SCHED_HOME", None)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _own_pclient_runtime_dir():
    """Agents started by any test leave their survivor sockets and liveness marks in a
    directory of this run (removed after it), never in the user's /tmp/pclient-UID.
    Folders whose tests need one directory per test set their own (monkeypatch wins)."""
    if os.environ.get("PCLIENT_RUNTIME_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="pcl-")
    os.chmod(path, 0o700)
    os.environ["PCLIENT_RUNTIME_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PCLIENT_RUNTIME_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _own_pclient_spool_dir():
    """Agents started by any test on this machine spool into a directory of this run (removed
    after it), never the user's ~/.cache/pclient/spool. Tests that need their own set it."""
    if os.environ.get("PCLIENT_SPOOL_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="pcs-")
    os.environ["PCLIENT_SPOOL_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PCLIENT_SPOOL_DIR", None)
        shutil.rmtree(path, ignore_errors=True)
