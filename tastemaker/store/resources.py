"""Resource rows: insert, fetch, update and list Personalize resources and their tags."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from tastemaker.errors import (
    InvalidNextTokenException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from tastemaker.store import changes as change_counter
from tastemaker.store import state_changes
from tastemaker.store.status import UPDATE_RECORDS, check, check_update
from tastemaker.store.tables import dataset_parts, resources, tags

KIND_LABELS = {
    "dataset_group": "dataset group",
    "dataset": "dataset",
    "schema": "schema",
    "dataset_import_job": "dataset import job",
    "dataset_export_job": "dataset export job",
    "data_deletion_job": "data deletion job",
    "solution": "solution",
    "solution_version": "solution version",
    "campaign": "campaign",
    "event_tracker": "event tracker",
    "filter": "filter",
    "recommender": "recommender",
    "batch_inference_job": "batch inference job",
    "batch_segment_job": "batch segment job",
    "metric_attribution": "metric attribution",
}


@dataclass
class Resource:
    arn: str
    kind: str
    status: str | None
    body: dict[str, Any]
    dataset_group_arn: str | None
    parent_arn: str | None
    created_at: float
    updated_at: float
    seq: int = 0


def now() -> float:
    return round(time.time(), 3)


def _row(row: Any) -> Resource:
    body = row.body if isinstance(row.body, dict) else orjson.loads(row.body)
    return Resource(row.arn, row.kind, row.status, body, row.dataset_group_arn, row.parent_arn,
                    row.created_at, row.updated_at, row.seq)


def insert(conn: sa.Connection, *, arn: str, kind: str, body: dict[str, Any], status: str | None,
           name_key: str | None = None, dataset_group_arn: str | None = None,
           parent_arn: str | None = None) -> Resource:
    """Insert a resource; a taken name or ARN raises ResourceAlreadyExistsException."""
    ts = now()
    if kind in change_counter.WATCHED_KINDS:
        change_counter.lock(conn)  # the counter before the row (store/changes.py: lock order)
    body = dict(body)
    body.setdefault("creation_date_time", ts)
    body.setdefault("last_updated_date_time", ts)
    if status is not None:
        body["status"] = status
    exists = conn.execute(sa.select(resources.c.arn).where(
        sa.or_(resources.c.arn == arn,
               sa.and_(resources.c.kind == kind, resources.c.name_key == name_key) if name_key else sa.false())
    )).first()
    if exists:
        raise ResourceAlreadyExistsException(f"The {KIND_LABELS.get(kind, kind)} {arn} already exists.")
    try:
        conn.execute(resources.insert().values(
            arn=arn, kind=kind, name_key=name_key, dataset_group_arn=dataset_group_arn, parent_arn=parent_arn,
            status=status, body=body, created_at=ts, updated_at=ts))
    except sa.exc.IntegrityError as exc:  # a concurrent create of the same name committed first (PostgreSQL)
        if not _unique_violation(exc):
            raise
        raise ResourceAlreadyExistsException(f"The {KIND_LABELS.get(kind, kind)} {arn} already exists.") from None
    if status is not None:
        state_changes.record(conn, arn=arn, kind=kind, dataset_group_arn=dataset_group_arn, previous_status=None,
                             status=status, detail=_detail(kind, status, body))
    if kind in change_counter.WATCHED_KINDS:
        change_counter.bump(conn)
    return Resource(arn, kind, status, body, dataset_group_arn, parent_arn, ts, ts)


def _detail(kind: str, status: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What a state-change event carries beside the statuses: why it failed, a new version's metrics."""
    detail: dict[str, Any] = {}
    if status.endswith("FAILED") and body.get("failure_reason"):
        detail["failureReason"] = body["failure_reason"]
    if kind == "solution_version" and status == "ACTIVE":
        detail["metrics"] = body.get("metrics", {})
    return detail


