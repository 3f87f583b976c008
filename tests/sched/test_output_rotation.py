"""`stdout PATH -append -rotate SIZE -keep N`: a job that prints without end holds bounded disk.

Through the real `sched` program and a real local job; the size syntax and the rename chain are
pclient.logfile's (tested in tests/pclient/test_pclient_logfile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sched_process import start
from waiting import wait_until_sync

from pclient.output import OutputFile, Sink
from psched.scheduler.taskspec import ArgError, DIRECTIVES, Defining, TaskSpec

MIB = 1 << 20


def _disk(directory: Path, name: str) -> dict[str, int]:
    """The files' sizes; a file renamed by a rotation between the listing and its stat is left out
    (the next look sees it under its new name)."""
    sizes = {}
    for p in directory.iterdir():
        if p.name.startswith(name) or ".part" in p.name:
            try:
                sizes[p.name] = p.stat().st_size
            except FileNotFoundError:
                pass
    return sizes


@pytest.mark.timeout(90)
def test_endless_printer_keeps_at_most_keep_plus_one_files(home, tmp_path):
    path, runs = home
    out = tmp_path / "out"
    out.mkdir()
    log = out / "endless.log"
    # at least 24 MiB of output (then `yes` until the timeout): six times the bound at least
    run = start(path, f"""
task endless
  host LOCAL
  command sh -c {{head -c 25165824 /dev/zero; yes}}
  periods -timeout 6
  nmax 1
  stdout {log} -append -rotate 1M -keep 3
  task.exit timeout
    echo "endless: $job_state after [expr {{$job_elapsed > 0}}]"
  end
end
run
wait -timeout 60
""")
    runs.append(run)
    seen = []

    def look() -> bool:  # while the job runs: never more than about 4 MiB
        sizes = _disk(out, "endless.log")
        seen.append(sum(sizes.values()))
        return "endless.log.3" in sizes

    wait_until_sync(look, "the output has been rotated three times", timeout=40)
    status, stdout, stderr = run.finish()
    assert status == 0, stderr
    assert "endless: TIMEOUT" in stdout
    sizes = _disk(out, "endless.log")
    assert sorted(sizes) == ["endless.log", "endless.log.1", "endless.log.2", "endless.log.3"], sizes
    assert all(size <= MIB for size in sizes.values()), sizes
    assert sum(sizes.values()) <= 4 * MIB and max(seen) <= 4 * MIB + MIB // 8, (sizes, max(seen))


def test_sink_rotates_in_place_and_appends_after_what_the_file_held(tmp_path):
    target = tmp_path / "job.log"
    target.write_bytes(b"x" * 600)
    sink = Sink(limit=10, dest=OutputFile(str(target), append=True, rotate=1000, keep=2))
    for _ in range(5):
        sink.feed(b"y" * 700)
    assert sink.finish() is None
    assert sink.total == 3500 and sink.head == b"y" * 10
    whole = b"x" * 600 + b"y" * 3500  # 4100 bytes: files of 1000, oldest dropped
    assert (tmp_path / "job.log").read_bytes() == whole[4000:]
    assert (tmp_path / "job.log.1").read_bytes() == whole[3000:4000]
    assert (tmp_path / "job.log.2").read_bytes() == whole[2000:3000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log", "job.log.1", "job.log.2"]


@pytest.mark.parametrize("args,message", [
    (["out", "-rotate", "1M"], "-rotate needs -append"),
    (["out", "-append", "-keep", "3"], "-keep needs -rotate"),
    (["out", "-append", "-rotate", "ten"], "-rotate: expected a size"),
    (["out", "-append", "-rotate"], "-rotate needs a value"),
    (["out", "-append", "-rotate", "0"], "-rotate needs a size above 0"),
    (["out", "-append", "-rotate", "1M", "-keep", "x"], "-keep must be a whole number"),
    (["out", "other"], "one file only"),
    (["-append", "-bogus", "out"], "unknown option '-bogus'"),
])
def test_rotation_arguments_are_checked(args, message):
    spec = TaskSpec("t")
    with pytest.raises(ArgError, match=message):
        DIRECTIVES["stdout"].apply(spec, args, Defining(spec))


def test_rotation_arguments_in_any_order():
    spec = TaskSpec("t")
    DIRECTIVES["stderr"].apply(spec, ["-append", "-rotate", "2M", "err.log"], Defining(spec))
    assert (spec.stderr.path, spec.stderr.append, spec.stderr.rotate, spec.stderr.keep) == ("err.log", True, 2 * MIB, 5)
    assert spec.output_files()["stderr"] == OutputFile("err.log", append=True, rotate=2 * MIB, keep=5)


def test_the_output_files_are_made_once_per_definition_and_follow_home(monkeypatch):
    """Every job of a task gets the same (read-only) files; a new $HOME or a new `stdout` gives new ones."""
    from sched_world import World, task

    monkeypatch.setenv("HOME", "/home/one")
    w = World()
    w.run(task("t", "stdout ~/t.out", "npending 2", "nmax 3"))
    w.run("run")
    w.step()
    first, second = w.local.submitted[:2]
    assert first.outputs is second.outputs and dict(first.outputs) == {"stdout": OutputFile("/home/one/t.out")}
    with pytest.raises(TypeError):
        first.outputs["stderr"] = OutputFile("x")  # shared by the jobs: nobody changes it
    spec = w.sched.tasks["t"].spec
    monkeypatch.setenv("HOME", "/home/two")
    assert spec.output_files()["stdout"] == OutputFile("/home/two/t.out")
    DIRECTIVES["stdout"].apply(spec, ["-append", "/tmp/t.out"], Defining(spec))
    assert spec.output_files()["stdout"] == OutputFile("/tmp/t.out", append=True)
