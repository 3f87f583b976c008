"""Benchmark: the status page (`pcontrol web`) with 10,000 jobs in the table, while pcontrol
runs them, next to the same page asked of pcontrol's own socket and a static file server.

    .venv/bin/python bench/bench_web.py [--jobs 10000] [--requests 200] [--slots 4]

pcontrol starts on a private $SCHED_HOME with one localhost host; --jobs `sh -c 'exit N'` jobs
(a tenth fail) of 20 tasks are submitted in batches; `pcontrol web` starts and reads them. While
the jobs still run, each route is asked --requests times on one kept-alive connection (as a
browser does) and the table prints p50 / p95 / max milliseconds:

    page JSON      /api/v1/jobs?limit=50 (first page, a page deep in the table, filtered by
                   task and outcome), /api/v1/overview
    /metrics       Prometheus text (prometheus_client)
    peers          `jobs -limit 50 -after ID -json` straight to pcontrol's socket (the same
                   rows without the page), and python3 -m http.server sending a file of the
                   page's bytes (the floor of one HTTP round trip here)

The issue's targets: the page's JSON under 50 ms and /metrics under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pcontrol.client import ControllerClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))

from waiting import wait_until_sync  # noqa: E402

BIN = Path(sys.executable).parent
PCONTROL = [str(BIN / "pcontrol")] if (BIN / "pcontrol").exists() else [sys.executable, "-m", "pcontrol"]
TARGETS = {"page": 50.0, "metrics": 20.0}


def pcontrol(env: dict[str, str], *args: str) -> str:
    return subprocess.run(PCONTROL + list(args), env=env, check=True, capture_output=True,
                          text=True).stdout


async def submit(home: str, jobs: int) -> None:
    client = await ControllerClient.connect(home)
    try:
        batch: list[list[str]] = []
        for i in range(jobs):
            batch.append(["job", "-task", f"task{i % 20}", "--", "sh", "-c",
                          f"exit {1 if i % 10 == 0 else 0}"])
            if len(batch) == 500:
                await client.request_batch(batch)
                batch = []
        if batch:
            await client.request_batch(batch)
    finally:
        await client.close()


async def socket_page(home: str, requests: int) -> list[float]:
    """The peer: a page of 50 job records from pcontrol's socket, deep in the table."""
    client = await ControllerClient.connect(home)
    times = []
    try:
        for _ in range(requests):
            t0 = time.perf_counter()
            await client.call("jobs", "-limit", "50", "-after", "5000", "-json")
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        await client.close()
    return times


def http_times(port: int, path: str, requests: int) -> tuple[list[float], int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for _ in range(requests):
        t0 = time.perf_counter()
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        times.append((time.perf_counter() - t0) * 1e3)
        assert answer.status == 200, (path, answer.status, body[:200])
        size = len(body)
    connection.close()
    return times, size


def row(name: str, times: list[float], size: int, target: float | None) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    verdict = "" if target is None else ("met" if p95 < target else "NOT met")
    return (f"{name:<52} {statistics.median(times):>7.2f} {p95:>7.2f} {times[-1]:>7.2f} "
            f"{size:>8} {'' if target is None else f'< {target:g} ms':>8} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--slots", type=int, default=4)
    options = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bweb-", dir="/tmp")
    run_dir = Path(home) / "run"
    run_dir.mkdir(mode=0o700)
    env = dict(os.environ, SCHED_HOME=home, PCLIENT_RUNTIME_DIR=str(run_dir))
    web = static = None
    try:
        pcontrol(env, "start")
        pcontrol(env, "host", "add", "localhost", "-slots", str(options.slots))
        t0 = time.perf_counter()
        asyncio.run(submit(home, options.jobs))
        submitted = time.perf_counter() - t0
        out = Path(home) / "web.out"
        web = subprocess.Popen(PCONTROL + ["web", "--listen", "127.0.0.1:0", "--no-sched"],
                               env=env, stdout=open(out, "wb"), stderr=subprocess.DEVNULL,
                               start_new_session=True)
        port = int(wait_until_sync(lambda: "http://" in out.read_text() and out.read_text(),
                                   "pcontrol web listens", timeout=300).split("http://127.0.0.1:")[1].split("/")[0])
        t0 = time.perf_counter()

        def loaded():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/v1/overview")
            overview = json.loads(connection.getresponse().read())
            connection.close()
            return overview["jobs"]["total"] >= options.jobs and overview["controller"]["connected"]
        wait_until_sync(loaded, "the page has read every job", timeout=300)
        read = time.perf_counter() - t0
        status = json.loads(pcontrol(env, "status", "-json"))
        print(f"\nbench_web: {options.jobs} jobs submitted in {submitted:.1f} s; the page read "
              f"them in {read:.2f} s; pcontrol now: {status['jobs']}")
        routes = [
            ("page JSON: /api/v1/jobs?limit=50", "/api/v1/jobs?limit=50", "page"),
            ("page JSON: /api/v1/jobs?limit=50&offset=5000", "/api/v1/jobs?limit=50&offset=5000", "page"),
            ("page JSON: jobs filtered task=task7&outcome=OK", "/api/v1/jobs?task=task7&outcome=OK&limit=50", "page"),
            ("page JSON: jobs filtered host=localhost&state=DONE", "/api/v1/jobs?host=localhost&state=DONE&limit=50", "page"),
            ("page JSON: /api/v1/overview", "/api/v1/overview", "page"),
            ("page JSON: /api/v1/plots/finished?hours=3", "/api/v1/plots/finished?hours=3", "page"),
            ("/metrics", "/metrics", "metrics"),
        ]
        print(f"{'request (' + str(options.requests) + ' each, ms)':<52} {'p50':>7} {'p95':>7} "
              f"{'max':>7} {'bytes':>8} {'target':>8}")
        page_bytes = b""
        for name, path, kind in routes:
            times, size = http_times(port, path, options.requests)
            print(row(name, times, size, TARGETS[kind]))
            if path == "/api/v1/jobs?limit=50&offset=5000":
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", path)
                page_bytes = connection.getresponse().read()
                connection.close()
        running = json.loads(pcontrol(env, "status", "-json"))["jobs"]
        print(row("peer: pcontrol socket, jobs -limit 50 -after 5000 -json",
                  asyncio.run(socket_page(home, options.requests)), 0, None))
        static_dir = Path(home) / "static"
        static_dir.mkdir()
        (static_dir / "page.json").write_bytes(page_bytes)
        static = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1",
                                   "--directory", str(static_dir)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        line = static.stdout.readline()
        static_port = int(line.split("port ")[1].split()[0])
        times, size = http_times(static_port, "/page.json", options.requests)
        print(row("peer: python3 -m http.server, the same bytes as a file", times, size, None))
        print(f"(pcontrol's jobs while the routes were asked: {status['jobs']} at the start, "
              f"{running} at the end)")
    finally:
        for process in (web, static):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(10)
        subprocess.run(PCONTROL + ["stop", "-kill", "-force"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
