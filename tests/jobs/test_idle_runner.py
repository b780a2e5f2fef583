"""An idle job runner sends no claims while nothing is queued, and a job enqueued where its wake-up datagram cannot
reach it (another host; here: the host's socket is held by another runner) still starts at once: the store
wakes it (store/wakeups.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.jobs import worker
from tastemaker.jobs.lease import Lease
from tastemaker.jobs.worker import JobRunner, TaskSpec
from tastemaker.store import db, queue, queue_wake
from tests.jobs.test_leases import engine, enqueue_import, services  # noqa: F401 - the engine fixture
from tests.store.test_wakeups import statements, until


def test_an_idle_runner_sends_nothing_and_a_job_from_elsewhere_starts_at_once(
        engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(worker, "IDLE_POLL_SECONDS", 3600.0, raising=False)
    ran = threading.Event()

    def task(services: Any, job: queue.Job, should_stop: Lease) -> None:
        with queue.fenced(services.engine, job) as conn:
            queue.finish(conn, job)
        ran.set()

    holder = queue_wake.listen(engine)  # this host's wake-up socket belongs to another runner
    svc = services(engine, tmp_path)  # job_poll_seconds 0.05: 40 claims a second from two idle threads, before
    runner = JobRunner(svc, 2, {queue.JobKind.IMPORT: TaskSpec(task)})
    other = db.create_engine(engine.url.render_as_string(hide_password=False))  # another replica's
    try:
        runner.start()
        time.sleep(1.0)  # the first claims, and the wake-up every subscriber gets when the store's thread starts
        sent = statements(engine)
        time.sleep(1.0)
        assert [sql for sql in sent if "jobs" in sql] == []
        assert not ran.is_set()
        enqueue_import(other)
        assert until(ran.is_set), "a job enqueued elsewhere waited for the runner's safety poll"
    finally:
        runner.stop()
        other.dispose()
        if holder is not None:
            holder.close()
