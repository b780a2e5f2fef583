"""Charts as inline SVG, drawn on the server: no chart library and no script in the browser.

`bar_chart` turns a time series (one value per period, e.g. CloudWatch datapoints per minute) into an SVG
of one bar per period over a fixed window, a y axis scaled to the largest value (with its label), the start
and end times below, and a <title> per bar so hovering (or a screen reader) gives the exact figure. Every
text is escaped (markupsafe); the figure carries role="img" and an aria-label that says what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 140
LEFT, BOTTOM, TOP = 44, 18, 8  # room for the y label, the time labels, the top label


def _clock(ts: float, dated: bool = False) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M" if dated else "%H:%M")


def _span(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.0f} hours"


def _number(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}"


def bar_chart(title: str, timestamps: Sequence[float], values: Sequence[float], *, start: float, end: float,
              period: int, unit: str = "", with_total: bool = False) -> Markup:
    """One bar per `period` seconds from `start` to `end`; periods without a datapoint stay empty (zero). The
    caption adds the total when `with_total` (or the unit is calls); a span of a day or more shows dates."""
    slots = max(1, int((end - start) // period))
    by_slot: dict[int, float] = {}
    for ts, value in zip(timestamps, values, strict=False):
        slot = int((ts - start) // period)
        if 0 <= slot < slots:
            by_slot[slot] = by_slot.get(slot, 0.0) + float(value)
    top = max(by_slot.values(), default=0.0)
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    bar_w = plot_w / slots
    total = sum(by_slot.values())
    dated = end - start >= 86_400
    label = f"{title}: {'no data' if not by_slot else f'peak {_number(top)} {unit}'.strip()} over the " \
            f"{_span(end - start)} to {_clock(end, dated)} UTC"
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 4}" y2="{TOP + plot_h}" class="axis"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" class="axis"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{escape(_number(top))}</text>',
             f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
             f'<text x="{LEFT}" y="{HEIGHT - 4}">{_clock(start, dated)}</text>',
             f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">{_clock(end, dated)} UTC</text>']
    for slot, value in sorted(by_slot.items()):
        h = 0.0 if top <= 0 else plot_h * value / top
        x = LEFT + slot * bar_w
        parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                     f'height="{h:.1f}"><title>{_clock(start + slot * period, dated)}: '
                     f'{escape(_number(value))} {escape(unit)}</title></rect>')
    if not by_slot:
        parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
                     f'class="nodata">no data yet</text>')
    parts.append("</svg>")
    shown = by_slot and (with_total or unit == "calls")
    caption = f"{escape(title)}" + (f" · total {escape(_number(total))}" if shown else "")
    return Markup(f'<figure class="chart-box">{"".join(parts)}<figcaption>{caption}</figcaption></figure>')
