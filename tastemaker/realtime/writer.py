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

    @staticmethod
    def params(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(orjson.dumps(row[c]).decode() if c == "record" else row[c] for c in COLUMNS)

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

    def _commit(self, batch: list[_Request]) -> None:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                if not self.postgres:
                    cursor.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
                plain = [p for request in batch if not request.want_inserted for p in request.params]
                if plain:
                    cursor.executemany(self.insert_sql, plain)
                for request in batch:
                    if request.want_inserted:
                        request.result = self._insert_returning(cursor, request.params)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
        finally:
            raw.close()

    def _insert_returning(self, cursor: Any, params: list[tuple[Any, ...]]) -> set[str]:
        sql = (self.head + ", ".join([self.row_sql] * len(params))
               + " ON CONFLICT (dataset_group_arn, event_id) DO NOTHING RETURNING event_id")
        cursor.execute(sql, [value for row in params for value in row])
        return {r[0] for r in cursor.fetchall()}
