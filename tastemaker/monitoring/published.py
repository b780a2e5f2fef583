"""Every process's per-minute figures in the metadata store, so the CloudWatch API of one replica answers with
the figures of every replica (several `tastemaker serve` hosts and `tastemaker worker`s on one PostgreSQL).

A daemon thread per process (`start`, called once by tastemaker.monitoring.shared.share) wakes every
`PUBLISH_SECONDS` and writes, in one transaction, the statistic sets (tastemaker.store.metric_points) that
changed since its last publish: only the minutes from shortly before that publish are compared (a series is
only ever updated at the current minute), against the values it last wrote, so an idle process writes nothing
and a busy one writes one row per active series. The rows are absolute values keyed by this process's
`source` (host:pid:token), so a publish that failed is simply redone with the next one and nothing is counted
twice. Every `PRUNE_SECONDS` the thread also deletes the rows older than the retention window
(metrics.RETENTION_MINUTES); any process may do it, and doing it twice is harmless.

The reader (`series`) sums the rows of every other source with this process's live series, so the calls this
process answered are visible at once and the others' after at most one publish interval.
Prometheus' /metrics stays per data directory (tastemaker.monitoring.shared): a scraper asks each host.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tastemaker.config import Settings
from tastemaker.monitoring.metrics import (
    BUCKETS_MS,
    JOB_BUCKETS_S,
    METRICS,
    RETENTION_MINUTES,
    SIZE_BUCKETS,
    Recorder,
    Series,
)
from tastemaker.store import db, metric_points
from tastemaker.store.metric_points import Point

log = logging.getLogger("tastemaker.monitoring")
PUBLISH_SECONDS = 2.0
PRUNE_SECONDS = 600.0
MAX_VALUE = 256  # the store's dimension value column; a longer value (never a valid ARN) is not published
_BUCKETS = {"request": len(BUCKETS_MS), "job": len(JOB_BUCKETS_S), "size": len(SIZE_BUCKETS)}


def retention_start(now: float) -> int:
    """The first minute kept."""
    return (int(now) // 60 - RETENTION_MINUTES) * 60


class Publisher:
    """One process's writer of its series into the metadata store."""

    def __init__(self, engine: sa.Engine, recorder: Recorder = METRICS, source: str | None = None) -> None:
        self.engine = engine
        self.recorder = recorder
        self.source = source or f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pid = os.getpid()
        self._sent: dict[tuple[str, str, str | None, int], tuple[float, ...]] = {}
        self._published_at = 0.0
        self._pruned_at = 0.0
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="metrics-publish", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(PUBLISH_SECONDS):
            try:
                self.publish()
                if time.monotonic() - self._pruned_at >= PRUNE_SECONDS:
                    self._pruned_at = time.monotonic()
                    self.prune()
            except Exception:
                log.warning("metrics: could not publish this process's figures to the metadata store", exc_info=True)

    def changed(self, now: float) -> list[Point]:
        """The statistic sets that differ from what was last written (minutes since the last publish)."""
        since = int(min(self._published_at, now) - 60) // 60 * 60
        points: list[Point] = []
        for series in self.recorder.all_series():
            if series.value is not None and len(series.value) > MAX_VALUE:
                continue
            for minute, window in series.snapshot().items():
                if minute < since:
                    continue
                stats = tuple(window)
                key = (series.kind, series.name, series.value, minute)
                if self._sent.get(key) != stats:
                    points.append(Point(series.kind, series.name, series.dimension, series.value, minute, stats))
        return points

    def publish(self, now: float | None = None) -> int:
        """Write what changed; the rows written."""
        now = time.time() if now is None else now
        points = self.changed(now)
        if points:
            with self.engine.begin() as conn:
                metric_points.publish(conn, self.source, points)
            for p in points:
                self._sent[(p.kind, p.name, p.value, p.minute)] = p.stats
        self._published_at = now
        oldest = int(now - 120) // 60 * 60  # what `changed` will never look at again
        for key in [k for k in self._sent if k[3] < oldest]:
            del self._sent[key]
        return len(points)

    def prune(self, now: float | None = None) -> int:
        with self.engine.begin() as conn:
            return metric_points.prune(conn, retention_start(time.time() if now is None else now))


def series(conn: sa.Connection, since: float, until: float | None = None,
           publisher: Publisher | None = None) -> list[Series]:
    """Every process's series over the minutes in [since, until): the store's rows of every other source
    summed with this process's live series (or with none when this process does not publish)."""
    from tastemaker.monitoring.shared import merged  # the data directory's merge: one definition of the sums

    publisher = publisher if publisher is not None else _publisher()
    first = max(int(since) // 60 * 60, retention_start(time.time()))
    last = None if until is None else int(until)
    stored: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    points = metric_points.totals(conn, first, last, publisher.source if publisher else None)
    for p in points:
        d = stored.get((p.kind, p.name, p.value))
        if d is None:
            d = stored[(p.kind, p.name, p.value)] = {
                "kind": p.kind, "name": p.name, "dimension": p.dimension, "value": p.value, "requests": 0,
                "client_errors": 0, "server_errors": 0, "latency_count": 0, "latency_sum": 0.0,
                "buckets": [0] * (_BUCKETS.get(p.kind, 0) + 1), "minutes": []}
        d["minutes"].append([p.minute, *p.stats])
    own = publisher.recorder.all_series() if publisher is not None else METRICS.all_series()
    return merged(own, [{"series": list(stored.values())}], time.time())


_PUBLISHER: Publisher | None = None
_LOCK = threading.Lock()


def _publisher() -> Publisher | None:
    found = _PUBLISHER
    return found if found is not None and found.pid == os.getpid() else None


def _engine(url: str) -> sa.Engine:
    """The publisher's own engine; on a server database (PostgreSQL) it holds no connection between publishes,
    so each process costs the database a connection for a few milliseconds every PUBLISH_SECONDS at most."""
    if url.startswith("sqlite"):
        return db.create_engine(url)
    return sa.create_engine(url, poolclass=NullPool)


def start(settings: Settings, recorder: Recorder = METRICS) -> Publisher:
    """Start publishing this process's figures to the metadata store of `settings` (once per process)."""
    global _PUBLISHER
    with _LOCK:
        if _PUBLISHER is None or _PUBLISHER.pid != os.getpid():
            _PUBLISHER = Publisher(_engine(settings.resolved_db_url), recorder)
            _PUBLISHER.start()
        return _PUBLISHER
