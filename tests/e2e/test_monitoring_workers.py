"""End-to-end: with `serve --workers 2` the figures of both API workers and of the parent that runs the jobs add
up in /metrics and in the CloudWatch API, whichever worker answers (issue 17: metrics across processes), and an
import's DatasetSize in bytes."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.test_monitoring import signed_get
from tests.e2e.util import wait_status


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, import_root: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("workers"), import_roots=[import_root], extra_args=["--workers", "2"])
    srv.start(timeout=120)
    yield srv
    srv.stop()


def _workers_that_counted(srv: LocalServer, operation: str) -> int:
    count = 0
    for path in (srv.data_dir / "metrics").glob("*-*.json"):
        data = orjson.loads(path.read_bytes())
        count += any(s["name"] == operation and s["requests"] for s in data["series"])
    return count


def _exposed(srv: LocalServer, line_start: str) -> float | None:
    status, body = signed_get(srv, "/metrics", srv.secret_key)
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return None


def test_counts_of_two_workers_and_the_job_runner_add_up(two: LocalServer, import_root: Path) -> None:
    sent = 0
    deadline = time.time() + 120
    while _workers_that_counted(two, "ListRecipes") < 2:  # until both workers have answered some
        assert time.time() < deadline, "one worker took every connection"
        for _ in range(5):
            two.client("personalize").list_recipes()  # a new client: a new connection, either worker
            sent += 1
        time.sleep(1.2)  # a worker writes its figures every second
    ok = 'tastemaker_requests_total{operation="ListRecipes",status="2xx"} '
    deadline = time.time() + 30
    while _exposed(two, ok) != sent:  # every worker's last second reaches its file
        assert time.time() < deadline, (_exposed(two, ok), sent)
        time.sleep(0.3)
    for _ in range(6):  # the same total whichever worker answers
        assert _exposed(two, ok) == sent

    # a job runs in the supervising parent; its figures are readable through either worker
    personalize = two.client("personalize")
    suffix = uuid.uuid4().hex[:8]
    group = personalize.create_dataset_group(name=f"w-{suffix}")["datasetGroupArn"]
    schema = personalize.create_schema(name=f"w-{suffix}", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=f"w-{suffix}", schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    data = write_dataset(import_root / f"workers-{suffix}")["interactions"]
    job = personalize.create_dataset_import_job(jobName=f"w-{suffix}", datasetArn=dataset,
                                                dataSource={"dataLocation": str(data)},
                                                roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    cloudwatch = two.client("cloudwatch")
    now = datetime.now(UTC)

    def imports() -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Personalize", MetricName="DatasetImportJobRequests", Statistics=["Sum"],
            Dimensions=[{"Name": "DatasetArn", "Value": dataset}], StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5), Period=3600)["Datapoints"]
        return sum(p["Sum"] for p in points)

    deadline = time.time() + 30
    while imports() != 1:
        assert time.time() < deadline
        time.sleep(0.3)
    assert _exposed(two, f'DatasetImportJobRequests_total{{DatasetArn="{dataset}"}} ') == 1
    size = cloudwatch.get_metric_statistics(  # DatasetSize: the bytes the import read
        Namespace="AWS/Personalize", MetricName="DatasetSize", Statistics=["Sum", "SampleCount"],
        Dimensions=[{"Name": "DatasetArn", "Value": dataset}], StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5), Period=3600)["Datapoints"]
    assert [(p["Sum"], p["SampleCount"], p["Unit"]) for p in size] == [(data.stat().st_size, 1, "Bytes")]
    assert _exposed(two, f'DatasetSize_sum{{DatasetArn="{dataset}"}} ') == data.stat().st_size
    files = [p.name for p in (two.data_dir / "metrics").glob("*.json")]
    assert len(files) == 3 and all(re.fullmatch(r"\d+-[0-9a-f]{8}\.json", name) for name in files)
