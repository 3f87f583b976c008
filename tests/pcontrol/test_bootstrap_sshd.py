"""Hosts with only sshd and python3: pcontrol brings its agent (pcontrol.bootstrap).

Through a real sshd on 127.0.0.1 into fresh accounts made for this module (root only):
one whose login PATH has python3 but no pclient, psched or pcontrol, and one whose PATH has
no python3 at all. The hosts are names in an ssh client config, as an operator's would be.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pclient
from pcontrol import hosts
from pcontrol.bootstrap import build_bundle, current_bundle
from pcontrol.config import ControllerConfig
from pcontrol.wire import EventKind
from pcontrol_harness import WAIT, controller_running, make_config, run, write_older_pclient
from sshd_harness import (SSHD, FreshUser, SshdUnavailable, fresh_user, ssh_config,
                          start_sshd)

pytestmark = pytest.mark.skipif(not SSHD.exists(),
                                reason=f"{SSHD} is missing: install openssh-server to run "
                                       "the real-ssh tests")

#: The installed agent of an older version, in the account's home (see `older_agent`).
OLDER_AGENT = "old/bin/pclient"


@dataclass
class Fleet:
    user: FreshUser
    config_file: Path

    def config(self, **overrides: object) -> ControllerConfig:
        return make_config(ssh_command=("ssh", "-F", str(self.config_file)), **overrides)

    def cache_file(self) -> Path:
        return self.user.home / ".cache" / "pclient" / current_bundle().sha256 / "pclient.pyz"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    try:
        with start_sshd(work / "sshd") as sshd, fresh_user(sshd) as user, \
                fresh_user(sshd, login_path="/nonexistent") as bare:
            config = ssh_config(sshd, user.name, work / "ssh_config", {"nopython": bare.name})
            older_agent(user)
            yield Fleet(user, config)
    except SshdUnavailable as exc:
        pytest.skip(f"no sshd with a fresh account here: {exc}")


def older_agent(user: FreshUser) -> None:
    """~/old: a copy of pclient that calls itself 0.2.9 (so its build differs), and
    ~/old/bin/pclient that runs it, as a pip install of an older pclient would."""
    old = write_older_pclient(user.home / "old")
    script = old / "bin" / "pclient"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\nPYTHONPATH="$HOME/old" exec python3 -m pclient "$@"\n')
    script.chmod(0o755)
    for root, dirs, files in os.walk(old):
        for name in [root, *(os.path.join(root, f) for f in dirs + files)]:
            os.chown(name, user.uid, user.gid)


def test_a_job_runs_and_the_next_start_uses_the_cache(home: str, fleet: Fleet) -> None:
    shutil.rmtree(fleet.user.home / ".cache", ignore_errors=True)

    async def body() -> None:
        async with controller_running(home, fleet.config()) as h:
            await h.cmd("host", "add", "node1", "-slots", "2")
            host = await h.wait_host("node1", "IDLE")
            assert host["agent"]["bootstrap"].startswith(
                f"sent {len(current_bundle().data)} bytes; cached as ")
            assert host["agent"]["build"] == current_bundle().build
            assert "mismatch" not in host["agent"]
            job = await h.wait_job(await h.submit(
                "-host", "node1", "--", "sh", "-c",
                "id -un; command -v pclient psched pcontrol || echo none"))
            assert (job["outcome"], job["status"]) == ("EXIT", 0)
            assert (await h.cmd("stdout", job["id"]))["stdout"] == f"{fleet.user.name}\nnone\n"
            cached = fleet.cache_file()
            assert hashlib.sha256(cached.read_bytes()).hexdigest() == current_bundle().sha256
            assert cached.stat().st_uid == fleet.user.uid

            mark = len(h.log.events)
            await h.cmd("host", "off", "node1")
            await h.cmd("host", "on", "node1")
            again = await h.wait_host("node1", "IDLE", after=mark)
            assert again["agent"]["bootstrap"] == f"from the cache ({cached})"
            text = (await h.reply("check", "host", "node1")).text
            assert f"sent:      from the cache ({cached})" in text
            job = await h.wait_job(await h.submit("-host", "node1", "--", "true"))
            assert job["outcome"] == "EXIT"
    run(body())


def test_a_cache_with_a_wrong_hash_is_refused_and_replaced(home: str, fleet: Fleet) -> None:
    cached = fleet.cache_file()
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"PK not the agent pcontrol would send")
    os.chown(cached, fleet.user.uid, fleet.user.gid)

    async def body() -> None:
        async with controller_running(home, fleet.config()) as h:
            await h.cmd("host", "add", "node1")
            host = await h.wait_host("node1", "IDLE")
            assert host["agent"]["bootstrap"] == (
                f"cache refused: wrong sha256 ({cached}); sent {len(current_bundle().data)} "
                f"bytes; cached as {cached}")
            assert hashlib.sha256(cached.read_bytes()).hexdigest() == current_bundle().sha256
            job = await h.wait_job(await h.submit("-host", "node1", "--", "true"))
            assert job["outcome"] == "EXIT"
    run(body())


def test_an_installed_agent_of_an_older_version_is_replaced(home: str, fleet: Fleet) -> None:
    ours = current_bundle().build

    async def body() -> None:
        async with controller_running(home, fleet.config(remote_agent=OLDER_AGENT)) as h:
            await h.cmd("host", "add", "node1")
            older = await h.log.wait_for(
                lambda e: e.kind is EventKind.HOST and e.data.get("name") == "node1"
                and e.data["agent"].get("agent") == "pclient 0.2.9", WAIT, "the older agent")
            assert "not pcontrol's own" in older.data["agent"]["mismatch"]
            assert older.data["replacing"] and older.data["agent_slots"] >= 1
            event = await h.log.wait_for(
                lambda e: e.kind is EventKind.HOST and e.data.get("name") == "node1"
                and e.data["state"] == "IDLE" and e.data["agent"].get("build") == ours,
                WAIT, "node1 IDLE with pcontrol's own agent")
            record = event.data
            notes = [entry.get("reason", "") for entry in record["history"]]
            assert any(note.startswith("the agent is pclient 0.2.9 (build ")
                       for note in notes), notes
            assert record["agent"]["agent"] == f"pclient {pclient.__version__}"
            assert record["agent"]["bootstrap"].startswith(("sent ", "from the cache"))
            assert not record["replacing"] and "mismatch" not in record["agent"]
            job = await h.wait_job(await h.submit("-host", "node1", "--", "true"))
            assert job["outcome"] == "EXIT"
    run(body())


def test_an_older_agent_with_jobs_is_replaced_once_they_are_done(
        home: str, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """pcontrol upgraded while a job runs: the first controller is the older version (its
    own agent is ~/old's code, so it starts that agent and keeps it); the next one, the
    current version, meets the older agent with that job and replaces it after the job."""
    older = build_bundle(fleet.user.home / "old" / "pclient")
    gate = fleet.user.home / "go"
    gate.unlink(missing_ok=True)
    waits = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo released"

    async def before_the_upgrade() -> int:
        monkeypatch.setattr(hosts, "current_bundle", lambda: older)
        try:
            async with controller_running(home, fleet.config(remote_agent=OLDER_AGENT),
                                          stop_kill=False) as h:
                await h.cmd("host", "add", "node1", "-slots", "2")
                host = await h.wait_host("node1", "IDLE")
                assert host["agent"]["agent"] == "pclient 0.2.9" and not host["replacing"]
                job_id = await h.submit("-host", "node1", "--", "sh", "-c", waits)
                await h.wait_started(job_id)
                return job_id
        finally:
            monkeypatch.undo()

    async def after_the_upgrade(job_id: int) -> None:
        ours = current_bundle().build
        async with controller_running(home, fleet.config(remote_agent=OLDER_AGENT)) as h:
            event = await h.log.wait_for(
                lambda e: e.kind is EventKind.HOST and e.data.get("name") == "node1"
                and e.data["replacing"] and e.data["running"] == [job_id], WAIT,
                "node1 up with the older agent and its job")
            assert event.data["agent"]["agent"] == "pclient 0.2.9"
            second = await h.submit("--", "echo", "on the new agent")
            assert (await h.cmd("check", "job", second))["state"] == "PENDING"
            mark = len(h.log.events)
            gate.touch()
            done = await h.wait_job(job_id)
            assert done["outcome"] == "EXIT"
            assert (await h.cmd("stdout", job_id))["stdout"] == "released\n"
            start_seq = h.log.events[mark - 1].seq
            await h.log.wait_for(
                lambda e: e.kind is EventKind.HOST and e.data.get("name") == "node1"
                and e.seq > start_seq and e.data["agent"].get("build") == ours
                and e.data["state"] in ("IDLE", "BUSY"), WAIT, "node1 with our own agent")
            record = await h.wait_job(second)
            assert record["outcome"] == "EXIT" and record["ran_on"] == "node1"
            assert (await h.cmd("check", "host", "node1"))["agent"]["build"] == ours

    run(after_the_upgrade(run(before_the_upgrade())))


def test_a_host_without_python3_is_down_with_the_reason(home: str, fleet: Fleet) -> None:
    async def body() -> None:
        async with controller_running(home, fleet.config()) as h:
            await h.cmd("host", "add", "nopython")
            host = await h.wait_host("nopython", "DOWN")
            assert host["reason"] == ("no python3 on the host's PATH (/nonexistent); the "
                                      "agent needs Python 3.10 or newer")
    run(body())


def test_a_sync_run_on_a_host_that_got_its_agent_over_ssh(home: str, fleet: Fleet) -> None:
    """The gate runs beside an agent imported from memory (no pclient on the host's disk)."""
    import json

    from pcontrol_harness import LOCAL_AGENT

    async def body() -> None:
        async with controller_running(home, fleet.config()) as h:
            await h.cmd("host", "add", "node1")
            await h.cmd("host", "add", "here", "-connect", LOCAL_AGENT)
            await h.wait_host("node1", "IDLE")
            await h.wait_host("here", "IDLE")
            spec = {"name": "fleet", "targets": [
                {"host": "node1", "argv": ["sh", "-c", "id -un"]},
                {"host": "here", "argv": ["sh", "-c", "echo here"]}]}
            result = await h.cmd("sync", "run", json.dumps(spec))
            assert [t["outcome"] for t in result["targets"]] == ["EXIT 0", "EXIT 0"], result
            assert result["targets"][0]["stdout"] == f"{fleet.user.name}\n"
            assert result["skew_ms"]["max"] < 50
    run(body())
