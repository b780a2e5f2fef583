"""One suite for the metadata store, run against SQLite and PostgreSQL (mandatory under CI=true)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tastemaker.errors import (
    InvalidNextTokenException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from tastemaker.store import db, queue, resources
from tastemaker.store.tables import dataset_parts
from tests.conftest import STORES, store_engine


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from store_engine(request, tmp_path, clear=("resources", "tags", "dataset_parts", "jobs", "events"))


def add(conn: sa.Connection, name: str, kind: str = "dataset_group", **extra: object) -> resources.Resource:
    arn = f"arn:aws:personalize:us-east-1:000000000000:{kind}/{name}"
    return resources.insert(conn, arn=arn, kind=kind, body={"name": name}, status="CREATE PENDING",
                            name_key=f"000000000000/us-east-1/{name}", **extra)  # type: ignore[arg-type]


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    from alembic.script import ScriptDirectory

    db.upgrade(engine)
    head = ScriptDirectory(str(db.MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head


def test_insert_get_update_and_uniqueness(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        res = add(conn, "g1")
    with engine.begin() as conn:
        got = resources.get(conn, res.arn, "dataset_group")
        assert got.body["name"] == "g1" and got.status == "CREATE PENDING"
        assert got.body["creation_date_time"] == got.body["last_updated_date_time"]
        resources.update(conn, res.arn, status="CREATE IN_PROGRESS", changes={"domain": "ECOMMERCE"})
    with engine.connect() as conn:
        got = resources.get(conn, res.arn)
        assert got.status == "CREATE IN_PROGRESS" and got.body["status"] == "CREATE IN_PROGRESS" and got.body["domain"] == "ECOMMERCE"
    with pytest.raises(ResourceAlreadyExistsException), engine.begin() as conn:
        add(conn, "g1")
    with pytest.raises(ResourceNotFoundException), engine.connect() as conn:
        resources.get(conn, res.arn + "x")


def test_a_failed_transaction_changes_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        res = add(conn, "g2")
        conn.execute(dataset_parts.insert().values(dataset_arn=res.arn, origin="BULK", blob_key="old", rows=1,
                                                   created_at=1.0))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(dataset_parts.delete().where(dataset_parts.c.dataset_arn == res.arn))
        conn.execute(dataset_parts.insert().values(dataset_arn=res.arn, origin="BULK", blob_key="new", rows=1,
                                                   created_at=2.0))
        raise RuntimeError("crash before commit")
    with engine.connect() as conn:
        keys = [r.blob_key for r in conn.execute(sa.select(dataset_parts.c.blob_key))]
    assert keys == ["old"]


def test_pagination_walks_everything_once(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i in range(7):
            add(conn, f"p{i}")
    seen, token = [], None
    while True:
        with engine.connect() as conn:
            page, token = resources.page(conn, kind="dataset_group", next_token=token, max_results=3)
        seen += [r.body["name"] for r in page]
        if token is None:
            break
    assert seen == [f"p{i}" for i in range(7)]
    with pytest.raises(InvalidNextTokenException), engine.connect() as conn:
        resources.page(conn, kind="dataset_group", next_token="garbage", max_results=3)


def test_tags_round_trip(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        res = add(conn, "t1")
        resources.put_tags(conn, res.arn, [{"tag_key": "a", "tag_value": "1"}, {"tag_key": "b", "tag_value": "2"}])
        resources.put_tags(conn, res.arn, [{"tag_key": "a", "tag_value": "3"}])
        resources.remove_tags(conn, res.arn, ["b"])
        assert resources.get_tags(conn, res.arn) == [{"tag_key": "a", "tag_value": "3"}]


def test_job_queue_claims_each_job_once(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for i in range(20):
            queue.enqueue(conn, "activate", f"arn:{i}")
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            job = queue.claim(engine, name)
            if job is None:
                return
            with lock:
                claimed.append(job.id)
            with engine.begin() as conn:
                queue.finish(conn, job)

    threads = [threading.Thread(target=worker, args=(f"w{i}:1",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 20


def test_jobs_of_a_dead_worker_are_found(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        queue.enqueue(conn, "import", "arn:x")
    job = queue.claim(engine, "this-host-does-not-matter:999999999")
    assert job is not None
    lost = queue.orphaned(engine, stale_seconds=0.0)
    assert [j.id for j in lost] == [job.id]
    with engine.begin() as conn:
        queue.requeue(conn, job)
    again = queue.claim(engine, "w:1")
    assert again is not None and again.id == job.id and again.attempts == 2
