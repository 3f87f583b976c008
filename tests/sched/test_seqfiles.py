"""psched.scheduler.seqfiles: pktgen's hosts and jobs files, one test per error message (each
names the file and the entry), the template's filling, and the sequence's order per host."""

from __future__ import annotations

import json

import pytest

from psched.scheduler.jobs import Job, JobState
from psched.scheduler.seqfiles import SeqFileError, fill_template, read_hosts, read_sequences
from psched.scheduler.sequences import Sequence
from psched.scheduler.taskspec import JobDraft


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_a_good_hosts_file(tmp_path):
    path = _file(tmp_path, "nodes.json", [{"name": "a", "address": "10.0.0.1"},
                                          {"name": "b", "address": "b.example", "port": 2222, "slots": 4}])
    hosts = read_hosts(path)
    assert [(h.name, h.address, h.port, h.slots) for h in hosts] == [("a", "10.0.0.1", None, None),
                                                                   ("b", "b.example", 2222, 4)]


@pytest.mark.parametrize("data,message", [
    ('[{"name": "a",\n  "address" "x"}]', r"nodes.json:2:13: malformed JSON in nodes.json: Expecting ':' delimiter"),
    ({"name": "a"}, r"nodes.json: expected a list of hosts \[\{name, address\[, port\]\[, slots\]\}\], got an object"),
    (["a"], r"nodes.json: entry 1: expected an object \{name, address\[, port\]\[, slots\]\}, got a string"),
    ([{"name": "a", "adress": "x"}], r'nodes.json: entry 1 \(a\): unknown key "adress" \(a host has name, address, port, slots\)'),
    ([{"address": "x"}], r'nodes.json: entry 1: missing "name"'),
    ([{"name": "a"}], r'nodes.json: entry 1 \(a\): missing "address"'),
    ([{"name": "a b", "address": "x"}], r'nodes.json: entry 1: "name" must be a word without blanks, got "a b"'),
    ([{"name": "a", "address": "x", "port": 70000}], r'nodes.json: entry 1 \(a\): "port" must be a TCP port \(a whole number 1-65535\), got 70000'),
    ([{"name": "a", "address": "x", "slots": 0}], r'nodes.json: entry 1 \(a\): "slots" must be a whole number at least 1, got 0'),
    ([{"name": "a", "address": "x"}, {"name": "a", "address": "y"}], r'nodes.json: entry 2 \(a\): host "a" is already entry 1'),
])
def test_hosts_file_errors(tmp_path, data, message):
    path = _file(tmp_path, "nodes.json", data)
    with pytest.raises(SeqFileError, match=message):
        read_hosts(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(SeqFileError, match=r"nope.json: cannot read: No such file"):
        read_hosts(str(tmp_path / "nope.json"))


@pytest.mark.parametrize("data,message", [
    ('{"a": [\n{"id": 1,}]}', r"jobs.json:2:10: malformed JSON in jobs.json: Expecting property name"),
    ([{"a": []}], r"jobs.json: expected an object of hosts and their jobs \{host: \[\{id, params\}\]\}, got a list"),
    ({"zz": []}, r'jobs.json: host "zz" \(entry 1\): unknown host \(the controller\'s hosts: a, b; `controller host load FILE.json` adds hosts\)'),
    ({"a": {"id": 1}}, r'jobs.json: host "a" \(entry 1\): expected a list of jobs \[\{id, params\}\], got an object'),
    ({"a": [7]}, r'jobs.json: host "a", job 1: expected an object \{id, params\}, got a number'),
    ({"a": [{"id": 1, "parms": {}}]}, r'jobs.json: host "a", job 1: unknown key "parms" \(a job has id, params\)'),
    ({"a": [{"params": {}}]}, r'jobs.json: host "a", job 1: missing "id"'),
    ({"a": [{"id": [1]}]}, r'jobs.json: host "a", job 1: "id" must be a string or a number, got \[1\]'),
    ({"a": [{"id": 1}, {"id": "1"}]}, r'jobs.json: host "a", job 2 \(id 1\): id 1 is already job 1 of this host'),
    ({"a": [{"id": 1, "params": [1]}]}, r'jobs.json: host "a", job 1 \(id 1\): "params" must be an object of names and values, got a list'),
    ({"a": [{"id": 1, "params": {"rate-x": 1}}]}, r'jobs.json: host "a", job 1 \(id 1\): param "rate-x" cannot name an environment variable'),
    ({"a": [{"id": 1, "params": {"rate": {"x": 1}}}]}, r'jobs.json: host "a", job 1 \(id 1\): param "rate" must be a string, number or boolean, got an object'),
])
def test_jobs_file_errors(tmp_path, data, message):
    path = _file(tmp_path, "jobs.json", data)
    with pytest.raises(SeqFileError, match=message):
        read_sequences(path, {"a", "b"})


def test_template_fills_params_and_leaves_other_dollars():
    assert fill_template(["gen", "-r", "$rate", "${size}b", "$HOME", "x$rate$rate"], {"rate": "5", "size": "64"}) == \
        ["gen", "-r", "5", "64b", "$HOME", "x55"]


def test_each_host_runs_its_jobs_in_order_one_at_a_time(tmp_path):
    path = _file(tmp_path, "jobs.json", {"a": [{"id": 1, "params": {"n": 1}}, {"id": 2, "params": {"n": 2}}],
                                         "b": [{"id": "x", "params": {"flag": True}}]})
    seq = Sequence("jobs", path, ["run", "$n"], read_sequences(path, {"a", "b"}))
    spec = seq.task_spec()
    assert (spec.nmax, spec.npending, spec.source) == (3, 2, seq)
    made = []
    for number in (1, 2, 3):
        draft = JobDraft(list(spec.argv), spec.host, spec.host_required)
        if not seq.fill(draft):
            break
        job = Job(number, "jobs", draft.argv, draft.host, draft.host_required, env=draft.env, vars=draft.vars)
        seq.made(job)
        made.append(job)
    assert [(j.host, j.argv, j.env) for j in made] == [
        ("a", ["run", "1"], {"n": "1", "PSCHED_SEQUENCE_ID": "1", "PSCHED_SEQUENCE_HOST": "a"}),
        ("b", ["run", "$n"], {"flag": "true", "PSCHED_SEQUENCE_ID": "x", "PSCHED_SEQUENCE_HOST": "b"})]
    made[1].state = JobState.DONE
    seq.ended(made[1])
    assert not seq.fill(JobDraft([], "NONE", False))  # a's first job is still out; b has no more
    made[0].state = JobState.DONE
    seq.ended(made[0])
    draft = JobDraft([], "NONE", False)
    assert seq.fill(draft) and (draft.host, draft.argv, draft.host_required) == ("a", ["run", "2"], True)


def test_a_task_redefined_over_the_same_sequence_keeps_its_progress(tmp_path):
    from sched_world import World

    path = _file(tmp_path, "jobs.json", {"a": [{"id": 1, "params": {"n": 1}}, {"id": 2, "params": {"n": 2}}]})
    w = World()
    first = Sequence("jobs", path, ["run", "$n"], read_sequences(path, {"a"}))
    w.sched.define(first.task_spec())
    w.run("run")
    w.step()
    assert [j.argv for j in w.jobs] == [["run", "1"]]
    again = Sequence("jobs", path, ["run", "$n"], read_sequences(path, {"a"}))  # a reload: the task's macros changed
    spec = again.task_spec(w.sched.tasks["jobs"].spec)
    spec.exit_macros = {}
    w.sched.define(spec)
    assert w.sched.tasks["jobs"].spec.source is first
    w.end(w.jobs[0])
    w.step()
    assert [j.argv for j in w.jobs] == [["run", "1"], ["run", "2"]]
