"""Progress of a running batch job (batch inference, batch segments, dataset export), visible while it runs.

Personalize's DescribeBatchInferenceJob / DescribeBatchSegmentJob / DescribeDatasetExportJob carry no progress field, and the wire stays
exact, so progress is kept where our own tools read it: the job's stored document (`progress`, which the wire
never shows), the worker's log (logger `tastemaker.batch`), `/metrics` (`tastemaker_batch_job_*` gauges, read
from the stored documents at scrape time, so a separate `tastemaker worker` process's jobs show up on the API
server's `/metrics` too) and `tastemaker jobs`.

Mechanism: the task calls `add` after each chunk and `file_done` after each published file. At most every
`every` seconds (and at the start, at each file's end and at the end) the figures are written to the job's
document in one `queue.fenced` transaction: an owner that lost the job cannot overwrite the progress of the
one that holds it (its write raises, which ends its run as the rest of its writes would).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from tastemaker.services import Services
from tastemaker.store import queue, resources
from tastemaker.store.queue import Job

log = logging.getLogger("tastemaker.batch")

PROGRESS_SECONDS = 5.0  # how often progress is written to the job's document and logged


@dataclass
class JobProgress:
    """Lines and files done so far by one claim of a batch job."""

    services: Services
    job: Job
    files_total: int
    unit: str = "lines answered"  # what `lines` counts ("rows written" for an export)
    every: float = PROGRESS_SECONDS
    lines: int = 0
    errors: int = 0
    files: int = 0
    started: float = field(default_factory=time.time)
    _last: float = 0.0

    def document(self) -> dict[str, Any]:
        """What the job's document holds under `progress`."""
        return {"lines_processed": self.lines, "lines_failed": self.errors, "files_done": self.files,
                "files_total": self.files_total, "unit": self.unit, "attempt": self.job.attempts, "started_at": round(self.started, 3),
                "updated_at": round(time.time(), 3)}

    def add(self, lines: int, errors: int = 0) -> None:
        """Count a chunk of answered lines (`errors` of them answered with an error)."""
        self.lines += lines
        self.errors += errors
        if time.monotonic() - self._last >= self.every:
            self.record()

    def file_done(self) -> None:
        self.files += 1
        self.record()

    def record(self) -> None:
        """Write the figures to the job's document (fenced) and log them."""
        self._last = time.monotonic()
        log.info("%s: %d %s (%d with errors), %d of %d files done", self.job.resource_arn, self.lines, self.unit,
                 self.errors, self.files, self.files_total)
        with queue.fenced(self.services.engine, self.job) as conn:
            resources.update(conn, self.job.resource_arn, changes={"progress": self.document()})
