"""Group commit for streamed events: concurrent requests share one transaction; each returns after it commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

log = logging.getLogger("tastemaker.realtime")
MAX_ROWS_PER_COMMIT = 2000
COLUMNS = ("dataset_group_arn", "event_id", "session_id", "user_id", "item_id", "event_type", "event_value",
           "sent_at", "record", "received_at")
# PostgreSQL: one statement for the whole group (one binary array per column: text arrays are escaped in Python, binary ones are not), the same text every time so psycopg
# prepares it once; per-row statements (executemany) cost the server a bind/execute each.
_PG_TYPES = ("text", "text", "text", "text", "text", "text", "float8", "float8", "json", "float8")
PG_INSERT_SQL = (f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT * FROM unnest("
                 + ", ".join(f"%b::text[]::{t}[]" if t == "json" else f"%b::{t}[]" for t in _PG_TYPES)
                 + ") ON CONFLICT (dataset_group_arn, event_id) DO NOTHING")


class _Request:
    __slots__ = ("done", "error", "params", "result", "want_inserted")

    def __init__(self, params: list[tuple[Any, ...]], want_inserted: bool) -> None:
        self.params = params
        self.want_inserted = want_inserted
        self.done = threading.Event()
        self.result: set[str] | None = None
        self.error: BaseException | None = None


class GroupCommitWriter:
    """Leader/follower group commit on a raw DBAPI connection (SQLAlchemy's per-row overhead is most of the cost
    of a 10-row insert).

    The first caller that finds no commit in progress becomes the leader: it takes every waiting request, writes
    them in ONE transaction, commits, wakes their callers, and repeats while more are waiting. A request's rows
    are never split across transactions (a batch is all in or all out), and a caller returns only after the
    transaction holding its rows has committed. If a shared transaction fails, its requests are retried one
    transaction each, so one bad request cannot fail its neighbours. A repeated (group, eventId) is skipped
    (ON CONFLICT DO NOTHING, the same statement on SQLite and PostgreSQL).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        marker = "%s" if self.postgres else "?"
        head = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES "
        self.row_sql = "(" + ", ".join([marker] * len(COLUMNS)) + ")"
        self.insert_sql = head + self.row_sql + " ON CONFLICT (dataset_group_arn, event_id) DO NOTHING"
        self.head = head
        self.lock = threading.Lock()
        self.pending: list[_Request] = []
        self.leading = False
        # One connection, used only by the current leader (leadership is exclusive), kept across commits: no
        # pool checkout and pre-ping round trip per group. On PostgreSQL it runs in autocommit, so a group of
        # plain requests is ONE statement = one round trip and one durable commit.
        self.conn: Any = None

    @staticmethod
    def params(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row["event_value"]
        return (row["dataset_group_arn"], row["event_id"], row["session_id"], row["user_id"], row["item_id"],
                row["event_type"], None if value is None else float(value), float(row["sent_at"]),
                orjson.dumps(row["record"]).decode(), float(row["received_at"]))  # floats: one array type each

    def write(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> set[str] | None:
        request = _Request([self.params(r) for r in rows], want_inserted)
        with self.lock:
            self.pending.append(request)
            lead = not self.leading
            if lead:
                self.leading = True
        if lead:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def _lead(self) -> None:
        while True:
            with self.lock:
                batch, count = [], 0
                while self.pending and count < MAX_ROWS_PER_COMMIT:
                    request = self.pending.pop(0)
                    batch.append(request)
                    count += len(request.params)
                if not batch:
                    self.leading = False
                    return
            self._commit_all(batch)

    def _commit_all(self, batch: list[_Request]) -> None:
        try:
            self._commit(batch)
        except Exception:  # noqa: BLE001 - isolate the failing request below
            if len(batch) > 1:
                log.warning("shared events transaction failed; retrying its %d requests one by one", len(batch))
            for request in batch:
                try:
                    self._commit([request])
                except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                    request.error = exc
        for request in batch:
            request.done.set()

    def _connection(self) -> Any:
        if self.conn is None:
            conn = self.engine.raw_connection()
            if self.postgres:
                conn.driver_connection.autocommit = True
            self.conn = conn
        return self.conn

    def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.invalidate()  # closed for good, not returned to the pool in an unknown state
            except Exception as exc:  # noqa: BLE001 - already broken
                log.debug("closing a broken events connection: %s", exc)

    def _commit(self, batch: list[_Request]) -> None:
        raw = self._connection()
        plain = [p for request in batch if not request.want_inserted for p in request.params]
        returning = [request for request in batch if request.want_inserted]
        cursor = raw.cursor()
        try:
            if self.postgres and not returning:
                cursor.execute(PG_INSERT_SQL, _columns(plain))  # autocommit: its own transaction
                return
            cursor.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")  # SQLite: take the write lock now
            if plain and self.postgres:
                cursor.execute(PG_INSERT_SQL, _columns(plain))
            elif plain:
                cursor.executemany(self.insert_sql, plain)
            for request in returning:
                request.result = self._insert_returning(cursor, request.params)
            if self.postgres:
                cursor.execute("COMMIT")
            else:
                raw.commit()
        except BaseException:
            try:
                if not self.postgres:
                    raw.rollback()
                elif raw.driver_connection.info.transaction_status != 0:  # inside the failed BEGIN block
                    cursor.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the connection is unusable: a new one next time
                self._drop_connection()
            if self.postgres and self.conn is not None and raw.driver_connection.closed:
                self._drop_connection()
            raise
        finally:
            cursor.close()

    def _insert_returning(self, cursor: Any, params: list[tuple[Any, ...]]) -> set[str]:
        sql = (self.head + ", ".join([self.row_sql] * len(params))
               + " ON CONFLICT (dataset_group_arn, event_id) DO NOTHING RETURNING event_id")
        cursor.execute(sql, [value for row in params for value in row])
        return {r[0] for r in cursor.fetchall()}



def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows -> one list per column (the unnest arrays)."""
    return [list(column) for column in zip(*rows, strict=True)]
