"""`tastemaker cleanup`: delete everything in a dataset group in dependency order, waiting for each delete."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tastemaker.cli.client import (
    Clients,
    error_code,
    format_call,
    make_clients,
    require_credentials,
    resolve_credentials,
    resolve_endpoint,
)
from tastemaker.cli.progress import Progress
from tastemaker.control.cleanup_plan import BUSY, STAGES, Kind, Plan, make_plan


def _status(clients: Clients, kind: Kind, arn: str) -> str | None:
    """The resource's status, or None when it is gone."""
    try:
        body = getattr(clients.personalize, kind.describe)(**{kind.arn_key: arn})[kind.describe_key]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(body.get("status", ""))


def _delete(clients: Clients, kind: Kind, arn: str, out: TextIO, timeout: float) -> bool:
    """Ask for the delete, waiting out a resource that is still being created; False when already gone."""
    deadline = time.monotonic() + timeout
    while True:
        status = _status(clients, kind, arn)
        if status is None:
            return False
        if status.startswith("DELETE"):
            return True
        if status in BUSY and time.monotonic() < deadline:
            time.sleep(0.5)  # a resource cannot be deleted while it is being created or updated
            continue
        try:
            getattr(clients.personalize, kind.delete)(**kind.delete_params(arn))
            return True
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return False
            if code == "ResourceInUseException" and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise


def _wait_gone(clients: Clients, pending: list[tuple[Kind, str]], label: str, timeout: float,
               stream: TextIO | None) -> None:
    progress = Progress(label, total=len(pending), stream=stream)
    deadline = time.monotonic() + timeout
    left = list(pending)
    while left:
        left = [(kind, arn) for kind, arn in left if _status(clients, kind, arn) is not None]
        progress.update(len(pending) - len(left), "deleting" if left else "")
        if not left:
            break
        if time.monotonic() > deadline:
            progress.finish("timed out")
            raise TimeoutError(f"still not deleted after {timeout:.0f}s: {', '.join(arn for _, arn in left)}")
        time.sleep(0.3)
    progress.finish("deleted")


def execute(clients: Clients, plan: Plan, out: TextIO, *, timeout: float = 600.0,
            stream: TextIO | None = None) -> list[tuple[str, str]]:
    """Delete the plan's resources stage by stage; return (kind, arn) of each resource this run removed."""
    removed: list[tuple[str, str]] = []
    for stage in STAGES:
        pending = []
        for kind in stage:
            for arn in plan.resources.get(kind.name, []):
                print("  >>> " + format_call("personalize", kind.delete, **kind.delete_params(arn)), file=out,
                      flush=True)
                if _delete(clients, kind, arn, out, timeout):
                    pending.append((kind, arn))
                else:
                    print(f"      (already gone: {arn})", file=out)
        if pending:
            _wait_gone(clients, pending, " + ".join(k.name + "s" for k in stage), timeout, stream)
            for kind, arn in pending:
                print(f"      removed {kind.name} {arn}", file=out, flush=True)
                removed.append((kind.name, arn))
    return removed


def print_plan(plan: Plan, out: TextIO) -> None:
    for stage in STAGES:
        for kind in stage:
            for arn in plan.resources.get(kind.name, []):
                print(f"  {kind.name:<18} {arn}", file=out)
    for schema in plan.kept_schemas:
        print(f"  (kept: schema {schema}, a dataset of another group uses it)", file=out)
    for note in plan.notes:
        print(f"  (note: {note})", file=out)


def run_cleanup(clients: Clients, group_arn: str, *, dry_run: bool = False, out: TextIO | None = None,
                timeout: float = 600.0) -> list[tuple[str, str]]:
    out = out or sys.stdout
    plan = make_plan(clients, group_arn)
    if plan is None:
        print(f"Nothing to do: dataset group {group_arn} does not exist (already cleaned up?).", file=out)
        return []
    verb = "Would delete" if dry_run else "Deleting"
    print(f"{verb} {plan.count()} resources of {group_arn}, in dependency order:", file=out)
    print_plan(plan, out)
    if dry_run:
        print("Dry run: nothing was deleted.", file=out)
        return []
    removed = execute(clients, plan, out, timeout=timeout)
    counts: dict[str, int] = {}
    for kind, _ in removed:
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items()) or "nothing"
    print(f"Removed {summary}.", file=out)
    return removed


def add_arguments(parser: Any) -> None:
    parser.add_argument("--dataset-group", required=True, metavar="ARN", help="the dataset group to delete")
    parser.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    parser.add_argument("--endpoint", help="server URL (default $TASTEMAKER_ENDPOINT or http://127.0.0.1:8080)")
    parser.add_argument("--data-dir", default=".tastemaker", help="the server's data dir (to find its key file)")
    parser.add_argument("--region", default=None, help="the region to sign requests with (default $AWS_DEFAULT_REGION or us-east-1)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each stage")


def cmd_cleanup(args: Any) -> int:
    credentials = require_credentials(resolve_credentials(Path(args.data_dir)), Path(args.data_dir))
    clients = make_clients(resolve_endpoint(args.endpoint), credentials, args.region)
    run_cleanup(clients, args.dataset_group, dry_run=args.dry_run, timeout=args.timeout)
    return 0


