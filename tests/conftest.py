"""Shared fixtures: a moto S3 server, and CI-aware access to PostgreSQL and Redis; how pytest-xdist splits the suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("TASTEMAKER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TASTEMAKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadfile`). Each worker is its own session:
# its own session-wide servers, PostgreSQL database and browser. A test file runs whole on one worker, so its
# module-scoped servers start once; the files under these prefixes share a costly fixture and run on one
# worker together.
SHARED_SESSION_GROUPS = {
    "tests/console/": "console",  # one headless Chromium and one console server
    "tests/e2e/test_spark": "spark",  # one Spark JVM (local[2]) behind the session's Spark server
}


# The longest units (minutes each on two cores) go out first, so that neither worker is left alone with one of them
# at the end of the run; the rest follow in collection order.
HEAVY_FIRST = ("spark", "tests/faults/test_fault_injection.py", "tests/e2e/test_replicas.py")


def xdist_group(nodeid: str) -> str:
    """The unit of work a worker takes whole: a test's file, or the group of the shared session fixture it uses."""
    path = nodeid.split("::", 1)[0]
    return next((group for prefix, group in SHARED_SESSION_GROUPS.items() if path.startswith(prefix)), path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the groups above: a file-by-file split that keeps each group on one worker. After the
    HEAVY_FIRST units, units go out in collection order (not by test count), so a worker meets each test package
    about once and its package-scoped servers (tests/e2e, tests/console, tests/docs) start once or twice per worker."""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist mode asked for by hand: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class FileOrGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            for unit in reversed(HEAVY_FIRST):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return FileOrGroupScheduling(config, log)


def need_service(name: str, how: str, reachable: bool, detail: str = "") -> None:
    """Skip outside CI when a real service is missing; fail under CI=true, where it is mandatory."""
    if reachable:
        return
    message = f"{name} is not reachable ({detail}). {how}"
    if IN_CI:
        pytest.fail(f"CI=true makes the {name} tests mandatory: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A real S3 protocol endpoint (moto's server mode) on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_bucket(moto_s3: str) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    name = f"tm-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a fresh PostgreSQL database; mandatory under CI, skipped elsewhere when unreachable."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = f"tm_test_{uuid.uuid4().hex[:10]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:
        need_service("PostgreSQL", "Start it on 127.0.0.1:5432 (trust auth) or set TASTEMAKER_TEST_POSTGRES_URL.",
                     False, str(exc).splitlines()[0])
        raise
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis database for tests; mandatory under CI, skipped elsewhere when unreachable."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        need_service("Redis", "Start it on 127.0.0.1:6379 or set TASTEMAKER_TEST_REDIS_URL.", False, str(exc))
    return REDIS_URL


# The metadata stores a store-level test runs on; with `store_engine` a module's `engine` fixture is two lines:
#   @pytest.fixture(params=STORES)
#   def engine(request, tmp_path): yield from store_engine(request, tmp_path, clear=("resources",))
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def store_engine(request: pytest.FixtureRequest, tmp_path: Path, clear: tuple[str, ...]) -> Iterator[Any]:
    """A migrated metadata store: a new SQLite file, or the session's PostgreSQL database with the `clear` tables
    emptied first (that database is shared by the session's tests; seeded tables such as the change counter
    keep their rows)."""
    import sqlalchemy as sa

    from tastemaker.store import db

    url = f"sqlite:///{tmp_path / 'meta.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    eng = db.create_engine(url)
    db.upgrade(eng)
    with eng.begin() as conn:
        for table in clear:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    yield eng
    eng.dispose()
