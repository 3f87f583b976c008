"""The pull hub's costs on pcontrol's event loop (pcontrol.pull): a check-in reads keys.json
only when it changed, and its state files are fsync'd in a worker thread, once per check-in,
before the answer goes out. Driven through the real pull listener on 127.0.0.1 with the probe
client's own check-in."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from pclient.probe import Probe
from pcontrol.alerts import Alerter
from pcontrol.model import Host
from pcontrol.pull import KEYS_FILE, PullHub, PullSettings
from pcontrol.pullserver import PullServer


@pytest.fixture
def counted(monkeypatch):
    """Reads of keys.json, and the threads os.fsync ran on."""
    seen = {"keys_reads": 0, "fsync_threads": []}
    read_text = Path.read_text
    fsync = os.fsync

    def counting_read(self, *args, **kwargs):
        if self.name == KEYS_FILE:
            seen["keys_reads"] += 1
        return read_text(self, *args, **kwargs)

    def recording_fsync(fd):
        seen["fsync_threads"].append((threading.current_thread(), os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    monkeypatch.setattr(Path, "read_text", counting_read)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    return seen


def test_check_ins_read_keys_once_and_write_state_off_the_loop(tmp_path: Path, counted) -> None:
    async def main() -> None:
        hosts = {"p1": Host("p1", pull=True)}
        hub = PullHub(tmp_path / "pull", PullSettings(interval=30.0), Alerter(None), hosts)
        key = hub.create_key("p1")
        server = PullServer(hub, ("127.0.0.1", 0))
        await server.start()
        loop_thread = threading.current_thread()
        probe = Probe(("127.0.0.1", server.port), "p1", bytes.fromhex(key), tmp_path)
        try:
            counted["keys_reads"] = 0
            counted["fsync_threads"].clear()
            for _ in range(3):
                answer, wait = await asyncio.to_thread(probe.check_in)
                assert answer.ok and answer.job is None and 20.0 < wait <= 31.0  # come back in one interval
                # the answer came after its state was on disk
                assert (tmp_path / "pull" / "p1.json").exists()
            assert counted["keys_reads"] == 1  # read once, then only stat'd
            on_loop = [t for t, _ in counted["fsync_threads"] if t is loop_thread]
            assert on_loop == [], "a check-in fsync'd on the event loop"
            hub_fsyncs = [path for _, path in counted["fsync_threads"] if str(tmp_path / "pull") in path]
            assert len(hub_fsyncs) == 3, hub_fsyncs  # one state write per check-in
            # a new key (keys.json rewritten) is read again; the old key no longer proves p1
            new_key = hub.create_key("p1")
            answer, _ = await asyncio.to_thread(Probe(("127.0.0.1", server.port), "p1", bytes.fromhex(new_key),
                                                      tmp_path).check_in)
            assert answer.ok
            with pytest.raises(Exception, match="forbidden"):
                await asyncio.to_thread(probe.check_in)
        finally:
            await server.close()
            await hub.close()

    asyncio.run(main())
