"""Event trackers: CreateEventTracker, DescribeEventTracker, ListEventTrackers, DeleteEventTracker."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn, short_id
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
from tastemaker.errors import ResourceAlreadyExistsException
from tastemaker.store import queue, resources
from tastemaker.store.records import EventTracker
from tastemaker.store.status import Status

KIND = "event_tracker"
SUMMARY_KEYS = ("name", "event_tracker_arn", "status", "creation_date_time", "last_updated_date_time")


@operation("CreateEventTracker")
def create_event_tracker(ctx: RequestContext, *, name: str, dataset_group_arn: str,
                         tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    arn = build_arn(KIND, ctx.region, ctx.account, short_id())
    tracking_id = str(uuid.uuid4())
    body = {"name": name, "event_tracker_arn": arn, "account_id": ctx.account, "tracking_id": tracking_id,
            "dataset_group_arn": dataset_group_arn}
    with ctx.engine.begin() as conn:
        get_active_group(conn, dataset_group_arn, "create an event tracker")
        existing = resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn)
        if existing:
            raise ResourceAlreadyExistsException(
                f"Dataset group {dataset_group_arn} already has an event tracker ({existing[0].arn}); "
                "a dataset group can have only one.")
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        activate_now(conn, arn)
    return {"event_tracker_arn": arn, "tracking_id": tracking_id}


@operation("DescribeEventTracker")
def describe_event_tracker(ctx: RequestContext, *, event_tracker_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "event_tracker", event_tracker_arn)


@operation("ListEventTrackers")
def list_event_trackers(ctx: RequestContext, *, dataset_group_arn: str | None = None, next_token: str | None = None,
                        max_results: int | None = None) -> dict[str, Any]:
    result = list_page(ctx, KIND, "event_trackers", next_token=next_token, max_results=max_results,
                       parent=("dataset_group", dataset_group_arn), by_group=True)
    result["event_trackers"] = [{k: body.get(k) for k in SUMMARY_KEYS} for body in result["event_trackers"]]
    return result


@operation("DeleteEventTracker")
def delete_event_tracker(ctx: RequestContext, *, event_tracker_arn: str) -> dict[str, Any]:
    """Stops accepting events at once; the streamed events stay (they belong to the Interactions data)."""
    with ctx.engine.begin() as conn:
        locked_in(conn, event_tracker_arn, KIND, DELETABLE, "delete the event tracker")
        schedule(conn, event_tracker_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


def trackers_by_tracking_id(conn: sa.Connection) -> dict[str, resources.Resource]:
    """Every event tracker keyed by its trackingId (PutEvents resolves its key through this)."""
    return {EventTracker.of(t).tracking_id: t for t in resources.children(conn, kind=KIND)}
