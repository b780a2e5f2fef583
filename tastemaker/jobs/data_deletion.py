"""Data deletion jobs: remove users from a dataset group (the GDPR "forget this user" path).

The job reads a CSV with one USER_ID column (a file or folder, at most MAX_INPUT_BYTES in all), then:

1. rewrites every Parquet part of the group's datasets with a USER_ID column (Interactions, Users,
   Action_Interactions) that holds one of the users, and swaps the dataset's parts in one transaction
   (bumping its data_version, so serving re-reads histories, Users rows and filters);
2. deletes the users' streamed events and the anonymous events of their sessions from the events table;
3. rebuilds the group's real-time state from what is left (tastemaker.realtime.rebuild).

From COMPLETED on, no history, filter, export or training reads them; a model trained before keeps what it
learned until the next training, and a returning user id is a new user. `numDeleted` counts the records
removed (dataset rows and streamed events).

Every write is fenced by the job's lease (docs/architecture.md): each dataset's swap commits only while this
claim holds the job, together with the count it removed (`deleted_so_far` on the job), so a claim that
follows a killed one adds what that one removed and numDeleted stays exact; an owner that lost the job swaps
nothing and removes the parts it wrote. COMPLETED is written with the job's end.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from tastemaker.data.sources import CsvSource, DataLocationError, resolve_data_location
from tastemaker.errors import JobFailed
from tastemaker.jobs.lease import job_temp_dir
from tastemaker.realtime.rebuild import rebuild_group
from tastemaker.services import Services
from tastemaker.store import dataset_parts, keys, part_origins, queue, resources, user_erasure
from tastemaker.store.queue import Job
from tastemaker.store.records import DataDeletionJob, Dataset
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.jobs")

MAX_INPUT_BYTES = 100 * 1024 * 1024
USER_DATASETS = ("INTERACTIONS", "USERS", "ACTION_INTERACTIONS")
SWAP_TRIES = 3
# Serving re-reads a group's tracker and its datasets' data versions in the background about once a second,
# and on the request path when its copy is 3 seconds old (tastemaker.serving.snapshots): after this long every
# process has seen the change.
SETTLE_SECONDS = 3.5  # a concurrent import changed the parts: read them again


def delete_users(services: Services, job: Job, should_stop: Callable[[], bool]) -> None:
    """The DATA_DELETION task: PENDING -> IN_PROGRESS -> COMPLETED with numDeleted."""
    with queue.fenced(services.engine, job) as conn:
        res = resources.get(conn, job.resource_arn, "data_deletion_job")
        resources.update(conn, res.arn, status=Status.IN_PROGRESS)
    deletion = DataDeletionJob.of(res)
    done: dict[str, int] = dict(deletion.deleted_so_far)  # what earlier claims committed
    group = deletion.dataset_group_arn
    location = deletion.data_source["data_location"]
    try:
        sources = resolve_data_location(location, import_roots=services.settings.effective_import_roots,
                                        s3_client_factory=services.s3_client)
        users = read_user_ids(sources)
    except DataLocationError as exc:
        raise JobFailed(exc.reason) from exc
    with services.read_engine.connect() as conn:
        datasets = [d for d in resources.children(conn, kind="dataset", dataset_group_arn=group)
                    if Dataset.of(d).dataset_type.upper() in USER_DATASETS]
    workdir = job_temp_dir(services, "delete", job)
    try:
        for dataset in datasets:
            _rewrite_dataset(services, job, dataset, users, done, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for partition in [group] + [d.arn for d in datasets
                                if Dataset.of(d).dataset_type.upper() == "ACTION_INTERACTIONS"]:
        erased = user_erasure.erase_users(services.engine, partition, users)
        _record(services, job, done, f"events:{partition}", erased)
    rebuild_group(services, group)
    _new_state_generation(services, group)
    deleted = sum(done.values())
    log.info("%s: deleted %d records of %d users from %s", res.arn, deleted, len(users), group)
    with queue.fenced(services.engine, job) as conn:  # the outcome and the job's end in one fenced write
        resources.update(conn, res.arn, status=Status.COMPLETED, changes={"num_deleted": deleted})
        queue.finish(conn, job)


def _record(services: Services, job: Job, done: dict[str, int], step: str, count: int,
            conn: sa.Connection | None = None) -> None:
    """Add `count` records removed by `step` to the job's `deleted_so_far` (in `conn`'s transaction when given,
    else in a fenced one of its own), so a claim that follows a killed one counts what the killed one removed."""
    done[step] = done.get(step, 0) + count
    if conn is not None:
        resources.update(conn, job.resource_arn, changes={"deleted_so_far": dict(done)})
        return
    with queue.fenced(services.engine, job) as own:
        resources.update(own, job.resource_arn, changes={"deleted_so_far": dict(done)})


def _new_state_generation(services: Services, group: str) -> None:
    """Make every serving process drop its cached real-time state of the group (they watch the group's event
    tracker, tastemaker.serving.history), then wait until they have looked (their refresh period)."""
    with services.engine.begin() as conn:
        trackers = resources.children(conn, kind="event_tracker", dataset_group_arn=group)
        for tracker in trackers:
            resources.update(conn, tracker.arn, changes={"state_generation": uuid.uuid4().hex[:12]})
    time.sleep(SETTLE_SECONDS)


def read_user_ids(sources: list[CsvSource]) -> set[str]:
    """The USER_ID values of the input CSV files (a header naming USER_ID, one column)."""
    total = sum(s.size or 0 for s in sources)
    if total > MAX_INPUT_BYTES:
        raise JobFailed(f"The data deletion input is {total} bytes; the limit is {MAX_INPUT_BYTES} (100 MB).")
    users: set[str] = set()
    for source in sources:
        raw = source.open()
        try:
            data = raw.read(MAX_INPUT_BYTES + 1)
        finally:
            raw.close()
        if source.compression == "gzip":
            import gzip

            data = gzip.decompress(data)
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
        header = next(reader, None)
        if header is None:
            continue
        names = [h.strip().upper() for h in header]
        if "USER_ID" not in names:
            raise JobFailed(f"{source.name} has no USER_ID column in its header (found: {', '.join(header)}). "
                            "A data deletion input is a CSV with the single column USER_ID.")
        column = names.index("USER_ID")
        for number, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            if column >= len(row) or not row[column].strip():
                raise JobFailed(f"{source.name} line {number}: USER_ID is empty.")
            users.add(row[column].strip())
    if not users:
        raise JobFailed("The data deletion input lists no USER_ID values.")
    return users


def _rewrite_dataset(services: Services, job: Job, dataset: resources.Resource, users: set[str],
                     done: dict[str, int], workdir: Path) -> int:
    """Drop the users' rows from the dataset's parts and swap the parts in (recording the count in `done` in
    the same fenced transaction); rows removed."""
    wanted = pa.array(sorted(users), pa.string())
    _sweep_earlier_claims(services, job, dataset)
    for attempt in range(SWAP_TRIES):
        with services.read_engine.connect() as conn:
            before = part_origins.parts(conn, dataset.arn)
        removed = 0
        kept: list[tuple[str, str, int]] = []  # (origin, key, rows) in the old order
        written: list[str] = []
        batch = _claim_prefix(dataset, job, job.lease, attempt)
        try:
            for part in before:
                table = pq.read_table(services.blobs.local_path(part.blob_key))
                if "USER_ID" not in table.column_names:
                    kept.append((part.origin, part.blob_key, part.rows))
                    continue
                doomed = pc.fill_null(pc.is_in(table.column("USER_ID").cast(pa.string()), value_set=wanted), False)
                count = int(pc.sum(doomed).as_py() or 0)
                if count == 0:
                    kept.append((part.origin, part.blob_key, part.rows))
                    continue
                removed += count
                rest = table.filter(pc.invert(doomed))
                key = keys.dataset_part_key(batch, len(written))
                local = workdir / f"{uuid.uuid4().hex}.parquet"
                try:
                    pq.write_table(rest, local)
                    services.blobs.put_file(key, local)
                finally:
                    Path(local).unlink(missing_ok=True)
                written.append(key)
                kept.append((part.origin, key, rest.num_rows))
        except BaseException:
            for key in written:
                services.blobs.delete(key)
            raise
        if removed == 0:
            return 0
        try:
            dropped = _swap(services, job, dataset.arn, before, kept, done, removed)
        except BaseException:  # fenced out (another owner has the job) or a failed commit: the new parts are unused
            for key in written:
                services.blobs.delete(key)
            raise
        if dropped is None:  # the parts changed meanwhile (an import finished): start over
            for key in written:
                services.blobs.delete(key)
            continue
        for key in dropped:
            try:
                services.blobs.delete(key)
            except Exception:  # noqa: BLE001 - an orphaned old part costs space, never correctness
                log.warning("could not delete replaced part %s", key)
        return removed
    raise JobFailed(f"Dataset {dataset.arn} kept changing while its data was being deleted (imports running); "
                    "start the data deletion job again when they are done.")


def _claim_prefix(dataset: resources.Resource, job: Job, lease: int, attempt: int) -> str:
    """The folder of the parts one claim of the job writes in one attempt: a later claim can find and remove
    what a killed (or fenced-out) one left."""
    return keys.dataset_batch_prefix(Dataset.of(dataset).storage_id, "bulk", f"deletion-j{job.id}.{lease}.{attempt}")


def _sweep_earlier_claims(services: Services, job: Job, dataset: resources.Resource) -> None:
    """Remove what earlier claims of this job wrote and never swapped in (a claim killed mid-upload leaves its
    parts, and maybe a temp file, behind); parts an earlier claim did swap in are the dataset's and stay."""
    with services.read_engine.connect() as conn:
        named = {part.blob_key for part in part_origins.parts(conn, dataset.arn)}
    for lease in range(1, job.lease):
        for attempt in range(SWAP_TRIES):
            prefix = _claim_prefix(dataset, job, lease, attempt)
            written = services.blobs.list(prefix)
            if named.isdisjoint(written):
                services.blobs.delete_prefix(prefix)
                continue
            for key in written:
                if key not in named:
                    services.blobs.delete(key)


def _swap(services: Services, job: Job, dataset_arn: str, before: list[part_origins.Part],
          kept: list[tuple[str, str, int]], done: dict[str, int], removed: int) -> list[str] | None:
    """Replace the dataset's parts by `kept` if they are still `before`, recording `removed` in the job's
    `deleted_so_far` in the same transaction, fenced by the job's lease; the blob keys no longer used."""
    job_arn = job.resource_arn
    with queue.fenced(services.engine, job) as conn:
        resources.get(conn, dataset_arn, "dataset", lock=True)
        if part_origins.parts(conn, dataset_arn) != before:
            return None
        dropped: list[str] = []
        for origin in ("BULK", "PUT"):  # drop every part, then add the kept ones back in their old order
            dropped += dataset_parts.add_parts(conn, dataset_arn, origin, [], job_arn, replace=True)
        for origin, key, rows in kept:
            dataset_parts.add_parts(conn, dataset_arn, origin, [(key, rows)], job_arn)
        resources.update(conn, dataset_arn, changes={"data_version": uuid.uuid4().hex[:12]})
        _record(services, job, done, f"rows:{dataset_arn}", removed, conn)
    still = {key for _o, key, _r in kept}
    return [key for key in dropped if key not in still]
