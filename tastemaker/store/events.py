"""The `events` table: group-commit inserts, arrival-order reads for training and trending (and the newest rows
for the console's tracker page), and bounded erasure.

Streamed events are partitioned by `dataset_group_arn`: the dataset group ARN for PutEvents, the
Action_Interactions dataset ARN for PutActionInteractions. The insert path runs on a raw DBAPI connection
that its caller keeps between commits (SQLAlchemy's per-row overhead is most of the cost of a 10-row insert).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from tastemaker.store.tables import events

log = logging.getLogger("tastemaker.store")
COLUMNS = ("dataset_group_arn", "event_id", "session_id", "user_id", "item_id", "event_type", "event_value",
           "sent_at", "record", "received_at")
# PostgreSQL: one statement for the whole group, always the same text (psycopg prepares it once), with the rows
# as ONE JSON array parameter. Each request serializes its own rows (orjson, in the caller's thread); the leader
# only joins the pieces. executemany would cost a bind/execute per row, and psycopg dumps array parameters
# element by element in Python, on the leader's serial path.
_PG_KEYS = ("g", "e", "s", "u", "i", "t", "v", "a", "r", "c")  # COLUMNS, in order
PG_INSERT_SQL = (f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT {', '.join(_PG_KEYS)} FROM json_to_recordset("
                 "%s::json) AS x(g text, e text, s text, u text, i text, t text, v float8, a float8, r json, "
                 "c float8) ON CONFLICT (dataset_group_arn, event_id) DO NOTHING")
_HEAD = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES "
_ROW = "(" + ", ".join(["?"] * len(COLUMNS)) + ")"
_SKIP_DUPLICATES = " ON CONFLICT (dataset_group_arn, event_id) DO NOTHING"
ERASE_BATCH = 5000  # rows deleted per transaction when a partition is erased


def raw_connection(engine: sa.Engine) -> Any:
    """A pooled DBAPI connection for the events paths; autocommit on PostgreSQL (each statement its own
    transaction or snapshot, never idle in a transaction)."""
    raw = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        driver: Any = raw.driver_connection
        driver.autocommit = True
    return raw


# --- the group-commit insert ------------------------------------------------------------------------------

def sqlite_params(row: dict[str, Any]) -> tuple[Any, ...]:
    """One request row as the SQLite insert's parameters."""
    return (row["dataset_group_arn"], row["event_id"], row["session_id"], row["user_id"], row["item_id"],
            row["event_type"], row["event_value"], row["sent_at"], orjson.dumps(row["record"]).decode(),
            row["received_at"])  # COLUMNS, in order


def postgres_params(rows: Sequence[dict[str, Any]]) -> bytes:
    """A request's rows as JSON objects without the array brackets (pieces of PG_INSERT_SQL's parameter)."""
    out = []
    for row in rows:
        value = row["event_value"]
        out.append({"g": row["dataset_group_arn"], "e": row["event_id"], "s": row["session_id"],
                    "u": row["user_id"], "i": row["item_id"], "t": row["event_type"],
                    "v": None if value is None else float(value), "a": float(row["sent_at"]),
                    "r": row["record"], "c": float(row["received_at"])})
    return orjson.dumps(out)[1:-1]


def insert_requests(raw: Any, postgres: bool, plain: list[Any], returning: list[Any]) -> list[set[str]]:
    """Insert several requests' rows in ONE transaction and commit; repeated (group, eventId) rows are skipped.

    `plain` and `returning` hold each request's parameters (postgres_params / a list of sqlite_params); the
    result has, per `returning` request, the eventIds actually inserted. On PostgreSQL (autocommit connection)
    a group with nothing to return is one statement: one round trip, one durable commit. On failure the
    transaction is rolled back and the error re-raised; see `usable` for whether `raw` may be kept.
    """
    cursor = raw.cursor()
    try:
        if postgres and not returning:
            cursor.execute(PG_INSERT_SQL, (_json_array(plain),))  # autocommit: its own transaction
            return []
        cursor.execute("BEGIN" if postgres else "BEGIN IMMEDIATE")  # SQLite: take the write lock now
        if plain and postgres:
            cursor.execute(PG_INSERT_SQL, (_json_array(plain),))
        elif plain:
            cursor.executemany(_HEAD + _ROW + _SKIP_DUPLICATES, [row for rows in plain for row in rows])
        results = [_insert_returning(cursor, postgres, params) for params in returning]
        if postgres:
            cursor.execute("COMMIT")
        else:
            raw.commit()
        return results
    except BaseException:
        _roll_back(raw, cursor, postgres)
        raise
    finally:
        cursor.close()


def usable(raw: Any, postgres: bool) -> bool:
    """Whether a connection that raised in insert_requests can be kept (neither the server nor a failed rollback
    closed it)."""
    if postgres:
        return not raw.driver_connection.closed
    try:
        raw.driver_connection.in_transaction  # noqa: B018 - raises on a closed sqlite3 connection
    except Exception:  # noqa: BLE001 - closed
        return False
    return True


def _roll_back(raw: Any, cursor: Any, postgres: bool) -> None:
    try:
        if not postgres:
            raw.rollback()
        elif raw.driver_connection.info.transaction_status != 0:  # inside the failed BEGIN block
            cursor.execute("ROLLBACK")
    except Exception as exc:  # noqa: BLE001 - the connection is unusable: close it so `usable` says so
        log.debug("rollback failed (%s); closing the events connection", exc)
        with contextlib.suppress(Exception):
            raw.driver_connection.close()


