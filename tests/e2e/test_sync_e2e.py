"""Synchronized runs from the sched language and from NetJobs files, through the real
pcontrol daemon of $SCHED_HOME and real local agents (hosts n1..n4, each its own pclient).

One daemon serves the whole module; each test defines its own syncs and tasks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pcontrol import daemon
from pcontrol.client import ControllerClient
from pcontrol.paths import Paths
from psched.lang.errors import ScriptError
from psched.lang.tcllist import split_list
from psched.scheduler.eventloop import run_until

from sched_shell import Shell

SCHED = [sys.executable, "-m", "psched.shell.cli"]
AGENT = f"{sys.executable} -m pclient"
HOSTS = ("n1", "n2", "n3", "n4")


@pytest.fixture(scope="module")
def home():
    path = Path(tempfile.mkdtemp(prefix="sync.", dir="/tmp"))
    old = os.environ.get("SCHED_HOME")
    os.environ["SCHED_HOME"] = str(path)
    paths = Paths.for_home(path)
    started = daemon.start(paths, [])
    assert started.ok, started.message

    async def add_hosts():
        client = await ControllerClient.connect(path)
        try:
            for name in HOSTS:
                await client.call("host", "add", name, "-connect", AGENT)
        finally:
            await client.close()

    run_until(add_hosts())
    yield path
    daemon.stop(paths, kill=True, force=True)
    shutil.rmtree(path, ignore_errors=True)
    if old is None:
        os.environ.pop("SCHED_HOME", None)
    else:
        os.environ["SCHED_HOME"] = old


def tcl_dict(text: str) -> dict[str, str]:
    words = split_list(text)
    return dict(zip(words[::2], words[1::2]))


def test_sync_block_and_syncrun(home):
    sh = Shell()
    logs = home / "logs"
    try:
        sh.run(f"""
sync fio4k -minhosts 3 -timeout 5m -log {logs}
  target n1 sh -c "echo fio on n1"
  target -timeout 30s n2 sh -c "echo fio on n2"
  target n3 sh -c "echo fio on n3"
  target n3 sh -c "echo second copy on n3"   ;# a host may appear more than once
end
""")
        value = sh.run("syncrun fio4k")
        result = tcl_dict(value)
        assert result["verdict"] == "success" and result["succeeded"] == "4"
        targets = [tcl_dict(t) for t in split_list(result["targets"])]
        assert [t["host"] for t in targets] == ["n1", "n2", "n3", "n3"]
        assert [t["stdout"].strip() for t in targets] == ["fio on n1", "fio on n2", "fio on n3",
                                                          "second copy on n3"]
        assert all(t["outcome"] == "EXIT 0" for t in targets)
        assert float(result["skew_max_ms"]) < 50
        printed = sh.out.getvalue()
        assert "START MS" in printed and "verdict: success" in printed
        files = list(logs.iterdir())
        assert len(files) == 1 and files[0].name.startswith("fio4k-")
        text = files[0].read_text()
        assert "second copy on n3" in text and "start skew" in text

        data = json.loads(sh.run("syncrun fio4k -json -quiet"))
        assert data["verdict"] == "success" and len(data["targets"]) == 4
        assert len(list(logs.iterdir())) == 2          # one timestamped file per run

        # a failed verdict is a catchable error; the result is in $::sync_result anyway
        sh.run("""
sync broken -timeout 1
  target n1 sh -c "exit 5"
  target n2 sleep 30
