"""Erasing users from the `events` table: their rows and the anonymous rows of their sessions (data deletion).

Anonymous events (no userId) of a session that carried a deleted user are trained on as that user (session
stitching, tastemaker.realtime.feed), so they go with the user. Rows go in bounded transactions.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from tastemaker.store.tables import events

BATCH = 500  # user ids (or session ids) per statement


def _chunks(values: list[str], size: int = BATCH) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def erase_users(engine: sa.Engine, partition: str, user_ids: Iterable[str]) -> int:
    """Delete a partition's rows of these users and the anonymous rows of their sessions; rows deleted."""
    users = sorted(set(user_ids))
    c = events.c
    sessions: set[str] = set()
    with engine.connect() as conn:
        for chunk in _chunks(users):
            sessions.update(r.session_id for r in conn.execute(
                sa.select(c.session_id).where(c.dataset_group_arn == partition, c.user_id.in_(chunk)).distinct()))
    removed = 0
    for chunk in _chunks(users):
        with engine.begin() as conn:
            removed += max(conn.execute(events.delete().where(
                c.dataset_group_arn == partition, c.user_id.in_(chunk))).rowcount, 0)
    for chunk in _chunks(sorted(sessions)):
        with engine.begin() as conn:
            removed += max(conn.execute(events.delete().where(
                c.dataset_group_arn == partition, c.user_id.is_(None), c.session_id.in_(chunk))).rowcount, 0)
    return removed
