"""Real-time state: recent events per user and session, behind one interface (embedded SQL or Redis)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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
SELECT id, item_id, event_type, sent_at, event_value FROM (
  SELECT id, item_id, event_type, sent_at, event_value,
         ROW_NUMBER() OVER (PARTITION BY event_type ORDER BY sent_at DESC, id DESC) AS rn
  FROM events
  WHERE id IN (SELECT id FROM events WHERE dataset_group_arn = {p} AND user_id = {p}
               UNION SELECT id FROM events WHERE dataset_group_arn = {p} AND session_id = {p})
) ranked
WHERE rn <= {p}
ORDER BY sent_at DESC, id DESC
"""
# Only what arrived after the cached newest id: a rowid range on each index (SQLite and PostgreSQL alike).
_NEWER_SQL = """
SELECT id, item_id, event_type, sent_at, event_value FROM events
WHERE dataset_group_arn = {p} AND user_id = {p} AND id > {p}
UNION
SELECT id, item_id, event_type, sent_at, event_value FROM events
WHERE dataset_group_arn = {p} AND session_id = {p} AND id > {p}
"""
CACHE_ENTRIES = 20000  # users/sessions whose recent events a process keeps
FULL_REFRESH_SECONDS = 30.0  # a cached entry is re-read in full this often (picks up deleted data)
# PostgreSQL hands out ids before commit, so concurrent writers can commit a lower id after a higher one
# is visible: re-probe this many ids below the newest seen. SQLite assigns ids under its write lock (exact).
POSTGRES_ID_LOOKBACK = 100_000

Row = tuple[int, "str | None", str, float, "float | None"]  # id, item, type, sent_at, value


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
        self.newer_sql = _NEWER_SQL.format(p=marker)
        self.lookback = POSTGRES_ID_LOOKBACK if engine.dialect.name == "postgresql" else 0
        # (group, id) -> (rows newest first, capped per type at `limit`; limit; newest id; loaded at)
        self.cache: OrderedDict[tuple[str, str], tuple[list[Row], int, int, float]] = OrderedDict()
        self.lock = threading.Lock()

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        return None  # the durable insert is the state

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        """Every call reads the database (so a commit in any process is visible at once), but a user seen before
        costs only a probe for events newer than the ones this process already holds."""
        if limit_per_type <= 0:
            return []
        key = (dataset_group_arn, user_or_session_id)
        with self.lock:
            entry = self.cache.get(key)
        now = time.monotonic()
        if entry is not None and entry[1] >= limit_per_type and now - entry[3] < FULL_REFRESH_SECONDS:
            cached, limit, newest, loaded = entry
            after = newest - self.lookback
            newer = self._query(self.newer_sql, (dataset_group_arn, user_or_session_id, after,
                                                 dataset_group_arn, user_or_session_id, after))
            rows = _cap(newer + cached, limit) if newer else cached
        else:
            limit, loaded = max(limit_per_type, 100), now
            rows = self._query(self.sql, (dataset_group_arn, user_or_session_id, dataset_group_arn,
                                          user_or_session_id, limit))
        newest = max((r[0] for r in rows), default=entry[2] if entry else 0)
        with self.lock:
            self.cache[key] = (rows, limit, newest, loaded)
            self.cache.move_to_end(key)
            while len(self.cache) > CACHE_ENTRIES:
                self.cache.popitem(last=False)
        if limit > limit_per_type:
            rows = _cap(rows, limit_per_type)
        return [RecentEvent(r[1], r[2], r[3], r[4]) for r in rows]

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            cursor.close()
        finally:
            raw.close()
        return [(int(r[0]), r[1], r[2], float(r[3]), None if r[4] is None else float(r[4])) for r in rows]


def _cap(rows: list[Row], limit: int) -> list[Row]:
    """Newest first by (timestamp, arrival), at most `limit` per event type."""
    ordered = sorted(rows, key=lambda r: (r[3], r[0]), reverse=True)
    seen: dict[str, int] = {}
    ids: set[int] = set()
    out = []
    for row in ordered:
        if row[0] in ids:  # re-probed (lookback) rows the cache already holds
            continue
        ids.add(row[0])
        count = seen.get(row[2], 0)
        if count < limit:
            seen[row[2]] = count + 1
            out.append(row)
    return out


def get_state(services: Services) -> RealtimeState:
    """The process's real-time state: Redis when settings.redis_url is set, else the embedded one."""
    state: Any = services.caches.get(CACHE_KEY)
    if state is None:
        url = services.settings.redis_url
        if url:
            from tastemaker.realtime.redis_state import RedisState

            state = RedisState.from_url(url, fallback=EmbeddedState(services.engine))
        else:
            state = EmbeddedState(services.engine)
        services.caches[CACHE_KEY] = state
    return state
