"""Job runner threads: claim jobs, keep their heartbeat, run the task, record the outcome, recover orphans."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tastemaker.control.campaigns import reconcile_followers
from tastemaker.errors import JobFailed, JobStopped
from tastemaker.jobs.attribution import aggregate_all
from tastemaker.jobs.autotrain import run_due_trainings
from tastemaker.services import Services
from tastemaker.store import queue, resources
from tastemaker.store.status import Status, allowed

log = logging.getLogger("tastemaker.jobs")


TaskFn = Callable[[Services, queue.Job, Callable[[], bool]], None]


@dataclass(frozen=True)
class TaskSpec:
    """How a job kind runs: its function, the status a failure leaves, and the status a stop request leaves.

    Jobs that apply a latest*Update record (`update_record`) fail on that record: the resource keeps its status.
    """

    run: TaskFn
    failed_status: Status = Status.CREATE_FAILED
    stopped_status: Status | None = None
    update_record: str | None = None


Tasks = Mapping[str, TaskSpec]


def mark_failed(services: Services, tasks: Tasks, job: queue.Job, reason: str) -> None:
    """Finish the job with its error and record the failure on its resource (status and failureReason).

    A failure status the transition table does not allow from where the resource is (a crash at an odd
    moment) is logged and only failureReason is written: the job must end either way.
    """
    spec = tasks.get(job.kind)
    with services.engine.begin() as conn:
        queue.finish(conn, job.id, error=reason)
        res = resources.find(conn, job.resource_arn)
        if res is None:
            return
        if spec is not None and spec.update_record:
            record = dict(res.body.get(spec.update_record) or {})
            record.update(status=Status.CREATE_FAILED, failure_reason=reason[:1000],
                          last_updated_date_time=resources.now())
            resources.update(conn, job.resource_arn, changes={spec.update_record: record})
            return
        target = spec.failed_status if spec else Status.CREATE_FAILED
        keep = not allowed(res.kind, res.status, target)
        if keep:
            log.error("job %s (%s) failed while %s is %s; leaving that status (%s is no allowed move)",
                      job.id, job.kind, job.resource_arn, res.status, target)
        resources.update(conn, job.resource_arn, status=None if keep else target,
                         changes={"failure_reason": reason[:1000]})


def run_one(services: Services, tasks: Tasks, job: queue.Job) -> None:
    """Run a claimed job to its end, with a heartbeat thread that also carries stop requests."""
    spec = tasks.get(job.kind)
    if spec is None:
        mark_failed(services, tasks, job, f"No task is registered for job kind {job.kind}.")
        return
    stop = threading.Event()
    cancel = threading.Event()

    def beat() -> None:
        while not stop.wait(max(1.0, services.settings.job_stale_seconds / 5)):
            try:
                if queue.heartbeat(services.engine, job.id):
                    cancel.set()
            except Exception:
                log.exception("heartbeat failed for job %s", job.id)

    beater = threading.Thread(target=beat, name=f"beat-{job.id}", daemon=True)
    beater.start()
    try:
        spec.run(services, job, cancel.is_set)
        with services.engine.begin() as conn:
            queue.finish(conn, job.id)
    except JobStopped:
        with services.engine.begin() as conn:
            queue.finish(conn, job.id)
            if spec.stopped_status and resources.find(conn, job.resource_arn):
                resources.update(conn, job.resource_arn, status=spec.stopped_status)
    except JobFailed as exc:
        mark_failed(services, tasks, job, exc.reason)
    except Exception as exc:  # noqa: BLE001 - every crash must end the resource, never leave it running
        log.error("job %s (%s) crashed:\n%s", job.id, job.kind, traceback.format_exc())
        mark_failed(services, tasks, job, f"Internal error: {type(exc).__name__}: {exc}")
    finally:
        stop.set()


def recover_orphans(services: Services, tasks: Tasks) -> int:
    """Requeue (or fail, after max attempts) jobs whose worker died; returns how many were handled."""
    lost = queue.orphaned(services.engine, services.settings.job_stale_seconds)
    for job in lost:
        if job.attempts < job.max_attempts:
            with services.engine.begin() as conn:
                queue.requeue(conn, job.id)
            log.warning("requeued job %s (%s) after its worker died", job.id, job.kind)
        else:
            mark_failed(services, tasks, job, f"The job was interrupted {job.attempts} times (its worker process died "
                                       "or stopped responding); giving up. Start a new one.")
    return len(lost)


class JobRunner:
    """Worker threads inside one process (`serve` embeds one; `tastemaker worker` runs one alone)."""

    def __init__(self, services: Services, threads: int, tasks: Tasks) -> None:
        self.services = services
        self.tasks = tasks
        self.threads = threads
        self.identity = queue.worker_identity()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []

    def start(self) -> None:
        recover_orphans(self.services, self.tasks)
        for index in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"job-worker-{index}", daemon=True)
            thread.start()
            self._pool.append(thread)
        for name, loop in (("job-sweeper", self._sweep), ("job-maintenance", self._maintain)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._pool.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._pool:
            thread.join(timeout)

    def _loop(self) -> None:
        poll = self.services.settings.job_poll_seconds
        while not self._stop.is_set():
            try:
                job = queue.claim(self.services.engine, self.identity)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._stop.wait(poll)
                continue
            run_one(self.services, self.tasks, job)

    def _sweep(self) -> None:
        while not self._stop.wait(max(1.0, self.services.settings.job_stale_seconds / 2)):
            try:
                recover_orphans(self.services, self.tasks)
            except Exception:
                log.exception("orphan recovery failed")

    def _maintain(self) -> None:
        """Schedules: automatic trainings that are due, campaigns behind the $LATEST they follow."""
        while not self._stop.wait(self.services.settings.maintenance_seconds):
            for step in (run_due_trainings, reconcile_followers, aggregate_all):
                try:
                    step(self.services)
                except Exception:
                    log.exception("maintenance step %s failed", step.__name__)
