"""Task functions of the job queue: activation, deletion and dataset import.

A dataset import records its progress while it reads (`ImportProgress`): rows read so far (kept and skipped),
source bytes read of the total, when the claim started and when the figures were written. They go to the job's
stored document under `progress` (which DescribeDatasetImportJob never shows: the wire stays Personalize's), at
the start, at most every IMPORT_PROGRESS_SECONDS while reading and once reading ends, each time in one
`queue.fenced` transaction, so a claim that lost the job cannot overwrite the progress of the one holding it
(its write raises, which ends its run). The console's imports table reads them.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tastemaker.errors import JobFailed
from tastemaker.jobs.lease import job_temp_dir
from tastemaker.realtime.erase import erase_for_resource
from tastemaker.services import Services
from tastemaker.store import dataset_parts, keys, queue, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import Dataset, DatasetImportJob
from tastemaker.store.status import Status, allowed

if TYPE_CHECKING:
    from tastemaker.data.sources import CsvSource

log = logging.getLogger("tastemaker.jobs")
IMPORT_PROGRESS_SECONDS = 3.0  # how often a running import writes its progress to the job's document


def set_status(services: Services, job: Job, status: Status, **changes: object) -> None:
    """Write the job's resource status under the job's lease (LeaseLost when another owner has the job)."""
    with queue.fenced(services.engine, job) as conn:
        resources.update(conn, job.resource_arn, status=status, changes=changes)


def activate(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """Resources with nothing to build: CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE."""
    set_status(services, job, Status.CREATE_IN_PROGRESS)
    set_status(services, job, Status.ACTIVE)


def delete(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """DELETE PENDING -> DELETE IN_PROGRESS -> gone, removing the resource's blobs.

    A solution takes its versions with it: their rows go in the same transaction as the solution's, so no
    reader ever sees a version whose solution is gone.
    """
    with queue.fenced(services.engine, job) as conn:
        res = resources.find(conn, job.resource_arn)
        if res is None:
            return
        if allowed(res.kind, res.status, Status.DELETE_IN_PROGRESS):  # dataset groups, versions: straight to gone
            resources.update(conn, job.resource_arn, status=Status.DELETE_IN_PROGRESS)
        doomed = [*(resources.children(conn, kind="solution_version", parent_arn=res.arn)
                    if res.kind == "solution" else []), res]
    for each in doomed:
        erase_for_resource(services, each)  # streamed events and real-time state it owned
    with queue.fenced(services.engine, job) as conn:
        for each in doomed:
            resources.delete(conn, each.arn)
        queue.finish(conn, job)
    for each in doomed:
        if prefix := blob_prefix_of(each):
            services.blobs.delete_prefix(prefix)


def blob_prefix_of(res: resources.Resource) -> str | None:
    sid = res.body.get("storage_id")
    if not sid:
        return None
    if res.kind == "dataset":
        return keys.dataset_prefix(sid)
    if res.kind in ("solution_version",):
        return keys.model_prefix(sid)
    return keys.job_output_prefix(sid)


def import_dataset(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """Validate CSV files into Parquet parts, upload them, then switch the dataset's data in one transaction."""
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.csv_import import CsvImportError, import_csv
    from tastemaker.data.schemas import normalize_dataset_type
    from tastemaker.data.sources import DataLocationError, resolve_data_location

    started = time.time()
    with queue.fenced(services.engine, job) as conn:
        import_job = resources.get(conn, job.resource_arn, "dataset_import_job")
        if import_job.status == Status.ACTIVE:  # an earlier claim committed it; nothing is left to do
            queue.finish(conn, job)
            return
        spec = DatasetImportJob.of(import_job)
        dataset = resources.get(conn, spec.dataset_arn, "dataset")
        _schema_res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
        resources.update(conn, job.resource_arn, status=Status.CREATE_IN_PROGRESS,
                         changes={"progress": ImportProgress(services, job).document()})
    dataset_type = normalize_dataset_type(Dataset.of(dataset).dataset_type)
    location = spec.data_source["data_location"]
    mode = spec.import_mode
    # This claim's own blob folder: a retry after a crash, or a writer that lost its lease, never touches the
    # parts of another claim; only the claim that commits adds its parts to the dataset.
    def claim_prefix(lease: int) -> str:
        return keys.dataset_batch_prefix(Dataset.of(dataset).storage_id, "bulk",
                                         f"{job.resource_arn.rsplit('/', 1)[-1]}-j{job.id}.{lease}")

    batch_prefix = claim_prefix(job.lease)
    for lease in range(1, job.lease + 1):  # parts of earlier claims that died (or were fenced out) mid-upload
        services.blobs.delete_prefix(claim_prefix(lease))
    workdir = job_temp_dir(services, "import", job)
    try:
        try:
            sources = resolve_data_location(location, import_roots=services.settings.effective_import_roots,
                                            s3_client_factory=services.s3_client)
            progress = ImportProgress(services, job, bytes_total=_total_size(sources))
            on_spark = _import_on_spark(services, job, sources, schema, dataset_type, workdir, batch_prefix, progress)
            result = on_spark.result if on_spark else import_csv(sources, schema, dataset_type, workdir,
                                                                 progress=progress)
            progress.record()  # the final figures, before the upload
        except (CsvImportError, DataLocationError) as exc:
            raise JobFailed(exc.reason) from exc
        if result.rows == 0:
            raise JobFailed(f"No data rows found at {location}.")
        if result.skipped:  # rows Personalize skips too (data/csv_import.py); `tastemaker import-report` shows them
            log.warning("import %s skipped %d of %d rows, e.g. %s", job.resource_arn, result.skipped,
                        result.rows + result.skipped, " | ".join(result.skipped_examples))
        for note in result.ignored_columns:
            log.warning("import %s: %s", job.resource_arn, note)
        uploaded = list(on_spark.parts) if on_spark else []  # the executors uploaded theirs
        for path in result.files:
            key = batch_prefix + f"{uuid.uuid4().hex[:8]}-{path.name}"
            services.blobs.put_file(key, path)
            uploaded.append((key, _rows_in(path)))
    except BaseException:
        services.blobs.delete_prefix(batch_prefix)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        with queue.fenced(services.engine, job) as conn:
            resources.get(conn, dataset.arn, "dataset", lock=True)
            replaced = dataset_parts.add_parts(conn, dataset.arn, "BULK", uploaded, job.resource_arn,
                                               replace=mode == "FULL")
            resources.update(conn, job.resource_arn, status=Status.ACTIVE,
                             changes={"row_count": result.rows, "data_size_bytes": result.bytes_read,
                                      "execution_seconds": round(time.time() - started, 3),
                                      "skipped_rows": result.skipped, "skipped_examples": result.skipped_examples,
                                      "ignored_columns": result.ignored_columns})
            resources.update(conn, dataset.arn, changes={"data_version": uuid.uuid4().hex[:12]})
            queue.finish(conn, job)
    except BaseException:
        services.blobs.delete_prefix(batch_prefix)
        raise
    for key in replaced:
        try:
            services.blobs.delete(key)
        except Exception:  # noqa: BLE001 - an orphaned old part costs space, never correctness
            log.warning("could not delete replaced part %s", key)


