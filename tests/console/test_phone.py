"""The console at a phone's width (390x844, Chrome's device emulation, as a phone's browser lays pages out):
no main screen scrolls the page body sideways; wide tables scroll inside their own box.

Set TASTEMAKER_CONSOLE_SCREENSHOTS=DIR to save the phone screenshots, the test panel's answer (a group with Items
data) and the jobs page (docs/console.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.console.test_browser import SHOTS, all_css, by_css, go, shot

pytestmark = pytest.mark.slow
WIDTH, HEIGHT = 390, 844
# The elements that reach past the viewport's right edge (what to fix when the page scrolls sideways).
OVERFLOW = """return Array.from(document.querySelectorAll('body *')).filter(function (e) {
  if (e.closest('.scroll')) return false;
  return e.getBoundingClientRect().right > arguments[0] + 1;
}).slice(0, 8).map(function (e) { return e.tagName + '.' + e.className + '#' + e.id + ' ' +
  Math.round(e.getBoundingClientRect().right); });"""


def phone(driver: Any, height: int = HEIGHT) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True})


def overflow(driver: Any, name: str) -> dict[str, Any]:
    """{name: (page width, layout viewport width, what sticks out)} when the page is wider than the phone (a
    phone's browser widens its layout viewport to fit such a page), else {}."""
    width = driver.execute_script("return document.scrollingElement.scrollWidth")
    viewport = driver.execute_script("return window.innerWidth")
    if width <= WIDTH + 1 and viewport == WIDTH:
        return {}
    return {name: (width, viewport, driver.execute_script(OVERFLOW, WIDTH))}


def phone_shot(driver: Any, name: str) -> None:
    """The whole page at phone width (the emulated screen made as tall as the page, at most 2,400 px)."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    phone(driver, min(int(driver.execute_script("return document.documentElement.scrollHeight")), 2400))
    driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
    phone(driver)


def test_main_screens_fit_a_phone(browser: Any, console_server: LocalServer, trained: dict[str, Any],
                                  attributed: dict[str, Any]) -> None:
    d, srv = browser, console_server
    d.get(srv.url + "/console/signin")
    by_css(d, "#access_key_id").send_keys(srv.access_key)
    by_css(d, "#secret_access_key").send_keys(srv.secret_key)
    go(d, "#signin")
    phone(d)
    try:
        def arn(value: str) -> str:
            return quote(value, safe="")

        pages = {
            "group list": "/console/groups",
            "group": f"/console/group?arn={arn(trained['group'])}",
            "campaign": f"/console/campaign?arn={arn(trained['campaign'])}",
            "event tracker": f"/console/tracker?arn={arn(attributed['tracker'])}",
            "jobs with attribution charts": f"/console/jobs?arn={arn(attributed['group'])}",
            "jobs with batch forms": f"/console/jobs?arn={arn(trained['group'])}",
            "monitoring": f"/console/monitoring?arn={arn(trained['group'])}",
            "audit trail": "/console/audit",
            "evaluation evidence": f"/console/evaluation?arn={arn(trained['version'])}",
            "delete preview": f"/console/group/delete?arn={arn(trained['group'])}",
        }
        wide = {}
        for name, path in pages.items():
            d.get(srv.url + path)
            wide.update(overflow(d, name))
            if name == "group":
                phone_shot(d, "group-phone")
        # The test panel's answer: results with item metadata and "why", the user's history beside them.
        d.get(srv.url + pages["campaign"])
        by_css(d, "#test-user").send_keys("u1")
        go(d, "#test-button")
        assert len(all_css(d, "#results tbody tr")) == 10 and all_css(d, "#results td.meta")
        wide.update(overflow(d, "test panel answer"))
        results_box = by_css(d, "#results").find_element("xpath", "..")
        assert results_box.get_attribute("class") == "scroll"  # the wide table scrolls in its own box
        phone_shot(d, "campaign-phone")
        assert not wide, wide
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    d.get(srv.url + pages["campaign"])  # the test panel's answer at 1280x800: metadata, why, history beside
    by_css(d, "#test-user").send_keys("u1")
    go(d, "#test-button")
    shot(d, "campaign")
    d.get(srv.url + pages["jobs with attribution charts"])
    assert len(all_css(d, ".attributed-charts svg.chart")) == 3
    shot(d, "jobs")
