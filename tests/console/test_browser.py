"""The admin manual in a real browser: sign in, create a group, import MovieLens-shaped data, train, deploy,
test recommendations, a filter with a typo, a test event, delete the group.

Set TASTEMAKER_CONSOLE_SCREENSHOTS=DIR to save the main screens as PNGs (docs/console.md shows them).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, schema_json, write_dataset

pytestmark = pytest.mark.slow
SHOTS = os.environ.get("TASTEMAKER_CONSOLE_SCREENSHOTS")


def by_css(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def all_css(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def go(driver: Any, target: Any) -> None:
    """Click a link or submit button (a CSS selector or an element) and wait for the next page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = by_css(driver, "html")
    (by_css(driver, target) if isinstance(target, str) else target).click()

    def left(_: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or Chrome's "does not belong to the document": the page was left
            return True
        return False

    WebDriverWait(driver, 120).until(left)


def fill(driver: Any, css: str, text: str) -> None:
    field = by_css(driver, css)
    driver.execute_script("arguments[0].value = arguments[1];", field, text)


def until(driver: Any, check: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    """Reload the page until `check()` holds (the pages also refresh themselves while work is in progress)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def holds() -> bool:
        try:
            return check()
        except (NoSuchElementException, StaleElementReferenceException):  # the page reloaded meanwhile
            return False

    deadline = time.monotonic() + timeout
    while not holds():
        if "FAILED" in body(driver):
            raise AssertionError(f"{what}: something failed; page:\n{body(driver)[:3000]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not the case after {timeout:.0f}s; page:\n{body(driver)[:3000]}")
        time.sleep(0.25)  # a page answers in milliseconds; a 1 s wait added half a second to each step
        driver.refresh()


def charts_drawn(driver: Any, count: int) -> list[Any]:
    """Wait until plotly.js has drawn `count` charts on the page (each a .js-plotly-plot holding its SVG) and
    check the browser logged no script error since the last look, and no failed load of a static file (the
    pages' own error answers, a 401 or a 400 the walk provokes, are not errors of the page); the drawn plots."""
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(_: Any) -> bool:
        return len(all_css(driver, "figure.chart-box .plot.js-plotly-plot svg.main-svg")) >= count

    WebDriverWait(driver, 30).until(drawn)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and (
        e.get("source") != "network" or "/static/" in e["message"])]
    assert not errors, errors
    plots = all_css(driver, "figure.chart-box .plot.js-plotly-plot")
    assert len(plots) == count, len(plots)
    return plots


def bars(plot: Any) -> list[Any]:
    """The bars plotly.js drew in a plot (one path per bar)."""
    return [bar for bar in plot.find_elements("css selector", "g.trace.bars g.point path")]


def hover_text(driver: Any, bar: Any) -> str:
    """Move the pointer onto a bar and read plotly's hover label (the period and its exact figure)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", bar)
    ActionChains(driver).move_to_element(bar).perform()
    WebDriverWait(driver, 10).until(lambda _: all_css(driver, ".hoverlayer .hovertext"))
    return str(by_css(driver, ".hoverlayer .hovertext").text)


def body(driver: Any) -> str:
    return str(by_css(driver, "body").text)


def shot(driver: Any, name: str, width: int = 1280) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    driver.set_window_size(width, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
    driver.set_window_size(width, min(int(height) + 20, 1400))
    driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
    driver.set_window_size(1280, 800)


def test_admin_manual_in_the_browser(browser: Any, console_server: LocalServer, console_import_root: Path) -> None:
    d, srv = browser, console_server
    paths = write_dataset(console_import_root / "movies", users=80, items=40, per_user=15)

    # Sign in: a wrong secret is refused on the page, the right one opens the (empty) group list.
    d.get(srv.url + "/console")
    assert "/console/signin" in d.current_url
    shot(d, "signin")
    by_css(d, "#access_key_id").send_keys(srv.access_key)
    by_css(d, "#secret_access_key").send_keys("not-the-secret")
    go(d, "#signin")
    assert "do not match" in body(d)
    by_css(d, "#access_key_id").clear()
    by_css(d, "#access_key_id").send_keys(srv.access_key)
    by_css(d, "#secret_access_key").send_keys(srv.secret_key)
    go(d, "#signin")
    assert d.current_url.endswith("/console/groups")
    assert "No dataset groups yet" in body(d)
    cookie = d.get_cookie("tastemaker_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert srv.secret_key not in d.current_url

    # A dataset group, its Interactions dataset (schema edited in the page) and an import from a local path.
    by_css(d, "#group-name").send_keys("console-movies")
    go(d, "#create-group-button")
    assert "console-movies" in by_css(d, "h1").text
    by_css(d, "#dataset-name").send_keys("interactions")
    fill(d, "#dataset-schema", schema_json(INTERACTIONS_SCHEMA))
    go(d, "#create-dataset-button")
    # The CSV is uploaded from the browser (the file input, streamed by the page), which starts the import.
    by_css(d, "#upload-file").send_keys(str(paths["interactions"]))
    go(d, "#upload-button")
    until(d, lambda: "ACTIVE" in by_css(d, "#imports").text, "the import finishes")
    assert "1,200 imported" in by_css(d, "#imports").text and "rows/s" in by_css(d, "#imports").text

    # Two solutions (a learned one and the popularity baseline), each trained once.
    for count, (name, recipe) in enumerate((("personal", "aws-user-personalization"),
                                            ("popular", "aws-popularity-count")), start=1):
        if not by_css(d, "#solution-name").is_displayed():
            by_css(d, "#solution-summary").click()
        by_css(d, "#solution-name").send_keys(name)
        from selenium.webdriver.support.ui import Select

        Select(by_css(d, "#solution-recipe")).select_by_visible_text(recipe)
        go(d, "#create-solution-button")
        until(d, lambda n=count: len(all_css(d, ".train-button")) >= n, f"solution {name} is created")
        go(d, all_css(d, ".train-button")[-1])
    until(d, lambda: len(all_css(d, ".deploy-button")) == 2, "both versions train", timeout=300)
    assert "aws-popularity-count" in by_css(d, "#metrics").text
    [plot] = charts_drawn(d, 1)  # the versions' offline metrics side by side, the popularity baseline among them
    assert len(bars(plot)) >= 2 and "aws-popularity-count" in plot.text
    shot(d, "group")

    # Deploy the learned version and test it for a user.
    by_css(d, ".campaign-name").send_keys("personal-campaign")
    go(d, all_css(d, ".deploy-button")[0])
    until(d, lambda: "ACTIVE" in " ".join(e.find_element("xpath", "..").text for e in all_css(d, ".campaign-link")),
          "the campaign deploys", timeout=300)
    go(d, ".campaign-link")
    by_css(d, "#test-user").send_keys("u1")
    go(d, "#test-button")
    items = [e.text for e in all_css(d, "#results td.item")]
    assert len(items) == 10 and all(i.startswith("i") for i in items)
    assert len(all_css(d, "#history tbody tr")) == 15  # u1's imported events beside the recommendations
    why = [e.text for e in all_css(d, "#results td.why")]
    assert len(why) == 10 and any("your event on" in w for w in why), why  # why this item, from the model
    history = {e.text for e in all_css(d, "#history td.item")}
    assert {e.text for e in all_css(d, "#results b.because")} <= history
    campaign_url = d.current_url

    # A filter with a typo shows the error at the form; the corrected one is created.
    go(d, ".crumbs a:nth-of-type(2)")
    group_url = d.current_url
    by_css(d, "#filter-name").send_keys("unwatched")
    by_css(d, "#filter-expression").send_keys('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch"')
    deadline = time.monotonic() + 30  # live validation answers while typing, with the error's position marked
    while "position" not in by_css(d, "#filter-live").text and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "position 57" in by_css(d, "#filter-live").text, by_css(d, "#filter-live").text
    assert by_css(d, "#filter-where mark").is_displayed()
    shot(d, "filter-live")
    go(d, "#create-filter-button")
    error = by_css(d, "#error-filter").text
    assert error and "filter" in error.lower(), error
    assert by_css(d, "#filter-expression").get_attribute("value").startswith("EXCLUDE ItemID")
    shot(d, "filter-error")
    fill(d, "#filter-expression", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    by_css(d, "#preview-user").send_keys("u1")  # what would the corrected expression remove for u1?
    go(d, "#preview-button")
    assert len(all_css(d, "#preview tbody tr")) == 25 and "would be removed" in body(d)
    shot(d, "filter-preview")
    d.get(group_url)  # the preview created nothing: the editor is still empty and open
    by_css(d, "#filter-name").send_keys("unwatched")
    fill(d, "#filter-expression", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")')
    go(d, "#create-filter-button")
    until(d, lambda: "unwatched" in by_css(d, "#filters table").text and "ACTIVE" in by_css(d, "#filters table").text,
          "the filter becomes active")

    # An event tracker, and a test event from the form.
    by_css(d, "#tracker-name").send_keys("site")
    go(d, "#create-tracker-button")
    until(d, lambda: "ACTIVE" in by_css(d, "#trackers").text, "the tracker becomes active")
    go(d, ".tracker-link")
    by_css(d, "#event-user").send_keys("u1")
    by_css(d, "#event-item").send_keys(items[0])
    go(d, "#send-event")
    assert "Sent a click event" in by_css(d, "#event-sent").text
    newest = all_css(d, "#latest-events tbody tr")  # the event just sent, in the tracker's latest events
    assert len(newest) == 1 and f"u1 console-u1 click {items[0]}" in newest[0].text, [r.text for r in newest]
    live, calls, _errors = charts_drawn(d, 3)  # events per 10 s (live), PutEventsRequests and 4xx per minute
    assert len(bars(live)) == 1 and re.fullmatch(r"\d\d:\d\d:\d\d: 1 events", hover_text(d, bars(live)[0]))
    sent = bars(calls)  # the event just sent
    assert len(sent) == 1 and hover_text(d, sent[0]).endswith(": 1 calls")
    shot(d, "tracker")
    d.get(campaign_url)
    by_css(d, "#test-user").send_keys("u1")
    go(d, "#test-button")
    assert [e.text for e in all_css(d, "#results td.item")]
    assert by_css(d, "#history td.item").text == items[0]  # the test event is the user's newest

    # Monitoring: the campaign's and the tracker's charts (figures from the server, drawn by plotly.js).
    d.get(group_url)
    go(d, "#monitoring-link")
    plots = charts_drawn(d, 8)
    assert "Campaign personal-campaign" in body(d)
    served = bars(plots[0])  # the campaign's GetRecommendations per minute: the test panel's calls
    assert served and re.fullmatch(r"\d\d:\d\d: \d+ calls", hover_text(d, served[-1]))
    shot(d, "monitoring")

    # The evaluation evidence of the learned version, per held-out user.
    d.get(group_url)
    go(d, all_css(d, ".evidence-link")[0])
    assert all_css(d, "article.evidence") and "Held out" in body(d)
    shot(d, "evaluation")

    # The audit trail: the console's own calls, searchable.
    go(d, "#audit-link")
    Select(by_css(d, "#audit-key")).select_by_visible_text("EventName")
    by_css(d, "#audit-value").send_keys("CreateCampaign")
    go(d, "#audit-button")
    assert "personal-campaign" in by_css(d, "#audit").text and "tastemaker-console" in by_css(d, "#audit").text
    shot(d, "audit")

    # Delete the group: the cleanup plan first, then the confirmation.
    d.get(group_url)
    go(d, "#delete-group")
    plan = by_css(d, "#plan").text
    for kind in ("campaign", "filter", "event tracker", "solution", "dataset", "dataset group", "schema"):
        assert kind in plan, plan
    shot(d, "delete")
    by_css(d, "#confirm").send_keys("console-movies")
    go(d, "#delete-button")
    assert d.current_url.endswith("/console/groups")
    until(d, lambda: "console-movies" not in body(d), "the group is deleted", timeout=300)
    assert srv.secret_key not in Path(srv.log_path).read_text(errors="replace")

    # Sign out ends the session.
    go(d, "header button")
    d.get(srv.url + "/console/groups")
    assert "/console/signin" in d.current_url
