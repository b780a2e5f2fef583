"""Real-time state: recent events per user and session, behind one interface (embedded SQL or Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

if TYPE_CHECKING:
    from tastemaker.control.context import Services

CACHE_KEY = "realtime_state"


@dataclass(frozen=True)
class RecentEvent:
    """One streamed interaction as the serving layer folds it in."""

    item_id: str | None
    event_type: str
    timestamp: float  # the event's sentAt, epoch seconds
    event_value: float | None


class RealtimeState(Protocol):
    """What serving needs from streamed events. Both implementations give the same answers."""

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        """Called after the events are durably stored (duplicates already removed)."""

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        """Events recorded under that userId or that sessionId, newest first (by timestamp, then arrival),
        at most `limit_per_type` of each event type."""


_RECENT_SQL = """
SELECT item_id, event_type, sent_at, event_value FROM (
  SELECT item_id, event_type, sent_at, event_value, id,
         ROW_NUMBER() OVER (PARTITION BY event_type ORDER BY sent_at DESC, id DESC) AS rn
  FROM events
  WHERE id IN (SELECT id FROM events WHERE dataset_group_arn = {p} AND user_id = {p}
               UNION SELECT id FROM events WHERE dataset_group_arn = {p} AND session_id = {p})
) ranked
WHERE rn <= {p}
ORDER BY sent_at DESC, id DESC
"""


class EmbeddedState:
    """Reads the durable `events` table, so every API process (and replica) sees a commit at once.

    Uses a pooled DBAPI connection in autocommit (no SQLAlchemy transaction), so on SQLite a read never
    takes the write lock that ingestion needs; the two indexes on (group, user_id) and (group, session_id)
    make one call a few index lookups.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.sql = _RECENT_SQL.format(p=marker)

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        return None  # the durable insert is the state

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        if limit_per_type <= 0:
            return []
        key = user_or_session_id
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(self.sql, (dataset_group_arn, key, dataset_group_arn, key, limit_per_type))
            rows = cursor.fetchall()
            cursor.close()
        finally:
            raw.close()
        return [RecentEvent(r[0], r[1], float(r[2]), None if r[3] is None else float(r[3])) for r in rows]


def get_state(services: Services) -> RealtimeState:
    """The process's real-time state: Redis when settings.redis_url is set, else the embedded one."""
    state: Any = services.caches.get(CACHE_KEY)
    if state is None:
        url = services.settings.redis_url
        if url:
            from tastemaker.realtime.redis_state import RedisState

            state = RedisState.from_url(url)
        else:
            state = EmbeddedState(services.engine)
        services.caches[CACHE_KEY] = state
    return state
