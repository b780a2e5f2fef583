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

from tastemaker.filters.compiler import DEFAULT_HISTORY_DEPTH
from tastemaker.store.events import raw_connection
from tastemaker.store.recent_events import RecentEventQueries, Row

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
                      limit_per_type: int = DEFAULT_HISTORY_DEPTH) -> list[RecentEvent]:
        """Events recorded under that userId or that sessionId, newest first (by timestamp, then arrival),
        at most `limit_per_type` of each event type."""

    def forget_group(self, dataset_group_arn: str) -> None:
        """Drop what this process holds of the group (its events were erased, or its tracker changed)."""

    def erase_group(self, dataset_group_arn: str) -> None:
        """Remove the group's state everywhere it is kept (the durable rows are erased by the caller)."""


CACHE_ENTRIES = 20000  # users/sessions whose recent events a process keeps
FULL_REFRESH_SECONDS = 30.0  # a cached entry is re-read in full this often (picks up deleted data)
IDLE_CONNECTIONS = 4  # DBAPI connections kept between reads (no pool checkout and pre-ping per read)
STITCHED_SESSIONS = 20  # a user's newest sessions whose anonymous events join the user's recent events


@dataclass
class _Entry:
    rows: list[Row]  # newest first, capped per type at `limit`
    limit: int
    newest: int  # highest events.id seen
    loaded: float  # monotonic time of the last full read
    sessions: tuple[str, ...]  # the user's stitched sessions (empty when the id is not a user id)
    ids: set[int]  # events.id of every row merged in so far (PostgreSQL's probes may re-read some)
    horizon: int = 0  # probe cursor: PostgreSQL xmin (xid8), SQLite MAX(id), of the last probe's snapshot


class EmbeddedState:
    """Reads the durable `events` table, so every API process (and replica) sees a commit at once.

    Uses a pooled DBAPI connection in autocommit (no SQLAlchemy transaction), so on SQLite a read never
    takes the write lock that ingestion needs. Each read walks bounded windows of the (group, user_id, id) and
    (group, session_id, id) indexes (tastemaker.store.recent_events), so its cost does not grow with the
    events of a session shared by many users.

    Session stitching: recent_events(group, userId) also returns the anonymous events (no userId) among the
    newest events of the user's newest STITCHED_SESSIONS sessions, i.e. sessions that carried at least one
    event with that userId.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.queries = RecentEventQueries(self.postgres)
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

    def forget_group(self, dataset_group_arn: str) -> None:
        with self.lock:
            for key in [k for k in self.cache if k[0] == dataset_group_arn]:
                del self.cache[key]

    def erase_group(self, dataset_group_arn: str) -> None:
        self.forget_group(dataset_group_arn)  # the durable table is the state

    def recent_events(self, dataset_group_arn: str, user_or_session_id: str,
                      limit_per_type: int = DEFAULT_HISTORY_DEPTH) -> list[RecentEvent]:
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
            read = self.queries.read_full(cursor, group, ident, limit, STITCHED_SESSIONS)
            cursor.close()
        except BaseException:
            self._discard(raw)
            raise
        self._give_back(raw)
        rows = read.rows
        return _Entry(rows, limit, max((r[0] for r in rows), default=0), now, read.sessions, {r[0] for r in rows},
                      read.horizon)

    def _newer(self, group: str, ident: str, entry: _Entry) -> _Entry | None:
        """The entry with newer rows merged in, or None when a full read is needed (the user has a new session,
        or more arrived than a probe reads)."""
        raw = self._borrow()
        try:
            cursor = raw.cursor()
            probe = self.queries.probe(cursor, group, ident, entry.sessions, entry.horizon)
            cursor.close()
        except BaseException:
            self._discard(raw)
            raise
        self._give_back(raw)
        if probe.overflow:
            return None
        known = set(entry.sessions)
        # A new arrival of this user in a session not stitched yet: re-read in full (a row that PostgreSQL commits
        # late, below `newest`, brings its own session's anonymous events at the next full refresh instead).
        if any(row[0] > entry.newest and user == ident and session not in known for row, session, user in probe.rows):
            return None
        newer = [row for row, _, _ in probe.rows if row[0] > entry.newest or row[0] not in entry.ids]
        horizon = probe.horizon
        if not newer:
            if horizon == entry.horizon:
                return entry
            return _Entry(entry.rows, entry.limit, entry.newest, entry.loaded, entry.sessions, entry.ids, horizon)
        return _Entry(_cap(newer + entry.rows, entry.limit), entry.limit, max(entry.newest, *(r[0] for r in newer)),
                      entry.loaded, entry.sessions, entry.ids | {r[0] for r in newer}, horizon)

    def _borrow(self) -> Any:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return raw_connection(self.engine)  # PostgreSQL: autocommit, each read its own snapshot

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
