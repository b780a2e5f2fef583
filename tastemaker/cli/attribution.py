"""`tastemaker attribution`: each campaign's, recommender's and custom source's attributed metrics.

It first brings the aggregation up to date (tastemaker.jobs.attribution), then prints per metric attribution,
metric and source the SUM and SAMPLECOUNT over all windows, with the 15-minute windows themselves in --json.
"""

from __future__ import annotations

import argparse
import json
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


def cmd_attribution(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services

    services = build_services(_settings(args), migrate=False)
    entries = report(services, args.metric_attribution_arn)
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=1) + "\n")
    else:
        render(entries, sys.stdout)
    return 0
