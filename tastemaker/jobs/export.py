"""Dataset export jobs: a dataset's data as CSV part files with a header, in Personalize's export layout.

`ingestionMode` picks the data: BULK (what import jobs brought), PUT (what PutEvents / PutItems / PutUsers
recorded: for Interactions the streamed events, stitched to their users as training sees them) or ALL.
The rows are read with the dataset's own semantics (tastemaker.data.tables.read_dataset): exact duplicate
interactions once, Items/Users only the newest record per id. The header is the schema's field names in
schema order; values are written as an import reads them (empty for null, `|` between multiple values),
so an export imports into a new dataset group unchanged. Files are
`<path><jobName>/part-00000.csv`, ... , ROWS_PER_FILE rows each, each written CHUNK_ROWS at a time (the job's
progress counts the rows written as they land, recorded every few seconds, so even a one-part export shows how
far it is) and published whole
(tastemaker.data.jsonl.publish_file), its move to the final name inside a transaction fenced by the job's lease:
an owner that lost the job publishes nothing. A retried job writes the same parts again.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from tastemaker.data.jsonl import publish_file, remove_temporaries
from tastemaker.data.sources import DataLocationError
from tastemaker.errors import JobFailed, JobStopped
from tastemaker.jobs.lease import job_temp_dir
from tastemaker.monitoring.progress import JobProgress
from tastemaker.services import Services
from tastemaker.store import part_origins, queue, resources
from tastemaker.store.queue import Job
from tastemaker.store.records import Dataset, DatasetExportJob
from tastemaker.store.status import Status

ROWS_PER_FILE = 1_000_000
CHUNK_ROWS = 50_000  # rows written between two progress counts within a part file
ORIGINS = {"BULK": ("BULK",), "PUT": ("PUT",), "ALL": ("BULK", "PUT")}


def export_dataset(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """The DATASET_EXPORT task: CREATE IN_PROGRESS, CSV parts published, then ACTIVE."""
    from tastemaker.control.schemas import load_schema
    from tastemaker.data.schemas import normalize_dataset_type
    from tastemaker.data.tables import read_dataset
    from tastemaker.jobs.training import export_events

    started = time.time()
    with queue.fenced(services.engine, job) as conn:
        res = resources.get(conn, job.resource_arn, "dataset_export_job")
        resources.update(conn, res.arn, status=Status.CREATE_IN_PROGRESS)
    spec = DatasetExportJob.of(res)
    mode = spec.ingestion_mode
    folder = spec.job_output["s3_data_destination"]["path"] + spec.job_name + "/"
    roots = services.settings.effective_import_roots
    workdir = job_temp_dir(services, "export", job)
    try:
        remove_temporaries(folder, import_roots=roots, s3_client_factory=services.s3_client)
        with services.read_engine.connect() as conn:
            dataset = resources.get(conn, spec.dataset_arn, "dataset")
            _schema_res, schema = load_schema(conn, Dataset.of(dataset).schema_arn)
            dataset_type = normalize_dataset_type(Dataset.of(dataset).dataset_type)
            paths = [services.blobs.local_path(p.blob_key) for p in part_origins.parts(conn, dataset.arn,
                                                                                      ORIGINS[mode])]
            if dataset_type == "Interactions" and mode in ("PUT", "ALL") and dataset.dataset_group_arn:
                streamed = export_events(conn, dataset.dataset_group_arn, workdir / "events.parquet")
                if streamed is not None:
                    paths.append(streamed)
        table = read_dataset(paths, schema, dataset_type) if paths else None
        if should_stop():
            raise JobStopped()
        rows = 0 if table is None else table.num_rows
        columns = [f.name for f in schema.fields]
        parts = part_slices(rows)
        progress = JobProgress(services, job, files_total=len(parts), unit="rows written")
        progress.record()  # 0 of N files: the job has started writing
        for number, (offset, length) in enumerate(parts):
            path = write_csv_part(table, columns, offset, length, workdir / f"part-{number:05d}.csv", progress.add,
                                  should_stop)
            if should_stop():
                raise JobStopped()
            publish_file(path, folder, f"part-{number:05d}.csv", import_roots=roots,
                         s3_client_factory=services.s3_client, guard=lambda: queue.fenced(services.engine, job))
            progress.file_done()
    except DataLocationError as exc:
        raise JobFailed(exc.reason) from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with queue.fenced(services.engine, job) as conn:  # the outcome and the job's end in one fenced write
        resources.update(conn, res.arn, status=Status.ACTIVE, changes={
            "row_count": rows, "execution_seconds": round(time.time() - started, 3)})
        queue.finish(conn, job)


def part_slices(rows: int) -> list[tuple[int, int]]:
    """(offset, rows) of each part file: ROWS_PER_FILE rows each, and one (header-only) part when there are none,
    so the export always shows its layout."""
    return [(start, min(ROWS_PER_FILE, rows - start)) for start in range(0, max(rows, 1), ROWS_PER_FILE)]


def write_csv_part(table: pa.Table | None, columns: list[str], offset: int, length: int, path: Path,
                   written: Callable[[int], None], should_stop: Callable[[], bool]) -> Path:
    """Rows [offset, offset + length) of the table as one CSV file with the header, written CHUNK_ROWS at a time;
    `written` is told each chunk's rows as it lands (the job's progress records them every few seconds, so a
    part of a million rows shows its progress while it is written). A stop request ends it between chunks."""
    if table is None:
        table = pa.table({name: pa.array([], pa.string()) for name in columns})
    part = table.select(columns).slice(offset, length)
    options = pcsv.WriteOptions(include_header=True, quoting_style="needed")
    with pcsv.CSVWriter(path, part.schema, write_options=options) as writer:
        for start in range(0, part.num_rows, CHUNK_ROWS):
            if should_stop():
                raise JobStopped()
            chunk = part.slice(start, CHUNK_ROWS)
            writer.write_table(chunk)
            written(chunk.num_rows)
    return path
