"""The cheap path of a local job (issue 13): libc's posix_spawnp (pclient.libcspawn), the watcher's
registrations from any thread, and job ends handed to the loop in batches."""

from __future__ import annotations

import asyncio
import errno
import os
import threading

import pytest

from agent_harness import async_test
from pclient import jobproc
from pclient.jobproc import JobSpec, Outcome, start_job
from pclient.libcspawn import libc_spawner
from pclient.watcher import watcher

needs_libc_spawn = pytest.mark.skipif(libc_spawner() is None, reason="libc has no posix_spawn_file_actions_addclosefrom_np")


def _environ() -> dict:
    return dict(os.environb)


@needs_libc_spawn
def test_libc_spawn_gives_what_os_posix_spawnp_gives():
    spawner = libc_spawner()
    assert spawner is not None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = spawner.spawnp(["sh", "-c", "echo $PCLIENT_T; echo to-err >&2; [ $(ps -o sid= -p $$) = $$ ]"],
                             {**_environ(), b"PCLIENT_T": b"here"}, out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "not in a session of its own"
        assert os.read(out_r, 100) == b"here\n" and os.read(err_r, 100) == b"to-err\n"
    finally:
        os.close(out_r)
        os.close(err_r)


@needs_libc_spawn
@pytest.mark.parametrize("argv, env, error", [
    (["no-such-program-pclient"], {}, OSError),
    (["true", "a\0b"], {}, ValueError),
    (["true"], {b"X": b"a\0b"}, ValueError),
    (["true"], {b"A=B": b"c"}, ValueError),
    (["true"], {b"": b"c"}, ValueError),
])
def test_libc_spawn_refuses_as_os_posix_spawnp_does(argv, env, error):
    spawner = libc_spawner()
    assert spawner is not None
    r, w = os.pipe()
    try:
        with pytest.raises(error) as caught:
            spawner.spawnp(argv, {**_environ(), **env}, w, w)
        with pytest.raises(error):
            os.posix_spawnp(argv[0], argv, {**_environ(), **env})
    finally:
        os.close(r)
        os.close(w)
    if error is OSError:
        assert caught.value.errno == errno.ENOENT and caught.value.filename == argv[0]


@needs_libc_spawn
def test_libc_spawn_gives_each_job_its_environment_ours_laid_out_once(monkeypatch):
    """Ours plus the job's own (the strings of ours kept between jobs), one of ours given
    another value, and ours changed between two starts: each child sees exactly its env."""
    spawner = libc_spawner()
    assert spawner is not None

    def child_env(env: dict) -> dict:
        r, w = os.pipe()
        try:
            pid = spawner.spawnp(["env", "-0"], env, w, w)
            os.close(w)
            w = -1
            data = b""
            while chunk := os.read(r, 65536):
                data += chunk
            os.waitpid(pid, 0)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        return dict(entry.split(b"=", 1) for entry in data.split(b"\0") if entry)

    first = {**_environ(), b"PCLIENT_T": b"one"}
    assert child_env(first) == first
    second = {**_environ(), b"PCLIENT_T": b"two", b"PCLIENT_U": b""}
    assert child_env(second) == second
    overridden = {**_environ(), b"HOME": b"/elsewhere"}
    assert child_env(overridden) == overridden
    monkeypatch.setenv("PCLIENT_OURS", "changed")
    changed = {**_environ(), b"PCLIENT_T": b"three"}
    assert child_env(changed) == changed and changed[b"PCLIENT_OURS"] == b"changed"
    monkeypatch.delenv("PCLIENT_OURS")
    assert child_env(first) == first


def test_watch_now_from_another_thread_calls_back_in_the_watcher_thread():
    w = watcher()
    r, wr = os.pipe()
    called = threading.Event()
    where = []

    def readable() -> None:
        where.append(w.in_thread)
        w.unwatch(r)
        called.set()

    try:
        w.watch_now(r, readable)
        os.write(wr, b"x")
        assert called.wait(10)
        assert where == [True]
    finally:
        os.close(r)
        os.close(wr)


@async_test
async def test_a_pidfd_event_of_a_running_job_is_ignored():
    """As for a stale event of a descriptor number an earlier job used: the job goes on."""
    job = await start_job(JobSpec("t", ["sleep", "30"]))
    try:
        seen = threading.Event()
        watcher().call(lambda: (job._w_pidfd(), seen.set()))
        assert await asyncio.to_thread(seen.wait, 10)
        assert not job.done and job._returncode is None
    finally:
        job.kill()
    assert (await job.wait()).outcome is Outcome.KILLED


@async_test
async def test_ends_delivered_together_survive_an_interrupt_in_one():
    """Ctrl-C in the handling of one job's end: the others of its batch are still handed on."""
    loop = asyncio.get_running_loop()
    deliveries = jobproc._Deliveries()
    got = []
    stopped = False

    def interrupted(result) -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            raise KeyboardInterrupt

    results = [jobproc.JobResult(str(i), Outcome.EXIT, 0, None, 0.0, b"", b"", 0, 0, False, False, None, None)
               for i in range(3)]
    deliveries.post(loop, interrupted, results[0])
    for result in results[1:]:
        deliveries.post(loop, lambda r: got.append(r.job_id), result)
    with pytest.raises(KeyboardInterrupt):
        deliveries._run(loop)
    await asyncio.sleep(0)
    assert got == ["1", "2"]


@async_test
async def test_when_done_after_the_end_and_wait_after_the_end():
    job = await start_job(JobSpec("t", ["true"]))
    result = await job.wait()
    heard = asyncio.Event()
    job.when_done(lambda r: heard.set() if r is result else None)
    await asyncio.wait_for(heard.wait(), 10)
    assert await job.wait() is result
