"""`tastemaker backup DEST` and `tastemaker restore SRC`: an online copy of a server's state, and its return.

A backup is a folder: the metadata database (store/snapshot.py: a consistent copy taken while the server keeps
serving and ingesting), every blob (imported data, models), the key files, and manifest.json. Blobs are
written once under fresh keys and never changed, so they are copied in two passes around the database copy:
every blob before it (so a part that a later import replaces and deletes is already saved) and the new ones
after it (so the parts and models committed just before the copy are there too). The backup then checks that
every blob the copied rows point to was saved, and fails if one is not (run it again).

Events streamed with PutEvents live in the metadata database, so each one acknowledged before the backup
started is in it. Restore loads the database into an empty one, uploads the blobs to the target blob store
(local or S3) and puts the key files in the data directory; the restored server migrates the schema up on its
first start, and serves the same models from the same data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from tastemaker import __version__
from tastemaker.cli.failures import CommandFailed
from tastemaker.config import Settings
from tastemaker.store import snapshot
from tastemaker.store.blobs import BlobNotFound, BlobStore, open_blob_store

MANIFEST = "manifest.json"
KEY_FILES = ("credentials.json", "access-keys.kek")
FORMAT = 1


def _blobs(settings: Settings) -> BlobStore:
    return open_blob_store(settings.resolved_blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                           cache_dir=settings.cache_dir)


def _copy_blobs(blobs: BlobStore, folder: Path, skip: set[str]) -> set[str]:
    """Copy every blob not in `skip` into `folder`; return the keys copied (a blob deleted meanwhile is skipped)."""
    copied = set()
    for key in blobs.list(""):
        if key in skip:
            continue
        try:
            blobs.get_file(key, folder / key)
        except (BlobNotFound, FileNotFoundError):
            continue
        copied.add(key)
    return copied


def backup(settings: Settings, dest: Path) -> dict[str, Any]:
    """Write a backup of the state `settings` names into the new folder `dest`; return its manifest."""
    if dest.exists() and any(dest.iterdir()):
        raise CommandFailed(f"{dest} is not empty: a backup goes into a new (or empty) folder.")
    dest.mkdir(parents=True, exist_ok=True)
    started = time.time()
    blobs = _blobs(settings)
    blob_dir = dest / "blobs"
    saved = _copy_blobs(blobs, blob_dir, set())
    copy = snapshot.dump(settings.resolved_db_url, dest)
    saved |= _copy_blobs(blobs, blob_dir, saved)
    missing = sorted(k for k in copy.blob_keys if k not in saved)
    missing += sorted(p for p in copy.blob_prefixes if not any(k.startswith(p) for k in saved))
    if missing:
        raise CommandFailed(f"{len(missing)} blob(s) that the copied database points to were deleted while the "
                            f"backup ran (e.g. {missing[0]}); run the backup again.")
    keys = [name for name in KEY_FILES if (settings.data_dir / name).exists()]
    for name in keys:
        shutil.copy2(settings.data_dir / name, dest / name)
    manifest = {
        "format": FORMAT, "tastemaker_version": __version__, "started_at": started, "finished_at": time.time(),
        "database": {"kind": copy.kind, "file": copy.file.name, "revision": copy.revision, "rows": copy.counts},
        "blobs": {"source": blobs.url, "count": len(saved), "bytes": sum(p.stat().st_size
                                                                          for p in blob_dir.rglob("*") if p.is_file())},
        "key_files": keys,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    for path in [dest, *dest.rglob("*")]:  # it holds keys and user data: owner only
        path.chmod(0o700 if path.is_dir() else 0o600)
    return manifest


def restore(settings: Settings, source: Path) -> dict[str, Any]:
    """Bring the backup in `source` into the (empty) stores `settings` names; return its manifest."""
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise CommandFailed(f"{source} is not a Tastemaker backup (no {MANIFEST}).")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise CommandFailed(f"{source} was written in backup format {manifest.get('format')}; this version reads "
                            f"format {FORMAT}.")
    clashes = [name for name in manifest["key_files"] if (settings.data_dir / name).exists()]
    if clashes:
        raise CommandFailed(f"{settings.data_dir} already has {', '.join(clashes)}: restore into a new data dir.")
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = manifest["database"]
    snapshot.restore(database["kind"], source / database["file"], settings.resolved_db_url)
    blobs = _blobs(settings)
    blob_dir = source / "blobs"
    for path in sorted(blob_dir.rglob("*")):
        if path.is_file():
            blobs.put_file(path.relative_to(blob_dir).as_posix(), path)
    for name in manifest["key_files"]:
        shutil.copy2(source / name, settings.data_dir / name)
        (settings.data_dir / name).chmod(0o600)
    return manifest


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", type=Path, help="a new folder for the backup")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="a folder written by `tastemaker backup`")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    manifest = backup(settings, args.dest)
    rows = manifest["database"]["rows"]
    print(f"backed up {rows['resources']} resources, {rows['events']} events and {manifest['blobs']['count']} "
          f"blobs ({manifest['blobs']['bytes']:,} bytes) into {args.dest} in "
          f"{manifest['finished_at'] - manifest['started_at']:.1f} s")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    manifest = restore(settings, args.source)
    rows = manifest["database"]["rows"]
    print(f"restored {rows['resources']} resources, {rows['events']} events and {manifest['blobs']['count']} blobs "
          f"from {args.source}; start the server with the same --data-dir / --db-url / --blob-url (it migrates "
          "the database to this version on start)")
    return 0
