"""Headless chromium through selenium for the page tests (tests/web, tests/ha), one way.

Chromium's profile and its singleton socket folder (org.chromium.Chromium.* in $TMPDIR) go to a
temporary directory of the browser's own, removed when it quits: nothing is left in /tmp.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@contextmanager
def headless_chromium(*arguments: str) -> Iterator[Any]:
    """A selenium Chrome driver on the system's chromium (installed by scripts/setup)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    scratch = tempfile.mkdtemp(prefix="chromium.", dir="/tmp")
    try:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--user-data-dir={scratch}/profile", *arguments):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER, env=dict(os.environ, TMPDIR=scratch)),
                                  options=options)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
