"""A metric attribution's attributed figures on the console's jobs page: totals, charts and comparison arms.

The page reads what the job runner's aggregator stored (tastemaker.jobs.attribution runs as a maintenance step
of every job runner, every few seconds) and never aggregates itself: per page load one summed query for the
totals per metric, event type and source, and the windows of the CHART_SPAN before the attribution's newest
window. Those windows are drawn (console.charts) as one bar per 15-minute window: per metric (its event type)
all sources together, then each of its SOURCES_CHARTED largest sources. Campaigns with a comparison arm get
each arm's rate with its 95% interval (jobs.impact.arm_report, what `tastemaker attribution --arms` prints).
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

CHART_SPAN = 86_400  # seconds of windows charted, up to the newest
SOURCES_CHARTED = 4  # per metric, the sources with the largest attributed sums get a chart of their own


def source_label(source: str) -> str:
    """A campaign or recommender ARN as its kind and name (campaign/x#comparison); other sources as given."""
    return source.rsplit(":", 1)[-1] if source.startswith("arn:") else source


def figures(api: Api, arn: str) -> dict[str, Any]:
    """{"entries": totals per (metric, event type, source), "arms": comparison arms, "charts": [(metric,
    event type, [charts])]} of one attribution, read from the stored windows."""
    with api.services.read_engine.connect() as conn:
        totals = attribution.totals_of(conn, arn)
        recent = attribution.recent_windows(conn, arn, CHART_SPAN)
    entries = [{"metricAttributionArn": arn, "metricName": metric, "eventType": event_type, "source": source,
                "sum": value, "sampleCount": count} for metric, event_type, source, value, count in totals]
    charts: list[tuple[str, str, list[Markup]]] = []
    if recent:
        end = recent[-1].window_start + WINDOW_SECONDS
        start = end - CHART_SPAN
        by_metric: dict[tuple[str, str], dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
        for w in recent:
            by_metric[(w.metric_name, w.event_type)][w.source][w.window_start] = w.value_sum
        for (metric, event_type), sources in sorted(by_metric.items()):
            summed: dict[int, float] = defaultdict(float)
            for values in sources.values():
                for at, value in values.items():
                    summed[at] += value
            drawn = [_chart(f"{metric} · all sources", summed, start, end)]
            largest = sorted(sources, key=lambda s: (-sum(sources[s].values()), s))[:SOURCES_CHARTED]
            drawn += [_chart(f"{metric} · {source_label(s)}", sources[s], start, end) for s in largest]
            charts.append((metric, event_type, drawn))
    return {"entries": entries, "arms": arm_report(api.services, entries), "charts": charts}


def _chart(title: str, values: dict[int, float], start: int, end: int) -> Markup:
    stamps = sorted(values)
    return bar_chart(title, stamps, [values[t] for t in stamps], start=start, end=end, period=WINDOW_SECONDS,
                     with_total=True)
