"""A metric attribution's attributed figures on the console's jobs page: totals, charts and comparison arms.

The page reads what the job runner's aggregator stored (tastemaker.jobs.attribution runs as a maintenance step
of every job runner, every few seconds) and never aggregates events itself: per page load one summed query for
the totals per metric, event type and source, and one for the chosen span (SPANS: the last hour or day in
15-minute bars, 7 days in 2-hour bars, 30 days in 12-hour bars) up to the end of the attribution's newest
window, its stored 15-minute windows summed into the span's buckets by the database (so every span reads at
most a hundred or so rows per metric and source). They are charted (console.charts: Plotly figures) per metric
(its event type): all sources together, then each of its SOURCES_CHARTED largest sources. Campaigns with a
comparison arm get each arm's rate with its 95% interval (jobs.impact.arm_report, what `tastemaker attribution
--arms` prints).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from markupsafe import Markup

from tastemaker.api.app import Api
from tastemaker.console.charts import bar_chart
from tastemaker.control.metric_attributions import WINDOW_SECONDS
from tastemaker.jobs.impact import arm_report
from tastemaker.store import attribution

HOUR, DAY = 3_600, 86_400
# span name -> (label, seconds charted up to the newest window's end, seconds per bar)
SPANS = {"hour": ("last hour", HOUR, WINDOW_SECONDS), "day": ("last day", DAY, WINDOW_SECONDS),
         "week": ("last 7 days", 7 * DAY, 2 * HOUR), "month": ("last 30 days", 30 * DAY, 12 * HOUR)}
DEFAULT_SPAN = "day"
SOURCES_CHARTED = 4  # per metric, the sources with the largest attributed sums get a chart of their own


def source_label(source: str) -> str:
    """A campaign or recommender ARN as its kind and name (campaign/x#comparison); other sources as given."""
    return source.rsplit(":", 1)[-1] if source.startswith("arn:") else source


def figures(api: Api, arn: str, span: str = DEFAULT_SPAN) -> dict[str, Any]:
    """{"entries": totals per (metric, event type, source), "arms": comparison arms, "charts": [(metric,
    event type, [charts])]} of one attribution, read from the stored windows; the charts cover `span` (a key of
    SPANS)."""
    _label, seconds, bucket = SPANS[span]
    with api.services.read_engine.connect() as conn:
        totals = attribution.totals_of(conn, arn)
        recent = attribution.recent_windows(conn, arn, seconds, bucket)
    entries = [{"metricAttributionArn": arn, "metricName": metric, "eventType": event_type, "source": source,
                "sum": value, "sampleCount": count} for metric, event_type, source, value, count in totals]
    charts: list[tuple[str, str, list[Markup]]] = []
    if recent:
        end = max(w.window_start for w in recent) + bucket
        start = end - seconds
        by_metric: dict[tuple[str, str], dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        for w in recent:
            by_metric[(w.metric_name, w.event_type)][w.source][w.window_start] = w.value_sum
        for (metric, event_type), sources in sorted(by_metric.items()):
            summed: dict[int, float] = defaultdict(float)
            for values in sources.values():
                for at, value in values.items():
                    summed[at] += value
            drawn = [_chart(f"{metric} · all sources", summed, start, end, bucket)]
            largest = sorted(sources, key=lambda s: (-sum(sources[s].values()), s))[:SOURCES_CHARTED]
            drawn += [_chart(f"{metric} · {source_label(s)}", sources[s], start, end, bucket) for s in largest]
            charts.append((metric, event_type, drawn))
    return {"entries": entries, "arms": arm_report(api.services, entries), "charts": charts}


def _chart(title: str, values: dict[int, float], start: int, end: int, bucket: int) -> Markup:
    stamps = sorted(values)
    return bar_chart(title, stamps, [values[t] for t in stamps], start=start, end=end, period=bucket,
                     with_total=True)
