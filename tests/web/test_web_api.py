"""`pcontrol web` through the real programs: its JSON API, /metrics parsed with prometheus_client's
own parser after a few hundred jobs, the tasks of a sched server, and access (bind, token,
nothing changes state). One pcontrol and one page for the module."""

from __future__ import annotations

import collections
import json
import os
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from waiting import wait_until_sync
from web_world import PCONTROL, WAIT, World

pytestmark = pytest.mark.timeout(240)

JOBS = 300


@pytest.fixture(scope="module")
def world():
    world = World(slots=8)
    try:
        world.page = world.web("--listen", "127.0.0.1:0", "--poll", "0.2")
        yield world
    finally:
        world.close()


def _done(world: World, count: int) -> list[dict]:
    jobs = world.jobs()
    return jobs if len(jobs) >= count and all(j["state"] == "DONE" for j in jobs) else []


def _metrics(world: World) -> dict[str, list]:
    status, body, headers = world.page.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {family.name: family.samples
            for family in text_string_to_metric_families(body.decode())}


def test_metrics_match_the_job_table_after_a_few_hundred_jobs(world):
    before = len(world.jobs())
    lines = "".join(f"job -task many -- sh -c \"{'exit 3' if i % 10 == 0 else 'true'}\"\n"
                    for i in range(JOBS))
    done = subprocess.run(PCONTROL, input=lines, env=world.env, capture_output=True,
                          text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    jobs = wait_until_sync(lambda: _done(world, before + JOBS), f"{JOBS} jobs are done", 120)
    by_outcome = collections.Counter(j["outcome"] for j in jobs)
    ok = sum(1 for j in jobs if j["outcome"] == "EXIT" and j["status"] == 0)

    def caught_up():
        overview = world.page.json("/api/v1/overview")
        status = overview["controller"]["status"] or {}
        return (overview["jobs"]["states"].get("DONE") == len(jobs)
                and status.get("jobs", {}).get("DONE") == len(jobs))
    wait_until_sync(caught_up, "the page has seen every job end", WAIT)

    metrics = _metrics(world)
    finished = collections.Counter()
    finished_ok = 0
    for sample in metrics["pcontrol_jobs_finished"]:
        if sample.name == "pcontrol_jobs_finished_total":
            finished[sample.labels["outcome"]] += sample.value
            finished_ok += sample.value if sample.labels["ok"] == "true" else 0
    assert dict(finished) == dict(by_outcome)
    assert finished_ok == ok and ok >= JOBS - JOBS // 10
    gauges = {s.labels["state"]: s.value for s in metrics["pcontrol_jobs"]}
    assert gauges == {"PENDING": 0, "BUSY": 0, "DONE": len(jobs)}
    done_gauge = {s.labels["outcome"]: s.value for s in metrics["pcontrol_jobs_done"]}
    assert done_gauge["EXIT"] == by_outcome["EXIT"]
    run_count = [s.value for s in metrics["pcontrol_job_run_seconds"]
                 if s.name == "pcontrol_job_run_seconds_count"]
    assert run_count == [len(jobs)]
    dispatch_count = [s.value for s in metrics["pcontrol_job_dispatch_latency_seconds"]
                      if s.name.endswith("_count")]
    assert dispatch_count == [len(jobs)]
    assert [s.value for s in metrics["pcontrol_hosts"] if s.labels["state"] == "IDLE"] == [1]
    assert [s.value for s in metrics["pcontrol_queue_depth"]] == [0]
    assert [s.labels["host"] for s in metrics["pcontrol_agent_rtt_seconds"]] == ["localhost"]
    writes = [s for s in metrics["pcontrol_journal_write_seconds"]
              if s.name == "pcontrol_journal_write_seconds_count"]
    assert writes and writes[0].value > 0


def test_metrics_speak_openmetrics_when_the_scraper_asks(world):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics

    status, body, headers = world.page.get(
        "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    names = {family.name for family in openmetrics(body.decode())}
    assert {"pcontrol_jobs_finished", "pcontrol_job_run_seconds", "pcontrol_hosts"} <= names


def test_jobs_are_filtered_and_paged_by_the_server(world):
    world.job("sh", "-c", "echo needle; exit 5", task="haystack")
    wait_until_sync(lambda: world.page.json("/api/v1/jobs?task=haystack&state=DONE")["total"],
                    "the haystack job is done on the page", WAIT)
    first = world.page.json("/api/v1/jobs?limit=7")
    assert first["schema_version"] == 1 and len(first["jobs"]) == 7
    assert first["total"] == len(world.jobs())
    ids = [j["id"] for j in first["jobs"]]
    assert ids == sorted(ids, reverse=True)
    second = world.page.json("/api/v1/jobs?limit=7&offset=7")
    assert second["jobs"][0]["id"] < ids[-1]
    failed = world.page.json("/api/v1/jobs?outcome=failed&limit=500")
    assert failed["total"] == sum(1 for j in world.jobs()
                                  if j["outcome"] and not (j["outcome"] == "EXIT" and j["status"] == 0))
    only = world.page.json("/api/v1/jobs?task=haystack")
    assert [j["task"] for j in only["jobs"]] == ["haystack"] and only["filter"] == {"task": "haystack"}
    assert world.page.json("/api/v1/jobs?host=nowhere")["total"] == 0
    status, body, _ = world.page.get("/api/v1/jobs?limit=many")
    assert status == 400 and b"limit" in body


def test_a_job_detail_has_the_head_and_tail_of_its_output(world):
    job_id = world.job("sh", "-c", "seq 1 500; echo oops >&2", task="long")
    wait_until_sync(lambda: world.pcontrol_json("check", "job", str(job_id))["state"] == "DONE",
                    "the job is done", WAIT)
    detail = world.page.json(f"/api/v1/jobs/{job_id}")
    assert detail["schema_version"] == 1
    assert detail["job"]["argv"] == ["sh", "-c", "seq 1 500; echo oops >&2"]
    out = detail["output"]["stdout"]
    assert out["head"][:2] == ["1", "2"] and out["tail"][-1] == "500"
    assert out["skipped"] == 500 - len(out["head"]) - len(out["tail"])
    assert detail["output"]["stderr"]["head"] == ["oops"]
    status, body, _ = world.page.get("/api/v1/jobs/987654")
    assert status == 404 and json.loads(body)["schema_version"] == 1


def test_hosts_and_plots_have_the_records_of_the_prompt(world):
    hosts = world.page.json("/api/v1/hosts")
    prompt = world.pcontrol_json("hosts")
    assert [h["name"] for h in hosts["hosts"]] == [h["name"] for h in prompt] == ["localhost"]
    assert set(hosts["hosts"][0]) == set(prompt[0])     # the same record as `hosts -json`
    finished = world.page.json("/api/v1/plots/finished?hours=1")
    assert finished["minutes"] == 60 and sum(map(sum, finished["series"].values())) > 0
    runtimes = world.page.json("/api/v1/plots/runtimes?task=long")
    assert len(runtimes["points"]) >= 1 and runtimes["points"][0]["elapsed"] >= 0


def test_the_tasks_of_a_sched_server_are_shown(world):
    assert world.page.json("/api/v1/tasks")["running"] is False
    world.serve_sched("task ticker\n  command true\n  nmax 1\nend\n"
                      "task probe\n  command true\n  host -each {localhost}\n"
                      "  rounds 2 -windows {00:00 12:00} -gap 1m -runtime 10s -seed 3\nend\n")

    def tasks():
        answer = world.page.json("/api/v1/tasks")
        rows = {t["task"]: t for t in answer["tasks"]}
        return answer["running"] and {"ticker", "probe"} <= set(rows) and rows
    rows = wait_until_sync(tasks, "the page shows the server's tasks", WAIT)
    row = rows["ticker"]
    assert set(row) >= {"state", "made", "nmax", "running", "last", "next"} and row["nmax"] == 1
    assert "plan" not in row
    plan = rows["probe"]["plan"]      # `check probe -plan` in the server: its window's rounds
    assert plan and any("round" in line for line in plan), plan


def test_a_synchronized_runs_start_offsets_are_served(world):
    spec = {"name": "webgo", "targets": [{"host": "localhost", "argv": ["true"]},
                                         {"host": "localhost", "argv": ["true"]}]}
    world.pcontrol("sync", "run", json.dumps(spec))

    def served():
        return [r for r in world.page.json("/api/v1/syncs")["runs"] if r["name"] == "webgo"]
    run = wait_until_sync(served, "the page has the sync run", WAIT)[0]
    assert run["verdict"] == "success" and len(run["targets"]) == 2
    assert all(t["start_ms"] is not None and "stdout" not in t for t in run["targets"])
    assert run["skew_ms"]["max"] is not None


# -- access --------------------------------------------------------------------------------------

def test_no_url_changes_state(world):
    routes = ["/", "/static/app.js", "/api/v1/overview", "/api/v1/hosts", "/api/v1/tasks",
              "/api/v1/jobs", "/api/v1/jobs/1", "/api/v1/plots/finished",
              "/api/v1/plots/runtimes?task=many", "/api/v1/syncs", "/metrics"]
    before = [(j["id"], j["state"]) for j in world.jobs()]
    hosts_before = [(h["name"], h["state"], h["enabled"]) for h in world.pcontrol_json("hosts")]
    for path in routes + ["/api/v1/events"]:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, _, _ = world.page.get(path, method=method)
            assert status == 405, (method, path, status)
    for path in routes + ["/api/v1/jobs/1?kill=1", "/api/v1/hosts?off=localhost",
                          "/api/v1/kill/1", "/api/v1/jobs/1/kill"]:
        assert world.page.get(path)[0] in (200, 400, 404)
    assert [(j["id"], j["state"]) for j in world.jobs()] == before
    assert [(h["name"], h["state"], h["enabled"])
            for h in world.pcontrol_json("hosts")] == hosts_before


def test_an_address_other_than_loopback_needs_a_token(world):
    done = subprocess.run(PCONTROL + ["web", "--listen", "0.0.0.0:0"], env=world.env,
                          capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2
    assert "needs a token" in done.stderr and "--token-file" in done.stderr


def test_a_token_file_others_may_read_is_refused(world):
    loose = world.home / "loose-token"
    loose.write_text("s3cret-s3cret-s3cret\n")
    loose.chmod(0o644)
    done = subprocess.run(PCONTROL + ["web", "--listen", "0.0.0.0:0", "--token-file", str(loose)],
                          env=world.env, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_with_a_token_a_wrong_one_gets_401(world):
    token_file = world.home / "token"
    token_file.write_text("s3cret-s3cret-s3cret\n")
    os.chmod(token_file, 0o600)
    guarded = world.web("--listen", "127.0.0.1:0", "--token-file", str(token_file), "--no-sched")
    for path in ("/", "/api/v1/jobs", "/metrics", "/api/v1/events"):
        assert guarded.get(path)[0] == 401
        assert guarded.get(path, {"Authorization": "Bearer wrong-wrong-wrong-wrong"})[0] == 401
        assert guarded.get(path + "?token=wrong")[0] == 401
    assert guarded.get("/metrics", {"Authorization": "Bearer s3cret-s3cret-s3cret"})[0] == 200
    status, _, headers = guarded.get("/?token=s3cret-s3cret-s3cret")
    assert status == 200 and "pweb_token=s3cret-s3cret-s3cret" in headers.get("Set-Cookie", "")
    assert guarded.get("/api/v1/overview", {"Cookie": "pweb_token=s3cret-s3cret-s3cret"})[0] == 200
    guarded.stop()
