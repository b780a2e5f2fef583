"""The metadata database: engine set-up (SQLite WAL or PostgreSQL) and Alembic upgrades."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x746D6D67  # PostgreSQL advisory lock key taken by upgrade() ("tmmg")
READ_ONLY = "tastemaker_read_only"


def read_only(engine: sa.Engine) -> sa.Engine:
    """The same engine (and pool) for read-only work: on SQLite its transactions take no write lock."""
    return engine.execution_options(**{READ_ONLY: True})


def make_private(path: Path, *, directory: bool) -> None:
    """Create `path` (a directory, or an empty file) readable by its owner only, or take group and other
    permissions away from an existing one: the database and the data directory hold keys and user data."""
    if directory:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    mode = path.stat().st_mode
    if mode & 0o077:
        path.chmod(mode & 0o700)


def create_engine(url: str) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys, and a file (with its -wal and
    -shm, which SQLite creates with the database's permissions) that only the owner can read."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            db_file = Path(path)
            db_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for file in (db_file, Path(f"{path}-wal"), Path(f"{path}-shm")):
                if file == db_file or file.exists():
                    make_private(file, directory=False)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Python's sqlite3 opens transactions lazily; take the write lock at BEGIN so two
            # writers never deadlock on a read-to-write upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Readers (see read_only) start deferred so they never queue behind a writer in WAL mode.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest Alembic revision.

    Processes that start together (replicas, workers, `db upgrade`) take turns: on PostgreSQL the transaction
    first takes a transaction-scoped advisory lock, so the next process waits, then finds the schema at head and
    does nothing (SQLite's BEGIN IMMEDIATE serialises them already)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
