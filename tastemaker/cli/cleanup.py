"""`tastemaker cleanup`: delete everything in a dataset group in dependency order, waiting for each delete."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tastemaker.cli.client import (
    Clients,
    error_code,
    format_call,
    is_not_implemented,
    make_clients,
    require_credentials,
    resolve_credentials,
    resolve_endpoint,
)
from tastemaker.cli.progress import Progress
from tastemaker.store.status import Status

BUSY = {Status.CREATE_PENDING, Status.CREATE_IN_PROGRESS, Status.CREATE_STOPPING, Status.STOP_PENDING,
        Status.STOP_IN_PROGRESS, Status.START_PENDING, Status.START_IN_PROGRESS}


@dataclass(frozen=True)
class Kind:
    """How to list, describe and delete one resource kind through boto3."""

    name: str  # human name, e.g. "campaign"
    arn_key: str  # e.g. "campaignArn"
    describe: str  # boto3 method, e.g. "describe_campaign"
    describe_key: str  # key of the document in the Describe response
    delete: str  # boto3 method

    def delete_params(self, arn: str) -> dict[str, str]:
        return {self.arn_key: arn}


CAMPAIGN = Kind("campaign", "campaignArn", "describe_campaign", "campaign", "delete_campaign")
RECOMMENDER = Kind("recommender", "recommenderArn", "describe_recommender", "recommender", "delete_recommender")
FILTER = Kind("filter", "filterArn", "describe_filter", "filter", "delete_filter")
METRIC_ATTRIBUTION = Kind("metric attribution", "metricAttributionArn", "describe_metric_attribution",
                          "metricAttribution", "delete_metric_attribution")
EVENT_TRACKER = Kind("event tracker", "eventTrackerArn", "describe_event_tracker", "eventTracker",
                     "delete_event_tracker")
SOLUTION = Kind("solution", "solutionArn", "describe_solution", "solution", "delete_solution")
DATASET = Kind("dataset", "datasetArn", "describe_dataset", "dataset", "delete_dataset")
DATASET_GROUP = Kind("dataset group", "datasetGroupArn", "describe_dataset_group", "datasetGroup",
                     "delete_dataset_group")
SCHEMA = Kind("schema", "schemaArn", "describe_schema", "schema", "delete_schema")

# Each stage only starts when everything of the stage before is gone (that is what the server checks).
STAGES: tuple[tuple[Kind, ...], ...] = (
    (CAMPAIGN, RECOMMENDER), (FILTER, METRIC_ATTRIBUTION, EVENT_TRACKER), (SOLUTION,), (DATASET,),
    (DATASET_GROUP,), (SCHEMA,),
)


@dataclass
class Plan:
    """The resources to delete, by kind, plus notes on what could not be listed."""

    group_arn: str
    resources: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kept_schemas: list[str] = field(default_factory=list)

    def add(self, kind: Kind, arn: str) -> None:
        self.resources.setdefault(kind.name, []).append(arn)

    def count(self) -> int:
        return sum(len(v) for v in self.resources.values())


def _pages(clients: Clients, method: str, key: str, plan: Plan, **params: Any) -> list[dict[str, Any]]:
    """All items of a List* call (paginated); an operation the server lacks lists nothing, with a note."""
    p = clients.personalize
    try:
        if p.can_paginate(method):
            return [item for page in p.get_paginator(method).paginate(**params) for item in page.get(key, [])]
        return list(getattr(p, method)(**params).get(key, []))
    except Exception as exc:
        if is_not_implemented(exc):
            plan.notes.append(f"{method} is not implemented by this server, so there is nothing of that kind")
            return []
        raise


def make_plan(clients: Clients, group_arn: str) -> Plan | None:
    """What deleting `group_arn` removes; None when the group does not exist."""
    p = clients.personalize
    try:
        p.describe_dataset_group(datasetGroupArn=group_arn)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    plan = Plan(group_arn)
    solutions = _pages(clients, "list_solutions", "solutions", plan, datasetGroupArn=group_arn)
    for solution in solutions:
        for campaign in _pages(clients, "list_campaigns", "campaigns", plan, solutionArn=solution["solutionArn"]):
            plan.add(CAMPAIGN, campaign["campaignArn"])
    for item in _pages(clients, "list_recommenders", "recommenders", plan, datasetGroupArn=group_arn):
        plan.add(RECOMMENDER, item["recommenderArn"])
    for item in _pages(clients, "list_filters", "Filters", plan, datasetGroupArn=group_arn):
        plan.add(FILTER, item["filterArn"])
    for item in _pages(clients, "list_metric_attributions", "metricAttributions", plan, datasetGroupArn=group_arn):
        plan.add(METRIC_ATTRIBUTION, item["metricAttributionArn"])
    for item in _pages(clients, "list_event_trackers", "eventTrackers", plan, datasetGroupArn=group_arn):
        plan.add(EVENT_TRACKER, item["eventTrackerArn"])
    for solution in solutions:
        plan.add(SOLUTION, solution["solutionArn"])
    schemas: set[str] = set()
    for item in _pages(clients, "list_datasets", "datasets", plan, datasetGroupArn=group_arn):
        plan.add(DATASET, item["datasetArn"])
        schemas.add(p.describe_dataset(datasetArn=item["datasetArn"])["dataset"]["schemaArn"])
    plan.add(DATASET_GROUP, group_arn)
    # A schema goes only when no dataset of another group uses it.
    used_elsewhere = set()
    for group in _pages(clients, "list_dataset_groups", "datasetGroups", plan):
        if group["datasetGroupArn"] == group_arn:
            continue
        for item in _pages(clients, "list_datasets", "datasets", plan, datasetGroupArn=group["datasetGroupArn"]):
            try:
                used_elsewhere.add(p.describe_dataset(datasetArn=item["datasetArn"])["dataset"]["schemaArn"])
            except Exception as exc:  # a dataset deleted meanwhile uses nothing
                if error_code(exc) != "ResourceNotFoundException":
                    raise
    for schema in sorted(schemas):
        if schema in used_elsewhere:
            plan.kept_schemas.append(schema)
        else:
            plan.add(SCHEMA, schema)
    return plan


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


