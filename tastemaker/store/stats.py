"""Figures the monitoring reads from the metadata store: the job queue's depth and each dataset's size."""

from __future__ import annotations

import sqlalchemy as sa

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