def _insert_returning(cursor: Any, postgres: bool, params: Any) -> set[str]:
    if postgres:
        cursor.execute(PG_INSERT_SQL + " RETURNING event_id", (_json_array([params]),))
    else:
        sql = _HEAD + ", ".join([_ROW] * len(params)) + _SKIP_DUPLICATES + " RETURNING event_id"
        cursor.execute(sql, [value for row in params for value in row])
    return {r[0] for r in cursor.fetchall()}


def _json_array(pieces: list[bytes]) -> str:
    """Requests' JSON rows -> one JSON array (the parameter of PG_INSERT_SQL)."""
    return (b"[" + b",".join(p for p in pieces if p) + b"]").decode()


# --- reads in arrival order -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredEvent:
    """One durable row (without its schema record)."""

    id: int  # arrival order
    event_id: str
    session_id: str
    user_id: str | None
    item_id: str | None
    event_type: str
    event_value: float | None
    sent_at: float
    received_at: float


def events_after(engine: sa.Engine, partition: str, after_id: int = 0, limit: int = 10000) -> list[StoredEvent]:
    """A partition's rows with id > after_id, oldest first, at most `limit` (a primary-key range scan)."""
    c = events.c
    return _stored(engine, _stored_rows().where(c.dataset_group_arn == partition, c.id > after_id)
                   .order_by(c.id).limit(limit))


def newest(engine: sa.Engine, partition: str, limit: int = 20) -> list[StoredEvent]:
    """A partition's `limit` newest rows by arrival, newest first (a backward walk of the primary key)."""
    c = events.c
    return _stored(engine, _stored_rows().where(c.dataset_group_arn == partition).order_by(c.id.desc()).limit(limit))


def arrived_since(engine: sa.Engine, partition: str, since: float, limit: int = 10_000) -> list[float]:
    """received_at of those of a partition's newest `limit` rows that arrived at `since` or later: a backward walk
    of the (partition, id) index, so the read is bounded however many events the partition holds."""
    c = events.c
    newest = (sa.select(c.received_at).where(c.dataset_group_arn == partition).order_by(c.id.desc())
              .limit(limit).subquery())
    with engine.connect() as conn:
        return [float(at) for (at,) in conn.execute(sa.select(newest.c.received_at)
                                                     .where(newest.c.received_at >= since))]


def _stored_rows() -> sa.Select[Any]:
    c = events.c
    return sa.select(c.id, c.event_id, c.session_id, c.user_id, c.item_id, c.event_type, c.event_value, c.sent_at,
                     c.received_at)


def _stored(engine: sa.Engine, query: sa.Select[Any]) -> list[StoredEvent]:
    with engine.connect() as conn:
        return [StoredEvent(int(r.id), r.event_id, r.session_id, r.user_id, r.item_id, r.event_type,
                            None if r.event_value is None else float(r.event_value), float(r.sent_at),
                            float(r.received_at)) for r in conn.execute(query)]


def lowest_id(engine: sa.Engine, partition: str, event_ids: Sequence[str]) -> int | None:
    """The smallest events.id among a partition's rows with these eventIds (None when none is stored)."""
    if not event_ids:
        return None
    query = sa.select(sa.func.min(events.c.id)).where(events.c.dataset_group_arn == partition,
                                                      events.c.event_id.in_(list(event_ids)))
    with engine.connect() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else int(found)


def training_rows(conn: sa.Connection, partition: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(sessionId, userId, record in schema field names) of every row of a partition, in arrival order."""
    query = (sa.select(events.c.session_id, events.c.user_id, events.c.record)
             .where(events.c.dataset_group_arn == partition).order_by(events.c.id))
    return [(r.session_id, r.user_id, r.record if isinstance(r.record, dict) else json.loads(r.record))
            for r in conn.execute(query)]


def item_counts(engine: sa.Engine, partition: str, since: float, until: float | None = None) -> dict[str, int]:
    """Rows per item with sentAt in [since, until)."""
    query = (sa.select(events.c.item_id, sa.func.count())
             .where(events.c.dataset_group_arn == partition, events.c.sent_at >= since,
                    events.c.item_id.is_not(None))
             .group_by(events.c.item_id))
    if until is not None:
        query = query.where(events.c.sent_at < until)
    with engine.connect() as conn:
        return {str(item): int(count) for item, count in conn.execute(query)}


def item_times(engine: sa.Engine, partition: str, since: float, until: float) -> list[tuple[str, float]]:
    """(itemId, sentAt) of the rows with an item and sentAt in [since, until)."""
    query = (sa.select(events.c.item_id, events.c.sent_at)
             .where(events.c.dataset_group_arn == partition, events.c.item_id.is_not(None),
                    events.c.sent_at >= since, events.c.sent_at < until))
    with engine.connect() as conn:
        return [(r.item_id, r.sent_at) for r in conn.execute(query)]


# --- erasure ----------------------------------------------------------------------------------------------

def count(engine: sa.Engine, partition: str) -> int:
    """How many rows a partition holds."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)
                                .where(events.c.dataset_group_arn == partition)).scalar_one())


def erase_partition(engine: sa.Engine, partition: str, batch: int = ERASE_BATCH) -> int:
    """Delete every row of a partition, `batch` rows per transaction (a huge partition never holds the write
    lock or one giant transaction for long); returns how many rows were deleted."""
    doomed = (sa.select(events.c.id).where(events.c.dataset_group_arn == partition)
              .limit(batch).scalar_subquery())
    removed = 0
    while True:
        with engine.begin() as conn:
            deleted = conn.execute(events.delete().where(events.c.id.in_(doomed))).rowcount
        removed += max(deleted, 0)
        if deleted < batch:
            return removed
