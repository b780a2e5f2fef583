"""Wake-ups from the metadata store: a background loop learns that another connection committed a change it cares
about without polling tables, so an idle process issues (almost) no queries.

Channels: "changes" (a campaign, recommender, filter or event tracker: store/changes.py bumps), "jobs" (a job
enqueued or requeued: store/queue.py) and "keys" (an access key: store/access_keys.py). A writer calls `notify`
inside its transaction; a loop calls `wakeups(engine).subscribe(channel, callback)` and waits for the callback.
Callbacks run on the wake-up thread and must only set an event or notify a condition.

PostgreSQL: `notify` is a NOTIFY in the writer's transaction (sent at commit, never for a rollback; repeats in one
transaction are folded), and each process LISTENs on one dedicated connection per database, read by one daemon
thread. A notification sent while that connection is down is lost: the thread reconnects (backing off) and then
calls every subscriber, which re-read as if notified. It also sends `SELECT 1` every LIVENESS_SECONDS, so a
connection that died silently is noticed. A notification arrives shortly *after* its commit, so it never proves
that nothing changed up to now: loops that need that (the change watch's freshness) still read.

SQLite: no NOTIFY. One kept connection that never writes reads `PRAGMA data_version`, which moves whenever another
connection, in any process, committed to the file (a read of SQLite's shared memory: no table, no write lock).
The thread reads it every SQLITE_POLL_SECONDS and, when it moved, calls the subscribers of every channel (it
cannot tell them apart). `version()` reads it synchronously: an unchanged version proves that nothing was
committed since the last read, which the change watch uses to stay fresh without a query.

`live` is False while no wake-up can be trusted (PostgreSQL listener down, in-memory SQLite, another dialect):
loops then poll at their old pace; every change of `live` calls all subscribers, so waiting loops notice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("tastemaker.store")
CHANNELS = ("changes", "jobs", "keys")
SQLITE_POLL_SECONDS = 0.1  # how often the SQLite thread reads data_version (a few microseconds each)
LIVENESS_SECONDS = 30.0  # the PostgreSQL listener's SELECT 1 while no notification comes
RECONNECT_SECONDS = (0.5, 10.0)  # the PostgreSQL listener's first and longest wait before reconnecting
_LISTEN_TICK = 1.0  # how often the PostgreSQL thread checks for close() between notifications


def notify(conn: sa.Connection, channel: str) -> None:
    """Wake every process's subscribers of `channel` when this transaction commits (PostgreSQL; on SQLite the
    commit itself is the signal)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"NOTIFY tastemaker_{channel}"))


class Wakeups:
    """One process's wake-ups for one database (see the module doc); get it with `wakeups(engine)`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.live = False
        self._engine = engine
        self._subscribers: dict[str, list[Callable[[], None]]] = {channel: [] for channel in CHANNELS}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kept: sqlite3.Connection | None = None
        self._kept_lock = threading.Lock()
        self._sqlite = engine.dialect.name == "sqlite" and _file_backed(engine)
        self._postgres = engine.dialect.name == "postgresql"

    def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """Call `callback` (quick, thread-safe) after a change on `channel`; starts the thread on first use."""
        with self._lock:
            self._subscribers[channel].append(callback)
            if self._thread is None and (self._sqlite or self._postgres) and not self._stop.is_set():
                target = self._run_sqlite if self._sqlite else self._run_postgres
                self._thread = threading.Thread(target=target, name="store-wakeups", daemon=True)
                self._thread.start()

    def version(self) -> int | None:
        """SQLite's data_version now (changes with every commit of another connection); None elsewhere."""
        if not self._sqlite or self._stop.is_set():
            return None
        with self._kept_lock:
            if self._kept is None:
                args, params = self._engine.dialect.create_connect_args(self._engine.url)
                params.update(check_same_thread=False, isolation_level=None, timeout=30)
                self._kept = sqlite3.connect(*args, **params)  # type: ignore[call-overload]
            return int(self._kept.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Stop (the engine was disposed): subscribers are told, and poll at their old pace from then on."""
        self._stop.set()
        self._set_live(False)
        with self._kept_lock:
            if self._kept is not None:
                self._kept.close()
                self._kept = None

    def _fire(self, channels: tuple[str, ...] = CHANNELS) -> None:
        with self._lock:
            callbacks = [callback for channel in channels for callback in self._subscribers[channel]]
        for callback in dict.fromkeys(callbacks):
            try:
                callback()
            except Exception:
                log.exception("a store wake-up subscriber failed")

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self._fire()  # loops waiting at the other pace re-read, and recompute how long to wait

    def _run_sqlite(self) -> None:
        last: int | None = None
        while not self._stop.is_set():
            if last is not None:
                time.sleep(SQLITE_POLL_SECONDS)  # (cheaper than an Event's timed wait; close() is rare)
            try:
                now = self.version()
            except sqlite3.Error:
                log.warning("store wake-ups: could not read SQLite's data_version; loops poll meanwhile",
                            exc_info=True)
                self._set_live(False)
                self._stop.wait(RECONNECT_SECONDS[1])
                continue
            if now is None:  # closed
                return
            if not self.live:
                self._set_live(True)
            elif now != last:
                self._fire()
            last = now

    def _run_postgres(self) -> None:
        import psycopg

        wait = RECONNECT_SECONDS[0]
        while not self._stop.is_set():
            try:
                args, params = self._engine.dialect.create_connect_args(self._engine.url)
                with psycopg.connect(*args, **params, autocommit=True) as conn:
                    for channel in CHANNELS:
                        conn.execute(f"LISTEN tastemaker_{channel}")  # type: ignore[arg-type]
                    self._set_live(True)  # (calls every subscriber: what was sent while not listening is re-read)
                    wait = RECONNECT_SECONDS[0]
                    self._listen(conn)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect, and let the loops poll meanwhile
                if not self._stop.is_set():
                    log.warning("store wake-ups: the LISTEN connection failed (%s); loops poll until it is back",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            self._set_live(False)
            self._stop.wait(wait)
            wait = min(wait * 2, RECONNECT_SECONDS[1])

    def _listen(self, conn: Any) -> None:
        checked = time.monotonic()
        prefix = len("tastemaker_")
        while not self._stop.is_set():
            for note in conn.notifies(timeout=_LISTEN_TICK):  # each as it arrives (the loop ends at the tick)
                channel = note.channel[prefix:]
                if channel in CHANNELS:
                    self._fire((channel,))
                checked = time.monotonic()
            if time.monotonic() - checked >= LIVENESS_SECONDS:
                conn.execute("SELECT 1")
                checked = time.monotonic()


def _file_backed(engine: sa.Engine) -> bool:
    database = engine.url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in database


_registry: dict[Any, Wakeups] = {}
_registry_lock = threading.Lock()


def wakeups(engine: sa.Engine) -> Wakeups:
    """This process's wake-ups for the engine's database (one per engine, until the engine is disposed)."""
    engine = getattr(engine, "_proxied", engine)  # an execution_options() copy: the engine it was made from
    with _registry_lock:
        found = _registry.get(engine)
        if found is None:
            found = _registry[engine] = Wakeups(engine)
            sa.event.listen(engine, "engine_disposed", _disposed)
        return found


def _disposed(engine: sa.Engine) -> None:
    with _registry_lock:
        found = _registry.pop(engine, None)
    if found is not None:
        found.close()
