"""Webhooks and their outbox: registrations (a URL, an EventBridge bus or an SNS topic, for one dataset group or
all), and one outbox row per (event, webhook) that stays until it is delivered or given up.

`due` claims rows whose next attempt has come by pushing their next attempt past the delivery's timeout in the
same transaction (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), so two delivering processes never send the
same row at once, and a process that dies mid-delivery leaves the row to be retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tastemaker.store.tables import metadata

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("target", sa.String(2048), nullable=False),  # https?:// URL, arn:aws:events:..., arn:aws:sns:...
    sa.Column("dataset_group_arn", sa.String(256), nullable=True, index=True),  # None: every group
    sa.Column("secret", sa.String(512), nullable=True),  # HMAC key of URL deliveries, encrypted (store.secret_box)
    sa.Column("created_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("webhook_id", sa.String(40), nullable=False, index=True),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
    sa.Column("delivered_at", sa.Float, nullable=True),
    sa.Column("given_up", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("event_id", "webhook_id", name="uq_outbox_event_webhook"),
)


@dataclass(frozen=True)
class Webhook:
    id: str
    target: str
    dataset_group_arn: str | None
    secret: str | None
    created_at: float


@dataclass(frozen=True)
class Delivery:
    seq: int
    event_id: str
    webhook: Webhook
    event: dict[str, Any]
    attempts: int


def _hook(row: Any) -> Webhook:
    return Webhook(row.id, row.target, row.dataset_group_arn, row.secret, row.created_at)


def add(conn: sa.Connection, hook: Webhook) -> None:
    conn.execute(webhooks.insert().values(id=hook.id, target=hook.target, dataset_group_arn=hook.dataset_group_arn,
                                          secret=hook.secret, created_at=hook.created_at))


def remove(conn: sa.Connection, hook_id: str) -> bool:
    conn.execute(outbox.delete().where(outbox.c.webhook_id == hook_id, outbox.c.delivered_at.is_(None)))
    return bool(conn.execute(webhooks.delete().where(webhooks.c.id == hook_id)).rowcount)


def get(conn: sa.Connection, hook_id: str) -> Webhook | None:
    row = conn.execute(sa.select(webhooks).where(webhooks.c.id == hook_id)).first()
    return _hook(row) if row else None


def all_hooks(conn: sa.Connection) -> list[Webhook]:
    return [_hook(r) for r in conn.execute(sa.select(webhooks).order_by(webhooks.c.created_at))]


def subscribers(conn: sa.Connection, dataset_group_arn: str | None) -> list[Webhook]:
    """The webhooks that want an event of this dataset group: the group's own and the global ones."""
    query = sa.select(webhooks).where(sa.or_(webhooks.c.dataset_group_arn.is_(None),
                                             webhooks.c.dataset_group_arn == dataset_group_arn))
    return [_hook(r) for r in conn.execute(query)]


def enqueue(conn: sa.Connection, event_id: str, hook_ids: list[str], event: dict[str, Any], now: float) -> None:
    for hook_id in hook_ids:
        conn.execute(outbox.insert().values(event_id=event_id, webhook_id=hook_id, event=event, attempts=0,
                                            next_attempt_at=now, created_at=now))


def due(conn: sa.Connection, now: float, lease_seconds: float, limit: int = 50) -> list[Delivery]:
    """Claim up to `limit` rows whose attempt is due (their next attempt moves `lease_seconds` ahead)."""
    hook = webhooks.c
    query = (sa.select(outbox.c.seq, outbox.c.event_id, outbox.c.event, outbox.c.attempts, hook.id, hook.target,
                       hook.dataset_group_arn, hook.secret, hook.created_at)
             .join_from(outbox, webhooks, hook.id == outbox.c.webhook_id)
             .where(outbox.c.delivered_at.is_(None), outbox.c.given_up.is_(False), outbox.c.next_attempt_at <= now)
             .order_by(outbox.c.seq).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=outbox, skip_locked=True)
    rows = conn.execute(query).all()
    if rows:
        conn.execute(outbox.update().where(outbox.c.seq.in_([r.seq for r in rows]))
                     .values(next_attempt_at=now + lease_seconds))
    return [Delivery(r.seq, r.event_id, _hook(r), r.event, r.attempts) for r in rows]


def delivered(conn: sa.Connection, seq: int, now: float) -> None:
    conn.execute(outbox.update().where(outbox.c.seq == seq).values(
        delivered_at=now, attempts=outbox.c.attempts + 1, last_error=None))


def failed(conn: sa.Connection, seq: int, error: str, next_attempt_at: float | None) -> None:
    """Record a failed attempt: retry at `next_attempt_at`, or give up when it is None."""
    values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "last_error": error[:2000]}
    if next_attempt_at is None:
        values["given_up"] = True
    else:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(outbox.update().where(outbox.c.seq == seq).values(**values))


def pending(conn: sa.Connection, hook_id: str | None = None) -> list[dict[str, Any]]:
    """Undelivered rows (for `tastemaker webhooks list` and tests)."""
    query = sa.select(outbox).where(outbox.c.delivered_at.is_(None)).order_by(outbox.c.seq)
    if hook_id is not None:
        query = query.where(outbox.c.webhook_id == hook_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def set_secret(conn: sa.Connection, hook_id: str, secret: str) -> None:
    conn.execute(webhooks.update().where(webhooks.c.id == hook_id).values(secret=secret))
