"""Streamed events for their consumers: arrival-order reads, trending counts, and training records with
session stitching (the SQL is in tastemaker.store.events)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.store.events import StoredEvent, events_after, item_counts, training_rows

__all__ = ["StoredEvent", "events_after", "item_counts", "training_records"]


def training_records(conn: sa.Connection, dataset_group_arn: str) -> list[dict[str, Any]]:
    """A dataset group's streamed events as Interactions records (schema field names), in arrival order.

    Session stitching: an event sent with only a sessionId is trained on as the userId that the same session
    carried next (the login that followed), or else the one it carried last before it; a session that never
    carried a userId stays out of training.
    """
    rows = training_rows(conn, dataset_group_arn)
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
