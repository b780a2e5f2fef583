"""Metric attributions: Create/Describe/List/Update/DeleteMetricAttribution and ListMetricAttributionMetrics.

A metric attribution names up to 10 metrics, each `SUM(Interactions.<numeric column>)`, `SUM(Items.<numeric
column>)` or `SAMPLECOUNT()` over the events of one event type; one per dataset group (Personalize's limits).
The aggregator (tastemaker.jobs.attribution) reads the group's streamed events from where the attribution
started (only data recorded after creation counts) and adds each attributed event to its source's 15-minute
window: the source is the event's `metricAttribution.eventAttributionSource`, else the campaign or recommender
that issued its `recommendationId` (tastemaker.control.recommendation_ids). The Interactions schema needs
the RECOMMENDATION_ID / EVENT_ATTRIBUTION_SOURCE fields for events to carry them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    DELETABLE,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.errors import (
    InvalidInputException,
    InvalidNextTokenException,
    LimitExceededException,
    ResourceAlreadyExistsException,
)
from tastemaker.store import attribution, queue, resources
from tastemaker.store.records import Dataset, MetricAttribution
from tastemaker.store.status import Status

KIND = "metric_attribution"
MAX_METRICS = 10
MAX_SOURCES = 100  # distinct eventAttributionSource values per attribution (Personalize)
WINDOW_SECONDS = 900
TOKEN_PREFIX = "metrics:"
SUMMARY_KEYS = ("name", "metric_attribution_arn", "status", "creation_date_time", "last_updated_date_time",
                "failure_reason")
_SUM = re.compile(r"^\s*SUM\s*\(\s*(Interactions|Items)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.IGNORECASE)
_COUNT = re.compile(r"^\s*SAMPLECOUNT\s*\(\s*\)\s*$", re.IGNORECASE)


def parse_expression(expression: str) -> tuple[str, str | None, str | None]:
    """('SUM', 'Interactions'|'Items', COLUMN) or ('SAMPLECOUNT', None, None); InvalidInput otherwise."""
    if _COUNT.match(expression):
        return "SAMPLECOUNT", None, None
    found = _SUM.match(expression)
    if found is None:
        raise InvalidInputException(
            f"Metric expression {expression!r} is not supported: use SUM(Interactions.<numeric column>), "
            "SUM(Items.<numeric column>) or SAMPLECOUNT().")
    dataset = "Interactions" if found.group(1).lower() == "interactions" else "Items"
    return "SUM", dataset, found.group(2).upper()


def _schema_fields(conn: sa.Connection, group_arn: str, dataset_type: str) -> dict[str, Any] | None:
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.control.schemas import load_schema

    dataset = dataset_of_type(conn, group_arn, dataset_type)
    if dataset is None:
        return None
    _res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
    return {f.name.upper(): f for f in schema.fields}


def _check_metrics(conn: sa.Connection, group_arn: str, metrics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [m["metric_name"] for m in metrics]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InvalidInputException(f"Metric name {duplicate!r} is used twice; every metricName must be unique.")
    if len(metrics) > MAX_METRICS:
        raise LimitExceededException(f"A metric attribution has at most {MAX_METRICS} metrics ({len(metrics)} "
                                     "given); remove some with removeMetrics first.")
    checked = []
    for metric in metrics:
        _function, dataset, column = parse_expression(metric["expression"])
        if dataset is not None:
            fields = _schema_fields(conn, group_arn, dataset)
            if fields is None:
                raise InvalidInputException(f"Metric {metric['metric_name']!r} sums {dataset}.{column}, but dataset "
                                            f"group {group_arn} has no {dataset} dataset.")
            field = fields.get(str(column))
            if field is None or not field.is_numeric:
                raise InvalidInputException(
                    f"Metric {metric['metric_name']!r}: {dataset}.{column} is not a numeric column of the {dataset} "
                    "schema (SUM needs an int, long, float or double field).")
        checked.append({"event_type": metric["event_type"], "metric_name": metric["metric_name"],
                        "expression": metric["expression"]})
    return checked


@operation("CreateMetricAttribution")
def create_metric_attribution(ctx: RequestContext, *, name: str, dataset_group_arn: str,
                              metrics: list[dict[str, Any]], metrics_output_config: dict[str, Any]) -> dict[str, Any]:
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    with ctx.engine.begin() as conn:
        get_active_group(conn, dataset_group_arn, "create a metric attribution")
        if resources.find(conn, arn, KIND):  # the name first: a retried create is told its ARN is taken
            raise ResourceAlreadyExistsException(f"The metric attribution {arn} already exists.")
        existing = resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn)
        if existing:
            raise LimitExceededException(
                f"Dataset group {dataset_group_arn} already has a metric attribution ({existing[0].arn}); a dataset "
                "group can have only one. Add metrics to it with UpdateMetricAttribution.")
        if _schema_fields(conn, dataset_group_arn, "Interactions") is None:
            raise InvalidInputException(f"Dataset group {dataset_group_arn} has no Interactions dataset; create it "
                                        "before the metric attribution.")
        checked = _check_metrics(conn, dataset_group_arn, metrics)
        now = resources.now()
        for metric in checked:
            metric["added_at"] = now
        body = {"name": name, "metric_attribution_arn": arn, "dataset_group_arn": dataset_group_arn,
                "metrics_output_config": metrics_output_config, "metrics": checked}
        create_with_tags(conn, None, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        # Only events recorded from now on count: start reading after the newest one stored.
        attribution.start_at(conn, arn, attribution.latest_event_id(conn, dataset_group_arn))
        queue.enqueue(conn, queue.JobKind.ACTIVATE, arn)
    return {"metric_attribution_arn": arn}


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "metrics"}


@operation("DescribeMetricAttribution")
def describe_metric_attribution(ctx: RequestContext, *, metric_attribution_arn: str) -> dict[str, Any]:
    found = describe(ctx, KIND, "metric_attribution", metric_attribution_arn)
    return {"metric_attribution": _public(found["metric_attribution"])}


@operation("ListMetricAttributions")
def list_metric_attributions(ctx: RequestContext, *, dataset_group_arn: str | None = None,
                             next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
    result = list_page(ctx, KIND, "metric_attributions", next_token=next_token, max_results=max_results,
                       parent=("dataset_group", dataset_group_arn), by_group=True)
    result["metric_attributions"] = [{k: body.get(k) for k in SUMMARY_KEYS if body.get(k) is not None}
                                     for body in result["metric_attributions"]]
    return result


@operation("ListMetricAttributionMetrics")
def list_metric_attribution_metrics(ctx: RequestContext, *, metric_attribution_arn: str | None = None,
                                    next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
    if not metric_attribution_arn:
        raise InvalidInputException("metricAttributionArn is required: the metric attribution whose metrics to list.")
    start, size = _metrics_offset(next_token), max_results or 100
    with ctx.read_engine.connect() as conn:
        found = resources.find(conn, metric_attribution_arn, KIND)
    # The model declares no ResourceNotFoundException here: an unknown attribution has no metrics (an empty
    # page, as the other List* calls answer for an unknown parent).
    metrics = [{k: m[k] for k in ("event_type", "metric_name", "expression")}
               for m in (MetricAttribution.of(found).metrics if found else [])]
    page = metrics[start:start + size]
    token = base64.urlsafe_b64encode(f"{TOKEN_PREFIX}{start + size}".encode()).decode() \
        if start + size < len(metrics) else None
    return {"metrics": page, "next_token": token}


def _metrics_offset(token: str | None) -> int:
    """The position a ListMetricAttributionMetrics nextToken (opaque base64 of "metrics:<offset>") stands for."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        offset = int(text.removeprefix(TOKEN_PREFIX)) if text.startswith(TOKEN_PREFIX) else -1
        if offset < 0:
            raise ValueError(text)
        return offset
    except ValueError as exc:
        raise InvalidNextTokenException(
            "The nextToken is not valid; pass the nextToken of the previous ListMetricAttributionMetrics page.") from exc


