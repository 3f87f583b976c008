"""pktgen's JSON files through the real programs: `controller host load` adds two hosts (local
agents under two host names), `sequence load` runs each host's jobs in order on its host, the
next starting when the previous has ended, params in the command and the environment; the
sequence is a task (status, exit macros, joblog); an unknown host is refused naming file and entry."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from sched_shell import Shell
from psched.lang.errors import SchedError


@pytest.fixture
def home(monkeypatch):
    path = Path(tempfile.mkdtemp(prefix="e2e.", dir="/tmp"))
    monkeypatch.setenv("SCHED_HOME", str(path))
    yield path
    from pcontrol import daemon
    from pcontrol.paths import Paths

    daemon.stop(Paths.for_home(path), kill=True, force=True)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(180)
def test_two_hosts_run_their_sequences_in_order(home, tmp_path):
    hosts = tmp_path / "nodes.json"
    hosts.write_text(json.dumps([{"name": "node-a", "address": "localhost", "slots": 2},
                                 {"name": "node-b", "address": "localhost", "slots": 2}]))
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({
        "node-a": [{"id": f"a{k}", "params": {"RATE": 10 * k, "PAUSE": 0.2}} for k in range(1, 4)],
        "node-b": [{"id": f"b{k}", "params": {"RATE": k, "PAUSE": 0.1}} for k in range(1, 3)],
    }))
    log = tmp_path / "runs.log"
    joblog = tmp_path / "joblog.txt"
    sh = Shell()
    assert sh.run(f"controller host load {hosts}") == "nodes.json: added 2 host(s) (node-a, node-b)"
    assert sh.run(f"controller host load {hosts}") == "nodes.json: added 0 host(s); 2 the controller had already"
    loaded = sh.run(f"sequence load {jobs} -command {{sh -c {{echo \"start $PSCHED_SEQUENCE_HOST $id rate=$RATE\" >> {log}; "
                    f"sleep $PAUSE; echo \"end $PSCHED_SEQUENCE_HOST $id\" >> {log}}}}}")
    assert loaded == f"sequence jobs from {jobs}: 5 job(s) on 2 host(s), 5 not started"
    sh.run(f"""
set ended {{}}
task jobs
  joblog {joblog}
  task.exit 0
    lappend ended "$sequence_host $sequence_id on $job_host"
  end