end
""")
        status = sh.run("catch {syncrun broken -quiet} message")
        assert status == "1"
        assert "sync broken failed: target 1 on n1 ended EXIT 5" in sh.run("set message")
        failed = tcl_dict(sh.run("set ::sync_result"))
        assert failed["verdict"] == "failure"
        assert [tcl_dict(t)["outcome"] for t in split_list(failed["targets"])] == ["EXIT 5", "KILLED"]
        with pytest.raises(ScriptError, match="no sync block named"):
            sh.run("syncrun nosuch")
        # an unknown host is refused, saying so
        sh.run("sync stray\n  target nowhere true\nend")
        with pytest.raises(ScriptError, match="target host nowhere .* is not a pcontrol host"):
            sh.run("syncrun stray")
    finally:
        sh.close()


def wait_launched(home, name):
    """Run the loop until pcontrol's log says the run's targets start (past their gates)."""
    from waiting import wait_until

    log = Paths.for_home(home).log
    run_until(wait_until(lambda: f"sync {name}:" in log.read_text(errors="replace"), "the run started"))


def test_a_task_runs_a_sync_every_few_seconds(home):
    sh = Shell()
    joblog = home / "sync.joblog"
    try:
        sh.run(f"""
sync pair -minhosts 1
  target n1 sh -c "echo tick"
  target n4 sh -c "exit 1"
end
set verdicts {{}}
set tables {{}}
task ticker
  sync pair
  periods -exec 2
  nmax 3
  joblog {joblog}
  task.exit 0
    lappend ::verdicts [lindex $sync_result 3]
    lappend ::tables [expr {{[string first "verdict: success" $stdout] >= 0}}]
  end
end
task plain
  command sh -c "exit 3"
  host LOCAL
  nmax 1
  joblog {joblog}
end
run
wait -timeout 60 ticker plain
""")
        assert sh.run("set verdicts") == "success success success"
        jobs = [j for j in sh.sched.jobs.values() if j.task == "ticker"]
        assert [j.outcome_text() for j in jobs] == ["EXIT 0"] * 3
        starts = sorted(j.started for j in jobs)
        assert all(b - a >= 1.9 for a, b in zip(starts, starts[1:]))   # every 2 s
        assert sh.run("set tables") == "1 1 1"       # the table is the job's stdout
        lines = joblog.read_text().splitlines()
        assert lines[0].split("\t") == ["Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive",
                                        "Exitval", "Signal", "Command"]
        rows = [line.split("\t") for line in lines[1:]]
        assert len(rows) == 4
        assert sorted(r[8] for r in rows) == ["sh -c 'exit 3'"] + ["syncrun pair"] * 3
        plain = next(r for r in rows if r[8] == "sh -c 'exit 3'")
        assert plain[1] == ":" and plain[6] == "3" and plain[7] == "0"
        assert all(float(r[2]) > 1e9 and float(r[3]) >= 0 for r in rows)
        # a failing sync task exits 1, and task.exit 1 runs
        sh.run("""
sync never
  target n1 false
end
set failures 0
task failing
  sync never
  nmax 1
  task.exit 1
    incr ::failures
  end
end
run
wait -timeout 60 failing
""")
        assert sh.run("set failures") == "1"
        # killing a sync task's job ends its run at pcontrol: targets KILLED, the job EXIT 1
        sh.run("""
sync long
  target n2 sleep 60
  target n3 sleep 60
end
task longtask
  sync long
  nmax 1
end
run
""")
        wait_launched(home, "long")
        job = next(j for j in sh.sched.jobs.values() if j.task == "longtask")
        sh.run(f"kill {job.id}")
        sh.run("wait -timeout 30 longtask")
        assert job.outcome_text() == "EXIT 1" and "killed on request" in job.reason
        result = tcl_dict(job.vars["sync_result"])
        assert [tcl_dict(t)["outcome"] for t in split_list(result["targets"])] == ["KILLED", "KILLED"]
    finally:
        sh.run("stop")
        sh.close()


@pytest.mark.parametrize("script, message, line, column", [
    ("sync a -timeout 5x\n  target n1 true\nend", "-timeout expects seconds, a number with s, m or h", 1, 17),
    ("sync a\n  target -timeout 2d n1 true\nend", "got '2d'", 2, 19),
    ("sync a -minhosts 3\n  target n1 true\n  target n2 true\nend", "-minhosts 3 is more than its 2 target(s)", 1, 1),
    ("sync a\n  target n1\nend", "target n1 has no command", 2, 10),
    ("sync a -bogus 1\n  target n1 true\nend", "unknown option '-bogus'", 1, 8),
    ("sync a\nend", "sync a has no targets", 1, 1),
    ("sync a\n  echo hi\nend", "only `target` lines belong in a sync block", 2, 3),
    ("target n1 true", "`target` belongs inside a `sync NAME`", 1, 1),
    ("sync a -minhosts many\n  target n1 true\nend", "-minhosts expects all or a whole number", 1, 18),
    ("task t\n  sync a b\nend", "wrong # args", 2, 3),
])
def test_bad_sync_input_is_refused_when_read(script, message, line, column):
    sh = Shell()
    with pytest.raises(Exception) as caught:
        sh.run(script)
    err = caught.value
    assert message in str(err)
    assert (err.pos.line, err.pos.column) == (line, column), err.render()


README_EXAMPLE = """\
test0:
-generaltimeout: none
-minhosts: all
localhost: "echo 'hello, world'"
-timeout: 1s
end

