"""What the stores hold that nothing needs any more (the queries behind `tastemaker gc`).

Every blob folder is named after a storage id that a resource body carries (datasets, solution versions,
recommenders, batch jobs: store/keys.py), so a folder whose id no resource carries is an orphan. Inside a live
dataset, an import's parts that no `dataset_parts` row names are leftovers once that import has finished. The
rest is policy: solution versions beyond the newest few of each solution, finished job rows and events older
than a window. What is protected is decided here, from one read of the metadata.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from tastemaker.store import db
from tastemaker.store import resources as resource_rows
from tastemaker.store.status import Status
from tastemaker.store.tables import dataset_parts, events, jobs, resources

FINISHED_JOB_STATES = ("done", "failed")
BLOB_FOLDERS = ("datasets/", "models/", "jobs/")


@dataclass
class Live:
    """The metadata's view of the blobs: what must stay, and the solution versions a policy may prune."""

    storage_ids: set[str] = field(default_factory=set)
    part_keys: set[str] = field(default_factory=set)
    finished_imports: set[str] = field(default_factory=set)  # last ARN segment = the import's blob batch id
    unfinished_import_locations: list[str] = field(default_factory=list)
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (version ARN, model prefix) to prune


def live(engine: sa.Engine, *, keep_versions: int) -> Live:
    """Read what is live in one snapshot (REPEATABLE READ on PostgreSQL, one read transaction on SQLite), and
    which solution versions fall outside the newest `keep_versions` per solution.

    Call it AFTER listing the blobs: a blob listed before this read belongs to a resource this read sees (a
    resource row is committed before its blobs are written), so nothing created meanwhile looks orphaned."""
    options: dict[str, object] = {db.READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    with engine.connect() as conn:
        conn = conn.execution_options(**options)
        with conn.begin():
            return _live(conn, keep_versions)


def _live(conn: sa.Connection, keep_versions: int) -> Live:
    found = Live(part_keys={str(k) for k in conn.execute(sa.select(dataset_parts.c.blob_key)).scalars()})
    versions: dict[str, list[tuple[float, str, dict]]] = defaultdict(list)
    deployed: set[str] = set()
    rows = conn.execute(sa.select(resources.c.arn, resources.c.kind, resources.c.status, resources.c.parent_arn,
                                  resources.c.created_at, resources.c.body))
    for arn, kind, status, parent, created, body in rows:
        body = body or {}
        if body.get("storage_id"):
            found.storage_ids.add(str(body["storage_id"]))
        if kind == "dataset_import_job":
            if status in (Status.ACTIVE, Status.CREATE_FAILED):
                found.finished_imports.add(arn.rsplit("/", 1)[-1])
            else:
                found.unfinished_import_locations.append(str((body.get("data_source") or {}).get("data_location", "")))
        if kind == "solution_version":
            versions[str(parent)].append((float(created), status, body | {"arn": arn}))
        elif body.get("solution_version_arn") or body.get("latest_campaign_update"):
            deployed.add(str(body.get("solution_version_arn")))  # campaigns and batch jobs name the version
            deployed.add(str((body.get("latest_campaign_update") or {}).get("solution_version_arn")))
    for history in versions.values():
        active = sorted((v for v in history if v[1] == Status.ACTIVE), key=lambda v: v[0], reverse=True)
        newest_full = next((v for v in active if v[2].get("training_mode", "FULL") == "FULL"), None)
        for rank, (_created, _status, body) in enumerate(active):
            protected = rank < keep_versions or body["arn"] in deployed or (newest_full and body is newest_full[2])
            if not protected and body.get("model_prefix") and not body.get("artifacts_removed_at"):
                found.superseded.append((body["arn"], str(body["model_prefix"])))
    return found


def is_orphan(key: str, found: Live) -> bool:
    """A blob no live row needs: its storage id is gone, or it is a finished import's part that no row names."""
    parts = key.split("/")
    if not key.startswith(BLOB_FOLDERS) or len(parts) < 3:
        return False
    if parts[1] not in found.storage_ids:
        return True
    if parts[0] == "datasets" and parts[2] == "bulk" and len(parts) >= 5:
        return key not in found.part_keys and parts[3] in found.finished_imports
    return False


def mark_artifacts_removed(conn: sa.Connection, version_arn: str) -> None:
    resource_rows.update(conn, version_arn, changes={"artifacts_removed_at": resource_rows.now()})


def finished_jobs_before(conn: sa.Connection, cutoff: float) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
        jobs.c.state.in_(FINISHED_JOB_STATES), jobs.c.updated_at < cutoff)).scalar_one())


def delete_finished_jobs_before(conn: sa.Connection, cutoff: float) -> int:
    result = conn.execute(sa.delete(jobs).where(jobs.c.state.in_(FINISHED_JOB_STATES), jobs.c.updated_at < cutoff))
    return int(result.rowcount or 0)


def events_before(conn: sa.Connection, cutoff: float) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(events).where(
        events.c.received_at < cutoff)).scalar_one())


def delete_events_before(engine: sa.Engine, cutoff: float, batch: int = 5000) -> int:
    """Delete in batches of `batch` rows (short write transactions: PutEvents keeps committing meanwhile)."""
    total = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(sa.select(events.c.id).where(events.c.received_at < cutoff)
                               .order_by(events.c.id).limit(batch)).scalars().all()
            if not ids:
                return total
            conn.execute(sa.delete(events).where(events.c.id.in_(ids)))
            total += len(ids)


def within(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders if f)
