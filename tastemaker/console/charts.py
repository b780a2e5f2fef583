"""The console's charts: Plotly figures built on the server as plain JSON, drawn in the browser by plotly.js.

`bar_chart` turns a time series (one value per period, e.g. CloudWatch datapoints per minute) into a Plotly
bar figure (a `data` list and a `layout` dict, no plotly.graph_objects validation): one bar per period that has a
datapoint over a fixed window, the x axis pinned to the window (UTC), the y axis from zero, and a hover text per
bar with the period and its exact figure. The figure is embedded in the page as a
`<script type="application/json">` block (JSON with <, > and & escaped, so no text can close the block or run as
script); static/console.js parses each block and calls Plotly.newPlot on the element before it. plotly.js itself
comes from the installed `plotly` package (its package_data/plotly.min.js), served by `PlotlyScript` at a
versioned static URL with long cache headers, read from the package once per process: no CDN, nothing copied
into the repository.

Every chart says what it shows in text, without script and for screen readers: the plot has an aria-label (the
peak over the window), the figcaption gives the total (for summable figures) and the peak, and a visually hidden
table lists each period's figure. A chart without datapoints says "no data yet". From the keyboard, each plot is a
tab stop with a visible focus ring (console.css); console.js moves between its bars with the arrow keys (Home and
End for the first and last), shows plotly's own hover label on the bar and puts the same text (the period or
version and its exact figure) in the chart's aria-live region, so a screen reader says it.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata, resources
from typing import Any

from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

HEIGHT = 170  # pixels of each plot; the width follows its box (responsive)
COLOR = "#1f5fbf"  # the console's accent (console.css --accent)
MUTED = "#5b6673"
ONE_YEAR = 31_536_000
KEYS_HINT = "Arrow keys, Home and End read each bar's figure"


def _clock(ts: float, dated: bool = False, seconds: bool = False) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M" if dated else "%H:%M:%S" if seconds else "%H:%M")


def _plotly_time(ts: float) -> str:
    """A UTC instant as plotly.js reads a date axis value (no time zone: shown as written)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _span(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.0f} hours"


