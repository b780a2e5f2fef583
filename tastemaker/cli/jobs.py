"""`tastemaker jobs`: the job queue's queued and running jobs, with the progress running batch jobs record.

An export records rows written and part files published the same way.

Reads the metadata database directly (the same --data-dir / --db-url as the servers), so it sees the jobs of
every `tastemaker serve` and `tastemaker worker` process sharing it. A batch inference or segment job shows
the lines answered, the lines answered with an error and the files published so far, as its worker last
recorded them (every few seconds, tastemaker.monitoring.progress); the API cannot show them, since
Personalize's Describe operations have no such field.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import orjson


def rows(services: Any) -> list[dict[str, Any]]:
    """One entry per queued or running job: the queue's row, the resource's status and recorded progress."""
    from tastemaker.store import resources, stats

    out = []
    with services.read_engine.connect() as conn:
        for job in stats.active_jobs(conn):
            found = resources.find(conn, job["resource_arn"])
            progress = dict(found.body.get("progress") or {}) if found is not None else {}
            out.append({**job, "status": found.status if found is not None else None, "progress": progress})
    return out


def render(entries: list[dict[str, Any]], out: TextIO) -> None:
    if not entries:
        out.write("no jobs queued or running\n")
        return
    now = time.time()
    for e in entries:
        beat = f", heartbeat {now - e['heartbeat_at']:.0f}s ago" if e.get("heartbeat_at") else ""
        out.write(f"{e['id']:>6} {e['kind']:18} {e['state']:8} attempt {e['attempts']}{beat}  {e['resource_arn']} "
                  f"({e['status']})\n")
        p = e["progress"]
        if p:
            out.write(f"{'':>6} progress: {p.get('lines_processed', 0):,} {p.get('unit', 'lines answered')} "
                      f"({p.get('lines_failed', 0):,} with errors), {p.get('files_done', 0)} of "
                      f"{p.get('files_total', '?')} files done, recorded {now - p.get('updated_at', now):.0f}s ago\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    parser.add_argument("--json", action="store_true", help="print one JSON object per job instead of text")
    _add_state_flags(parser)


def cmd_jobs(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services

    services = build_services(_settings(args), migrate=False)
    entries = rows(services)
    if args.json:
        for entry in entries:
            sys.stdout.write(orjson.dumps(entry).decode() + "\n")
    else:
        render(entries, sys.stdout)
    return 0
