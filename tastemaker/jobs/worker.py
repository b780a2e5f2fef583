"""Job runner threads: claim jobs, keep their lease, run the task, record the outcome, recover orphans.

Every outcome is written under the job's lease (store/queue.py): an owner that lost its job writes nothing. A
runner that stops (SIGINT/SIGTERM) hands its running jobs back at once: their tasks are told to leave (the
training subprocess is killed) and the jobs are requeued without spending an attempt, never failed.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import sqlalchemy as sa

from tastemaker.control.campaigns import reconcile_followers
from tastemaker.errors import JobFailed, JobStopped
from tastemaker.jobs.attribution import aggregate_all
from tastemaker.jobs.autotrain import run_due_trainings
from tastemaker.jobs.lease import Lease, sweep_temp
from tastemaker.monitoring.jobs import observe_job
from tastemaker.monitoring.webhooks import deliver_due
from tastemaker.services import Services
from tastemaker.store import queue, queue_wake, resources
from tastemaker.store.status import Status, allowed
from tastemaker.store.wakeups import wakeups

log = logging.getLogger("tastemaker.jobs")
# With store wake-ups live (store/wakeups.py: an enqueue on any host wakes every runner), an idle runner's claim
# poll is only a safety net, this far apart (or sooner, when a queued job's run_after falls due).
IDLE_POLL_SECONDS = 10.0


TaskFn = Callable[[Services, queue.Job, Lease], None]


@dataclass(frozen=True)
class TaskSpec:
    """How a job kind runs: its function, the status a failure leaves, and the status a stop request leaves.

    Jobs that apply a latest*Update record (`update_record`) fail on that record: the resource keeps its status.
    """

    run: TaskFn
    failed_status: Status = Status.CREATE_FAILED
    stopped_status: Status | None = None
    update_record: str | None = None
    warm: Callable[[Services], None] | None = None  # once, in the background, when a runner starts (compile kernels)


Tasks = Mapping[str, TaskSpec]


def mark_failed(services: Services, tasks: Tasks, job: queue.Job, reason: str) -> None:
    """Finish the job with its error and record the failure on its resource (status and failureReason).

    A failure status the transition table does not allow from where the resource is (a crash at an odd
    moment) is logged and only failureReason is written: the job must end either way.
    """
    spec = tasks.get(job.kind)
    try:
        with queue.fenced(services.engine, job) as conn:
            _record_failure(conn, spec, job, reason)
    except queue.LeaseLost:
        log.warning("job %s (%s) failed after another owner took it; its failure is not recorded: %s",
                    job.id, job.kind, reason)


def _record_failure(conn: sa.Connection, spec: TaskSpec | None, job: queue.Job, reason: str) -> None:
    queue.finish(conn, job, error=reason)
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


def run_one(services: Services, tasks: Tasks, job: queue.Job, lease: Lease | None = None) -> None:
    """Run a claimed job to its end, with a heartbeat thread that renews the lease and carries stop requests."""
    lease = lease or Lease()
    spec = tasks.get(job.kind)
    if spec is None:
        mark_failed(services, tasks, job, f"No task is registered for job kind {job.kind}.")
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(0.5, services.settings.job_stale_seconds / 5)):
            try:
                if queue.heartbeat(services.engine, job):
                    lease.cancel.set()
            except queue.LeaseLost:
                log.warning("job %s (%s) was taken over by another worker; stopping this run", job.id, job.kind)
                lease.lost.set()
                return
            except Exception:
                log.exception("heartbeat failed for job %s", job.id)

    beater = threading.Thread(target=beat, name=f"beat-{job.id}", daemon=True)
    beater.start()
    try:
        spec.run(services, job, lease)
        with services.engine.begin() as conn:
            queue.finish(conn, job)  # a task that committed its outcome may have finished the job already
    except queue.LeaseLost:
        log.warning("job %s (%s) lost its lease %s; this run's writes were refused", job.id, job.kind, job.lease)
    except Exception as exc:  # noqa: BLE001 - every outcome ends the job one way or another
        if lease.lost.is_set():
            log.warning("job %s (%s) ended after another worker took it over: %s", job.id, job.kind, exc)
        elif lease.leaving.is_set():
            hand_back(services, job)
        elif isinstance(exc, JobStopped):
            try:
                with queue.fenced(services.engine, job) as conn:
                    queue.finish(conn, job)
                    if spec.stopped_status and resources.find(conn, job.resource_arn):
                        resources.update(conn, job.resource_arn, status=spec.stopped_status)
            except queue.LeaseLost:
                log.warning("job %s (%s) stopped after another worker took it over", job.id, job.kind)
        elif isinstance(exc, JobFailed):
            mark_failed(services, tasks, job, exc.reason)
        else:  # every crash must end the resource, never leave it running
            log.error("job %s (%s) crashed:\n%s", job.id, job.kind, traceback.format_exc())
            mark_failed(services, tasks, job, f"Internal error: {type(exc).__name__}: {exc}")
    finally:
        stop.set()


def hand_back(services: Services, job: queue.Job) -> None:
    """Requeue a job this process stops running, runnable at once and without spending an attempt."""
    with services.engine.begin() as conn:
        if queue.requeue(conn, job, count_attempt=False):
            log.warning("handed job %s (%s) back to the queue on shutdown", job.id, job.kind)


def recover_orphans(services: Services, tasks: Tasks) -> int:
    """Requeue (or fail, after max attempts) jobs whose owner died or whose lease expired; removes the temp
    folders no running job owns. Returns how many jobs were handled."""
    lost = queue.orphaned(services.engine, services.settings.job_stale_seconds)
    for job in lost:
        if job.attempts < job.max_attempts:
            with services.engine.begin() as conn:
                if queue.requeue(conn, job):
                    log.warning("requeued job %s (%s): its worker %s died or stopped renewing its lease",
                                job.id, job.kind, job.owner)
        else:
            mark_failed(services, tasks, job, f"The job was interrupted {job.attempts} times (its worker process died "
                                              "or stopped responding); giving up. Start a new one.")
    sweep_temp(services)
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
        self._workers: list[threading.Thread] = []
        self._running: dict[int, tuple[queue.Job, Lease]] = {}
        self._lock = threading.Lock()
        # Wake-ups: counters under a condition, so a wake-up that lands while a worker is claiming is not lost.
        # `_wakes`: claim now (an enqueue on this host, stop); `_store_wakes`: a store wake-up, which on SQLite
        # comes with any commit, so it makes a worker claim no sooner than job_poll_seconds after its last look.
        self._wake = threading.Condition()
        self._wakes = 0
        self._store_wakes = 0
        self._listener: queue_wake.Listener | None = None
        self._store = wakeups(services.engine)

    def start(self) -> None:
        recover_orphans(self.services, self.tasks)
        if self.threads > 0:
            self._listener = queue_wake.listen(self.services.engine)
        if self._listener is not None:
            thread = threading.Thread(target=self._listener.wait_loop, args=(self.wake, self._stop),
                                      name="job-wake", daemon=True)
            thread.start()
            self._pool.append(thread)
        if self.threads > 0:
            self._store.subscribe("jobs", self._store_woke)
        for index in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"job-worker-{index}", daemon=True)
            thread.start()
            self._workers.append(thread)
        warms = list(dict.fromkeys(spec.warm for spec in self.tasks.values() if spec.warm is not None))
        if warms and self.threads > 0:
            threading.Thread(target=_warm_all, args=(self.services, warms), name="job-warm", daemon=True).start()
        for name, loop in (("job-sweeper", self._sweep), ("job-maintenance", self._maintain)):
            thread = threading.Thread(target=loop, name=name, daemon=True)
            thread.start()
            self._pool.append(thread)

    def alive(self) -> bool:
        """Started and every thread still running (the readiness check)."""
        return bool(self._pool) and all(thread.is_alive() for thread in self._pool)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming and hand every running job back: tasks are told to leave (subprocesses killed) and
        get `timeout` seconds to end; jobs still running then are requeued here (their late writes are fenced)."""
        self._stop.set()
        self.wake()
        with self._lock:
            running = list(self._running.values())
        for _job, lease in running:
            lease.leaving.set()
        deadline = time.monotonic() + timeout
        for thread in self._workers + self._pool:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            left = list(self._running.values())
        for job, _lease in left:
            try:
                hand_back(self.services, job)
            except Exception:
                log.exception("could not hand job %s back", job.id)

    def wake(self) -> None:
        """Make idle workers try to claim now (an enqueue on this host, or stop)."""
        with self._wake:
            self._wakes += 1
            self._wake.notify_all()

    def _store_woke(self) -> None:
        with self._wake:
            self._store_wakes += 1
            self._wake.notify_all()

    def _loop(self) -> None:
        poll = self.services.settings.job_poll_seconds
        while not self._stop.is_set():
            seen, seen_store = self._wakes, self._store_wakes
            looked = time.monotonic()
            try:
                job, wait = self._claim(poll)
                until = looked + wait
            except Exception:
                log.exception("claiming a job failed")
                job, until = None, looked + poll
            if job is None:
                with self._wake:  # sleep until the next poll, unless woken meanwhile (or since the claim began)
                    while self._wakes == seen and not self._stop.is_set():
                        if self._store_wakes != seen_store:
                            until = min(until, looked + poll)
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        self._wake.wait(left)
                continue
            lease = Lease()
            with self._lock:
                self._running[job.id] = (job, lease)
            if self._stop.is_set():  # stop() ran between the claim and the registration
                lease.leaving.set()
            try:
                observe_job(self.services, job, partial(run_one, self.services, self.tasks, job, lease))
            finally:
                with self._lock:
                    self._running.pop(job.id, None)

    def _claim(self, poll: float) -> tuple[queue.Job | None, float]:
        """A job, or None and the seconds to wait before looking again unless woken: `poll` without live store
        wake-ups; with them, until the earliest queued job falls due, at most IDLE_POLL_SECONDS (one read)."""
        if not self._store.live:
            return queue.claim(self.services.engine, self.identity), poll
        due = queue.next_run(self.services.engine)
        if due is None:
            return None, IDLE_POLL_SECONDS
        if due > time.time():
            return None, max(poll, min(IDLE_POLL_SECONDS, due - time.time()))
        return queue.claim(self.services.engine, self.identity), poll  # None: another runner took it first

    def _sweep(self) -> None:
        while not self._stop.wait(max(1.0, self.services.settings.job_stale_seconds / 2)):
            try:
                recover_orphans(self.services, self.tasks)
            except Exception:
                log.exception("orphan recovery failed")

    def _maintain(self) -> None:
        """Schedules: automatic trainings that are due, campaigns behind the $LATEST they follow, webhook retries."""
        while not self._stop.wait(self.services.settings.maintenance_seconds):
            for step in (run_due_trainings, reconcile_followers, deliver_due, aggregate_all):
                try:
                    step(self.services)
                except Exception:
                    log.exception("maintenance step %s failed", step.__name__)


def _warm_all(services: Services, warms: list[Callable[[Services], None]]) -> None:
    """The tasks' start-up work (compiling kernels ahead of the first job); a failure only costs that job time."""
    for warm in warms:
        try:
            warm(services)
        except Exception:
            log.exception("warming %s failed", getattr(warm, "__name__", warm))