end
run
wait -timeout 120
""")
    ended = sh.interp.get_var("ended")
    assert ended.count("node-a a") == 3 and ended.count("node-b b") == 2
    assert "node-a a1 on node-a" in ended and "node-b b2 on node-b" in ended
    lines = log.read_text().splitlines()
    for host, ids in (("node-a", ["a1", "a2", "a3"]), ("node-b", ["b1", "b2"])):
        mine = [line for line in lines if f" {host} " in line]
        expected = []
        for ident in ids:  # each job ends before the next of its host starts
            expected += [f"start {host} {ident} rate={10 * int(ident[1:]) if host == 'node-a' else int(ident[1:])}",
                         f"end {host} {ident}"]
        assert mine == expected, lines
    status = sh.run("status")
    assert any(line.split()[:2] == ["jobs", "finished"] and "5/5" in line for line in status.splitlines()), status
    assert len(joblog.read_text().splitlines()) == 1 + 5  # a header and a line per job

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"node-a": [{"id": 1}], "node-z": [{"id": 2}]}))
    with pytest.raises(SchedError, match=r'bad.json: host "node-z" \(entry 2\): unknown host \(the controller\'s hosts: '
                                         r'node-a, node-b;'):
        sh.run(f"sequence load {bad} -command true")
    sh.close()


@pytest.mark.timeout(180)
def test_a_killed_job_lets_its_host_go_on(home, tmp_path):
    hosts = tmp_path / "nodes.json"
    hosts.write_text(json.dumps([{"name": "node-a", "address": "localhost"}]))
    jobs = tmp_path / "steps.json"
    jobs.write_text(json.dumps({"node-a": [{"id": "stuck", "params": {"T": 60}}, {"id": "next", "params": {"T": 0}}]}))
    sh = Shell()
    sh.run(f"controller host load {hosts}")
    sh.run(f"sequence load {jobs} -command {{sleep $T}} -name steps")
    sh.run("set seen {}\ntask steps\n  task.exit default\n    lappend seen \"$sequence_id $job_state\"\n  end\nend\nrun")
    from waiting import wait_until_sync

    wait_until_sync(lambda: "RUNNING" in sh.run("jobs -task steps"), "the first job runs", 60)
    first = [j for j in sh.sched.jobs.values() if j.task == "steps"][0]
    assert sh.run(f"kill {first.id}") == f"job {first.id} is being killed"
    sh.run("wait -timeout 60")
    assert sh.interp.get_var("seen") == "{stuck KILLED} {next EXIT}"
    sh.close()


@pytest.mark.timeout(180)
def test_reload_leaves_a_loaded_sequence_alone(home, tmp_path):
    from psched.scheduler.reload import load_files

    hosts = tmp_path / "nodes.json"
    hosts.write_text(json.dumps([{"name": "node-a", "address": "localhost"}]))
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"node-a": [{"id": 1, "params": {"N": 1}}, {"id": 2, "params": {"N": 2}}]}))
    script = tmp_path / "served.sched"
    script.write_text(f"controller host load {hosts}\nsequence load {jobs} -command {{echo $N}}\n"
                      "task jobs\n  task.exit 0\n    lappend ::ran $sequence_id\n  end\nend\n")
    sh = Shell()
    first = load_files(sh.interp, [str(script)])
    assert first.added == ["jobs"]
    again = load_files(sh.interp)
    assert again.unchanged == ["jobs"] and not again.changed
    sh.run("run\nwait -timeout 60")
    assert sh.interp.get_var("ran") == "1 2"
    sh.close()


@pytest.mark.timeout(180)
def test_sched_killed_mid_sequence_goes_on_where_it_was(home, tmp_path):
    """kill -9 of sched while a sequence runs: the next sched on the home makes each job not made
    yet, once, in order per host; a job running at the kill is followed, holds its host until it
    ends, and its exit macro gets $sequence_id; every exit macro runs once."""
    import asyncio
    import os
    import subprocess
    import sys

    from psched.scheduler.eventloop import run_until

    hosts = tmp_path / "nodes.json"
    hosts.write_text(json.dumps([{"name": "node-a", "address": "localhost", "slots": 1},
                                 {"name": "node-b", "address": "localhost", "slots": 1}]))
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps({"node-a": [{"id": f"a{k}", "params": {"T": 0.4}} for k in range(1, 6)],
                                "node-b": [{"id": f"b{k}", "params": {"T": 0.3}} for k in range(1, 5)]}))
    runs, macros = tmp_path / "runs.log", tmp_path / "macros.log"
    script = tmp_path / "seq.sched"
    script.write_text(f"""controller host load {hosts}
sequence load {jobs} -command {{sh -c {{echo "start $PSCHED_SEQUENCE_HOST $id" >> {runs}; sleep $T; echo "end $PSCHED_SEQUENCE_HOST $id" >> {runs}}}}}
task jobs
  task.exit 0
    exec sh -c "echo $sequence_host $sequence_id >> {macros}"
  end
end
run
wait -timeout 120
""")
    sched = [sys.executable, "-m", "psched.shell.cli", str(script)]
    env = dict(os.environ, SCHED_HOME=str(home))
    first = subprocess.Popen(sched, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    async def started(n):
        while not runs.exists() or runs.read_text().count("start") < n:
            if first.poll() is not None:
                raise AssertionError(first.stderr.read().decode())
            await asyncio.sleep(0.02)

    run_until(asyncio.wait_for(started(4), 60))
    first.kill()
    first.wait()
    second = subprocess.run(sched, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr.decode()
    lines = runs.read_text().splitlines()
    for host, ids in (("node-a", [f"a{k}" for k in range(1, 6)]), ("node-b", [f"b{k}" for k in range(1, 5)])):
        mine = [line for line in lines if f" {host} " in line]
        assert mine == [f"{what} {host} {i}" for i in ids for what in ("start", "end")], lines
    assert sorted(macros.read_text().splitlines()) == sorted(
        [f"node-a a{k}" for k in range(1, 6)] + [f"node-b b{k}" for k in range(1, 5)])
