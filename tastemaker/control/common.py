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
    TastemakerError,
    TooManyTagsException,
)
from tastemaker.store import resources
from tastemaker.store.status import Status

# Kept for tastemaker.realtime.events_api (not this module's owner); everything else uses Status directly.
ACTIVE = Status.ACTIVE

MAX_TAG_KEYS = 50


def name_key(ctx: RequestContext, name: str) -> str:
    """Names are unique per kind within an account and region."""
    return f"{ctx.account}/{ctx.region}/{name}"


def storage_id() -> str:
    return uuid.uuid4().hex


def check_tags(existing: int, tags: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]]:
    tags = list(tags or [])
    keys = {t["tag_key"] for t in tags}
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


def require_status(res: resources.Resource, allowed: Iterable[str], action: str) -> None:
    allowed = tuple(allowed)
    if res.status not in allowed:
        raise ResourceInUseException(
            f"Cannot {action}: {res.arn} is {res.status}; it must be {' or '.join(allowed)}.")


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


def list_page(ctx: RequestContext, kind: str, key: str, *, next_token: str | None, max_results: int | None,
              parent: tuple[str, str | None] | None = None, by_group: bool = False,
              missing_parent: type[TastemakerError] = InvalidInputException) -> dict[str, Any]:
    """One List* page of `kind` under `key`; `parent` = (parent kind, ARN or None) must exist when given.

    Parents filter by dataset_group_arn when `by_group`, else by parent_arn. Reads never wait for writers.
    A parent that does not exist is `missing_parent`: InvalidInputException, the one error the List* models
    declare for it (only ListSolutionVersions declares ResourceNotFoundException).
    """
    parent_kind, parent_arn = parent or (None, None)
    with ctx.read_engine.connect() as conn:
        if parent_arn:
            try:
                resources.get(conn, parent_arn, parent_kind)
            except ResourceNotFoundException as exc:
                if missing_parent is ResourceNotFoundException:
                    raise
                raise missing_parent(f"{exc.message} Pass the ARN of an existing one, or leave the filter out to "
                                     "list them all.") from exc
        items, token = resources.page(conn, kind=kind, next_token=next_token, max_results=max_results,
                                      dataset_group_arn=parent_arn if by_group else None,
                                      parent_arn=None if by_group else parent_arn)
    return listing(items, token, key)
