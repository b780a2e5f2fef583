"""The one job-task registry covers every job kind the queue can carry, and nothing else."""

from __future__ import annotations

from tastemaker.cli.job_tasks import TASKS
from tastemaker.store.queue import JobKind


def test_every_job_kind_has_exactly_one_task() -> None:
    assert set(TASKS) == set(JobKind)
    assert all(callable(spec.run) for spec in TASKS.values())
