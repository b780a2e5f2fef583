"""`tastemaker attribution`: each campaign's, recommender's and custom source's attributed metrics.

It first brings the aggregation up to date (tastemaker.jobs.attribution), then prints per metric attribution,
metric and source the SUM and SAMPLECOUNT over all windows, with the 15-minute windows themselves in --json.
With --arms: for campaigns with a comparison arm (tastemaker.serving.arms), each arm's attributed events per
recommendation served, with 95% intervals, and the difference between the arms.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from typing import Any, TextIO


def report(services: Any, metric_attribution_arn: str | None = None) -> list[dict[str, Any]]:
    """[{metricAttributionArn, metricName, eventType, source, sum, sampleCount, windows: [...]}, ...]."""
    from tastemaker.control.metric_attributions import active_attributions
    from tastemaker.jobs.attribution import aggregate_all
    from tastemaker.store import attribution

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


def arm_report(services: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per campaign with a comparison arm and per metric: served, attributed events and their rate per arm
    with 95% Wilson intervals, and the difference (campaign - arm) with a 95% normal-approximation interval."""
    from tastemaker.control.recommendation_ids import COMPARISON_SUFFIX
    from tastemaker.store import attribution, resources

    out = []
    with services.read_engine.connect() as conn:
        campaigns = [c.arn for c in resources.children(conn, kind="campaign")]
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


def render_arms(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        out.write("no campaign has a comparison arm with traffic yet\n")
        return
    for r in rows:
        out.write(f"{r['campaign']}  {r['metricName']}\n")
        for arm in ("main", "comparison"):
            a = r[arm]
            out.write(f"  {arm:10} served {a['served']:>8}  events {a['events']:>7}  rate {a['rate']:.4f} "
                      f"[{a['rate95'][0]:.4f}, {a['rate95'][1]:.4f}]\n")
        if "difference" in r:
            d = r["difference"]
            out.write(f"  difference {d['value']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] (95%)\n")


def render(entries: list[dict[str, Any]], out: TextIO) -> None:
    if not entries:
        out.write("no attributed events yet\n")
        return
    out.write(f"{'metric':24} {'event type':16} {'sum':>14} {'samples':>9}  source\n")
    out.writelines(f"{e['metricName']:24} {e['eventType']:16} {e['sum']:>14,.2f} {e['sampleCount']:>9}  "
                  f"{e['source']}\n" for e in entries)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    _add_state_flags(parser)
    parser.add_argument("--metric-attribution-arn", help="only this metric attribution")
    parser.add_argument("--json", action="store_true", help="JSON with the 15-minute windows")
    parser.add_argument("--arms", action="store_true",
                        help="campaigns with a comparison arm: each arm's rate per metric with 95%% intervals")


def cmd_attribution(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services

    services = build_services(_settings(args), migrate=False)
    entries = report(services, args.metric_attribution_arn)
    if args.arms:
        rows = arm_report(services, entries)
        if args.json:
            sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        else:
            render_arms(rows, sys.stdout)
        return 0
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=1) + "\n")
    else:
        render(entries, sys.stdout)
    return 0
