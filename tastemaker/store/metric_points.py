"""Per-minute metric datapoints in the metadata store, one row per publishing process, so that every replica's
CloudWatch API reads every replica's figures (tastemaker.monitoring.published writes them, .cloudwatch reads).

A row is one process's statistic set for one series (kind, operation or job kind, dimension value) and one
minute: [requests, 4xx, 5xx, latency count, latency sum, latency min, latency max], the columns of
tastemaker.monitoring.metrics.Series.minutes. A process *replaces* its own rows (an upsert of absolute values
keyed by its `source`), never adds to them, so a publish repeated after a failure or a crash between two
publishes never counts anything twice; processes never touch each other's rows, so concurrent publishers take
no lock on a shared row. Readers sum the rows of every source per series and minute (min of minima, max of
maxima over the rows that carry latency figures). The rows of a process that has ended stay until they age
out, so the totals outlive it. `prune` bounds the table to the retention window.

The primary key starts with the minute: both the readers (a time range) and the pruning (everything before a
minute) are range scans of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tastemaker.store.tables import metadata

metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("minute", sa.BigInteger, primary_key=True),  # epoch seconds, a multiple of 60
    sa.Column("kind", sa.String(16), primary_key=True),  # "request", "job", "size"
    sa.Column("name", sa.String(64), primary_key=True),  # the operation or job kind
    sa.Column("value", sa.String(256), primary_key=True),  # the dimension's value; "" when none
    sa.Column("source", sa.String(128), primary_key=True),  # the publishing process: host:pid:token
    sa.Column("dimension", sa.String(64), nullable=False),  # the dimension's name; "" when none
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("client_errors", sa.BigInteger, nullable=False),
    sa.Column("server_errors", sa.BigInteger, nullable=False),
    sa.Column("latency_count", sa.BigInteger, nullable=False),
    sa.Column("latency_sum", sa.Float, nullable=False),
    sa.Column("latency_min", sa.Float, nullable=False),
    sa.Column("latency_max", sa.Float, nullable=False),
)
_STATS = ("requests", "client_errors", "server_errors", "latency_count", "latency_sum", "latency_min",
          "latency_max")


@dataclass(frozen=True)
class Point:
    """One series' statistic set for one minute (from one process, or summed over all of them)."""

    kind: str
    name: str
    dimension: str | None
    value: str | None
    minute: int
    stats: tuple[float, ...]  # requests, 4xx, 5xx, latency count, latency sum, latency min, latency max


def publish(conn: sa.Connection, source: str, points: Iterable[Point]) -> int:
    """Write (insert or replace) `source`'s statistic sets, in the caller's transaction; the rows written."""
    rows = [{"minute": p.minute, "kind": p.kind, "name": p.name, "value": p.value or "", "source": source,
             "dimension": p.dimension or "", **dict(zip(_STATS, p.stats, strict=True))} for p in points]
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(metric_points)
    conn.execute(insert.on_conflict_do_update(
        index_elements=["minute", "kind", "name", "value", "source"],
        set_={column: insert.excluded[column] for column in _STATS}), rows)
    return len(rows)


def totals(conn: sa.Connection, since: int, until: int | None = None, exclude_source: str | None = None) -> list[Point]:
    """Every series' statistic sets per minute in [since, until), summed over the sources (but `exclude_source`)."""
    c = metric_points.c
    has_latency = c.latency_count > 0
    query = (sa.select(c.kind, c.name, c.value, c.minute, sa.func.max(c.dimension),
                       sa.func.sum(c.requests), sa.func.sum(c.client_errors), sa.func.sum(c.server_errors),
                       sa.func.sum(c.latency_count), sa.func.sum(c.latency_sum),
                       sa.func.min(sa.case((has_latency, c.latency_min))),
                       sa.func.max(sa.case((has_latency, c.latency_max))))
             .where(c.minute >= since).group_by(c.kind, c.name, c.value, c.minute))
    if until is not None:
        query = query.where(c.minute < until)
    if exclude_source is not None:
        query = query.where(c.source != exclude_source)
    return [Point(kind, name, dimension or None, value or None, int(minute),
                  (int(n), int(e4), int(e5), int(lc), float(ls or 0.0), float(lo or 0.0), float(hi or 0.0)))
            for kind, name, value, minute, dimension, n, e4, e5, lc, ls, lo, hi in conn.execute(query)]


def prune(conn: sa.Connection, before: int) -> int:
    """Delete every statistic set of a minute before `before`; the rows deleted."""
    return int(conn.execute(metric_points.delete().where(metric_points.c.minute < before)).rowcount or 0)
