"""The audit trail's table and queries: append one record per control-plane call, page through them newest
first with CloudTrail's filters, and drop those past the retention period."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tastemaker.store.tables import metadata

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_time", sa.Float, nullable=False, index=True),
    sa.Column("event_name", sa.String(64), nullable=False, index=True),
    sa.Column("event_source", sa.String(64), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("access_key_id", sa.String(128), nullable=True, index=True),
    sa.Column("username", sa.String(64), nullable=True),
    sa.Column("resource_names", sa.JSON, nullable=False),  # [[resource type, ARN], ...]
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("record", sa.JSON, nullable=False),  # the CloudTrail event document
)


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    event_id: str
    event_time: float
    event_name: str
    event_source: str
    read_only: bool
    access_key_id: str | None
    username: str | None
    resources: list[tuple[str, str]]
    error_code: str | None
    record: dict[str, Any]


def append(conn: sa.Connection, *, event_id: str, event_time: float, event_name: str, event_source: str,
           read_only: bool, access_key_id: str | None, username: str | None, resources: Iterable[tuple[str, str]],
           error_code: str | None, record: dict[str, Any]) -> None:
    conn.execute(audit_events.insert().values(
        event_id=event_id, event_time=event_time, event_name=event_name, event_source=event_source,
        read_only=read_only, access_key_id=access_key_id, username=username,
        resource_names=[list(r) for r in resources], error_code=error_code, record=record))


def purge(conn: sa.Connection, before: float) -> int:
    """Delete records older than `before` (epoch seconds); returns how many."""
    return int(conn.execute(audit_events.delete().where(audit_events.c.event_time < before)).rowcount or 0)


def page(conn: sa.Connection, *, start: float | None, end: float | None, before_seq: int | None, limit: int,
         event_id: str | None = None, event_name: str | None = None, read_only: bool | None = None,
         username: str | None = None, event_source: str | None = None, access_key_id: str | None = None,
         resource_name: str | None = None, resource_type: str | None = None,
         failed: bool | None = None) -> list[AuditEvent]:
    """Up to `limit` records, newest first, that match every filter given (resource filters match any of a
    record's resources). `before_seq` continues a previous page."""
    c = audit_events.c
    query = sa.select(audit_events).order_by(c.seq.desc())
    for column, value in ((c.event_id, event_id), (c.event_name, event_name), (c.read_only, read_only),
                          (c.username, username), (c.event_source, event_source), (c.access_key_id, access_key_id)):
        if value is not None:
            query = query.where(column == value)
    if failed is not None:
        query = query.where(c.error_code.is_not(None) if failed else c.error_code.is_(None))
    if start is not None:
        query = query.where(c.event_time >= start)
    if end is not None:
        query = query.where(c.event_time <= end)
    if before_seq is not None:
        query = query.where(c.seq < before_seq)
    found: list[AuditEvent] = []
    # Resource filters look inside the JSON list, portably: scan in chunks until the page is full.
    wanted = resource_name is not None or resource_type is not None
    offset, chunk = 0, limit if not wanted else max(limit * 4, 200)
    while len(found) < limit:
        rows = conn.execute(query.limit(chunk).offset(offset)).all()
        for row in rows:
            names = [(str(t), str(n)) for t, n in row.resource_names]
            if resource_name is not None and all(n != resource_name for _, n in names):
                continue
            if resource_type is not None and all(t != resource_type for t, _ in names):
                continue
            found.append(AuditEvent(row.seq, row.event_id, row.event_time, row.event_name, row.event_source,
                                    bool(row.read_only), row.access_key_id, row.username, names, row.error_code,
                                    row.record))
            if len(found) == limit:
                break
        if len(rows) < chunk:
            break
        offset += chunk
    return found
