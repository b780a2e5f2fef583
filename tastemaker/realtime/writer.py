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
# PostgreSQL: one statement for the whole group, always the same text (psycopg prepares it once), with the rows
# as ONE JSON array parameter. Each request serializes its own rows (orjson, in the caller's thread); the leader
# only joins the pieces. executemany would cost a bind/execute per row, and psycopg dumps array parameters
# element by element in Python, on the leader's serial path.
_PG_KEYS = ("g", "e", "s", "u", "i", "t", "v", "a", "r", "c")  # COLUMNS, in order
PG_INSERT_SQL = (f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT {', '.join(_PG_KEYS)} FROM json_to_recordset("
                 "%s::json) AS x(g text, e text, s text, u text, i text, t text, v float8, a float8, r json, "
                 "c float8) ON CONFLICT (dataset_group_arn, event_id) DO NOTHING")

class _Request:
    __slots__ = ("done", "error", "params", "result", "rows", "want_inserted")

    def __init__(self, params: Any, rows: int, want_inserted: bool) -> None:
        self.params = params  # SQLite: one tuple per row; PostgreSQL: the rows as JSON objects, without brackets
        self.rows = rows
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
    transaction each, so one bad request cannot fail its neighbours (and a connection the server dropped is
    replaced first). A repeated (group, eventId) is skipped (ON CONFLICT DO NOTHING on SQLite and PostgreSQL).
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
        sa.event.listen(engine, "engine_disposed", self._on_dispose)

    def _on_dispose(self, engine: sa.Engine) -> None:
        """engine.dispose() closes pooled connections, not checked-out ones: close the writer's own too."""
        with self.lock:
            if not self.leading:
                self._drop_connection()

    @staticmethod
    def params(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(orjson.dumps(row[c]).decode() if c == "record" else row[c] for c in COLUMNS)

    @staticmethod
    def json_rows(rows: Sequence[dict[str, Any]]) -> bytes:
        out = []
        for row in rows:
            value = row["event_value"]
            out.append({"g": row["dataset_group_arn"], "e": row["event_id"], "s": row["session_id"],
                        "u": row["user_id"], "i": row["item_id"], "t": row["event_type"],
                        "v": None if value is None else float(value), "a": float(row["sent_at"]),
                        "r": row["record"], "c": float(row["received_at"])})
        return orjson.dumps(out)[1:-1]

    def write(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> set[str] | None:
        params = self.json_rows(rows) if self.postgres else [self.params(r) for r in rows]
        request = _Request(params, len(rows), want_inserted)
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
                    count += request.rows
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
        returning = [request for request in batch if request.want_inserted]
        plain = [request.params for request in batch if not request.want_inserted]
        cursor = raw.cursor()
        try:
            if self.postgres and not returning:
                cursor.execute(PG_INSERT_SQL, (_json_array(plain),))  # autocommit: its own transaction
                return
            cursor.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")  # SQLite: take the write lock now
            if plain and self.postgres:
                cursor.execute(PG_INSERT_SQL, (_json_array(plain),))
            elif plain:
                cursor.executemany(self.insert_sql, [row for rows in plain for row in rows])
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

    def _insert_returning(self, cursor: Any, params: Any) -> set[str]:
        if self.postgres:
            cursor.execute(PG_INSERT_SQL + " RETURNING event_id", (_json_array([params]),))
        else:
            sql = (self.head + ", ".join([self.row_sql] * len(params))
                   + " ON CONFLICT (dataset_group_arn, event_id) DO NOTHING RETURNING event_id")
            cursor.execute(sql, [value for row in params for value in row])
        return {r[0] for r in cursor.fetchall()}


def _json_array(pieces: list[bytes]) -> str:
    """Requests' JSON rows -> one JSON array (the parameter of PG_INSERT_SQL)."""
    return (b"[" + b",".join(p for p in pieces if p) + b"]").decode()
