"""Job leases: ownership by instance and lease (not host:pid), fencing of a stale owner, hand-back, temp sweep."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.errors import JobStopped
from tastemaker.jobs import lease as lease_mod
from tastemaker.jobs.lease import Lease, job_temp_dir, sweep_temp
from tastemaker.jobs.worker import JobRunner, TaskSpec, recover_orphans, run_one
from tastemaker.store import queue, resources
from tastemaker.store.status import Status
from tests.conftest import STORES, store_engine

ARN = "arn:aws:personalize:us-east-1:000000000000:dataset-import-job/x"


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("resources", "jobs"))


def services(engine: sa.Engine, tmp_path: Path, stale: float = 30.0) -> Any:
    settings = SimpleNamespace(job_stale_seconds=stale, data_dir=tmp_path, job_poll_seconds=0.05,
                               maintenance_seconds=3600.0)
    return SimpleNamespace(engine=engine, settings=settings)


def enqueue_import(engine: sa.Engine, max_attempts: int = 2) -> None:
    with engine.begin() as conn:
        resources.insert(conn, arn=ARN, kind="dataset_import_job", body={"name": "x"}, status=Status.CREATE_PENDING)
        queue.enqueue(conn, queue.JobKind.IMPORT, ARN, max_attempts=max_attempts)


def job_row(engine: sa.Engine) -> Any:
    from tastemaker.store.tables import jobs

    with engine.connect() as conn:
        return conn.execute(sa.select(jobs)).one()


def test_a_previous_incarnation_with_the_same_host_and_pid_is_recovered_at_once(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container restart brings the same hostname and PID 1: the dead owner looks like us but is not."""
    enqueue_import(engine)
    job = queue.claim(engine, queue.worker_identity())  # the previous life of this process
    assert job is not None
    assert queue.orphaned(engine, stale_seconds=3600) == []  # still us: nothing to recover
    monkeypatch.setattr(queue, "INSTANCE", uuid.uuid4().hex[:16])  # restarted: same host, same pid
    assert [j.id for j in queue.orphaned(engine, stale_seconds=3600)] == [job.id]


def test_a_live_owner_on_another_host_keeps_its_job_until_its_lease_expires(engine: sa.Engine) -> None:
    enqueue_import(engine)
    job = queue.claim(engine, "another-host:1:abc")
    assert job is not None
    assert queue.orphaned(engine, stale_seconds=3600) == []
    assert [j.id for j in queue.orphaned(engine, stale_seconds=0)] == [job.id]  # expired: anyone may take it


def test_a_stale_owner_can_neither_write_nor_finish(engine: sa.Engine) -> None:
    """Owner A is frozen past its lease; B takes the job. A's heartbeat, writes and finish are refused."""
    enqueue_import(engine)
    a = queue.claim(engine, "host-a:1:a")
    assert a is not None
    [lost] = queue.orphaned(engine, stale_seconds=0)
    with engine.begin() as conn:
        assert queue.requeue(conn, lost)
    b = queue.claim(engine, "host-b:1:b")
    assert b is not None and b.id == a.id and b.lease > a.lease
    with pytest.raises(queue.LeaseLost):
        queue.heartbeat(engine, a)
    with pytest.raises(queue.LeaseLost), queue.fenced(engine, a) as conn:
        resources.update(conn, ARN, status=Status.CREATE_IN_PROGRESS)
    with engine.begin() as conn:
        assert not queue.finish(conn, a)
        assert resources.get(conn, ARN).status == Status.CREATE_PENDING  # A's write was rolled back
    assert queue.heartbeat(engine, b) is False
    with queue.fenced(engine, b) as conn:
        resources.update(conn, ARN, status=Status.CREATE_IN_PROGRESS)
        assert queue.finish(conn, b)
    assert job_row(engine).state == queue.DONE
    with engine.begin() as conn:  # a requeue decided on A's lease does not take the job from B either
        assert not queue.requeue(conn, a)


def test_run_one_of_a_fenced_out_owner_writes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    """The task's writes after losing the lease are refused, and its failure is not recorded either."""
    enqueue_import(engine)
    svc = services(engine, tmp_path)
    a = queue.claim(engine, "host-a:1:a")
    assert a is not None
    taken = threading.Event()

    def task(services: Any, job: queue.Job, should_stop: Lease) -> None:
        with engine.begin() as conn:  # another worker takes the job while this one was frozen
            queue.requeue(conn, job)
        assert queue.claim(engine, "host-b:1:b") is not None
        taken.set()
        from tastemaker.jobs.tasks import set_status

        set_status(services, job, Status.CREATE_IN_PROGRESS)

    run_one(svc, {queue.JobKind.IMPORT: TaskSpec(task)}, a)
    assert taken.is_set()
    row = job_row(engine)
    assert (row.state, row.claimed_by, row.error) == (queue.RUNNING, "host-b:1:b", None)
    with engine.connect() as conn:
        assert resources.get(conn, ARN).status == Status.CREATE_PENDING


def test_a_job_handed_back_on_shutdown_is_requeued_at_once_without_spending_an_attempt(
        engine: sa.Engine, tmp_path: Path) -> None:
    enqueue_import(engine, max_attempts=1)
    started = threading.Event()

    def task(services: Any, job: queue.Job, should_stop: Lease) -> None:
        started.set()
        assert should_stop.leaving.wait(30)
        raise JobStopped()

    runner = JobRunner(services(engine, tmp_path), 1, {queue.JobKind.IMPORT: TaskSpec(task)})
    runner.start()
    assert started.wait(30)
    runner.stop()
    row = job_row(engine)
    assert (row.state, row.attempts, row.claimed_by, row.error) == (queue.QUEUED, 0, None, None)
    with engine.connect() as conn:
        assert resources.get(conn, ARN).status == Status.CREATE_PENDING  # never CREATE FAILED
    again = queue.claim(engine, "w:2:c")
    assert again is not None and again.lease == 2 and again.attempts == 1


def test_temp_folders_of_jobs_that_no_longer_run_are_removed(engine: sa.Engine, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    enqueue_import(engine)
    svc = services(engine, tmp_path, stale=0.0)
    job = queue.claim(engine, "host-a:1:a")
    assert job is not None
    live = job_temp_dir(svc, "import", job)
    (live / "part.parquet").write_bytes(b"x")
    unowned = tmp_path / "tmp" / "tm-put-abc"
    unowned.mkdir()
    other = tmp_path / "tmp" / "keep-me"
    other.mkdir()
    dead = [tmp_path / "tmp" / name for name in ("tm-train-j77.1-x", "tm-rec-j78.3-y", f"tm-import-j{job.id}.0-z")]
    for path in dead:
        path.mkdir()
    assert sorted(sweep_temp(svc)) == sorted(p.name for p in dead)
    assert live.exists() and unowned.exists() and other.exists()
    monkeypatch.setattr(lease_mod, "UNOWNED_TEMP_SECONDS", -1.0)  # a folder of no job, older than the limit
    assert sweep_temp(svc) == ["tm-put-abc"]
    recover_orphans(svc, {})  # the owner stopped renewing: its job is requeued and its folder removed
    assert not live.exists()
