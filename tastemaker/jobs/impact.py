"""Attributed impact: each metric attribution's SUM and SAMPLECOUNT per source over all windows, and for campaigns
with a comparison arm (tastemaker.serving.arms) each arm's attributed events per recommendation served with 95%
intervals and the difference between the arms. Read by `tastemaker attribution` and the console; the
aggregation is brought up to date first (tastemaker.jobs.attribution).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from tastemaker.control.metric_attributions import active_attributions
from tastemaker.control.recommendation_ids import COMPARISON_SUFFIX
from tastemaker.jobs.attribution import aggregate_all
from tastemaker.services import Services
from tastemaker.store import attribution, resources


def report(services: Services, metric_attribution_arn: str | None = None) -> list[dict[str, Any]]:
    """[{metricAttributionArn, metricName, eventType, source, sum, sampleCount, windows: [...]}, ...]."""
    aggregate_all(services)
    out = []
    with services.read_engine.connect() as conn:
        for found in active_attributions(conn):
            if metric_attribution_arn and found.arn != metric_attribution_arn:
                continue
            grouped: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
            for w in attribution.windows(conn, found.arn):
                grouped[(w.metric_name, w.event_type, w.source)].append(w)
            for (metric, event_type, source), windows in sorted(grouped.items()):
                out.append({"metricAttributionArn": found.arn, "metricName": metric, "eventType": event_type,
                            "source": source, "sum": sum(w.value_sum for w in windows),
                            "sampleCount": sum(w.sample_count for w in windows),
                            "windows": [{"start": w.window_start, "sum": w.value_sum, "sampleCount": w.sample_count}
                                        for w in windows]})
    return out


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if trials <= 0:
        return 0.0, 1.0
    p = min(successes / trials, 1.0)
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def arm_report(services: Services, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per campaign with a comparison arm and per metric: served, attributed events and their rate per arm
    with 95% Wilson intervals, and the difference (campaign - arm) with a 95% normal-approximation interval."""
    out = []
    sources = {e["source"] for e in entries}  # only a campaign with attributed events gets rows: read only those
    with services.read_engine.connect() as conn:
        campaigns = [c.arn for c in resources.children(conn, kind="campaign")
                     if c.arn in sources or c.arn + COMPARISON_SUFFIX in sources]
        served = {arn: attribution.exposures(conn, arn) for arn in campaigns}
    for campaign, counts in served.items():
        if not counts:
            continue
        metrics = sorted({e["metricName"] for e in entries if e["source"] in (campaign, campaign + COMPARISON_SUFFIX)})
        for metric in metrics:
            row: dict[str, Any] = {"campaign": campaign, "metricName": metric}
            rates = {}
            for arm, source in (("main", campaign), ("comparison", campaign + COMPARISON_SUFFIX)):
                n = counts.get(arm, 0)
                k = sum(e["sampleCount"] for e in entries if e["source"] == source and e["metricName"] == metric)
                rates[arm] = (k / n if n else 0.0, n)
                low, high = wilson(k, n)
                row[arm] = {"served": n, "events": k, "rate": rates[arm][0], "rate95": [low, high]}
            (p1, n1), (p2, n2) = rates["main"], rates["comparison"]
            if n1 and n2:
                half = 1.96 * math.sqrt(min(p1, 1) * (1 - min(p1, 1)) / n1 + min(p2, 1) * (1 - min(p2, 1)) / n2)
                row["difference"] = {"value": p1 - p2, "ci95": [p1 - p2 - half, p1 - p2 + half]}
            out.append(row)
    return out
