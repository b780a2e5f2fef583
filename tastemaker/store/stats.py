"""Figures the monitoring reads from the metadata store: the job queue's depth, each dataset's size, and the
memory each campaign and recommender serves from (recorded at deploy time)."""

from __future__ import annotations

import sqlalchemy as sa

from tastemaker.store import resources
from tastemaker.store.queue import QUEUED, RUNNING
from tastemaker.store.tables import dataset_parts, jobs


def queue_depth(conn: sa.Connection) -> dict[str, int]:
    """Jobs waiting and running, by state."""
    rows = conn.execute(sa.select(jobs.c.state, sa.func.count()).where(jobs.c.state.in_([QUEUED, RUNNING]))
                        .group_by(jobs.c.state)).all()
    depth = {QUEUED: 0, RUNNING: 0}
    depth.update({str(state): int(n) for state, n in rows})
    return depth


def dataset_rows(conn: sa.Connection) -> dict[str, int]:
    """Rows stored per dataset ARN (bulk imports and records put one by one)."""
    rows = conn.execute(sa.select(dataset_parts.c.dataset_arn, sa.func.sum(dataset_parts.c.rows))
                        .group_by(dataset_parts.c.dataset_arn)).all()
    return {str(arn): int(n or 0) for arn, n in rows}


def ping(conn: sa.Connection) -> None:
    """A round trip to the database (the readiness check)."""
    conn.execute(sa.text("SELECT 1")).scalar()


def deployment_bytes(conn: sa.Connection) -> list[tuple[str, str, int, int]]:
    """(ARN, kind, model bytes, index bytes) of every campaign and recommender that recorded serving stats."""
    out = []
    for found in resources.children(conn, kind=("campaign", "recommender")):
        stats = found.body.get("serving_stats") or {}
        if stats:
            out.append((found.arn, found.kind, int(stats.get("model_bytes") or 0), int(stats.get("index_bytes") or 0)))
    return out
