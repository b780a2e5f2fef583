"""Shared control-plane helpers: name keys, tags on create, list pages, dependency checks."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tastemaker.control.context import RequestContext
from tastemaker.errors import (
    InvalidInputException,
    ResourceInUseException,
    ResourceNotFoundException,
    TooManyTagsException,
)
from tastemaker.store import queue, resources
from tastemaker.store.status import Status

# Kept for tastemaker.realtime.events_api (not this module's owner); everything else uses Status directly.
ACTIVE = Status.ACTIVE

MAX_TAG_KEYS = 50
RESERVED_TAG_PREFIX = "aws:"  # keys (any case) users may not set or remove


def name_key(ctx: RequestContext, name: str) -> str:
    """Names are unique per kind within an account and region."""
    return f"{ctx.account}/{ctx.region}/{name}"


def storage_id() -> str:
    return uuid.uuid4().hex


def check_tags(existing: int, tags: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]]:
    tags = list(tags or [])
    keys = {t["tag_key"] for t in tags}
    reserved = sorted(k for k in keys if k.lower().startswith(RESERVED_TAG_PREFIX))
    if reserved:
        raise InvalidInputException(
            f"Tag keys starting with '{RESERVED_TAG_PREFIX}' are reserved for AWS use: {', '.join(reserved)}. "
            "Use another prefix.")
    if len(keys) != len(tags):
        raise InvalidInputException("Duplicate tag keys in the request.")
    if existing + len(keys) > MAX_TAG_KEYS:
        raise TooManyTagsException(f"A resource can have at most {MAX_TAG_KEYS} tags; "
                                   f"this request would give it {existing + len(keys)}.")
    return [dict(t) for t in tags]


def create_with_tags(conn: sa.Connection, tags: Sequence[Mapping[str, str]] | None, **insert: Any) -> resources.Resource:
    checked = check_tags(0, tags)
    res = resources.insert(conn, **insert)
    resources.put_tags(conn, res.arn, checked)
    return res


def activate_now(conn: sa.Connection, arn: str) -> None:
    """A resource with nothing to build (dataset group, dataset, solution, event tracker, filter) becomes ACTIVE
    in the transaction that creates it: CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE, so the first Describe
    after the create already answers ACTIVE and "Run All" notebooks that use it at once do not race a job."""
    resources.update(conn, arn, status=Status.CREATE_IN_PROGRESS)
    resources.update(conn, arn, status=Status.ACTIVE)


def require_status(res: resources.Resource, allowed: Iterable[str], action: str) -> None:
    allowed = tuple(allowed)
    if res.status not in allowed:
        raise ResourceInUseException(
            f"Cannot {action}: {res.arn} is {res.status}; it must be {' or '.join(allowed)}.")


# The statuses from which a resource may be deleted.
DELETABLE = (Status.ACTIVE, Status.CREATE_FAILED)


def locked_in(conn: sa.Connection, arn: str, kind: str, allowed: Iterable[str],
              action: str) -> resources.Resource:
    """The resource, row-locked for this transaction, refused with ResourceInUseException unless its status is
    one of `allowed` (`action` says what the caller was about to do)."""
    found = resources.get(conn, arn, kind, lock=True)
    require_status(found, allowed, action)
    return found


def schedule(conn: sa.Connection, arn: str, status: Status, job: queue.JobKind, **enqueue: Any) -> None:
    """Move the resource to `status` and queue the job that carries the change out, in one transaction."""
    resources.update(conn, arn, status=status)
    queue.enqueue(conn, job, arn, **enqueue)


def refuse_if_dependents(conn: sa.Connection, arn: str, label: str, checks: Sequence[tuple[str, str, str]]) -> None:
    """checks: (kind, column, description); raise ResourceInUseException naming the first dependents found."""
    for kind, column, description in checks:
        found = resources.children(conn, kind=kind, **{column: arn})
        if found:
            names = ", ".join(r.arn for r in found[:3])
            raise ResourceInUseException(
                f"Cannot delete {label} {arn}: {len(found)} {description} still exist ({names}). Delete them first.")


def describe(ctx: RequestContext, kind: str, key: str, arn: str) -> dict[str, Any]:
    """A Describe* answer: the resource's document under `key`; reads never wait for writers."""
    with ctx.read_engine.connect() as conn:
        return {key: resources.get(conn, arn, kind).body}


def listing(items: Iterable[resources.Resource], token: str | None, key: str) -> dict[str, Any]:
    return {key: [r.body for r in items], "next_token": token}


# List* operations whose model declares ResourceNotFoundException for an unknown parent (by the listed kind);
# the others (ListDatasets, ListSolutions, ListFilters, ListEventTrackers, ListRecommenders,
# ListDatasetImportJobs, ListCampaigns, ...) answer an empty page, as Personalize does.
PARENT_MUST_EXIST = frozenset({"solution_version"})


def list_page(ctx: RequestContext, kind: str, key: str, *, next_token: str | None, max_results: int | None,
              parent: tuple[str, str | None] | None = None, by_group: bool = False) -> dict[str, Any]:
    """One List* page of `kind` under `key`, of the caller's region only; `parent` = (parent kind, ARN or None).

    Parents filter by dataset_group_arn when `by_group`, else by parent_arn. An unknown parent is a
    ResourceNotFoundException only where the operation's model declares it (PARENT_MUST_EXIST), else an
    empty page. Reads never wait for writers.
    """
    parent_kind, parent_arn = parent or (None, None)
    with ctx.read_engine.connect() as conn:
        if parent_arn and kind in PARENT_MUST_EXIST:
            check_region(ctx, parent_arn)
            resources.get(conn, parent_arn, parent_kind)
        items, token = resources.page(conn, kind=kind, next_token=next_token, max_results=max_results,
                                      dataset_group_arn=parent_arn if by_group else None,
                                      parent_arn=None if by_group else parent_arn, region=ctx.region)
    return listing(items, token, key)


def arn_region(value: object) -> str | None:
    """The region of a Personalize resource ARN (None for anything else, '' for global recipes)."""
    if not isinstance(value, str) or not value.startswith("arn:"):
        return None
    parts = value.split(":", 4)
    if len(parts) < 5 or parts[2] != "personalize":
        return None
    return parts[3]


def check_region(ctx: RequestContext, *values: object) -> None:
    """Resources belong to the region of their ARN: one of another region does not exist for this caller
    (ResourceNotFoundException, as AWS answers). Global ARNs (recipes, algorithms) have no region."""
    for value in values:
        region = arn_region(value)
        if region and region != ctx.region:
            raise ResourceNotFoundException(
                f"Could not find {value}: it belongs to region {region}, and this request was signed for region "
                f"{ctx.region}. Configure the client with region_name='{region}' to reach it.")


def check_request_regions(ctx: RequestContext, params: Mapping[str, Any]) -> None:
    """check_region for every ARN an operation's input names (top-level members and lists of them)."""
    for value in params.values():
        if isinstance(value, str):
            check_region(ctx, value)
        elif isinstance(value, list):
            check_region(ctx, *value)
