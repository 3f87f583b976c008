"""The status page in a real headless browser: Debian's chromium driven by selenium through
chromium-driver (both installed by scripts/setup), one browser, one pcontrol and one page for
the module. The page loads and shows the test's host and job, a job that ends while the page is
open changes its row without a reload, a filter works, a job's detail shows its output, and a
screenshot is saved (in $PWEB_ARTIFACTS, default /tmp/pweb-artifacts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from headless import CHROMEDRIVER, CHROMIUM, headless_chromium
from web_world import WAIT, World

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra (pip install -e '.[test]')")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

ARTIFACTS = Path(os.environ.get("PWEB_ARTIFACTS", "/tmp/pweb-artifacts"))

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                 reason="needs Debian's chromium and chromium-driver (scripts/setup "
                                        "installs them as root)")]


@pytest.fixture(scope="module")
def world():
    world = World(slots=4)
    try:
        world.page = world.web("--listen", "127.0.0.1:0", "--poll", "0.5", "--no-sched")
        yield world
    finally:
        world.close()


@pytest.fixture(scope="module")
def browser():
    with headless_chromium("--window-size=1300,2100") as driver:
        yield driver


def wait(browser, condition, what: str):
    # a live update may replace a row between finding it and reading it: read again
    return WebDriverWait(browser, WAIT, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda driver: condition(driver), message=f"the page did not show {what}")


def row_of(browser, job_id: int):
    found = browser.find_elements(By.CSS_SELECTOR, f'#jobs tr[data-job="{job_id}"]')
    return found[0] if found else None


def test_the_page_shows_a_host_and_a_job_and_follows_a_job_to_its_end(world, browser):
    done_id = world.job("sh", "-c", "echo first-job-output; echo and-more", task="alpha")
    flag = world.home / "let-it-end"
    running_id = world.job("sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done; echo ended",
                           task="beta")
    browser.get(world.page.url + "/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#hosts tr[data-host="localhost"]'),
         "the host localhost")
    host_row = browser.find_element(By.CSS_SELECTOR, '#hosts tr[data-host="localhost"]')
    assert host_row.find_elements(By.TAG_NAME, "td")[1].text in ("IDLE", "BUSY")
    wait(browser, lambda d: row_of(d, done_id) is not None
         and row_of(d, done_id).get_attribute("data-state") == "DONE", f"job {done_id} done")
    wait(browser, lambda d: row_of(d, running_id) is not None
         and row_of(d, running_id).get_attribute("data-state") == "BUSY", f"job {running_id} running")
    browser.execute_script("window.notReloaded = true;")
    flag.touch()
    wait(browser, lambda d: row_of(d, running_id).get_attribute("data-state") == "DONE",
         f"job {running_id}'s row turn DONE")
    assert browser.execute_script("return window.notReloaded === true;")
    cells = browser.execute_script(
        f"return [...document.querySelector('#jobs tr[data-job=\"{running_id}\"]').cells]"
        ".map(c => c.textContent);")
    assert cells[2] == "OK" and cells[3] == "beta"


def test_a_filter_shows_only_the_jobs_of_a_task(world, browser):
    wait(browser, lambda d: "alpha" in [o.get_attribute("value") for o in
                                        Select(d.find_element(By.ID, "f-task")).options],
         "the task alpha among the filter's choices")
    Select(browser.find_element(By.ID, "f-task")).select_by_value("alpha")

    def only_alpha(driver):
        tasks = driver.execute_script(
            "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.cells[3].textContent);")
        return tasks and set(tasks) == {"alpha"}
    wait(browser, only_alpha, "only the jobs of task alpha")
    wait(browser, lambda d: "of 1" in d.find_element(By.ID, "page-info").text, "a total of 1")
    Select(browser.find_element(By.ID, "f-task")).select_by_value("")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) >= 2,
         "every job again")


def test_a_jobs_detail_shows_its_output_and_a_screenshot_is_saved(world, browser):
    job_id = min(j["id"] for j in world.jobs() if j["task"] == "alpha")
    row_of(browser, job_id).click()
    wait(browser, lambda d: "first-job-output" in d.find_element(By.ID, "detail-stdout").text,
         "the job's stdout in its detail")
    fields = browser.find_element(By.ID, "detail-fields").text
    assert "echo first-job-output" in fields and "OK" in fields
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#plot-finished rect"),
         "the finished-jobs plot")
    world.pcontrol("sync", "run", json.dumps({"name": "shot", "targets": [
        {"host": "localhost", "argv": ["true"]}, {"host": "localhost", "argv": ["true"]}]}))
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plot-sync-offsets rect")) == 2,
         "the sync run's start offsets")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
