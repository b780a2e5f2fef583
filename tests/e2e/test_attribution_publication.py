"""Metric attribution published (issue 19): attributed metrics through /metrics and the CloudWatch read API,
PutMetricData to CloudWatch (moto's server), bulk INCREMENTAL imports counted beside PutEvents, the S3 report
file of an import that asks for it, and UpdateMetricAttribution's changes acting on what counts next."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA
from tests.e2e.test_monitoring import signed_get
from tests.e2e.util import wait_status

NAMESPACE = "Tastemaker/Attribution"
SCHEMA = dict(INTERACTIONS_SCHEMA, fields=[*INTERACTIONS_SCHEMA["fields"],
                                           {"name": "RECOMMENDATION_ID", "type": ["null", "string"]},
                                           {"name": "EVENT_ATTRIBUTION_SOURCE", "type": ["null", "string"]}])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.time() + timeout
    while True:
        found = condition()
        if found or time.time() > deadline:
            assert found, "not within the time allowed"
            return found
        time.sleep(0.3)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, import_root: Path, moto_s3: str) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("attribution-pub"), import_roots=[import_root], env={
        "TASTEMAKER_MAINTENANCE_SECONDS": "0.3", "TASTEMAKER_ATTRIBUTION_CLOUDWATCH_NAMESPACE": NAMESPACE,
        "AWS_ENDPOINT_URL_CLOUDWATCH": moto_s3, "TASTEMAKER_S3_ENDPOINT_URL": moto_s3,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    server.start()
    yield server
    server.stop()


def test_attributed_metrics_are_published_and_bulk_imports_count(srv: LocalServer, moto_s3: str,
                                                                 import_root: Path) -> None:
    moto = {"endpoint_url": moto_s3, "region_name": "us-east-1"}
    bucket = unique("reports")
    boto3.client("s3", **moto).create_bucket(Bucket=bucket)
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=unique("pub"))["datasetGroupArn"]
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    arn = personalize.create_metric_attribution(
        name=unique("impact"), datasetGroupArn=group,
        metrics=[{"eventType": "click", "metricName": "CLICKS", "expression": "SAMPLECOUNT()"},
                 {"eventType": "purchase", "metricName": "VALUE", "expression": "SUM(Interactions.EVENT_VALUE)"}],
        metricsOutputConfig={"roleArn": "arn:aws:iam::000000000000:role/R",
                             "s3DataDestination": {"path": f"s3://{bucket}/reports/"}})["metricAttributionArn"]
    wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn), "metricAttribution")
    tracker = personalize.create_event_tracker(name=unique("trk"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    now = time.time()
    events = srv.client("personalize-events")
    streamed = [("click", "newsletter", None)] * 4 + [("purchase", "newsletter", 2.5)] * 3 + \
        [("click", None, None)] * 2  # no source: not attributed
    for k, (event_type, source, value) in enumerate(streamed):
        event: dict[str, Any] = {"eventType": event_type, "itemId": f"i{k}", "sentAt": now}
        if source:
            event["metricAttribution"] = {"eventAttributionSource": source}
        if value is not None:
            event["eventValue"] = value
        events.put_events(trackingId=tracker["trackingId"], userId="u1", sessionId="s1", eventList=[event])

    rows = [("click", "newsletter", ""), ("click", "newsletter", ""), ("purchase", "partner", "4.0"),
            ("click", "", "")]  # the last has no source: SOURCE_NAME_UNDEFINED in the S3 report only
    data = import_root / unique("bulk") / "interactions.csv"
    data.parent.mkdir(parents=True)
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE", "RECOMMENDATION_ID",
                         "EVENT_ATTRIBUTION_SOURCE"])
        for k, (event_type, source, value) in enumerate(rows):
            writer.writerow([f"u{k}", f"b{k}", int(now), event_type, value, "", source])
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(data)},
        importMode="INCREMENTAL", publishAttributionMetricsToS3=True,
        roleArn="arn:aws:iam::000000000000:role/R")["datasetImportJobArn"]
    assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"

    expected = {("CLICKS", "newsletter"): 6.0, ("VALUE", "newsletter"): 7.5, ("VALUE", "partner"): 4.0}
    window = {"StartTime": datetime.now(UTC) - timedelta(hours=1), "EndTime": datetime.now(UTC) + timedelta(hours=1),
              "Period": 3600, "Statistics": ["Sum"]}

    def ours(metric: str, source: str) -> float:
        points = srv.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Personalize", MetricName=metric, Dimensions=[
                {"Name": "EventAttributionSource", "Value": source}, {"Name": "MetricAttributionArn", "Value": arn}],
            **window)["Datapoints"]
        return sum(p["Sum"] for p in points)

    def published(metric: str, source: str) -> float:
        points = boto3.client("cloudwatch", **moto).get_metric_statistics(
            Namespace=NAMESPACE, MetricName=metric, Dimensions=[
                {"Name": "EventAttributionSource", "Value": source}, {"Name": "DatasetGroupArn", "Value": group}],
            **window)["Datapoints"]
        return sum(p["Sum"] for p in points)

    wait_for(lambda: all(ours(m, s) == v for (m, s), v in expected.items()))
    wait_for(lambda: all(published(m, s) == v for (m, s), v in expected.items()))
    listed = srv.client("cloudwatch").list_metrics(Namespace="AWS/Personalize", MetricName="CLICKS")["Metrics"]
    assert [m["Dimensions"] for m in listed] == [[{"Name": "EventAttributionSource", "Value": "newsletter"},
                                                  {"Name": "MetricAttributionArn", "Value": arn}]]
    status, body = signed_get(srv, "/metrics", srv.secret_key)
    text = body.decode()
    assert status == 200
    assert (f'tastemaker_attributed_value_total{{event_type="purchase",metric="VALUE",'
            f'metric_attribution_arn="{arn}",source="newsletter"}} 7.5') in text
    assert (f'tastemaker_attributed_events_total{{event_type="click",metric="CLICKS",'
            f'metric_attribution_arn="{arn}",source="newsletter"}} 6.0') in text

    s3 = boto3.client("s3", **moto)
    (key,) = wait_for(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/")
                                .get("Contents", [])])
    assert key.startswith("reports/AggregatedAttributionMetrics-INCREMENTAL-") and key.endswith(".csv")
    report = list(csv.DictReader(io.StringIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())))
    window_start = int(now) // 900 * 900
    assert sorted((r["METRIC_NAME"], r["EVENT_TYPE"], float(r["VALUE"]), r["MATH_FUNCTION"],
                   r["EVENT_ATTRIBUTION_SOURCE"], int(r["TIMESTAMP"])) for r in report) == [
        ("CLICKS", "click", 1.0, "samplecount", "SOURCE_NAME_UNDEFINED", window_start),
        ("CLICKS", "click", 2.0, "samplecount", "newsletter", window_start),
        ("VALUE", "purchase", 4.0, "sum", "partner", window_start)]

    # UpdateMetricAttribution goes through CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE again (a job), and
    # acts: a removed metric stops counting (and its figures go), an added one starts
    personalize.update_metric_attribution(
        metricAttributionArn=arn, removeMetrics=["CLICKS"],
        addMetrics=[{"eventType": "click", "metricName": "CLICKS_AFTER", "expression": "SAMPLECOUNT()"}])
    assert wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn),
                       "metricAttribution")["status"] == "ACTIVE"
    lifecycle = wait_for(lambda: [line for line in srv.log_path.read_text().splitlines()
                                  if "activate: CREATE PENDING -> ACTIVE" in line and f"arn={arn} " in line][1:])
    assert len(lifecycle) == 1  # the create's activation, then the update's
    for k in range(3):
        events.put_events(trackingId=tracker["trackingId"], userId="u2", sessionId="s2", eventList=[
            {"eventType": "click", "itemId": f"x{k}", "sentAt": time.time(),
             "metricAttribution": {"eventAttributionSource": "newsletter"}}])
    wait_for(lambda: ours("CLICKS_AFTER", "newsletter") == 3.0)
    assert ours("CLICKS", "newsletter") == 0.0
    names = [m["metricName"] for m in personalize.list_metric_attribution_metrics(metricAttributionArn=arn)["metrics"]]
    assert names == ["VALUE", "CLICKS_AFTER"]
