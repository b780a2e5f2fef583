"""`tastemaker attribution`: each campaign's, recommender's and custom source's attributed metrics.

It first brings the aggregation up to date (tastemaker.jobs.attribution), then prints per metric attribution,
metric and source the SUM and SAMPLECOUNT over all windows, with the 15-minute windows themselves in --json.
With --arms: for campaigns with a comparison arm (tastemaker.serving.arms), each arm's attributed events per
recommendation served, with 95% intervals, and the difference between the arms.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from tastemaker.jobs.impact import arm_report, report


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
