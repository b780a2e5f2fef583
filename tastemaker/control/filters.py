"""Filters: CreateFilter, DescribeFilter, ListFilters, DeleteFilter, with the per-group limits."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    DELETABLE,
    activate_now,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
    schedule,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.control.schemas import load_schema
from tastemaker.data.schemas import normalize_dataset_type
from tastemaker.errors import LimitExceededException
from tastemaker.store import queue, resources
from tastemaker.store.records import Dataset, Filter
from tastemaker.store.status import Status

KIND = "filter"
MAX_FILTERS_PER_GROUP = 30
MAX_FIELDS_PER_GROUP = 20


def group_schemas(conn: sa.Connection, dataset_group_arn: str) -> dict[str, Any]:
    """Parsed schemas of the group's datasets, keyed by dataset type ("Items", "Interactions", ...)."""
    out = {}
    for dataset in resources.children(conn, kind="dataset", dataset_group_arn=dataset_group_arn):
        _res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
        out[normalize_dataset_type(Dataset.of(dataset).dataset_type)] = schema
    return out


def check_expression(conn: sa.Connection, dataset_group_arn: str, expression: str) -> Any:
    from tastemaker.filters import check_filter, parse_filter
    from tastemaker.filters.parser import resolve_field_case

    schemas = group_schemas(conn, dataset_group_arn)
    return check_filter(resolve_field_case(parse_filter(expression), schemas), schemas)


@operation("CreateFilter")
def create_filter(ctx: RequestContext, *, name: str, dataset_group_arn: str, filter_expression: str,
                  tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    with ctx.engine.begin() as conn:
        get_active_group(conn, dataset_group_arn, "create a filter")
        checked = check_expression(conn, dataset_group_arn, filter_expression)
        existing = [f for f in resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn)
                    if f.status != Status.DELETE_PENDING]
        if len(existing) >= MAX_FILTERS_PER_GROUP:
            raise LimitExceededException(
                f"Dataset group {dataset_group_arn} already has {len(existing)} filters (the limit is "
                f"{MAX_FILTERS_PER_GROUP}). Delete one first.")
        fields = set(checked.fields)
        for other in existing:
            fields.update(Filter.of(other).fields)
        if len(fields) > MAX_FIELDS_PER_GROUP:
            raise LimitExceededException(
                f"The filters of dataset group {dataset_group_arn} would use {len(fields)} distinct dataset fields "
                f"(the limit is {MAX_FIELDS_PER_GROUP}).")
        body = {"name": name, "filter_arn": arn, "dataset_group_arn": dataset_group_arn,
                "filter_expression": filter_expression, "fields": sorted(checked.fields)}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        activate_now(conn, arn)
    return {"filter_arn": arn}


@operation("DescribeFilter")
def describe_filter(ctx: RequestContext, *, filter_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "filter", filter_arn)


@operation("ListFilters")
def list_filters(ctx: RequestContext, *, dataset_group_arn: str | None = None, next_token: str | None = None,
                 max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "filters", next_token=next_token, max_results=max_results,
                     parent=("dataset_group", dataset_group_arn), by_group=True)


@operation("DeleteFilter")
def delete_filter(ctx: RequestContext, *, filter_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        locked_in(conn, filter_arn, KIND, DELETABLE, "delete the filter")
        schedule(conn, filter_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


def load_active_filter(conn: sa.Connection, filter_arn: str) -> tuple[resources.Resource, Any]:
    """For serving: the ACTIVE filter resource and its checked expression (InvalidInput if not ACTIVE)."""
    from tastemaker.errors import InvalidInputException

    found = resources.get(conn, filter_arn, KIND)
    if found.status != Status.ACTIVE:
        raise InvalidInputException(f"Filter {filter_arn} is {found.status}; it must be ACTIVE to be used.")
    return found, check_expression(conn, found.dataset_group_arn or "", Filter.of(found).filter_expression)
