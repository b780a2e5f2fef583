"""Metric attribution storage: the events an attribution has not read yet, its windows, its read position, the
bulk imports it has counted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tastemaker.store.tables import (
    arm_exposures,
    attribution_cursors,
    attribution_windows,
    dataset_parts,
    events,
    metadata,
)

# The bulk imports an attribution has counted (each exactly once: the row and its windows commit together).
attribution_imports = sa.Table(
    "attribution_imports",
    metadata,
    sa.Column("metric_attribution_arn", sa.String(256), primary_key=True),
    sa.Column("import_job_arn", sa.String(256), primary_key=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class AttributableEvent:
    id: int
    event_type: str
    item_id: str | None
    sent_at: float
    received_at: float
    record: dict[str, Any]


@dataclass(frozen=True)
class Window:
    metric_name: str
    source: str
    window_start: int
    event_type: str
    value_sum: float
    sample_count: int


def events_after(conn: sa.Connection, partition: str, after_id: int, limit: int = 5000) -> list[AttributableEvent]:
    """A partition's rows with id > after_id, oldest first (a primary-key range scan)."""
    c = events.c
    query = (sa.select(c.id, c.event_type, c.item_id, c.sent_at, c.received_at, c.record)
             .where(c.dataset_group_arn == partition, c.id > after_id).order_by(c.id).limit(limit))
    return [AttributableEvent(int(r.id), r.event_type, r.item_id, float(r.sent_at), float(r.received_at),
                              r.record if isinstance(r.record, dict) else json.loads(r.record))
            for r in conn.execute(query)]


def cursor(conn: sa.Connection, arn: str) -> int:
    """The last events.id an attribution has read."""
    query = sa.select(attribution_cursors.c.last_event_id).where(attribution_cursors.c.metric_attribution_arn == arn)
    return int(conn.execute(query).scalar() or 0)


def start_at(conn: sa.Connection, arn: str, last_event_id: int) -> None:
    """A new attribution's read position (it counts only events after it)."""
    conn.execute(attribution_cursors.insert().values(metric_attribution_arn=arn, last_event_id=last_event_id))


def advance(conn: sa.Connection, arn: str, read_from: int, last_event_id: int, windows: Iterable[Window]) -> bool:
    """Move the read position from `read_from` to `last_event_id` and add `windows`, in the caller's
    transaction. False (nothing written) when another aggregator moved it first: a compare-and-set on the
    position, so no event is ever counted twice on any database."""
    c = attribution_cursors.c
    moved = conn.execute(attribution_cursors.update()
                         .where(c.metric_attribution_arn == arn, c.last_event_id == read_from)
                         .values(last_event_id=last_event_id))
    if moved.rowcount != 1:
        return False
    _add(conn, arn, windows)
    return True


def counted_imports(conn: sa.Connection, arn: str) -> set[str]:
    t = attribution_imports.c
    return {str(r[0]) for r in conn.execute(sa.select(t.import_job_arn).where(t.metric_attribution_arn == arn))}


def count_import(conn: sa.Connection, arn: str, import_job_arn: str, rows: int, windows: Iterable[Window]) -> bool:
    """Mark a bulk import counted and add its windows, in the caller's transaction; False (nothing written)
    when it was counted already."""
    if import_job_arn in counted_imports(conn, arn):
        return False
    conn.execute(attribution_imports.insert().values(metric_attribution_arn=arn, import_job_arn=import_job_arn,
                                                     rows=rows))
    _add(conn, arn, windows)
    return True


def import_part_keys(conn: sa.Connection, import_job_arn: str) -> list[str]:
    """Blob keys of the Parquet parts one import job added."""
    query = (sa.select(dataset_parts.c.blob_key).where(dataset_parts.c.job_arn == import_job_arn)
             .order_by(dataset_parts.c.id))
    return [str(r[0]) for r in conn.execute(query)]


def _add(conn: sa.Connection, arn: str, windows: Iterable[Window]) -> None:
    t = attribution_windows
    for w in windows:
        key = ((t.c.metric_attribution_arn == arn) & (t.c.metric_name == w.metric_name) & (t.c.source == w.source)
               & (t.c.window_start == w.window_start))
        updated = conn.execute(t.update().where(key).values(value_sum=t.c.value_sum + w.value_sum,
                                                            sample_count=t.c.sample_count + w.sample_count))
        if updated.rowcount == 0:
            conn.execute(t.insert().values(metric_attribution_arn=arn, metric_name=w.metric_name, source=w.source,
                                           window_start=w.window_start, event_type=w.event_type,
                                           value_sum=w.value_sum, sample_count=w.sample_count))


def windows(conn: sa.Connection, arn: str) -> list[Window]:
    t = attribution_windows.c
    query = (sa.select(t.metric_name, t.source, t.window_start, t.event_type, t.value_sum, t.sample_count)
             .where(t.metric_attribution_arn == arn).order_by(t.metric_name, t.source, t.window_start))
    return [Window(r.metric_name, r.source, int(r.window_start), r.event_type, float(r.value_sum),
                   int(r.sample_count)) for r in conn.execute(query)]


