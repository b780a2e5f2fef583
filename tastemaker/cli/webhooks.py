"""`tastemaker webhooks`: add, list, test and remove notification targets (URLs, EventBridge buses, SNS topics).

They receive every resource state change that a job makes (tastemaker.monitoring.webhooks); the commands
read and write the metadata database directly. `add` prints a URL webhook's HMAC secret once.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    sub = parser.add_subparsers(dest="webhooks_command", required=True)
    add = sub.add_parser("add", help="register a target; a URL's HMAC secret is printed once")
    add.add_argument("target", help="an http(s) URL, an EventBridge bus ARN or an SNS topic ARN")
    add.add_argument("--dataset-group", help="only this dataset group's changes (default: every group)")
    add.add_argument("--secret", help="the HMAC secret of a URL webhook (default: generated)")
    listing = sub.add_parser("list", help="list the webhooks and what waits in their outbox")
    test = sub.add_parser("test", help="send a test event to one webhook now and say whether it arrived")
    test.add_argument("id", help="the webhook id (wh-...)")
    remove = sub.add_parser("remove", help="remove a webhook and its undelivered events")
    remove.add_argument("id", help="the webhook id (wh-...)")
    for command in (add, listing, test, remove):
        _add_state_flags(command)


def cmd_webhooks(args: argparse.Namespace) -> int:
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services
    from tastemaker.errors import TastemakerError
    from tastemaker.monitoring import webhooks
    from tastemaker.store import webhooks as store

    services = build_services(_settings(args))
    command = args.webhooks_command
    try:
        if command == "add":
            hook = webhooks.add(services, args.target, args.dataset_group, args.secret)
            print(hook.id)
            if hook.secret and not args.secret:
                print(f"secret: {hook.secret}  (shown once: verify X-Tastemaker-Signature with it)")
            return 0
        if command == "list":
            with services.read_engine.connect() as conn:
                hooks = store.all_hooks(conn)
                waiting = store.pending(conn)
            for hook in hooks:
                mine = [w for w in waiting if w["webhook_id"] == hook.id]
                stuck = sum(1 for w in mine if w["given_up"])
                print(f"{hook.id} {hook.target} group={hook.dataset_group_arn or '*'} "
                      f"pending={len(mine) - stuck} given_up={stuck}")
            return 0
        with services.read_engine.connect() as conn:
            found = store.get(conn, args.id)
        if found is None:
            print(f"No webhook {args.id}; `tastemaker webhooks list` shows them.", file=sys.stderr)
            return 1
        if command == "remove":
            with services.engine.begin() as conn:
                store.remove(conn, args.id)
            print(f"removed {args.id}")
            return 0
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Tastemaker Webhook Test",
                 "source": webhooks.SOURCE, "account": services.settings.account_id,
                 "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": services.settings.default_region,
                 "resources": [], "detail": {"webhookId": found.id}}
        try:
            webhooks.send(services.settings, found, event)
        except Exception as exc:  # noqa: BLE001 - reported to the operator
            print(f"{found.id}: delivery failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print(f"{found.id}: delivered test event {event['id']} at {time.strftime('%H:%M:%S')}")
        return 0
    except TastemakerError as exc:
        print(exc.message, file=sys.stderr)
        return 2
