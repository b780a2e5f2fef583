"""The state-change outbox: one row per resource status change, written by store.resources in the same
transaction as the change itself, so no change is lost and none is reported that did not commit.

Every way a resource changes state goes through `resources.insert` (a create, ACTIVE at once for resources with
nothing to build), `resources.update` (a status, or the status of a `latest*Update` record) or
`resources.delete` (gone: status "DELETED"), so recording there covers API-made and job-made changes alike.
A row keeps what a subscriber needs (ARN, kind, dataset group, previous and new status, the failure reason,
a solution version's metrics, the update record that changed) and an event id fixed at write time.
`take` removes the oldest rows and returns them in one transaction (SELECT ... FOR UPDATE SKIP LOCKED on
PostgreSQL), so the notifier that fans them out to the webhook outbox (tastemaker.monitoring.webhooks) does it
exactly once, in the transaction that writes the outbox rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tastemaker.store.tables import metadata

state_changes = sa.Table(
    "state_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("arn", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("dataset_group_arn", sa.String(256), nullable=True),
    sa.Column("previous_status", sa.String(64), nullable=True),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),  # failureReason, metrics, the changed latest*Update record
    sa.Column("created_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class StateChange:
    seq: int
    event_id: str
    arn: str
    kind: str
    dataset_group_arn: str | None
    previous_status: str | None
    status: str
    detail: dict[str, Any]
    created_at: float


def record(conn: sa.Connection, *, arn: str, kind: str, dataset_group_arn: str | None,
           previous_status: str | None, status: str, detail: dict[str, Any] | None = None) -> None:
    """Add one change (inside the caller's transaction: it commits or rolls back with the change)."""
    conn.execute(state_changes.insert().values(
        event_id=str(uuid.uuid4()), arn=arn, kind=kind, dataset_group_arn=dataset_group_arn,
        previous_status=previous_status, status=status, detail=detail or {}, created_at=round(time.time(), 3)))


def take(conn: sa.Connection, limit: int = 200) -> list[StateChange]:
    """Remove and return up to `limit` of the oldest changes (they leave with the caller's commit)."""
    query = sa.select(state_changes).order_by(state_changes.c.seq).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if rows:
        conn.execute(state_changes.delete().where(state_changes.c.seq.in_([r.seq for r in rows])))
    return [StateChange(r.seq, r.event_id, r.arn, r.kind, r.dataset_group_arn, r.previous_status, r.status,
                        dict(r.detail or {}), r.created_at) for r in rows]


def waiting(conn: sa.Connection) -> int:
    """How many changes wait to be fanned out."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(state_changes)).scalar() or 0)
