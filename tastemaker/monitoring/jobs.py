"""A job's state change, observed around its run: the log line and the job metrics.

`observe_job` reads the resource's status before the job runs and after it ends (the job runner's own
bookkeeping has then committed), and reports old -> new status, the duration and, for a failure, the
resource's failureReason; `DatasetImportJob*` and `SolutionTrainingJob*` count it per dataset and solution,
and a successful import adds the bytes it read to `DatasetSize`.
(Webhooks learn of state changes from the store's state-change outbox, tastemaker.monitoring.webhooks.)
An observation that fails is logged and never disturbs the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tastemaker.monitoring import logs, shared
from tastemaker.monitoring.metrics import METRICS
from tastemaker.services import Services
from tastemaker.store import queue, resources

log = logging.getLogger("tastemaker.monitoring")


def _resource(services: Services, arn: str) -> resources.Resource | None:
    with services.read_engine.connect() as conn:
        return resources.find(conn, arn)


def observe_job(services: Services, job: queue.Job, run: Callable[[], None]) -> None:
    """Run `run` (the job), then log its state change and count it."""
    started = time.monotonic()
    try:
        before = _resource(services, job.resource_arn)
    except Exception:
        log.warning("could not read %s before job %s", job.resource_arn, job.id, exc_info=True)
        before = None
    try:
        run()
    finally:
        seconds = time.monotonic() - started
        try:
            after = _resource(services, job.resource_arn)
            new = after.status if after is not None else "DELETED"
            failed = bool(new and new.endswith("FAILED"))
            reason = str(after.body.get("failure_reason")) if failed and after is not None else None
            logs.job_changed(job.id, job.kind, job.resource_arn, before.status if before else None, new, seconds,
                             reason)
            known = after or before
            parent = known.parent_arn if known is not None else None
            METRICS.job(time.time(), job.kind, parent, failed, seconds)
            size = after.body.get("data_size_bytes") if after is not None and new == "ACTIVE" else None
            if job.kind == "import" and parent and isinstance(size, int):
                METRICS.dataset_size(time.time(), parent, size)
            shared.share(services.settings)  # readable by the API processes
        except Exception:  # observing must never break the job runner
            log.warning("could not record job %s's outcome", job.id, exc_info=True)
