"""Group commit for streamed events: concurrent requests share one transaction; each returns after it commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tastemaker.store import events

log = logging.getLogger("tastemaker.realtime")
MAX_ROWS_PER_COMMIT = 2000


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

    def write(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> set[str] | None:
        params = events.postgres_params(rows) if self.postgres else [events.sqlite_params(r) for r in rows]
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
            self.conn = events.raw_connection(self.engine)
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
        try:
            results = events.insert_requests(raw, self.postgres, plain, [r.params for r in returning])
        except BaseException:
            if not events.usable(raw, self.postgres):
                self._drop_connection()  # a new one next time
            raise
        for request, inserted in zip(returning, results, strict=True):
            request.result = inserted
