"""The console's chart figures (console.charts) and plotly.js served from the installed plotly package."""

from __future__ import annotations

import gzip
import re
from importlib import metadata, resources

import httpx

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.charts import bar_chart, figures_in, versions_chart


def test_a_bar_per_period_with_its_figure_and_text_for_readers() -> None:
    start = 1_700_000_000 // 3600 * 3600
    chart = str(bar_chart("PutEventsRequests", [start + 5, start + 50, start + 130, start + 9999],
                          [1, 2, 4, 100], start=start, end=start + 3600, period=60, unit="calls"))
    (figure,) = figures_in(chart)
    bar = figure["data"][0]
    assert bar["type"] == "bar" and bar["y"] == [3.0, 4.0]  # minute 0 (two datapoints), minute 2; outside dropped
    assert bar["x"] == ["2023-11-14 22:00:30", "2023-11-14 22:02:30"]  # the middle of each minute, UTC
    assert bar["text"] == ["22:00: 3 calls", "22:02: 4 calls"] and bar["hovertemplate"] == "%{text}<extra></extra>"
    assert figure["layout"]["xaxis"]["range"] == ["2023-11-14 22:00:00", "2023-11-14 23:00:00"]
    assert "<figcaption>PutEventsRequests · total 7 · peak 4 calls</figcaption>" in chart
    assert 'aria-label="PutEventsRequests: peak 4 calls over the 60 minutes to 23:00 UTC. Arrow keys' in chart
    assert 'tabindex="0"' in chart and 'class="visually-hidden chart-live" aria-live="polite"' in chart
    assert re.findall(r"<tr><td>(\d\d:\d\d)</td><td>(\d+)</td></tr>", chart) == [("22:00", "3"), ("22:02", "4")]
    latency = str(bar_chart("PutEventLatency", [start], [2.5], start=start, end=start + 3600, period=60, unit="ms"))
    assert "<figcaption>PutEventLatency · peak 2.50 ms</figcaption>" in latency  # an average: no total


def test_an_empty_chart_says_so_and_no_title_escapes_its_block() -> None:
    title = 'CLICKS · </script><script>alert("x")</script> & co'
    chart = str(bar_chart(title, [], [], start=0, end=86_400, period=900, with_total=True))
    assert chart.count("</script>") == 1 and "<script>alert" not in chart  # only the JSON block's own end tag
    (figure,) = figures_in(chart)
    assert figure["data"][0]["name"] == title and figure["data"][0]["y"] == []  # read back exactly
    assert figure["layout"]["annotations"][0]["text"] == "no data yet" and "· no data yet</figcaption>" in chart
    assert "<table" not in chart  # no figures to list


def test_versions_stand_side_by_side_per_metric() -> None:
    rows = [{"metric": "coverage", "values": [("personal (aws-user-personalization)", 0.41, 1.0),
                                              ("popular (aws-popularity-count)", 0.02, 0.05)]},
            {"metric": "normalized_discounted_cumulative_gain_at_10",
             "values": [("personal (aws-user-personalization)", 0.2243, 1.0)]}]
    [figure] = figures_in(str(versions_chart(rows)))
    assert figure["layout"]["barmode"] == "group"
    personal, popular = figure["data"]
    assert personal["name"] == "personal (aws-user-personalization)" and popular["name"].startswith("popular")
    assert personal["x"] == popular["x"] == ["coverage", "normalized_discounted_cumulative_gain_at_10"]
    assert personal["y"] == [0.41, 0.2243] and popular["y"] == [0.02, None]  # no bar where a version has no value
    assert popular["text"][1].endswith(" -")


def test_plotly_js_is_served_from_the_installed_package(console_server: LocalServer) -> None:
    version = metadata.version("plotly")
    url = f"{console_server.url}/console/static/plotly-{version}.min.js"
    shipped = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == shipped
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    packed = httpx.get(url, headers={"Accept-Encoding": "gzip"})  # httpx decodes it
    assert packed.headers["content-encoding"] == "gzip" and packed.content == shipped
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        sent = b"".join(response.iter_raw())
    assert len(sent) < len(shipped) // 2 and gzip.decompress(sent) == shipped  # gzipped once, on the wire
    assert httpx.get(f"{console_server.url}/console/static/console.js").text.count("Plotly.newPlot") == 1
    assert httpx.get(f"{console_server.url}/console/static/plotly-0.0.1.min.js").status_code == 404
