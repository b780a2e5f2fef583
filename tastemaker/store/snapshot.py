"""Consistent copies of the metadata database while the server keeps writing, and their restore.

SQLite: the online backup API copies every page in one step under a read transaction, so the copy holds exactly
the transactions committed before it began (WAL lets writers go on meanwhile). PostgreSQL: a REPEATABLE READ
transaction exports its snapshot, the blob references are read in it, and `pg_dump --snapshot` dumps that same
snapshot, so the references and the dump agree. Restores go only into an empty database.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from tastemaker.errors import InvalidInputException
from tastemaker.store import db
from tastemaker.store.tables import dataset_parts, events, resources

SQLITE_FILE = "metadata.sqlite3"
POSTGRES_FILE = "metadata.pgdump"


@dataclass
class Snapshot:
    """What a metadata copy holds: its file, schema revision and the blobs its rows point to."""

    kind: str  # "sqlite" | "postgresql"
    file: Path
    revision: str | None
    blob_keys: set[str] = field(default_factory=set)  # dataset parts
    blob_prefixes: set[str] = field(default_factory=set)  # model folders
    counts: dict[str, int] = field(default_factory=dict)


def sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        raise InvalidInputException(f"{url} is not a SQLite file that can be backed up or restored.")
    return Path(path)


def libpq_url(url: str) -> str:
    """postgresql+psycopg://... -> postgresql://... (what pg_dump and pg_restore understand)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def references(conn: sa.Connection) -> tuple[set[str], set[str]]:
    """Blob keys (dataset parts) and blob folders (model artifacts) that the rows in `conn`'s view point to."""
    keys = {str(k) for k in conn.execute(sa.select(dataset_parts.c.blob_key)).scalars()}
    prefixes = set()
    for body in conn.execute(sa.select(resources.c.body)).scalars():
        prefix = (body or {}).get("model_prefix")
        if prefix:
            prefixes.add(str(prefix))
    return keys, prefixes


def _describe(conn: sa.Connection, snapshot: Snapshot) -> Snapshot:
    snapshot.blob_keys, snapshot.blob_prefixes = references(conn)
    snapshot.counts = {name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                       for name, table in (("resources", resources), ("dataset_parts", dataset_parts),
                                           ("events", events))}
    snapshot.revision = revision(conn)
    return snapshot


def revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def dump(url: str, dest_dir: Path) -> Snapshot:
    """Copy the live database at `url` into `dest_dir` (consistently, while it is being written)."""
    path = sqlite_path(url)
    if path is not None:
        target = dest_dir / SQLITE_FILE
        source = sqlite3.connect(path, timeout=30)
        try:
            with contextlib.closing(sqlite3.connect(target)) as copy:
                source.backup(copy)  # pages=-1: one step, one read snapshot
        finally:
            source.close()
        engine = sa.create_engine(f"sqlite:///{target}")
        try:
            with engine.connect() as conn:
                return _describe(conn, Snapshot("sqlite", target, None))
        finally:
            engine.dispose()
    if shutil.which("pg_dump") is None:
        raise InvalidInputException("pg_dump is not on PATH: install the PostgreSQL client tools to back up "
                                    "a PostgreSQL metadata database.")
    target = dest_dir / POSTGRES_FILE
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                exported = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                snapshot = _describe(conn, Snapshot("postgresql", target, None))
                run = subprocess.run(["pg_dump", "--format=custom", f"--snapshot={exported}", "--file", str(target),
                                      "--no-owner", "--no-privileges", libpq_url(url)],
                                     capture_output=True, text=True, check=False)
                if run.returncode != 0:
                    raise InvalidInputException(f"pg_dump failed: {run.stderr.strip()}")
                return snapshot
    finally:
        engine.dispose()


def is_empty(url: str) -> bool:
    """True when the database at `url` has no Tastemaker tables yet (a restore target)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return True
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            return not sa.inspect(conn).has_table("resources")
    finally:
        engine.dispose()


def restore(kind: str, file: Path, url: str) -> None:
    """Load a copy made by `dump` into the empty database at `url` (same kind: SQLite or PostgreSQL)."""
    path = sqlite_path(url)
    if (path is not None) != (kind == "sqlite"):
        target = "a SQLite file" if path is not None else "PostgreSQL"
        raise InvalidInputException(f"The backup holds a {kind} database and --db-url names {target}; restore it "
                                    f"into the same kind (--db-url), then move data between kinds yourself.")
    if not is_empty(url):
        raise InvalidInputException(f"The database at {url} already holds Tastemaker data; restore into an empty "
                                    "one (a new --data-dir, or a freshly created PostgreSQL database).")
    if path is not None:
        db.make_private(path.parent, directory=True)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        temp = path.with_name(path.name + ".restoring")
        shutil.copyfile(file, temp)
        temp.chmod(0o600)
        temp.replace(path)
        return
    if shutil.which("pg_restore") is None:
        raise InvalidInputException("pg_restore is not on PATH: install the PostgreSQL client tools.")
    run = subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname",
                          libpq_url(url), str(file)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise InvalidInputException(f"pg_restore failed: {run.stderr.strip()}")
