"""Reads of PutActionInteractions rows (stored in `events` under the Action_Interactions dataset's ARN)."""

from __future__ import annotations

import sqlalchemy as sa

from tastemaker.store.tables import events


def user_action_events(engine: sa.Engine, partition: str, user_id: str, limit: int = 300
                       ) -> list[tuple[str, str, float]]:
    """(actionId, eventType, timestamp) of a user's newest `limit` rows, newest first (a backward walk of
    ix_events_group_user_id)."""
    c = events.c
    query = (sa.select(c.item_id, c.event_type, c.sent_at)
             .where(c.dataset_group_arn == partition, c.user_id == user_id, c.item_id.is_not(None))
             .order_by(c.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [(str(r.item_id), str(r.event_type), float(r.sent_at)) for r in conn.execute(query)]
