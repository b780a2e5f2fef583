"""The durable job queue in the metadata store: enqueue, claim, heartbeat, finish, crash recovery."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from tastemaker.store.resources import now
from tastemaker.store.tables import jobs

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class JobKind(StrEnum):
    """What a job does; each kind has one task in the registry (tastemaker.cli.job_tasks)."""

    ACTIVATE = "activate"  # resources with nothing to build
    DELETE = "delete"
    IMPORT = "import"
    TRAIN = "train"
    CAMPAIGN_DEPLOY = "campaign_deploy"
    CAMPAIGN_UPDATE = "campaign_update"
    RECOMMENDER_TRAIN = "recommender_train"
    RECOMMENDER_UPDATE = "recommender_update"
    RECOMMENDER_STOP = "recommender_stop"
    RECOMMENDER_START = "recommender_start"
    RECOMMENDER_DELETE = "recommender_delete"
    BATCH_INFERENCE = "batch_inference"
    BATCH_SEGMENT = "batch_segment"
    DATASET_EXPORT = "dataset_export"
    DATA_DELETION = "data_deletion"


@dataclass
class Job:
    id: int
    kind: str
    resource_arn: str
    attempts: int
    max_attempts: int
    payload: dict[str, Any]


def worker_identity() -> str:
    """host:pid — lets a restarted server recover its own dead jobs without waiting for staleness."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(conn: sa.Connection, kind: JobKind, resource_arn: str, payload: dict[str, Any] | None = None,
            *, max_attempts: int = 2, delay: float = 0.0) -> int:
    """Add a job inside the caller's transaction, so a resource and its job appear together."""
    ts = now()
    result = conn.execute(jobs.insert().values(
        kind=kind, resource_arn=resource_arn, state=QUEUED, attempts=0, max_attempts=max_attempts,
        payload=payload or {}, run_after=ts + delay, cancel_requested=False, created_at=ts, updated_at=ts))
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    return int(primary_key[0])


def claim(engine: sa.Engine, worker: str, kinds: list[str] | None = None) -> Job | None:
    """Take the oldest runnable job; an optimistic update makes two workers never take the same one."""
    with engine.begin() as conn:
        query = (sa.select(jobs).where(jobs.c.state == QUEUED, jobs.c.run_after <= now())
                 .order_by(jobs.c.id).limit(1))
        if kinds:
            query = query.where(jobs.c.kind.in_(kinds))
        row = conn.execute(query).first()
        if row is None:
            return None
        ts = now()
        taken = conn.execute(jobs.update().where(jobs.c.id == row.id, jobs.c.state == QUEUED).values(
            state=RUNNING, claimed_by=worker, heartbeat_at=ts, attempts=row.attempts + 1, updated_at=ts))
        if taken.rowcount != 1:
            return None
        return Job(row.id, row.kind, row.resource_arn, row.attempts + 1, row.max_attempts, dict(row.payload))


def heartbeat(engine: sa.Engine, job_id: int) -> bool:
    """Refresh the job's heartbeat; returns True when a stop has been requested."""
    with engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(heartbeat_at=now()))
        flag = conn.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar()
    return bool(flag)


def request_cancel(conn: sa.Connection, resource_arn: str) -> None:
    conn.execute(jobs.update().where(jobs.c.resource_arn == resource_arn, jobs.c.state.in_([QUEUED, RUNNING]))
                 .values(cancel_requested=True, updated_at=now()))


def finish(conn: sa.Connection, job_id: int, *, error: str | None = None) -> None:
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(
        state=FAILED if error else DONE, error=error, updated_at=now()))


def requeue(conn: sa.Connection, job_id: int, *, delay: float = 0.0) -> None:
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(
        state=QUEUED, claimed_by=None, run_after=now() + delay, updated_at=now()))


def _alive(identity: str | None) -> bool:
    """Whether a worker identity on this host still runs (other hosts: unknown, assume alive)."""
    if not identity or ":" not in identity:
        return False
    host, _, pid = identity.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def orphaned(engine: sa.Engine, stale_seconds: float) -> list[Job]:
    """Running jobs whose worker died (same host, pid gone) or stopped heart-beating."""
    cutoff = now() - stale_seconds
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs).where(jobs.c.state == RUNNING)).all()
    lost = []
    for row in rows:
        dead = not _alive(row.claimed_by) or (row.heartbeat_at or 0) < cutoff
        if dead and row.claimed_by != worker_identity():
            lost.append(Job(row.id, row.kind, row.resource_arn, row.attempts, row.max_attempts, dict(row.payload)))
    return lost