test1:
-generaltimeout: 5m
-minhosts: 0
n1: "echo some_test_script"
-timeout: 30s
n2: "echo other_test_script"
n2: "echo and_another_test_script"
end
"""


def netjobs(home: Path, path: Path, *flags: str) -> subprocess.CompletedProcess:
    # its own name: this test process's in-process shells hold the lock of the plain sched
    return subprocess.run(SCHED + ["--name", "netjobs", "--netjobs", str(path), *flags],
                          capture_output=True, text=True,
                          env=dict(os.environ, SCHED_HOME=str(home)), timeout=120, cwd=str(home))


def test_netjobs_readme_example_runs_unchanged(home):
    config = home / "netjobs-readme.cfg"
    config.write_text(README_EXAMPLE)
    done = netjobs(home, config, "-v", "-l")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("test0:") < out.index("test1:")
    assert 'localhost: "echo \'hello, world\'" -> EXIT 0' in out
    assert "    hello, world" in out
    for text in ("some_test_script", "other_test_script", "and_another_test_script"):
        assert f"    {text}" in out
    assert out.count("start skew: max-min") == 2
    assert "added pcontrol host(s) localhost" in out           # it was not a host yet
    logs = sorted(p.name for p in home.glob("test*-*.log"))
    assert [name.split("-")[0] for name in logs] == ["test0", "test1"]


def test_netjobs_ten_targets_three_tests(home):
    blocks = []
    for test in range(3):
        lines = [f"bench{test}:", "-generaltimeout: 1m", f"-minhosts: {8 if test == 2 else 'all'}"]
        for target in range(10):
            host = HOSTS[target % len(HOSTS)]
            fails = test == 2 and target in (3, 7)
            lines.append(f'  {host} :  "echo t{test}-{target}{"; exit 1" if fails else ""}"  ')
            if target == 0:
                lines.append("-timeout: 20s")
        lines.append("end")
        blocks.append("\n".join(lines))
    config = home / "ten.cfg"
    config.write_text("# ten targets, three tests\n\n" + "\n\n".join(blocks) + "\n")
    done = netjobs(home, config)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    positions = [out.index(f"bench{i}:") for i in range(3)]
    assert positions == sorted(positions)
    for test in range(3):
        for target in range(10):
            assert f"    t{test}-{target}\n" in out
    assert out.count("verdict: success") == 3
    assert "8/10 succeeded (needed 8)" in out
    skews = [float(line.split("max-min ")[1].split(" ms")[0]) for line in out.splitlines()
             if line.startswith("start skew")]
    assert len(skews) == 3 and all(s < 50 for s in skews)


def test_a_malformed_netjobs_file_is_refused_before_anything_runs(home):
    config = home / "bad.cfg"
    config.write_text("test0:\nn1: \"echo one\"\n-timeout: 5x\nend\n")
    done = netjobs(home, config)
    assert done.returncode == 1
    assert f"{config}:3:11: -timeout expects seconds" in done.stderr
    assert "one" not in done.stdout
