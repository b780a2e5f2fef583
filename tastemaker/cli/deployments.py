"""`tastemaker deployments`: what each campaign and recommender serves, and the memory it takes."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO


def _kib(value: Any) -> str:
    return f"{int(value or 0) / 1024:,.0f}"


def rows(services: Any) -> list[dict[str, Any]]:
    """One entry per campaign and recommender with its serving statistics recorded at deploy time."""
    from tastemaker.store import resources
    from tastemaker.store.records import Campaign, Recommender

    out = []
    with services.read_engine.connect() as conn:
        for kind in ("campaign", "recommender"):
            for found in resources.children(conn, kind=kind):
                view = Campaign.of(found) if kind == "campaign" else Recommender.of(found)
                stats = view.serving_stats
                served = view.solution_version_arn if isinstance(view, Campaign) else view.recipe_arn
                out.append({"arn": found.arn, "kind": kind, "status": found.status, "serves": served or "",
                            "items": stats.get("model_items"), "model_bytes": stats.get("model_bytes"),
                            "index_bytes": stats.get("index_bytes")})
    return out


def render(entries: list[dict[str, Any]], out: TextIO) -> None:
    if not entries:
        out.write("no campaigns or recommenders\n")
        return
    out.write(f"{'status':16} {'items':>9} {'model KiB':>10} {'index KiB':>10}  arn (serves)\n")
    for e in entries:
        items = f"{e['items']:,}" if e["items"] is not None else "-"
        out.write(f"{e['status']:16} {items:>9} {_kib(e['model_bytes']):>10} {_kib(e['index_bytes']):>10}  "
                  f"{e['arn']} ({e['serves']})\n")
    out.write("model: artifacts memory-mapped once and shared by every worker process; index: the approximate "
              "top-k index (catalogues >= 50,000 items), loaded by each worker process\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    _add_state_flags(parser)


def cmd_deployments(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services

    services = build_services(_settings(args), migrate=False)
    render(rows(services), sys.stdout)
    return 0