def _record_changes(conn: sa.Connection, before: Resource, status: str | None, body: Mapping[str, Any]) -> None:
    """Write the state changes of one update (its status, and each latest*Update record whose status moved)."""
    new = status if status is not None else before.status
    detail: dict[str, Any] = {}
    for key in UPDATE_RECORDS:
        record, old = body.get(key), before.body.get(key)
        if isinstance(record, dict) and (not isinstance(old, dict) or old.get("status") != record.get("status")):
            head, *rest = key.split("_")
            detail[head + "".join(part.capitalize() for part in rest)] = {
                "status": record.get("status"), "failureReason": record.get("failure_reason")}
    if new is None or (new == before.status and not detail):
        return
    detail.update(_detail(before.kind, new, body))
    state_changes.record(conn, arn=before.arn, kind=before.kind, dataset_group_arn=before.dataset_group_arn,
                         previous_status=before.status, status=new, detail=detail)


def _unique_violation(exc: sa.exc.IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)  # psycopg
    return code == "23505" if code else "UNIQUE constraint failed" in str(exc.orig)


def get(conn: sa.Connection, arn: str, kind: str | Iterable[str] | None = None, *, lock: bool = False) -> Resource:
    """The resource with this ARN (of this kind), else ResourceNotFoundException."""
    query = sa.select(resources).where(resources.c.arn == arn)
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    if kinds:
        query = query.where(resources.c.kind.in_(kinds))
    if lock and conn.dialect.name == "postgresql":
        if change_counter.watched_arn(arn):
            change_counter.lock(conn)  # the counter before the row (store/changes.py: lock order)
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        label = KIND_LABELS.get(kinds[0], "resource") if kinds else "resource"
        raise ResourceNotFoundException(f"Could not find {label} {arn}.")
    return _row(row)


def find(conn: sa.Connection, arn: str, kind: str | None = None) -> Resource | None:
    try:
        return get(conn, arn, kind)
    except ResourceNotFoundException:
        return None


def update(conn: sa.Connection, arn: str, *, status: str | None = None, changes: Mapping[str, Any] | None = None,
           remove: Iterable[str] = ()) -> Resource:
    """Apply status and body changes, bumping last_updated_date_time.

    A status (or latest*Update status) the transition table does not allow raises IllegalTransition.
    """
    current = get(conn, arn, lock=True)
    if status is not None:
        status = check(current.kind, arn, current.status, status)
    for key in UPDATE_RECORDS:
        if changes and key in changes:
            check_update(current.kind, arn, key, current.body.get(key), changes[key])
    body = dict(current.body)
    body.update(changes or {})
    for key in remove:
        body.pop(key, None)
    ts = now()
    body["last_updated_date_time"] = ts
    values: dict[str, Any] = {"body": body, "updated_at": ts}
    if status is not None:
        body["status"] = status
        values["status"] = status
    conn.execute(resources.update().where(resources.c.arn == arn).values(**values))
    if status is not None or changes:
        _record_changes(conn, current, status, body)
    if current.kind in change_counter.WATCHED_KINDS:
        change_counter.bump(conn)
    current.body, current.updated_at = body, ts
    if status is not None:
        current.status = status
    return current


def delete(conn: sa.Connection, arn: str) -> None:
    if change_counter.watched_arn(arn):
        change_counter.lock(conn)  # the counter before the row (store/changes.py: lock order)
    gone = find(conn, arn)
    if gone is not None and gone.status is not None:
        state_changes.record(conn, arn=arn, kind=gone.kind, dataset_group_arn=gone.dataset_group_arn,
                             previous_status=gone.status, status="DELETED")
    conn.execute(resources.delete().where(resources.c.arn == arn))
    if gone is not None and gone.kind in change_counter.WATCHED_KINDS:
        change_counter.bump(conn)
    conn.execute(tags.delete().where(tags.c.arn == arn))
    conn.execute(dataset_parts.delete().where(dataset_parts.c.dataset_arn == arn))


def count(conn: sa.Connection, kind: str, statuses: Iterable[str], region: str | None = None) -> int:
    """How many resources of a kind are in one of these statuses (quotas on work in progress), in `region`
    when given (Personalize's quotas are per region)."""
    query = sa.select(sa.func.count()).select_from(resources).where(
        resources.c.kind == kind, resources.c.status.in_(list(statuses)))
    if region is not None:
        query = query.where(_in_region(region))
    return int(conn.execute(query).scalar() or 0)


