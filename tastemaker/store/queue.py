"""The durable job queue in the metadata store: enqueue, claim, leases with fencing, finish, crash recovery.

Ownership is a lease. A claim records the owner (`host:pid:instance`, the instance a random id made once per
process) and a lease generation (`lease`, one more on every claim, never reused); the owner renews the lease
with heartbeats. Anyone may take back a job whose lease expired (no heartbeat for `stale_seconds`), and a
process takes back at once the jobs of a previous incarnation of itself (same host and pid, another instance:
a container restart brings PID 1 again) or of a process on its host that is gone.

Fencing: every write a task makes runs in a transaction that first checks, by an UPDATE of the job row, that
its lease generation still holds (`fenced`); the UPDATE takes the row's write lock, so the check and the
task's writes commit together or not at all, and a requeue or a new claim waits for them. An owner that lost
its lease (frozen past the stale timeout, then woken) gets `LeaseLost` on its next heartbeat or write and can
neither write nor finish the job.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from tastemaker.store import queue_wake
from tastemaker.store.db import read_only
from tastemaker.store.resources import now
from tastemaker.store.tables import jobs
from tastemaker.store.wakeups import notify

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
INSTANCE = uuid.uuid4().hex[:16]  # this process; a restarted process (even with the same pid) gets another


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


class LeaseLost(Exception):
    """The job was taken back from this owner (its lease expired or it was handed back): stop, write nothing."""

    def __init__(self, job_id: int, lease: int) -> None:
        super().__init__(f"job {job_id} lost its lease {lease} to another owner")
        self.job_id, self.lease = job_id, lease


@dataclass
class Job:
    id: int
    kind: str
    resource_arn: str
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    lease: int = 0  # the fencing token: this claim's lease generation
    owner: str = ""


def worker_identity() -> str:
    """host:pid:instance of this process (the instance tells a restarted process from its previous life)."""
    return f"{socket.gethostname()}:{os.getpid()}:{INSTANCE}"


def _job(row: Any) -> Job:
    return Job(row.id, row.kind, row.resource_arn, row.attempts, row.max_attempts, dict(row.payload),
               int(row.lease or 0), row.claimed_by or "")


def enqueue(conn: sa.Connection, kind: JobKind, resource_arn: str, payload: dict[str, Any] | None = None,
            *, max_attempts: int = 2, delay: float = 0.0) -> int:
    """Add a job inside the caller's transaction, so a resource and its job appear together; a runner of this
    host is woken when the transaction ends (store/queue_wake.py), and on PostgreSQL every runner when it
    commits (store/wakeups.py)."""
    ts = now()
    result = conn.execute(jobs.insert().values(
        kind=kind, resource_arn=resource_arn, state=QUEUED, attempts=0, max_attempts=max_attempts,
        payload=payload or {}, run_after=ts + delay, cancel_requested=False, created_at=ts, updated_at=ts, lease=0))
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    queue_wake.mark(conn)  # the runner is woken when this transaction ends, not at its next poll
    notify(conn, "jobs")
    return int(primary_key[0])


def claim(engine: sa.Engine, worker: str, kinds: list[str] | None = None) -> Job | None:
    """Take the oldest runnable job with a new lease; an optimistic update makes two workers never take the same one.

    A runner without store wake-ups claims several times a second and mostly finds nothing: it looks first
    without SQLite's write lock (read_only), so that its polls never make a writer (CreateCampaign, a deploy's
    status write) wait."""
    query = sa.select(jobs).where(jobs.c.state == QUEUED, jobs.c.run_after <= now()).order_by(jobs.c.id).limit(1)
    if kinds:
        query = query.where(jobs.c.kind.in_(kinds))
    with read_only(engine).connect() as conn:
        if conn.execute(query.with_only_columns(jobs.c.id)).first() is None:
            return None
    with engine.begin() as conn:
        row = conn.execute(query).first()
        if row is None:
            return None
        ts = now()
        lease = int(row.lease or 0) + 1
        taken = conn.execute(jobs.update().where(jobs.c.id == row.id, jobs.c.state == QUEUED).values(
            state=RUNNING, claimed_by=worker, heartbeat_at=ts, attempts=row.attempts + 1, lease=lease, updated_at=ts))
        if taken.rowcount != 1:
            return None
        return Job(row.id, row.kind, row.resource_arn, row.attempts + 1, row.max_attempts, dict(row.payload),
                   lease, worker)


def next_run(engine: sa.Engine) -> float | None:
    """When the earliest queued job may run (epoch seconds; None when nothing is queued): an idle runner with
    store wake-ups sleeps until then rather than polling."""
    with read_only(engine).connect() as conn:
        found = conn.execute(sa.select(sa.func.min(jobs.c.run_after)).where(jobs.c.state == QUEUED)).scalar()
    return None if found is None else float(found)


def _held(job: Job) -> Any:
    return sa.and_(jobs.c.id == job.id, jobs.c.lease == job.lease, jobs.c.state == RUNNING)


def hold(conn: sa.Connection, job: Job) -> None:
    """Renew the lease inside the caller's transaction, or raise LeaseLost; the row stays locked until commit."""
    if conn.execute(jobs.update().where(_held(job)).values(heartbeat_at=now())).rowcount != 1:
        raise LeaseLost(job.id, job.lease)