@operation("UpdateMetricAttribution")
def update_metric_attribution(ctx: RequestContext, *, metric_attribution_arn: str | None = None,
                              add_metrics: list[dict[str, Any]] | None = None,
                              remove_metrics: list[str] | None = None,
                              metrics_output_config: dict[str, Any] | None = None) -> dict[str, Any]:
    if not metric_attribution_arn:
        raise InvalidInputException("metricAttributionArn is required: the metric attribution to update.")
    with ctx.engine.begin() as conn:
        found = locked_in(conn, metric_attribution_arn, KIND, (Status.ACTIVE,),
                          "update the metric attribution")
        current = list(MetricAttribution.of(found).metrics)
        known = {m["metric_name"] for m in current}
        unknown = sorted(set(remove_metrics or []) - known)
        if unknown:
            raise InvalidInputException(f"removeMetrics names {', '.join(unknown)}, which this metric attribution "
                                        f"does not have (it has: {', '.join(sorted(known)) or 'none'}).")
        kept = [m for m in current if m["metric_name"] not in set(remove_metrics or [])]
        clash = sorted({m["metric_name"] for m in add_metrics or []} & {m["metric_name"] for m in kept})
        if clash:
            raise InvalidInputException(f"addMetrics repeats the metric name {clash[0]!r}; remove it first or choose "
                                        "another name.")
        added = _check_metrics(conn, found.dataset_group_arn or "", [*kept, *(add_metrics or [])])[len(kept):]
        now = resources.now()
        for metric in added:
            metric["added_at"] = now  # a new metric counts only events recorded from now on
        changes: dict[str, Any] = {"metrics": [*kept, *added]}
        if metrics_output_config is not None:
            changes["metrics_output_config"] = metrics_output_config
        # Shown as Personalize's create lifecycle again (CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE, by a job);
        # aggregation waits meanwhile and resumes from its position, so no event is lost.
        resources.update(conn, metric_attribution_arn, status=Status.CREATE_PENDING, changes=changes)
        queue.enqueue(conn, queue.JobKind.ACTIVATE, metric_attribution_arn)
        if remove_metrics:
            attribution.forget(conn, metric_attribution_arn, remove_metrics)
    return {"metric_attribution_arn": metric_attribution_arn}


@operation("DeleteMetricAttribution")
def delete_metric_attribution(ctx: RequestContext, *, metric_attribution_arn: str) -> dict[str, Any]:
    """Gone at once, with its aggregated windows."""
    with ctx.engine.begin() as conn:
        locked_in(conn, metric_attribution_arn, KIND, DELETABLE, "delete the metric attribution")
        attribution.forget(conn, metric_attribution_arn)
        resources.delete(conn, metric_attribution_arn)
    return {}


def active_attributions(conn: sa.Connection) -> list[resources.Resource]:
    """Every ACTIVE metric attribution (the aggregator's work list)."""
    return [r for r in resources.children(conn, kind=KIND) if r.status == Status.ACTIVE]
