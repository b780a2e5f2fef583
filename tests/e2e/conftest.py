"""A live Tastemaker server and boto3 clients for end-to-end tests.

The shared servers are package-scoped: they stop when tests/e2e is done instead of idling through the rest of the
session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer


@pytest.fixture(scope="package")
def import_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("import-root")


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, import_root: Path, moto_s3: str) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("server")
    srv = LocalServer(data_dir, import_roots=[import_root],
                      env={"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "TASTEMAKER_JOB_STALE_SECONDS": "3",
                           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="package")
def personalize(server: LocalServer):  # type: ignore[no-untyped-def]
    return server.client("personalize")


@pytest.fixture(scope="package")
def runtime(server: LocalServer):  # type: ignore[no-untyped-def]
    return server.client("personalize-runtime")


@pytest.fixture(scope="package")
def events(server: LocalServer):  # type: ignore[no-untyped-def]
    return server.client("personalize-events")


SPARK_MIN_LINES = 30  # batch files with fewer plain lines than this stay in-process on the Spark server
SPARK_MIN_IMPORT_BYTES = 200_000  # smaller imports stay in-process on the Spark server
SPARK_MIN_SEGMENT_USERS = 200  # segment jobs of models with fewer users stay in-process on the Spark server
SPARK_MIN_INTERACTIONS = 1_000  # trainings on fewer interactions fit their ALS factors in-process there


@pytest.fixture(scope="package")
def spark_server(tmp_path_factory: pytest.TempPathFactory, import_root: Path, moto_s3: str) -> Iterator[LocalServer]:
    """One server for tests/e2e with TASTEMAKER_SPARK_MASTER=local[2] (one JVM for every Spark test)."""
    pytest.importorskip("pyspark")
    srv = LocalServer(tmp_path_factory.mktemp("spark-server"), import_roots=[import_root],
                      env={"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "TASTEMAKER_SPARK_MASTER": "local[2]",
                           "TASTEMAKER_SPARK_MIN_LINES": str(SPARK_MIN_LINES),
                           "TASTEMAKER_SPARK_MIN_IMPORT_BYTES": str(SPARK_MIN_IMPORT_BYTES),
                           "TASTEMAKER_SPARK_MIN_SEGMENT_USERS": str(SPARK_MIN_SEGMENT_USERS),
                           "TASTEMAKER_SPARK_MIN_INTERACTIONS": str(SPARK_MIN_INTERACTIONS)})
    srv.start()
    yield srv
    srv.stop()
