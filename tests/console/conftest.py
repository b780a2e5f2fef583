"""A live server for the console tests, and a real headless Chromium driven by Selenium.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`; .ci/run installs them
when missing). Outside CI a machine without them skips the browser tests with that instruction; under CI=true
they are mandatory and fail instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.conftest import IN_CI

INSTALL = "Install them with: apt-get install chromium chromium-driver (and pip install selenium, in the dev extra)."


@pytest.fixture(scope="session")
def console_import_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-import-root")


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory, console_import_root: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("console-server"), import_roots=[console_import_root])
    srv.start()
    yield srv
    srv.stop()


def _missing(what: str) -> None:
    message = f"The console's browser tests need {what}. {INSTALL}"
    if IN_CI:
        pytest.fail("CI=true makes the browser tests mandatory: " + message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _missing("Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