def _import_on_spark(services: Services, job: Job, sources: Sequence[CsvSource], schema: Any, dataset_type: str,
                     workdir: Path, batch_prefix: str, progress: ImportProgress) -> Any:
    """With a Spark master and at least `spark_min_import_bytes` of sources, the import run on Spark
    (tastemaker.spark.imports: same checks, messages and Parquet parts, uploaded under `batch_prefix`); None
    to import in-process (no master, smaller or unsized sources, or files Spark's CSV reader cannot take)."""
    settings = services.settings
    total = _total_size(sources)
    if not settings.spark_master or total is None or total < settings.spark_min_import_bytes:
        return None
    from tastemaker.data.csv_import import CsvImportError
    from tastemaker.data.sources import DataLocationError
    from tastemaker.spark.imports import SparkFallback, import_on_spark
    from tastemaker.spark.session import SparkUnavailable, failure_reason, spark_session

    try:
        session = spark_session(settings.spark_master)
        done = import_on_spark(session, sources, schema, dataset_type, stage_dir=workdir / "spark-stage",
                               blob_url=settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                               key_prefix=batch_prefix, progress=progress)
    except SparkFallback as exc:
        services.blobs.delete_prefix(batch_prefix)
        log.info("import %s: in-process, as Spark's CSV reader cannot read the files alike (%s)",
                 job.resource_arn, exc)
        return None
    except SparkUnavailable as exc:
        raise JobFailed(str(exc)) from exc
    except (CsvImportError, DataLocationError, queue.LeaseLost):
        raise  # the local path's failures, and a lost claim
    except Exception as exc:  # py4j and Spark errors share no base class
        raise JobFailed(f"Spark failed while importing: {failure_reason(exc)}") from exc
    log.info("import %s: %d rows read and checked on Spark (%s)", job.resource_arn, done.result.rows,
             settings.spark_master)
    return done


@dataclass
class ImportProgress:
    """What one claim of an import job has read so far; called by `import_csv` after each parsed block."""

    services: Services
    job: Job
    bytes_total: int | None = None  # None when a source's size is unknown
    every: float = field(default_factory=lambda: IMPORT_PROGRESS_SECONDS)  # read when the claim starts
    rows_read: int = 0
    bytes_read: int = 0
    started: float = field(default_factory=time.time)
    _last: float = field(default_factory=time.monotonic)

    def __call__(self, rows_read: int, bytes_read: int) -> None:
        self.rows_read, self.bytes_read = rows_read, bytes_read
        if time.monotonic() - self._last >= self.every:
            self.record()

    def document(self) -> dict[str, Any]:
        """What the job's document holds under `progress`."""
        return {"rows_read": self.rows_read, "bytes_read": self.bytes_read, "bytes_total": self.bytes_total,
                "attempt": self.job.attempts, "started_at": round(self.started, 3),
                "updated_at": round(time.time(), 3)}

    def record(self) -> None:
        """Write the figures to the job's document, under the job's lease."""
        self._last = time.monotonic()
        with queue.fenced(self.services.engine, self.job) as conn:
            resources.update(conn, self.job.resource_arn, changes={"progress": self.document()})


def _total_size(sources: Sequence[CsvSource]) -> int | None:
    sizes = [source.size for source in sources if source.size is not None]
    return sum(sizes) if len(sizes) == len(sources) else None


def _rows_in(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
