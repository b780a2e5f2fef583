"""Group commit for streamed events: concurrent requests share one transaction; each is answered after it commits.

Requests hand their rows to one committer thread per process and get a Future back. The thread takes every
waiting request (up to MAX_ROWS_PER_COMMIT rows), writes them in ONE transaction, commits, and only then
resolves their futures; while it commits, the next requests gather, so under load each commit carries many
requests (the busier the server, the bigger the groups) and an idle server commits a lone request at once.
A request on the event loop (PutEvents runs inline, tastemaker.realtime.inline) awaits its future without
holding a thread; a caller in a thread waits on it (`write`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import sqlalchemy as sa

from tastemaker.store import events

log = logging.getLogger("tastemaker.realtime")
MAX_ROWS_PER_COMMIT = 2000


class _Request:
    __slots__ = ("future", "loop", "params", "rows", "waiter", "want_inserted")

    def __init__(self, params: Any, rows: int, want_inserted: bool,
                 waiter: asyncio.Future[set[str] | None] | None = None) -> None:
        self.params = params  # SQLite: one tuple per row; PostgreSQL: the rows as JSON objects, without brackets
        self.rows = rows
        self.want_inserted = want_inserted
        # A caller on an event loop awaits `waiter` (resolved from the loop, one hand-off per group and loop);
        # a caller in a thread waits on `future`.
        self.waiter = waiter
        self.loop = waiter.get_loop() if waiter is not None else None
        self.future: Future[set[str] | None] | None = None if waiter is not None else Future()


class GroupCommitWriter:
    """One committer thread on a raw DBAPI connection (SQLAlchemy's per-row overhead is most of the cost of a
    10-row insert).

    A request's rows are never split across transactions (a batch is all in or all out), and its future is
    resolved only after the transaction holding its rows has committed. If a shared transaction fails, its
    requests are retried one transaction each, so one bad request cannot fail its neighbours (and a connection
    the server dropped is replaced first). A repeated (group, eventId) is skipped (ON CONFLICT DO NOTHING on
    SQLite and PostgreSQL).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.pending: list[_Request] = []
        self.committing = False
        self.thread: threading.Thread | None = None
        # One connection, used only by the committer thread, kept across commits: no pool checkout and pre-ping
        # round trip per group. On PostgreSQL it runs in autocommit, so a group of plain requests is ONE
        # statement = one round trip and one durable commit.
        self.conn: Any = None
        sa.event.listen(engine, "engine_disposed", self._on_dispose)

    def _on_dispose(self, engine: sa.Engine) -> None:
        """engine.dispose() closes pooled connections, not checked-out ones: close the writer's own too."""
        with self.lock:
            if not self.committing:
                self._drop_connection()

    def submit(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> Future[set[str] | None]:
        """Queue one request's rows; the future resolves (the eventIds inserted when asked, else None) once they
        are committed, or fails with the error that kept them out."""
        request = _Request(self._params(rows), len(rows), want_inserted)
        self._queue(request)
        assert request.future is not None
        return request.future

    def submit_async(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> asyncio.Future[set[str] | None]:
        """submit() for a caller on the running event loop: an asyncio future, resolved on that loop after the
        commit. The committer resolves a whole group's futures of one loop in ONE call_soon_threadsafe (one
        wake-up of the loop), where a concurrent future per request cost a wake-up and a chained callback each."""
        waiter: asyncio.Future[set[str] | None] = asyncio.get_running_loop().create_future()
        self._queue(_Request(self._params(rows), len(rows), want_inserted, waiter))
        return waiter

    def _params(self, rows: Sequence[dict[str, Any]]) -> Any:
        return events.postgres_params(rows) if self.postgres else [events.sqlite_params(r) for r in rows]

    def _queue(self, request: _Request) -> None:
        with self.lock:
            self.pending.append(request)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="tastemaker-events-writer", daemon=True)
                self.thread.start()
            elif not self.committing:
                self.wake.notify()

    def write(self, rows: Sequence[dict[str, Any]], want_inserted: bool) -> set[str] | None:
        """submit() and wait for the commit (for callers in a thread)."""
        return self.submit(rows, want_inserted).result()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.pending:
                    self.committing = False
                    self.wake.wait()
                self.committing = True
                batch, count = [], 0
                while self.pending and count < MAX_ROWS_PER_COMMIT:
                    request = self.pending.pop(0)
                    batch.append(request)
                    count += request.rows
            self._commit_all(batch)

    def _commit_all(self, batch: list[_Request]) -> None:
        results: dict[int, Any] = {}
        try:
            results.update(enumerate(self._commit(batch)))
        except Exception:  # noqa: BLE001 - isolate the failing request below
            if len(batch) > 1:
                log.warning("shared events transaction failed; retrying its %d requests one by one", len(batch))
            for index, request in enumerate(batch):
                try:
                    results[index] = self._commit([request])[0]
                except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                    results[index] = exc
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for index, request in enumerate(batch):
            outcome = results[index]
            if request.future is None:
                assert request.loop is not None and request.waiter is not None
                on_loops.setdefault(request.loop, []).append((request.waiter, outcome))
            elif isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)
        for loop, settled in on_loops.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop was closed meanwhile: nobody waits any more
                log.debug("an event loop closed before %d events requests were answered", len(settled))

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

    def _commit(self, batch: list[_Request]) -> list[set[str] | None]:
        """Commit the batch in one transaction; per request, its inserted eventIds (None unless asked)."""
        raw = self._connection()
        returning = [request for request in batch if request.want_inserted]
        plain = [request.params for request in batch if not request.want_inserted]
        try:
            results = events.insert_requests(raw, self.postgres, plain, [r.params for r in returning])
        except BaseException:
            if not events.usable(raw, self.postgres):
                self._drop_connection()  # a new one next time
            raise
        inserted = dict(zip(map(id, returning), results, strict=True))
        return [inserted.get(id(request)) for request in batch]


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """On the requests' event loop: answer each waiter with its outcome (eventIds or the error)."""
    for waiter, outcome in settled:
        if waiter.done():  # cancelled (the client went away): its rows are committed anyway
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