def _per(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 60 else "minute" if seconds == 60 else f"{seconds // 60} minutes"


def _number(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def script_json(value: Any) -> str:
    """JSON safe inside a <script type="application/json"> element: <, > and & escaped as \\u escapes (JSON.parse
    reads them back), so a title holding "</script>" cannot end the block."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def bar_chart(title: str, timestamps: Sequence[float], values: Sequence[float], *, start: float, end: float,
              period: int, unit: str = "", with_total: bool = False) -> Markup:
    """One bar per `period` seconds from `start` to `end` (datapoints in the same period are summed; periods
    without one have no bar). The caption adds the total when `with_total` (or the unit is calls) and the peak;
    a span of a day or more shows dates."""
    slots = max(1, int((end - start) // period))
    by_slot: dict[int, float] = {}
    for ts, value in zip(timestamps, values, strict=False):
        slot = int((ts - start) // period)
        if 0 <= slot < slots:
            by_slot[slot] = by_slot.get(slot, 0.0) + float(value)
    top = max(by_slot.values(), default=0.0)
    total = sum(by_slot.values())
    dated = end - start >= 86_400
    suffix = f" {unit}" if unit else ""
    label = f"{title}: {'no data' if not by_slot else f'peak {_number(top)}{suffix}'} over the " \
            f"{_span(end - start)} to {_clock(end, dated)} UTC"
    ordered = sorted(by_slot.items())
    counted = all(float(v).is_integer() for v in by_slot.values())
    rows = [(_clock(start + slot * period, dated, period < 60), _number(value)) for slot, value in ordered]
    figure = {
        "data": [{
            "type": "bar", "name": title, "marker": {"color": COLOR},
            "x": [_plotly_time(start + (slot + 0.5) * period) for slot, _ in ordered],
            "y": [value for _, value in ordered],
            "width": period * 1000 * 0.9,  # milliseconds on a date axis
            "text": [f"{when}: {shown}{suffix}" for when, shown in rows], "textposition": "none",
            "hovertemplate": "%{text}<extra></extra>",
        }],
        "layout": {
            "height": HEIGHT, "autosize": True, "showlegend": False, "bargap": 0,
            "margin": {"l": 44, "r": 8, "t": 8, "b": 42 if dated else 30},
            "font": {"size": 11, "color": MUTED},
            "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "xaxis": {"type": "date", "range": [_plotly_time(start), _plotly_time(end)], "fixedrange": True,
                      "showgrid": False, "linecolor": "#9aa5b1", "ticks": "outside", "nticks": 5,
                      "tickangle": 0, **({} if dated else {"tickformat": "%H:%M"})},  # a day: dates below
            "yaxis": {"rangemode": "tozero", "fixedrange": True, "gridcolor": "#eef1f4", "zeroline": True,
                      "zerolinecolor": "#9aa5b1", "ticksuffix": suffix if unit == "ms" else "",
                      **({} if by_slot else {"range": [0, 1], "showticklabels": False}),
                      **({"dtick": 1} if counted and 0 < top <= 5 else {})},  # no half calls on the axis
            "annotations": [] if by_slot else [{
                "text": "no data yet", "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
        },
    }
    summed = bool(by_slot) and (with_total or unit == "calls")
    caption = escape(title) + (f" · total {escape(_number(total))}" if summed else "") + (
        f" · peak {escape(_number(top) + suffix)}" if by_slot else " · no data yet")
    table = "".join(f"<tr><td>{when}</td><td>{escape(shown)}</td></tr>" for when, shown in rows) if rows else ""
    if table:  # the figures as text, for screen readers (hidden from sight: the plot shows them)
        table = (f'<div class="visually-hidden"><table><caption>{escape(title)} per {_per(period)} (UTC)</caption>'
                 f"<thead><tr><th>Period</th><th>{escape(unit or 'Value')}</th></tr></thead><tbody>{table}</tbody>"
                 "</table></div>")
    return _figure(label, figure, caption, table)


def versions_chart(rows: Sequence[dict[str, Any]]) -> Markup:
    """The offline metrics of a group's trained versions side by side: one group of bars per metric, one bar
    (and legend entry) per version, so each version stands beside the popularity baseline and the others.
    `rows` are the group page's metric rows: {"metric": name, "values": [(version label, value, share)]}."""
    labels = list(dict.fromkeys(label for row in rows for label, _value, _share in row["values"]))
    metrics = [row["metric"] for row in rows]
    value_of = {(row["metric"], label): value for row in rows for label, value, _share in row["values"]}
    palette = [COLOR, "#d9822b", "#2e8540", "#8e44ad", "#c0392b", MUTED]
    data = [{"type": "bar", "name": label, "x": metrics, "y": [value_of.get((m, label)) for m in metrics],
             "marker": {"color": palette[k % len(palette)]},
             "text": [f"{label}: {m} {_number(value_of[(m, label)]) if (m, label) in value_of else '-'}"
                      for m in metrics], "textposition": "none", "hovertemplate": "%{text}<extra></extra>"}
            for k, label in enumerate(labels)]
    figure = {"data": data, "layout": {
        "height": HEIGHT + 60, "autosize": True, "barmode": "group", "showlegend": True,
        "legend": {"orientation": "h", "y": -0.35}, "margin": {"l": 44, "r": 8, "t": 8, "b": 40},
        "font": {"size": 11, "color": MUTED}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
        "xaxis": {"type": "category", "fixedrange": True, "tickangle": 0},
        "yaxis": {"rangemode": "tozero", "fixedrange": True, "gridcolor": "#eef1f4"}}}
    label = (f"Offline metrics of {len(labels)} trained version{'s' if len(labels) != 1 else ''} "
             f"({', '.join(labels)}); the table below gives each value")
    return _figure(label, figure, Markup("Offline metrics per version"))


def _figure(label: str, figure: dict[str, Any], caption: Markup, table: str = "") -> Markup:
    """A chart's markup: the plot (a keyboard stop: focusable, named by `label`; console.js moves between its
    bars with the arrow keys and says each one's figure in the live region below it), the figure's JSON, the
    caption and the figures as a table for readers."""
    return Markup(
        f'<figure class="chart-box"><div class="plot" tabindex="0" role="application" aria-roledescription="chart" '
        f'aria-label="{escape(label)}. {KEYS_HINT}"></div>'
        f'<script type="application/json" class="chart-figure">{script_json(figure)}</script>'
        f'<figcaption>{caption}</figcaption><p class="visually-hidden chart-live" aria-live="polite"></p>'
        f"{table}</figure>")


def figures_in(page: str) -> list[dict[str, Any]]:
    """The chart figures a page embeds, in page order (what console.js draws; the tests read them too)."""
    return [json.loads(block) for block in
            re.findall(r'<script type="application/json" class="chart-figure">(.*?)</script>', page, re.DOTALL)]


class PlotlyScript:
    """plotly.js from the installed plotly package at /static/plotly-<version>.min.js: read (and gzipped) once
    per process on its first request, then served from memory with a year's immutable cache (the URL changes
    with the version)."""

    def __init__(self) -> None:
        self.version = metadata.version("plotly")
        self.name = f"plotly-{self.version}.min.js"
        self._lock = threading.Lock()
        self._bodies: tuple[bytes, bytes] | None = None

    def bodies(self) -> tuple[bytes, bytes]:
        """(plain, gzipped) plotly.min.js."""
        with self._lock:
            if self._bodies is None:
                plain = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
                self._bodies = (plain, gzip.compress(plain, compresslevel=6, mtime=0))
            return self._bodies

    async def serve(self, request: Request) -> Response:
        plain, packed = await run_in_threadpool(self.bodies)
        zipped = "gzip" in request.headers.get("accept-encoding", "")
        headers = {"Cache-Control": f"public, max-age={ONE_YEAR}, immutable", "Vary": "Accept-Encoding"}
        if zipped:
            headers["Content-Encoding"] = "gzip"
        return Response(packed if zipped else plain, media_type="text/javascript", headers=headers)