def forget(conn: sa.Connection, arn: str, metric_names: Iterable[str] | None = None) -> None:
    """Drop an attribution's windows (all, or those of some metrics) and, for all, its read position."""
    t = attribution_windows.c
    if metric_names is None:
        conn.execute(attribution_windows.delete().where(t.metric_attribution_arn == arn))
        conn.execute(attribution_imports.delete().where(attribution_imports.c.metric_attribution_arn == arn))
        conn.execute(attribution_cursors.delete().where(attribution_cursors.c.metric_attribution_arn == arn))
        return
    conn.execute(attribution_windows.delete().where(t.metric_attribution_arn == arn,
                                                    t.metric_name.in_(list(metric_names))))


def latest_event_id(conn: sa.Connection, partition: str) -> int:
    """The newest events.id of a partition (0 when empty): where a new attribution starts reading."""
    found = conn.execute(sa.select(sa.func.max(events.c.id)).where(events.c.dataset_group_arn == partition)).scalar()
    return int(found or 0)


def add_exposures(conn: sa.Connection, counts: dict[tuple[str, str, int], int]) -> None:
    """Add served counts per (campaign, arm, window start)."""
    t = arm_exposures
    for (campaign, arm, window), served in counts.items():
        key = (t.c.campaign_arn == campaign) & (t.c.arm == arm) & (t.c.window_start == window)
        if conn.execute(t.update().where(key).values(served=t.c.served + served)).rowcount == 0:
            conn.execute(t.insert().values(campaign_arn=campaign, arm=arm, window_start=window, served=served))


def exposures(conn: sa.Connection, campaign_arn: str) -> dict[str, int]:
    """Recommendations served per arm of a campaign, all windows together."""
    t = arm_exposures.c
    query = sa.select(t.arm, sa.func.sum(t.served)).where(t.campaign_arn == campaign_arn).group_by(t.arm)
    return {str(arm): int(total or 0) for arm, total in conn.execute(query)}


def windows_since(conn: sa.Connection, since: float) -> list[tuple[str, Window]]:
    """(attribution ARN, window) of every attribution's windows that start at or after `since`."""
    t = attribution_windows.c
    query = (sa.select(t.metric_attribution_arn, t.metric_name, t.source, t.window_start, t.event_type, t.value_sum,
                       t.sample_count).where(t.window_start >= since)
             .order_by(t.metric_attribution_arn, t.metric_name, t.source, t.window_start))
    return [(r.metric_attribution_arn, Window(r.metric_name, r.source, int(r.window_start), r.event_type,
                                              float(r.value_sum), int(r.sample_count))) for r in conn.execute(query)]


def totals(conn: sa.Connection) -> list[tuple[str, str, str, str, float, int]]:
    """(attribution ARN, metric, event type, source, value sum, sample count) over all windows."""
    t = attribution_windows.c
    query = (sa.select(t.metric_attribution_arn, t.metric_name, t.event_type, t.source, sa.func.sum(t.value_sum),
                       sa.func.sum(t.sample_count))
             .group_by(t.metric_attribution_arn, t.metric_name, t.event_type, t.source))
    return [(str(a), str(m), str(e), str(s), float(v or 0), int(n or 0)) for a, m, e, s, v, n in conn.execute(query)]


def totals_of(conn: sa.Connection, arn: str) -> list[tuple[str, str, str, float, int]]:
    """(metric, event type, source, value sum, sample count) of one attribution over all its windows, summed by
    the database (a range of the primary key: what the console shows, without reading every window)."""
    t = attribution_windows.c
    query = (sa.select(t.metric_name, t.event_type, t.source, sa.func.sum(t.value_sum), sa.func.sum(t.sample_count))
             .where(t.metric_attribution_arn == arn).group_by(t.metric_name, t.event_type, t.source)
             .order_by(t.metric_name, t.event_type, t.source))
    return [(str(m), str(e), str(s), float(v or 0), int(n or 0)) for m, e, s, v, n in conn.execute(query)]


def recent_windows(conn: sa.Connection, arn: str, span: int, bucket: int = 900) -> list[Window]:
    """One attribution's figures over the `span` seconds up to the end of its newest window, summed by the
    database into buckets of `bucket` seconds (a multiple of the 900-second window that divides `span`), oldest
    first: one Window per metric, source and bucket (its window_start the bucket's start; the last bucket ends
    where the newest window ends), so a chart of 30 days reads as many rows as one of an hour per bucket."""
    if bucket % 900 or span % bucket:
        raise ValueError(f"bucket {bucket} must be a multiple of 900 seconds that divides the span {span}")
    t = attribution_windows.c
    newest = conn.execute(sa.select(sa.func.max(t.window_start)).where(t.metric_attribution_arn == arn)).scalar()
    if newest is None:
        return []
    start = int(newest) + 900 - span
    slot = ((t.window_start - start) // bucket).label("slot")
    query = (sa.select(t.metric_name, t.source, slot, t.event_type, sa.func.sum(t.value_sum).label("value_sum"),
                       sa.func.sum(t.sample_count).label("sample_count"))
             .where(t.metric_attribution_arn == arn, t.window_start >= start)
             .group_by(t.metric_name, t.source, slot, t.event_type)
             .order_by(slot, t.metric_name, t.source))
    return [Window(r.metric_name, r.source, start + int(r.slot) * bucket, r.event_type, float(r.value_sum),
                   int(r.sample_count)) for r in conn.execute(query)]