def _in_region(region: str) -> Any:
    """Resources whose ARN names `region` (arn:<partition>:personalize:<region>:...)."""
    return resources.c.arn.like(f"arn:%:personalize:{_like_literal(region)}:%", escape="\\")


def children(conn: sa.Connection, *, kind: str | Iterable[str], dataset_group_arn: str | None = None,
             parent_arn: str | None = None, statuses: Iterable[str] | None = None) -> list[Resource]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    query = sa.select(resources).where(resources.c.kind.in_(kinds)).order_by(resources.c.seq)
    if statuses is not None:
        query = query.where(resources.c.status.in_([str(s) for s in statuses]))
    if dataset_group_arn is not None:
        query = query.where(resources.c.dataset_group_arn == dataset_group_arn)
    if parent_arn is not None:
        query = query.where(resources.c.parent_arn == parent_arn)
    return [_row(r) for r in conn.execute(query)]


def versions(conn: sa.Connection, kinds: Iterable[str]) -> dict[str, tuple[str | None, float]]:
    """ARN -> (status, updated_at) of every resource of these kinds: the change stamps serving compares its
    cached views with (tastemaker.serving.deployments)."""
    rows = conn.execute(sa.select(resources.c.arn, resources.c.status, resources.c.updated_at)
                        .where(resources.c.kind.in_(list(kinds))))
    return {r.arn: (r.status, r.updated_at) for r in rows}


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": seq})).decode()


def _decode_token(token: str) -> int:
    """The sequence number a token continues after: a JSON integer in [0, 2**63) (what _encode_token wrote);
    anything else (floats, huge or negative numbers, other JSON) is an InvalidNextTokenException."""
    try:
        after = orjson.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except Exception as exc:
        raise InvalidNextTokenException("The nextToken is not valid; pass the token from the previous page.") from exc
    if type(after) is not int or not 0 <= after < 2**63:
        raise InvalidNextTokenException("The nextToken is not valid; pass the token from the previous page.")
    return after


def page(conn: sa.Connection, *, kind: str, next_token: str | None, max_results: int | None,
         dataset_group_arn: str | None = None, parent_arn: str | None = None,
         newest_first: bool = False, where: Any = None, region: str | None = None) -> tuple[list[Resource], str | None]:
    """One page of resources of a kind, in creation order, with an opaque next token.

    With `region`, only resources of that region: a resource belongs to the region of its ARN
    (`arn:<partition>:personalize:<region>:...`), as in AWS.
    """
    limit = max_results or 100
    order = resources.c.seq.desc() if newest_first else resources.c.seq
    query = sa.select(resources).where(resources.c.kind == kind).order_by(order).limit(limit + 1)
    if region is not None:
        query = query.where(_in_region(region))
    if dataset_group_arn is not None:
        query = query.where(resources.c.dataset_group_arn == dataset_group_arn)
    if parent_arn is not None:
        query = query.where(resources.c.parent_arn == parent_arn)
    if where is not None:
        query = query.where(where)
    if next_token:
        after = _decode_token(next_token)
        query = query.where(resources.c.seq < after if newest_first else resources.c.seq > after)
    full = [_row(r) for r in conn.execute(query)]
    token = _encode_token(full[limit - 1].seq) if len(full) > limit else None
    return full[:limit], token


def _like_literal(text: str) -> str:
    """`text` matched literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- tags -------------------------------------------------------------------------------------------------

def get_tags(conn: sa.Connection, arn: str) -> list[dict[str, str]]:
    rows = conn.execute(sa.select(tags).where(tags.c.arn == arn).order_by(tags.c.tag_key))
    return [{"tag_key": r.tag_key, "tag_value": r.tag_value} for r in rows]


def put_tags(conn: sa.Connection, arn: str, items: Iterable[Mapping[str, str]]) -> None:
    for item in items:
        conn.execute(tags.delete().where(tags.c.arn == arn, tags.c.tag_key == item["tag_key"]))
        conn.execute(tags.insert().values(arn=arn, tag_key=item["tag_key"], tag_value=item.get("tag_value", "")))


def remove_tags(conn: sa.Connection, arn: str, keys: Iterable[str]) -> None:
    conn.execute(tags.delete().where(tags.c.arn == arn, tags.c.tag_key.in_(list(keys))))