@contextmanager
def fenced(engine: sa.Engine, job: Job) -> Iterator[sa.Connection]:
    """A write transaction that commits only while the job's lease holds (LeaseLost otherwise)."""
    with engine.begin() as conn:
        hold(conn, job)
        yield conn


def heartbeat(engine: sa.Engine, job: Job) -> bool:
    """Renew the lease; True when a stop has been requested. LeaseLost when the job is no longer ours."""
    with fenced(engine, job) as conn:
        flag = conn.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job.id)).scalar()
    return bool(flag)


def request_cancel(conn: sa.Connection, resource_arn: str) -> None:
    conn.execute(jobs.update().where(jobs.c.resource_arn == resource_arn, jobs.c.state.in_([QUEUED, RUNNING]))
                 .values(cancel_requested=True, updated_at=now()))


def finish(conn: sa.Connection, job: Job, *, error: str | None = None) -> bool:
    """End the job (done, or failed with its error) if its lease still holds; False when it does not."""
    return conn.execute(jobs.update().where(_held(job)).values(
        state=FAILED if error else DONE, error=error, updated_at=now())).rowcount == 1


def requeue(conn: sa.Connection, job: Job, *, delay: float = 0.0, count_attempt: bool = True) -> bool:
    """Put a running job back in the queue if this lease still holds it (False when another took it meanwhile).

    `count_attempt=False` hands a job back without spending one of its attempts (a graceful shutdown).
    """
    values: dict[str, Any] = {"state": QUEUED, "claimed_by": None, "run_after": now() + delay, "updated_at": now()}
    if not count_attempt:
        values["attempts"] = sa.func.max(jobs.c.attempts - 1, 0) if conn.dialect.name == "sqlite" \
            else sa.func.greatest(jobs.c.attempts - 1, 0)
    if conn.execute(jobs.update().where(_held(job)).values(**values)).rowcount != 1:
        return False
    notify(conn, "jobs")  # runnable again: wake the runners (store/wakeups.py)
    return True


def _gone(identity: str | None) -> bool:
    """Whether the owner is known to be dead: a previous incarnation of this process (same host and pid,
    another instance) or a process of this host whose pid has no process. Other hosts: unknown (lease only)."""
    if not identity:
        return True
    parts = identity.split(":")
    if len(parts) < 2:
        return True
    host, pid_text = parts[0], parts[1]
    instance = parts[2] if len(parts) > 2 else ""
    if host != socket.gethostname():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if pid == os.getpid():
        return instance != INSTANCE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def orphaned(engine: sa.Engine, stale_seconds: float) -> list[Job]:
    """Running jobs that anyone may take back: the lease expired, or the owner is known to be dead."""
    cutoff = now() - stale_seconds
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs).where(jobs.c.state == RUNNING)).all()
    return [_job(row) for row in rows if (row.heartbeat_at or 0) <= cutoff or _gone(row.claimed_by)]


def running_leases(engine: sa.Engine) -> set[tuple[int, int]]:
    """(job id, lease) of every running job: what temp folders may still belong to."""
    with engine.connect() as conn:
        return {(int(r.id), int(r.lease or 0)) for r in conn.execute(
            sa.select(jobs.c.id, jobs.c.lease).where(jobs.c.state == RUNNING))}
