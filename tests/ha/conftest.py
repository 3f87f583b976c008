"""The high-availability tests: one private etcd per test module (tests/tools/etcdserver.py),
started by its binary on free ports and stopped by pid."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from etcdserver import EtcdServer  # noqa: E402


@pytest.fixture(scope="module")
def etcd():
    why = EtcdServer.missing()
    if why:
        pytest.skip(why)
    directory = Path(tempfile.mkdtemp(dir="/tmp", prefix="etcd-"))
    server = EtcdServer.start(directory)
    try:
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
