"""Migration 0009_events_group_index: `tastemaker db upgrade` adds the (dataset_group_arn, id) index to a
database at 0008 on SQLite and PostgreSQL (mandatory under CI=true), the index is the one store/tables.py
declares, and PostgreSQL answers a group's newest events (store.events.newest) through it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tastemaker.store import db
from tastemaker.store import events as stored_events
from tastemaker.store.tables import events
from tests.conftest import POSTGRES_URL, need_service

INDEX = "ix_events_group_id"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database (PostgreSQL: one of its own, dropped afterwards: it starts below head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    name = f"tm_index_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - reported by need_service
        need_service("PostgreSQL", "Start it on 127.0.0.1:5432 (trust auth) or set TASTEMAKER_TEST_POSTGRES_URL.",
                     False, str(exc).splitlines()[0])
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _indexes(engine: sa.Engine) -> dict[str, list[str]]:
    return {str(ix["name"]): list(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("events")}


def test_db_upgrade_adds_the_group_index_to_a_database_at_0008(url: str, tmp_path: Path) -> None:
    engine = db.create_engine(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0008_change_counter")
        assert INDEX not in _indexes(engine)
        run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--data-dir",
                              str(tmp_path / "data"), "--db-url", url], capture_output=True, text=True, timeout=120,
                             check=False, env={k: v for k, v in os.environ.items() if k != "TASTEMAKER_DB_URL"})
        assert run.returncode == 0, run.stderr
        declared = next(ix for ix in events.indexes if ix.name == INDEX)
        assert _indexes(engine)[INDEX] == [c.name for c in declared.columns] == ["dataset_group_arn", "id"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == \
                ScriptDirectory.from_config(config).get_current_head()  # 0009 and every later migration
            if conn.dialect.name == "postgresql":  # a quiet group's newest events: a walk of the new index
                conn.execute(events.insert(), [  # g1's 30 old rows, then 3,000 of a busy group
                    {"dataset_group_arn": "g1" if n < 30 else "g0", "event_id": f"e{n}", "session_id": "s", "user_id": f"u{n}",
                     "item_id": "i", "event_type": "click", "sent_at": 0.0, "record": {}, "received_at": 0.0}
                    for n in range(3030)])
                conn.execute(sa.text("ANALYZE events"))
                conn.execute(sa.text("SET enable_seqscan = off"))
                newest = stored_events._stored_rows().where(events.c.dataset_group_arn == "g1") \
                    .order_by(events.c.id.desc()).limit(20)
                compiled = newest.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {compiled}")))
                assert INDEX in plan, plan
                conn.rollback()
    finally:
        engine.dispose()
