"""The charts from the keyboard, in headless Chromium: each plot is a tab stop with a visible focus ring and a name;
the arrow keys (Home, End) move between its bars, plotly shows the bar's hover label, and the chart's aria-live
region says the bar's period and figure."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.charts import figures_in
from tests.console.test_browser import by_css, charts_drawn, go, until

pytestmark = pytest.mark.slow


def test_the_keyboard_reads_each_bar(browser: Any, console_server: LocalServer, attributed: dict[str, Any]) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    d, srv = browser, console_server
    d.get(srv.url + "/console/signin")
    by_css(d, "#access_key_id").send_keys(srv.access_key)
    by_css(d, "#secret_access_key").send_keys(srv.secret_key)
    go(d, "#signin")
    d.get(f"{srv.url}/console/jobs?arn={quote(attributed['group'], safe='')}")
    until(d, lambda: "CLICKS · all sources · total 10" in d.page_source, "the job runner counts the events",
          timeout=60)  # its maintenance pass aggregates them every few seconds
    plots = charts_drawn(d, 3)
    texts = [f["data"][0]["text"] for f in figures_in(d.page_source)]
    assert [len(t) for t in texts] == [2, 2, 1]  # an hour ago and now; the homepage only now

    def press(*keys: str) -> None:
        ActionChains(d).send_keys(*keys).perform()

    def focused() -> Any:
        return d.switch_to.active_element

    for _ in range(300):  # Tab from the top of the page to the first chart: every control before it, then it
        if "plot" in (focused().get_attribute("class") or ""):
            break
        press(Keys.TAB)
    assert focused() == plots[0], focused().get_attribute("outerHTML")[:200]
    ring = d.execute_script("const s = getComputedStyle(document.activeElement);"
                            "return [s.outlineStyle, s.outlineWidth, s.outlineColor];")
    assert ring == ["solid", "3px", "rgb(242, 182, 0)"]  # the console's focus ring
    label = plots[0].get_attribute("aria-label")
    assert label.startswith("CLICKS · all sources: peak 5") and "Arrow keys" in label

    live = plots[0].find_element("xpath", "..").find_element("css selector", ".chart-live")
    assert live.get_attribute("aria-live") == "polite"

    def said() -> tuple[str, str]:
        for _ in range(20):  # plotly replaces its hover label when it redraws it: read the current one again
            try:
                hover = plots[0].find_elements("css selector", ".hoverlayer .hovertext")
                return live.get_attribute("textContent"), hover[0].text if hover else ""
            except StaleElementReferenceException:
                continue
        raise AssertionError("the hover label was redrawn 20 times in a row while it was read")

    def says(expected: tuple[str, str]) -> bool:  # plotly draws a hover label at most every 50 ms: wait for it
        try:
            WebDriverWait(d, 5).until(lambda _: said() == expected)
        except TimeoutException:
            return False
        return True

    press(Keys.ARROW_RIGHT)
    assert says((f"{texts[0][0]} (1 of 2)", texts[0][0])), said()
    press(Keys.ARROW_RIGHT)
    assert says((f"{texts[0][1]} (2 of 2)", texts[0][1])), said()
    press(Keys.ARROW_RIGHT)  # the last bar stays
    assert says((f"{texts[0][1]} (2 of 2)", texts[0][1])), said()
    press(Keys.HOME)
    assert says((f"{texts[0][0]} (1 of 2)", texts[0][0])), said()
    press(Keys.END)
    assert said()[0] == f"{texts[0][1]} (2 of 2)"
    press(Keys.ARROW_LEFT)
    assert said()[0] == f"{texts[0][0]} (1 of 2)"
    scrolled = d.execute_script("return window.scrollY")
    press(Keys.ARROW_DOWN)  # down and up move between bars too, and do not scroll the page
    assert said()[0] == f"{texts[0][1]} (2 of 2)" and d.execute_script("return window.scrollY") == scrolled

    press(Keys.TAB)  # the next chart: the label of the first goes
    assert focused() == plots[1]
    WebDriverWait(d, 5).until(lambda _: not plots[0].find_elements("css selector", ".hoverlayer .hovertext"))
    press(Keys.END)
    newsletter = plots[1].find_element("xpath", "..").find_element("css selector", ".chart-live")
    assert newsletter.get_attribute("textContent") == f"{texts[1][1]} (2 of 2)"
