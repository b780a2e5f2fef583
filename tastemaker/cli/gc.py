"""`tastemaker gc [--dry-run]`: reclaim disk by the retention policy of docs/production.md.

What goes (each line of the plan names it and its size):
  * orphan blobs: folders of deleted datasets, solution versions, recommenders and batch jobs, and the parts of
    finished imports that no dataset references (a FULL import replaced them, or the import failed);
  * model artifacts of superseded solution versions: ACTIVE versions beyond the newest --keep-versions (default
    2) of each solution that no campaign or batch job names (the newest FULL version always stays, for
    trainingMode UPDATE); the version keeps its metadata and metrics but can no longer be deployed;
  * job queue rows finished more than --job-days (default 30) days ago;
  * events older than --event-days days (only when given: events are training data);
  * quickstart staging folders under DATA_DIR/imports and crashed jobs' scratch folders under DATA_DIR/tmp older
    than --staging-days (default 7) that no unfinished import reads.
Nothing a live campaign, recommender, unfinished job or the next training needs is in the plan.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tastemaker.cli.failures import CommandFailed
from tastemaker.config import Settings
from tastemaker.store import db, inventory
from tastemaker.store.blobs import BlobStore, LocalBlobStore, open_blob_store

DAY = 86400.0


@dataclass
class Item:
    what: str
    where: str
    size: int = 0  # bytes where known (local files), else 0


def _size(blobs: BlobStore, keys: list[str]) -> int:
    """Bytes of local blobs (an S3 store is not sized: that would mean a request per key)."""
    if not isinstance(blobs, LocalBlobStore):
        return 0
    return sum(blobs.local_path(key).stat().st_size for key in keys if blobs.exists(key))


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plan_and_apply(settings: Settings, *, dry_run: bool, keep_versions: int, job_days: float,
                   event_days: float | None, staging_days: float, now: float | None = None) -> list[Item]:
    if keep_versions < 1:
        raise CommandFailed("--keep-versions must be at least 1: the newest version of a solution always stays.")
    now = now or time.time()
    engine = db.create_engine(settings.resolved_db_url)
    blobs = open_blob_store(settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                            cache_dir=settings.cache_dir)
    items: list[Item] = []
    try:
        listed = blobs.list("")  # before the metadata read: see inventory.live
        found = inventory.live(engine, keep_versions=keep_versions)
        with engine.connect() as conn:
            old_jobs = inventory.finished_jobs_before(conn, now - job_days * DAY)
            old_events = inventory.events_before(conn, now - event_days * DAY) if event_days is not None else 0
        orphans = [key for key in listed if inventory.is_orphan(key, found)]
        if orphans:
            items.append(Item(f"{len(orphans)} orphan blobs (deleted resources, replaced or failed import parts)",
                              blobs.url, _size(blobs, orphans)))
        for arn, prefix in found.superseded:
            keys = blobs.list(prefix)
            items.append(Item(f"model artifacts of superseded {arn}", prefix, _size(blobs, keys)))
        if old_jobs:
            items.append(Item(f"{old_jobs} finished job rows older than {job_days:g} days", "jobs table"))
        if old_events:
            items.append(Item(f"{old_events} events older than {event_days:g} days", "events table"))
        stale = _stale_staging(settings, found, now - staging_days * DAY)
        items += [Item("staged import files / job scratch folder", str(p), _folder_size(p)) for p in stale]
        if dry_run:
            return items
        for key in orphans:
            blobs.delete(key)
        still = set(inventory.live(engine, keep_versions=keep_versions).superseded)  # deployed meanwhile?
        for arn, prefix in found.superseded:
            if (arn, prefix) not in still:
                continue
            blobs.delete_prefix(prefix)
            with engine.begin() as conn:
                inventory.mark_artifacts_removed(conn, arn)
        if old_jobs:
            with engine.begin() as conn:
                inventory.delete_finished_jobs_before(conn, now - job_days * DAY)
        if old_events and event_days is not None:
            inventory.delete_events_before(engine, now - event_days * DAY)
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return items
    finally:
        engine.dispose()


def _stale_staging(settings: Settings, found: inventory.Live, cutoff: float) -> list[Path]:
    """quickstart-* folders under DATA_DIR/imports and scratch folders under DATA_DIR/tmp, untouched since
    `cutoff` and not read by an unfinished import (other files in the import roots are the user's own)."""
    candidates = [*sorted(settings.imports_dir.glob("quickstart-*")), *sorted((settings.data_dir / "tmp").glob("*"))]
    reading = [str(Path(loc).resolve()) for loc in found.unfinished_import_locations if "://" not in loc]
    stale = []
    for path in candidates:
        if not path.is_dir() or path.stat().st_mtime >= cutoff:
            continue
        if any(inventory.within(loc, [str(path.resolve())]) for loc in reading):
            continue
        stale.append(path)
    return stale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    parser.add_argument("--keep-versions", type=int, default=2,
                        help="ACTIVE solution versions kept per solution besides deployed ones (default 2)")
    parser.add_argument("--job-days", type=float, default=30.0,
                        help="remove job queue rows finished longer ago than this (default 30)")
    parser.add_argument("--event-days", type=float, default=None,
                        help="remove events received longer ago than this (default: keep every event)")
    parser.add_argument("--staging-days", type=float, default=7.0,
                        help="remove quickstart staging and crashed jobs' scratch folders older than this (default 7)")


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    items = plan_and_apply(settings, dry_run=args.dry_run, keep_versions=args.keep_versions, job_days=args.job_days,
                           event_days=args.event_days, staging_days=args.staging_days)
    verb = "would remove" if args.dry_run else "removed"
    if not items:
        print("nothing to reclaim")
    for item in items:
        size = f" ({item.size:,} bytes)" if item.size else ""
        print(f"{verb}: {item.what}{size}  [{item.where}]")
    return 0
