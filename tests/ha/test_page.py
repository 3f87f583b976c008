"""The status page and /metrics of a pool's members say who leads, since when, and the token,
through the real programs: a private etcd, two `sched --serve --ha URL --listen` members, a
`pcontrol web` on each member's $SCHED_HOME, read with an HTTP client (and, when Debian's
chromium is there, the page itself in a headless browser). The standby's page shows the leader's
status (relayed, psched.shell.harelay) and says it follows a standby; after a kill -9 of the
leader it shows the new one."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hapool import Pool
from headless import headless_chromium
from waiting import wait_until_sync

pytestmark = pytest.mark.timeout(150)

TTL = 2
BIN = Path(sys.executable).parent
PCONTROL = [str(BIN / "pcontrol")] if (BIN / "pcontrol").exists() else [sys.executable, "-m", "pcontrol"]


class Page:
    """`pcontrol web` on a free loopback port, following the sched server of `home`."""

    def __init__(self, home: Path, directory: Path):
        self.out = directory / f"web-{home.name}.out"
        env = dict(os.environ, SCHED_HOME=str(home))   # no pcontrol runs there: the page says so
        with open(self.out, "wb") as out:
            self.process = subprocess.Popen(PCONTROL + ["web", "--listen", "127.0.0.1:0", "--poll", "0.3"],
                                            env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.url = wait_until_sync(self._url, f"pcontrol web on {home} prints its address", 30)

    def _url(self) -> str | None:
        found = re.search(r"http://127\.0\.0\.1:\d+", self.out.read_text())
        assert found or self.process.poll() is None, self.out.read_text()
        return found.group(0) if found else None

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return answer.read().decode()

    def tasks(self) -> dict:
        return json.loads(self.get("/api/v1/tasks"))

    def metric(self, name: str) -> float | None:
        found = re.search(rf"^{re.escape(name)} (\S+)$", self.get("/metrics"), re.M)
        return float(found.group(1)) if found else None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("pcontrol web did not stop within 10 s of SIGTERM") from None


def _leads(page: Page, member: str) -> dict | None:
    """The page's pool summary once `member` leads there, else None."""
    summary = page.tasks().get("summary") or {}
    ha = summary.get("ha") or {}
    return ha if ha.get("leader") == member else None


def test_the_page_and_metrics_show_who_leads_since_when_and_the_token(etcd, tmp_path):
    pool = Pool(tmp_path, f"{etcd.url}/page", ttl=TTL)
    pages: list[Page] = []
    try:
        a = pool.member("a", listen=True)
        a.wait_log("serving")
        b = pool.member("b", listen=True)
        b.wait_log("standby: ")
        on_a, on_b = Page(a.home, tmp_path), Page(b.home, tmp_path)
        pages += [on_a, on_b]

        seen = wait_until_sync(lambda: _leads(on_b, a.name_in_pool), "b's page shows a leading", 30)
        token = seen["token"]
        assert isinstance(token, int) and token > 0 and seen["ttl"] == TTL and seen["since"] > 0
        assert on_b.tasks()["member"] == b.name_in_pool
        assert [t["task"] for t in on_b.tasks()["tasks"]] == ["tick"]      # the leader's tasks, relayed
        assert wait_until_sync(lambda: _leads(on_a, a.name_in_pool), "a's page shows a leading", 30)["token"] == token

        wait_until_sync(lambda: on_b.metric(f'sched_ha_leader{{member="{a.name_in_pool}"}}') == 1.0,
                        "b's /metrics: a leads", 30)
        assert on_b.metric("sched_ha_token") == token
        assert on_b.metric("sched_ha_lease_seconds") == TTL
        assert on_b.metric("sched_ha_leader_since_seconds") == pytest.approx(seen["since"])
        assert on_b.metric(f'sched_ha_this_member_leads{{member="{b.name_in_pool}"}}') == 0.0
        wait_until_sync(lambda: on_a.metric(f'sched_ha_this_member_leads{{member="{a.name_in_pool}"}}') == 1.0,
                        "a's /metrics: the member it follows leads", 30)
        assert 'id="ha"' in on_b.get("/")
        _browser_shows(on_b.url, f"pool: leader {a.name_in_pool}, since ", f"token {token}",
                       f"this page follows {b.name_in_pool}, a standby")

        a.kill9()
        after = wait_until_sync(lambda: _leads(on_b, b.name_in_pool), "b's page shows b leading", 3 * TTL + 30)
        assert after["token"] > token
        wait_until_sync(lambda: on_b.metric(f'sched_ha_this_member_leads{{member="{b.name_in_pool}"}}') == 1.0,
                        "b's /metrics: b leads", 30)
        assert on_b.metric(f'sched_ha_leader{{member="{b.name_in_pool}"}}') == 1.0
        assert on_b.metric("sched_ha_token") == after["token"]
        _browser_shows(on_b.url, f"pool: leader {b.name_in_pool}, since ", f"token {after['token']}",
                       f"this page follows {b.name_in_pool}, the leader")
    finally:
        with contextlib.ExitStack() as cleanup:    # each runs, whichever fails
            cleanup.callback(pool.close)
            for page in pages:
                cleanup.callback(page.stop)


def _browser_shows(url: str, *texts: str) -> None:
    """The page in headless chromium shows `texts` in its pool line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium() as browser:
        browser.get(url + "/")
        WebDriverWait(browser, 30, poll_frequency=0.1).until(
            lambda d: all(t in d.find_element(By.ID, "ha").text for t in texts),
            message=f"the page's pool line did not show {texts}")
