"""An enqueue wakes the runner of its database when its transaction ends, not at the runner's next poll."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.jobs.lease import Lease
from tastemaker.jobs.worker import JobRunner, TaskSpec
from tastemaker.store import queue, queue_wake
from tests.jobs.test_leases import engine, enqueue_import, services  # noqa: F401 - the engine fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract Unix sockets: Linux only")


def test_the_wake_up_is_sent_after_the_commit_not_before(engine: sa.Engine) -> None:  # noqa: F811
    listener = queue_wake.listen(engine)
    assert listener is not None
    try:
        assert queue_wake.listen(engine) is None  # one runner per database and host binds the name
        listener.sock.setblocking(False)
        with engine.begin() as conn:
            queue.enqueue(conn, queue.JobKind.IMPORT, "arn:aws:personalize:us-east-1:000000000000:x/y")
            with pytest.raises(BlockingIOError):
                listener.sock.recv(64)  # still inside the transaction: the job is not visible yet
        assert listener.sock.recv(64) == b"j"
        with engine.connect() as conn:  # a transaction without an enqueue sends nothing
            conn.execute(sa.text("SELECT 1"))
        with pytest.raises(BlockingIOError):
            listener.sock.recv(64)
    finally:
        listener.close()


def test_a_runner_that_would_poll_once_an_hour_runs_a_new_job_at_once(engine: sa.Engine,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    ran = threading.Event()

    def task(services: Any, job: queue.Job, should_stop: Lease) -> None:
        with queue.fenced(services.engine, job) as conn:
            queue.finish(conn, job)
        ran.set()

    svc = services(engine, tmp_path)
    svc.settings.job_poll_seconds = 3600.0
    runner = JobRunner(svc, 1, {queue.JobKind.IMPORT: TaskSpec(task)})
    runner.start()
    try:
        assert not ran.wait(0.3)  # nothing queued: the worker sleeps (its first claim found nothing)
        enqueue_import(engine)
        assert ran.wait(60), "the enqueue did not wake the runner (it would have waited for its hourly poll)"
    finally:
        runner.stop()


def test_a_runner_runs_each_tasks_warm_up_once_in_the_background(engine: sa.Engine, tmp_path: Path) -> None:  # noqa: F811
    warmed: list[Any] = []
    done = threading.Event()

    def warm(services: Any) -> None:
        warmed.append(services)
        done.set()

    def task(services: Any, job: queue.Job, should_stop: Lease) -> None:
        raise AssertionError("no job is queued")

    svc = services(engine, tmp_path)
    runner = JobRunner(svc, 1, {queue.JobKind.IMPORT: TaskSpec(task, warm=warm),
                                queue.JobKind.TRAIN: TaskSpec(task, warm=warm)})
    runner.start()
    try:
        assert done.wait(60)
    finally:
        runner.stop()
    assert warmed == [svc]  # one call although two task kinds name the same warm-up
