"""Real-time state: recent events per user and session, behind one interface (embedded SQL or Redis)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

if TYPE_CHECKING:
    from tastemaker.services import Services

log = logging.getLogger("tastemaker.realtime")


@dataclass(frozen=True)
class RecentEvent:
    """One streamed interaction as the serving layer folds it in."""

    item_id: str | None
    event_type: str
    timestamp: float  # the event's sentAt, epoch seconds
    event_value: float | None
    # Where the durable row came from (PutEvents passes them): Redis derives a stable member from them, so a
    # replayed row and its live copy are one member. Not part of an event's identity for comparisons.
    event_id: str | None = field(default=None, compare=False)
    received_at: float | None = field(default=None, compare=False)


class RealtimeState(Protocol):
    """What serving needs from streamed events. Both implementations give the same answers."""

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        """Called after the events are durably stored (duplicates already removed)."""

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        """Events recorded under that userId or that sessionId, newest first (by timestamp, then arrival),
        at most `limit_per_type` of each event type."""


# A user's newest sessions (by arrival): their anonymous events count as the user's (session stitching).
# (The LIMITed inner query keeps the planner on the user index and bounds the work for very active users.)
_SESSIONS_SQL = """
SELECT session_id FROM (
  SELECT session_id, id FROM events WHERE dataset_group_arn = {p} AND user_id = {p} ORDER BY id DESC LIMIT 5000
) newest GROUP BY session_id ORDER BY MAX(id) DESC LIMIT {n}
"""
_RECENT_SQL = """
SELECT id, item_id, event_type, sent_at, event_value FROM (
  SELECT id, item_id, event_type, sent_at, event_value,
         ROW_NUMBER() OVER (PARTITION BY event_type ORDER BY sent_at DESC, id DESC) AS rn
  FROM events
  WHERE id IN (SELECT id FROM events WHERE dataset_group_arn = {p} AND user_id = {p}
               UNION SELECT id FROM events WHERE dataset_group_arn = {p} AND session_id = {p}{stitched})
) ranked
WHERE rn <= {p}
ORDER BY sent_at DESC, id DESC
"""
# `user_id || ''` is never indexed: the planner must take the session index, not scan the group's anonymous rows.
_STITCHED_IDS = (" UNION SELECT id FROM events WHERE dataset_group_arn = {p} AND session_id IN ({m})"
                 " AND user_id || '' IS NULL")
# Only what arrived after the cached newest id: a rowid range on each index (SQLite and PostgreSQL alike).
# session_id and user_id come back so that a user's new session (a new stitch) is noticed.
_NEWER_SQL = """
SELECT id, item_id, event_type, sent_at, event_value, session_id, user_id FROM events
WHERE dataset_group_arn = {p} AND user_id = {p} AND {after}
UNION
SELECT id, item_id, event_type, sent_at, event_value, session_id, user_id FROM events
WHERE dataset_group_arn = {p} AND session_id = {p} AND {after}{stitched}
"""
_STITCHED_NEWER = """
UNION
SELECT id, item_id, event_type, sent_at, event_value, session_id, user_id FROM events
WHERE dataset_group_arn = {p} AND session_id IN ({m}) AND user_id || '' IS NULL AND {after}"""
CACHE_ENTRIES = 20000  # users/sessions whose recent events a process keeps
FULL_REFRESH_SECONDS = 30.0  # a cached entry is re-read in full this often (picks up deleted data)
IDLE_CONNECTIONS = 4  # DBAPI connections kept between reads (no pool checkout and pre-ping per read)
STITCHED_SESSIONS = 20  # a user's newest sessions whose anonymous events join the user's recent events
# PostgreSQL hands out ids before commit, so a lower id can become visible after a higher one: "id > newest"
# would miss it. Instead a probe asks for the rows written by every transaction that had not finished when the
# previous probe's snapshot was taken: xid >= that snapshot's xmin (every older transaction had ended, so its
# rows were already visible then). age() compares the rows' 32-bit xids wraparound-safely; a frozen row's age
# is the maximum, so it never matches. The snapshot's xmin comes back with the rows (same statement, same
# snapshot), or from a statement before the full read (an earlier xmin is only more conservative).
_PG_HORIZON_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_PG_NEWER_WRAP = """
SELECT h.x, n.* FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS x) h LEFT JOIN ({newer}) n ON true
"""

Row = tuple[int, "str | None", str, float, "float | None"]  # id, item, type, sent_at, value


@dataclass
class _Entry:
    rows: list[Row]  # newest first, capped per type at `limit`
    limit: int
    newest: int  # highest events.id seen
    loaded: float  # monotonic time of the last full read
    sessions: tuple[str, ...]  # the user's stitched sessions (empty when the id is not a user id)
    ids: set[int]  # events.id of every row merged in so far (PostgreSQL's probes may re-read some)
    horizon: int = 0  # PostgreSQL: xmin (xid8) of the snapshot of the last probe, or of one taken before it


class EmbeddedState:
    """Reads the durable `events` table, so every API process (and replica) sees a commit at once.

    Uses a pooled DBAPI connection in autocommit (no SQLAlchemy transaction), so on SQLite a read never
    takes the write lock that ingestion needs; the two indexes on (group, user_id) and (group, session_id)
    make one call a few index lookups.

    Session stitching: recent_events(group, userId) also returns the anonymous events (no userId) of the
    user's newest STITCHED_SESSIONS sessions, i.e. sessions that carried at least one event with that userId.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.sessions_sql = _SESSIONS_SQL.format(p=self.marker, n=STITCHED_SESSIONS)
        self.postgres = engine.dialect.name == "postgresql"
        self.after = (f"age(xmin) <= age(CAST({self.marker}::text AS xid))" if self.postgres
                      else f"id > {self.marker}")  # what "arrived since the last probe" means (see above)
        self.cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self.lock = threading.Lock()
        self.idle: list[Any] = []  # DBAPI connections between reads (autocommit on PostgreSQL)
        sa.event.listen(engine, "engine_disposed", self._on_dispose)

    def _on_dispose(self, engine: sa.Engine) -> None:
        """engine.dispose() closes pooled connections, not checked-out ones: close the idle ones kept here."""
        with self.lock:
            idle, self.idle = self.idle, []
        for raw in idle:
            self._discard(raw)

    def record_events(self, dataset_group_arn: str, user_id: str | None, session_id: str,
                      events: Sequence[RecentEvent]) -> None:
        return None  # the durable insert is the state

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = 100) -> list[RecentEvent]:
        """Every call reads the database (so a commit in any process is visible at once), but a user seen before
        costs only one probe for events newer than the ones this process already holds."""
        if limit_per_type <= 0:
            return []
        key = (dataset_group_arn, user_or_session_id)
        with self.lock:
            entry = self.cache.get(key)
        now = time.monotonic()
        fresh = None
        if entry is not None and entry.limit >= limit_per_type and now - entry.loaded < FULL_REFRESH_SECONDS:
            fresh = self._newer(dataset_group_arn, user_or_session_id, entry)
        if fresh is None:  # first read, stale entry, or the user showed up in a new session: read in full
            fresh = self._full(dataset_group_arn, user_or_session_id, max(limit_per_type, 100), now)
        entry, rows = fresh, fresh.rows
        with self.lock:
            self.cache[key] = entry
            self.cache.move_to_end(key)
            while len(self.cache) > CACHE_ENTRIES:
                self.cache.popitem(last=False)
        if entry.limit > limit_per_type:
            rows = _cap(rows, limit_per_type)
        return [RecentEvent(r[1], r[2], r[3], r[4]) for r in rows]

    def _full(self, group: str, ident: str, limit: int, now: float) -> _Entry:
        raw = self._borrow()
        try:
            cursor = raw.cursor()
            horizon = 0
            if self.postgres:
                cursor.execute(_PG_HORIZON_SQL)
                horizon = int(cursor.fetchone()[0])
            cursor.execute(self.sessions_sql, (group, ident))
            sessions = tuple(r[0] for r in cursor.fetchall())
            marks = ", ".join([self.marker] * len(sessions))
            stitched = _STITCHED_IDS.format(p=self.marker, m=marks) if sessions else ""
            cursor.execute(_RECENT_SQL.format(p=self.marker, stitched=stitched),
                           (group, ident, group, ident) + ((group, *sessions) if sessions else ()) + (limit,))
            rows = [_row(r) for r in cursor.fetchall()]
            cursor.close()
        except BaseException:
            self._discard(raw)
            raise
        self._give_back(raw)
        return _Entry(rows, limit, max((r[0] for r in rows), default=0), now, sessions, {r[0] for r in rows},
                      horizon)

    def _newer(self, group: str, ident: str, entry: _Entry) -> _Entry | None:
        """The entry with newer rows merged in, or None when a full read is needed (the user has a new session)."""
        after: Any = str(entry.horizon % 2**32) if self.postgres else entry.newest  # PostgreSQL: 32-bit xid
        stitched = ""
        params: tuple[Any, ...] = (group, ident, after, group, ident, after)
        if entry.sessions:
            stitched = _STITCHED_NEWER.format(p=self.marker, m=", ".join([self.marker] * len(entry.sessions)),
                                              after=self.after)
            params += (group, *entry.sessions, after)
        sql = _NEWER_SQL.format(p=self.marker, stitched=stitched, after=self.after)
        horizon = entry.horizon
        if self.postgres:
            found = self._fetch(_PG_NEWER_WRAP.format(newer=sql), params)
            horizon = int(found[0][0])
            found = [r[1:] for r in found if r[1] is not None]
        else:
            found = self._fetch(sql, params)
        known = set(entry.sessions)
        # A new arrival of this user in a session not stitched yet: re-read in full (a row that PostgreSQL commits
        # late, below `newest`, brings its own session's anonymous events at the next full refresh instead).
        if any(r[0] > entry.newest and r[6] == ident and r[5] not in known for r in found):
            return None
        newer = [_row(r) for r in found if r[0] > entry.newest or r[0] not in entry.ids]  # re-reads skipped
        if not newer:
            if horizon == entry.horizon:
                return entry
            return _Entry(entry.rows, entry.limit, entry.newest, entry.loaded, entry.sessions, entry.ids, horizon)
        return _Entry(_cap(newer + entry.rows, entry.limit), entry.limit, max(entry.newest, *(r[0] for r in newer)),
                      entry.loaded, entry.sessions, entry.ids | {r[0] for r in newer}, horizon)

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        raw = self._borrow()
        try:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            cursor.close()
        except BaseException:
            self._discard(raw)
            raise
        self._give_back(raw)
        return rows

    def _borrow(self) -> Any:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        raw = self.engine.raw_connection()
        if self.postgres:
            raw.driver_connection.autocommit = True  # each read its own snapshot; never idle in a transaction
        return raw

    def _give_back(self, raw: Any) -> None:
        if not self.postgres:
            raw.rollback()  # SQLite: end the read transaction (no snapshot kept between reads)
        with self.lock:
            if len(self.idle) < IDLE_CONNECTIONS:
                self.idle.append(raw)
                return
        raw.close()

    @staticmethod
    def _discard(raw: Any) -> None:
        try:
            raw.invalidate()
        except Exception:  # already broken
            log.debug("closing a broken state connection", exc_info=True)

def _row(r: Any) -> Row:
    return (int(r[0]), r[1], r[2], float(r[3]), None if r[4] is None else float(r[4]))


def _cap(rows: list[Row], limit: int) -> list[Row]:
    """Newest first by (timestamp, arrival), at most `limit` per event type."""
    ordered = sorted(rows, key=lambda r: (r[3], r[0]), reverse=True)
    seen: dict[str, int] = {}
    ids: set[int] = set()
    out = []
    for row in ordered:
        if row[0] in ids:  # re-probed rows the cache already holds
            continue
        ids.add(row[0])
        count = seen.get(row[2], 0)
        if count < limit:
            seen[row[2]] = count + 1
            out.append(row)
    return out


def get_state(services: Services) -> RealtimeState:
    """The process's real-time state (see RealtimeCaches.state)."""
    return services.realtime.state()
