"""End-to-end: two `tastemaker serve` replicas with their own data directories (as on two hosts) and one
PostgreSQL database: the traffic each answers is readable through the other's CloudWatch API (issue 17 across
the replicas of issue 21), because every process publishes its per-minute figures to the metadata store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.faults.harness import fresh_database

pytestmark = [pytest.mark.postgres]
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/replicated-{}"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[list[LocalServer]]:
    root = tmp_path_factory.mktemp("metric-replicas")
    db_url = fresh_database(postgres_url)
    env = {"TASTEMAKER_DB_URL": db_url}
    subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--data-dir", str(root / "admin")],
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
    servers = [LocalServer(root / name, env=env) for name in ("a", "b")]
    try:
        for server in servers:
            server.start(timeout=120)
        yield servers
    finally:
        for server in servers:
            server.stop()
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def _ask(server: LocalServer, campaign: str, times: int) -> None:
    runtime = server.client("personalize-runtime")
    for _ in range(times):
        with pytest.raises(ClientError) as caught:  # no such campaign: a counted 4xx call
            runtime.get_recommendations(campaignArn=campaign, userId="u1")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _sums(server: LocalServer, campaign: str) -> tuple[float, float]:
    """(GetRecommendations, GetRecommendations4xxErrors) sums for the campaign, through GetMetricStatistics and
    GetMetricData of `server`'s CloudWatch API (they must agree). Another replica's publish can land between two
    reads, so GetMetricStatistics is read before and after GetMetricData: when both say the same (counts only
    grow), GetMetricData in between must say it too; otherwise the reading is taken again."""
    cloudwatch = server.client("cloudwatch")
    dims = [{"Name": "CampaignArn", "Value": campaign}]
    names = ("GetRecommendations", "GetRecommendations4xxErrors")

    def statistics(window: dict) -> list[float]:
        return [sum(p["Sum"] for p in cloudwatch.get_metric_statistics(
            Namespace="AWS/Personalize", MetricName=name, Dimensions=dims, Statistics=["Sum"], Period=3600,
            **window)["Datapoints"]) for name in names]

    for _ in range(20):
        now = datetime.now(UTC)
        window = {"StartTime": now - timedelta(hours=1), "EndTime": now + timedelta(minutes=5)}
        before = statistics(window)
        data = cloudwatch.get_metric_data(MetricDataQueries=[
            {"Id": f"m{n}", "MetricStat": {"Metric": {"Namespace": "AWS/Personalize", "MetricName": name,
                                                      "Dimensions": dims}, "Period": 3600, "Stat": "Sum"}}
            for n, name in enumerate(names)], **window)
        after = statistics(window)
        if before == after:
            by_id = {r["Id"]: sum(r["Values"]) for r in data["MetricDataResults"]}
            assert [by_id["m0"], by_id["m1"]] == before
            return before[0], before[1]
    raise AssertionError("the figures kept changing between reads for 20 tries")


def _until(server: LocalServer, campaign: str, expected: tuple[float, float]) -> None:
    deadline = time.time() + 60
    while (found := _sums(server, campaign)) != expected:
        assert time.time() < deadline, (found, expected)
        time.sleep(0.5)


def test_traffic_on_one_replica_is_read_through_the_other(replicas: list[LocalServer]) -> None:
    a, b = replicas
    campaign = CAMPAIGN.format(time.time_ns())
    _ask(a, campaign, 4)
    assert _sums(a, campaign) == (4, 4)  # its own calls: at once
    _until(b, campaign, (4, 4))  # the other replica's: after a publish
    listed = b.client("cloudwatch").list_metrics(
        Namespace="AWS/Personalize", Dimensions=[{"Name": "CampaignArn", "Value": campaign}])["Metrics"]
    assert {m["MetricName"] for m in listed} >= {"GetRecommendations", "GetRecommendations4xxErrors"}

    _ask(b, campaign, 3)  # both replicas' calls add up, whichever answers
    _until(a, campaign, (7, 7))
    _until(b, campaign, (7, 7))


def test_the_figures_outlive_the_replica_that_answered(replicas: list[LocalServer]) -> None:
    a, b = replicas
    campaign = CAMPAIGN.format(time.time_ns())
    _ask(b, campaign, 2)
    _until(a, campaign, (2, 2))
    b.kill()  # kill -9 (the last test of the module): its rows stay in the store until they age out
    for _ in range(3):
        assert _sums(a, campaign) == (2, 2)
