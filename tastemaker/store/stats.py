"""Figures the monitoring reads from the metadata store: the job queue's depth, each dataset's size, the
memory each campaign and recommender serves from (recorded at deploy time), and the progress that running batch
jobs record (tastemaker.monitoring.progress)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.store import resources
from tastemaker.store.queue import QUEUED, RUNNING
from tastemaker.store.status import BUSY
from tastemaker.store.tables import dataset_parts, jobs

BATCH_KINDS = ("batch_inference_job", "batch_segment_job")  # the jobs that record progress


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


def batch_progress(conn: sa.Connection) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(ARN, kind, status, recorded progress) of every batch inference and segment job pending or in progress."""
    return [(found.arn, found.kind, str(found.status), dict(found.body.get("progress") or {}))
            for found in resources.children(conn, kind=BATCH_KINDS, statuses=BUSY)]


def active_jobs(conn: sa.Connection) -> list[dict[str, Any]]:
    """The queue's jobs that are queued or running, oldest first: id, kind, resource ARN, state, attempts,
    owner (host:pid:instance of the claim) and the last heartbeat."""
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.kind, jobs.c.resource_arn, jobs.c.state, jobs.c.attempts,
                                  jobs.c.claimed_by, jobs.c.heartbeat_at)
                        .where(jobs.c.state.in_([QUEUED, RUNNING])).order_by(jobs.c.id)).all()
    return [{str(key): value for key, value in row._asdict().items()} for row in rows]
