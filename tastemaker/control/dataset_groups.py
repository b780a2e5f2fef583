"""Dataset groups: CreateDatasetGroup, DescribeDatasetGroup, ListDatasetGroups, DeleteDatasetGroup."""

from __future__ import annotations

from typing import Any

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    DELETABLE,
    activate_now,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
    refuse_if_dependents,
    schedule,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException
from tastemaker.store import queue, resources
from tastemaker.store.status import Status

KIND = "dataset_group"
DEPENDENTS = (
    ("dataset", "dataset_group_arn", "datasets"),
    ("solution", "dataset_group_arn", "solutions"),
    ("event_tracker", "dataset_group_arn", "event trackers"),
    ("recommender", "dataset_group_arn", "recommenders"),
    ("filter", "dataset_group_arn", "filters"),
    ("metric_attribution", "dataset_group_arn", "metric attributions"),
)


@operation("CreateDatasetGroup")
def create_dataset_group(ctx: RequestContext, *, name: str, role_arn: str | None = None,
                         kms_key_arn: str | None = None, domain: str | None = None,
                         tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    if role_arn and not kms_key_arn:
        raise InvalidInputException("roleArn is only valid together with kmsKeyArn.")
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    body = {"name": name, "dataset_group_arn": arn, "role_arn": role_arn, "kms_key_arn": kms_key_arn,
            "domain": domain}
    with ctx.engine.begin() as conn:
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=arn)
        activate_now(conn, arn)
    return {"dataset_group_arn": arn, "domain": domain}


@operation("DescribeDatasetGroup")
def describe_dataset_group(ctx: RequestContext, *, dataset_group_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "dataset_group", dataset_group_arn)


@operation("ListDatasetGroups")
def list_dataset_groups(ctx: RequestContext, *, next_token: str | None = None,
                        max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "dataset_groups", next_token=next_token, max_results=max_results)


@operation("DeleteDatasetGroup")
def delete_dataset_group(ctx: RequestContext, *, dataset_group_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        locked_in(conn, dataset_group_arn, KIND, DELETABLE, "delete the dataset group")
        refuse_if_dependents(conn, dataset_group_arn, "dataset group", DEPENDENTS)
        schedule(conn, dataset_group_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


def get_active_group(conn: Any, arn: str, action: str) -> resources.Resource:
    """The ACTIVE group, locked (PostgreSQL) until the caller commits: creates that count the group's children
    or depend on its status are serialised with each other and with DeleteDatasetGroup (which locks it too)."""
    group = locked_in(conn, arn, KIND, (Status.ACTIVE,), action)
    return group
