"""Read streamed events in arrival order after a cursor (trending counts and other incremental consumers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tastemaker.store.tables import events


@dataclass(frozen=True)
class StreamedEvent:
    id: int  # arrival order: pass the last one seen as `after_id` next time
    user_id: str | None
    session_id: str
    item_id: str | None
    event_type: str
    timestamp: float  # sentAt
    received_at: float


def events_after(engine: sa.Engine, dataset_group_arn: str, after_id: int = 0, limit: int = 10000) -> list[StreamedEvent]:
    """A dataset group's streamed events with id > after_id, oldest first (a primary-key range scan).

    On PostgreSQL an id can become visible after a higher one (ids are handed out before commit), so an
    incremental consumer should re-read a margin below its cursor and skip ids it has counted.
    """
    query = (sa.select(events.c.id, events.c.user_id, events.c.session_id, events.c.item_id, events.c.event_type,
                       events.c.sent_at, events.c.received_at)
             .where(events.c.id > after_id, events.c.dataset_group_arn == dataset_group_arn)
             .order_by(events.c.id).limit(limit))
    with engine.connect() as conn:
        return [StreamedEvent(int(r.id), r.user_id, r.session_id, r.item_id, r.event_type, float(r.sent_at),
                              float(r.received_at)) for r in conn.execute(query)]


def item_counts(engine: sa.Engine, dataset_group_arn: str, since: float, until: float | None = None) -> dict[str, int]:
    """Streamed events per item with sentAt in [since, until) — what Trending-Now adds to its next interval."""
    query = (sa.select(events.c.item_id, sa.func.count())
             .where(events.c.dataset_group_arn == dataset_group_arn, events.c.sent_at >= since,
                    events.c.item_id.is_not(None))
             .group_by(events.c.item_id))
    if until is not None:
        query = query.where(events.c.sent_at < until)
    with engine.connect() as conn:
        return {str(item): int(count) for item, count in conn.execute(query)}


def training_records(conn: sa.Connection, dataset_group_arn: str) -> list[dict[str, Any]]:
    """A dataset group's streamed events as Interactions records (schema field names), in arrival order.

    Session stitching: an event sent with only a sessionId is trained on as the userId that the same session
    carried next (the login that followed), or else the one it carried last before it; a session that never
    carried a userId stays out of training.
    """
    query = (sa.select(events.c.session_id, events.c.user_id, events.c.record)
             .where(events.c.dataset_group_arn == dataset_group_arn).order_by(events.c.id))
    rows = [(r.session_id, r.user_id, r.record if isinstance(r.record, dict) else json.loads(r.record))
            for r in conn.execute(query)]
    owner: list[str | None] = [None] * len(rows)
    following: dict[str, str] = {}  # session -> the userId of its nearest later event with one
    for i in range(len(rows) - 1, -1, -1):
        session, user, _record = rows[i]
        if user is not None:
            following[session] = user
        owner[i] = user or following.get(session)
    preceding: dict[str, str] = {}
    out = []
    for i, (session, user, record) in enumerate(rows):
        if user is not None:
            preceding[session] = user
        who = owner[i] or preceding.get(session)
        if who is None:
            continue
        if record.get("USER_ID") != who:
            record = {**record, "USER_ID": who}
        out.append(record)
    return out
