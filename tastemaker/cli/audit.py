"""`tastemaker audit`: read the audit trail (every control-plane call, allowed or refused) from the metadata store.

The same records as CloudTrail's LookupEvents, newest first, filtered by operation, access key, key name,
resource, read/write, outcome and time; printed as one line per call, or with `--json` one CloudTrail event
document per line. It reads the database directly, so it works while the server is down.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)  # 3.11 reads a trailing Z
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: give epoch seconds or ISO 8601, e.g. 2026-12-06T12:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    parser.add_argument("--event-name", help="only this operation, e.g. CreateCampaign")
    parser.add_argument("--access-key-id", help="only calls signed with this access key id")
    parser.add_argument("--username", help="only calls by this key name (root: the root key)")
    parser.add_argument("--resource", help="only calls that name this ARN (in the request or the answer)")
    parser.add_argument("--read-only", choices=("true", "false"), help="only reads (true) or only writes (false)")
    parser.add_argument("--errors", action="store_true", help="only refused or failed calls")
    parser.add_argument("--start", type=_time, help="from this time (epoch seconds or ISO 8601)")
    parser.add_argument("--end", type=_time, help="until this time (epoch seconds or ISO 8601)")
    parser.add_argument("--max", type=int, default=50, help="at most this many records (default 50)")
    parser.add_argument("--json", action="store_true", help="one CloudTrail event JSON document per line")
    _add_state_flags(parser)


def cmd_audit(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services
    from tastemaker.monitoring.audit import lookup

    if args.max < 1:
        print("--max must be at least 1", file=sys.stderr)
        return 2
    services = build_services(_settings(args), migrate=True)
    filters: dict[str, Any] = {"event_name": args.event_name, "access_key_id": args.access_key_id,
                               "username": args.username, "resource_name": args.resource,
                               "read_only": None if args.read_only is None else args.read_only == "true",
                               "failed": True if args.errors else None}
    filters = {k: v for k, v in filters.items() if v is not None}
    shown, token = 0, None
    while shown < args.max:
        rows, token = lookup(services, filters=filters, start=args.start, end=args.end,
                             max_results=min(50, args.max - shown), next_token=token)
        for row in rows:
            shown += 1
            if args.json:
                print(json.dumps(row.record, sort_keys=True))
            else:
                when = datetime.fromtimestamp(row.event_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                outcome = row.error_code or "ok"
                names = " ".join(name for _, name in row.resources) or "-"
                print(f"{when} {row.event_name} {outcome} key={row.access_key_id or '-'} "
                      f"user={row.username or '-'} ip={row.record.get('sourceIPAddress') or '-'} "
                      f"request_id={row.event_id} {names}")
        if token is None:
            break
    return 0
