"""End-to-end: request and job logs, request ids, health, Prometheus /metrics and the CloudWatch read API,
through boto3 against a live server (issue 17 items 1, 2, 4)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

SECRET = "monitoring-secret-never-logged-0123456789"
KEY = "TMKMONITORKEY0000001"
POPULARITY = "arn:aws:personalize:::recipe/aws-popularity-count"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory, import_root: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("monitoring"), import_roots=[import_root], access_key=KEY,
                      secret_key=SECRET, env={"TASTEMAKER_JOB_STALE_SECONDS": "3"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def campaign(mon: LocalServer, import_root: Path) -> dict[str, Any]:
    """A popularity campaign over generated interactions, with the CreateCampaign answer kept."""
    personalize = mon.client("personalize")
    paths = write_dataset(import_root / unique("monitoring"))
    group = personalize.create_dataset_group(name=unique("mon"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    solution = personalize.create_solution(name=unique("pop"), datasetGroupArn=group,
                                           recipeArn=POPULARITY)["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                       "solutionVersion", timeout=300)["status"] == "ACTIVE"
    created = personalize.create_campaign(name=unique("camp"), solutionVersionArn=version)
    arn = created["campaignArn"]
    assert wait_status(lambda: personalize.describe_campaign(campaignArn=arn), "campaign")["status"] == "ACTIVE"
    return {"arn": arn, "request_id": created["ResponseMetadata"]["RequestId"], "dataset": dataset,
            "solution": solution, "version": version, "import_job": job}


def log_lines(srv: LocalServer, needle: str, timeout: float = 10.0) -> list[str]:
    """The server log's lines that contain `needle` (waiting for at least one)."""
    deadline = time.time() + timeout
    while True:
        found = [line for line in srv.log_path.read_text(errors="replace").splitlines() if needle in line]
        if found or time.time() > deadline:
            return found
        time.sleep(0.1)


def signed_get(srv: LocalServer, path: str, secret: str) -> tuple[int, bytes]:
    request = AWSRequest(method="GET", url=srv.url + path)
    SigV4Auth(Credentials(srv.access_key, secret), "personalize", srv.region).add_auth(request)
    prepared = urllib.request.Request(srv.url + path, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_boto3_program_reads_its_traffic_through_cloudwatch_and_its_call_through_cloudtrail(  # Must show
        mon: LocalServer, campaign: dict[str, Any]) -> None:
    runtime = mon.client("personalize-runtime")
    for user in ("u1", "u2", "u3", "u4", "u5"):
        assert runtime.get_recommendations(campaignArn=campaign["arn"], userId=user)["itemList"]
    with pytest.raises(ClientError):
        runtime.get_recommendations(campaignArn=campaign["arn"], userId="u1", numResults=100000)

    cloudwatch = mon.client("cloudwatch")
    dims = [{"Name": "CampaignArn", "Value": campaign["arn"]}]
    listed = cloudwatch.list_metrics(Namespace="AWS/Personalize", Dimensions=dims)["Metrics"]
    assert {"GetRecommendations", "GetRecommendations4xxErrors", "GetRecommendationsLatency"} <= {
        m["MetricName"] for m in listed}
    now = datetime.now(UTC)
    window = {"StartTime": now - timedelta(minutes=10), "EndTime": now + timedelta(minutes=1), "Period": 3600}
    count = cloudwatch.get_metric_statistics(Namespace="AWS/Personalize", MetricName="GetRecommendations",
                                             Dimensions=dims, Statistics=["Sum"], **window)["Datapoints"]
    assert sum(p["Sum"] for p in count) == 6  # every call, the refused one included
    errors = cloudwatch.get_metric_statistics(Namespace="AWS/Personalize", MetricName="GetRecommendations4xxErrors",
                                              Dimensions=dims, Statistics=["Sum"], **window)["Datapoints"]
    assert sum(p["Sum"] for p in errors) == 1
    latency = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "lat", "MetricStat": {"Metric": {
            "Namespace": "AWS/Personalize", "MetricName": "GetRecommendationsLatency", "Dimensions": dims},
            "Period": 3600, "Stat": "Maximum"}},
            {"Id": "n", "MetricStat": {"Metric": {
                "Namespace": "AWS/Personalize", "MetricName": "GetRecommendationsLatency", "Dimensions": dims},
                "Period": 3600, "Stat": "SampleCount"}}],
        StartTime=window["StartTime"], EndTime=window["EndTime"])["MetricDataResults"]
    by_id = {r["Id"]: r for r in latency}
    assert by_id["lat"]["Values"] and all(v > 0 for v in by_id["lat"]["Values"])
    assert sum(by_id["n"]["Values"]) == 5  # latency counts successful calls only

    cloudtrail = mon.client("cloudtrail")
    events = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": campaign["arn"]}])["Events"]
    create = [e for e in events if e["EventName"] == "CreateCampaign"]
    assert len(create) == 1
    record = json.loads(create[0]["CloudTrailEvent"])
    assert record["requestID"] == campaign["request_id"]
    assert record["userIdentity"]["accessKeyId"] == KEY
    assert record["responseElements"]["campaignArn"] == campaign["arn"]
    assert {"ResourceType": "AWS::Personalize::Campaign", "ResourceName": campaign["arn"]} in create[0]["Resources"]


def test_job_metrics_count_the_import_and_the_training(mon: LocalServer, campaign: dict[str, Any]) -> None:
    cloudwatch = mon.client("cloudwatch")
    now = datetime.now(UTC)
    window = {"StartTime": now - timedelta(hours=1), "EndTime": now + timedelta(minutes=1), "Period": 3600}
    for name, dim, arn in (("DatasetImportJobRequests", "DatasetArn", campaign["dataset"]),
                           ("SolutionTrainingJobRequests", "SolutionArn", campaign["solution"])):
        points = cloudwatch.get_metric_statistics(Namespace="AWS/Personalize", MetricName=name, Statistics=["Sum"],
                                                  Dimensions=[{"Name": dim, "Value": arn}], **window)["Datapoints"]
        assert sum(p["Sum"] for p in points) == 1, name
    seconds = cloudwatch.get_metric_statistics(
        Namespace="AWS/Personalize", MetricName="SolutionTrainingJobExecutionTime", Statistics=["Maximum"],
        Dimensions=[{"Name": "SolutionArn", "Value": campaign["solution"]}], **window)["Datapoints"]
    assert seconds and seconds[0]["Maximum"] > 0 and seconds[0]["Unit"] == "Seconds"


def test_every_response_carries_the_request_id_its_log_line_names(mon: LocalServer) -> None:
    personalize = mon.client("personalize")
    ok = personalize.list_dataset_groups()
    rid = ok["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as refused:
        personalize.describe_campaign(campaignArn="arn:aws:personalize:us-east-1:000000000000:campaign/none")
    bad_rid = refused.value.response["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)
    assert rid != bad_rid
    (line,) = log_lines(mon, f"request_id={rid}")
    assert "ListDatasetGroups 200" in line and f"access_key_id={KEY}" in line and "ms" in line
    (bad,) = log_lines(mon, f"request_id={bad_rid}")
    assert "DescribeCampaign 400" in bad and "error=ResourceNotFoundException" in bad
    assert "campaign/none" in bad  # the resource ARN


def test_job_state_changes_are_logged_with_old_and_new_status(mon: LocalServer, campaign: dict[str, Any]) -> None:
    lines = [line for line in log_lines(mon, "tastemaker.jobs") if f"arn={campaign['version']} " in line]
    assert len(lines) == 1
    assert "train" in lines[0] and "CREATE PENDING -> ACTIVE" in lines[0] and "duration_s=" in lines[0]


def test_secrets_never_reach_the_log(mon: LocalServer) -> None:
    personalize = mon.client("personalize")
    personalize.list_schemas()
    status, _ = signed_get(mon, "/metrics", "a-wrong-secret")
    assert status == 403
    wrong = LocalServer(mon.data_dir, port=mon.port, access_key=KEY, secret_key="another-wrong-secret")
    with pytest.raises(ClientError):
        wrong.client("personalize").list_schemas()
    log_lines(mon, "InvalidSignatureException")  # request lines are buffered for up to 0.1 s: wait for it
    text = mon.log_path.read_text(errors="replace")
    assert "ListSchemas" in text and "InvalidSignatureException" in text
    for secret in (SECRET, "a-wrong-secret", "another-wrong-secret", "Signature=", "AWS4-HMAC-SHA256"):
        assert secret not in text


def test_health_and_ready_answer_without_credentials_and_reveal_nothing_else(mon: LocalServer) -> None:
    with urllib.request.urlopen(mon.url + "/health", timeout=10) as response:
        assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
        assert response.headers["x-amzn-RequestId"]
    with urllib.request.urlopen(mon.url + "/ready", timeout=10) as response:
        body = json.loads(response.read())
    assert response.status == 200
    assert body == {"status": "ready", "checks": {"metadata_store": "ok", "blob_store": "ok", "job_runner": "ok"}}


def test_ready_names_the_part_that_is_down(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "srv", env={"TASTEMAKER_REDIS_URL": "redis://127.0.0.1:1/0"})
    with srv:
        with pytest.raises(urllib.error.HTTPError) as down:
            urllib.request.urlopen(srv.url + "/ready", timeout=30)
        assert down.value.code == 503
        body = json.loads(down.value.read())
    assert body["status"] == "not ready" and body["checks"]["redis"] == "failing"
    assert body["checks"]["metadata_store"] == "ok"
    assert "127.0.0.1:1" not in json.dumps(body)  # which part, never where or why


def test_metrics_endpoint_needs_a_signature_and_shows_cloudwatch_names(mon: LocalServer,
                                                                       campaign: dict[str, Any]) -> None:
    mon.client("personalize-runtime").get_recommendations(campaignArn=campaign["arn"], userId="u9")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(mon.url + "/metrics", timeout=10)
    assert unsigned.value.code == 403
    status, body = signed_get(mon, "/metrics", SECRET)
    text = body.decode()
    assert status == 200
    series = f'GetRecommendations_total{{CampaignArn="{campaign["arn"]}"}} '
    assert any(line.startswith(series) and float(line.split()[-1]) >= 1 for line in text.splitlines())
    assert f'GetRecommendationsLatency_bucket{{CampaignArn="{campaign["arn"]}",le="+Inf"}}' in text
    assert f'DatasetImportJobRequests_total{{DatasetArn="{campaign["dataset"]}"}} 1.0' in text
    assert 'tastemaker_job_queue_depth{state="queued"}' in text
    assert f'tastemaker_deployment_model_bytes{{arn="{campaign["arn"]}",kind="campaign"}}' in text
    assert 'tastemaker_requests_total{operation="CreateCampaign",status="2xx"} 1.0' in text


def test_metrics_port_serves_loopback_without_credentials_and_json_logs(tmp_path: Path) -> None:
    from tastemaker.cli.local_server import free_port

    port = free_port()
    srv = LocalServer(tmp_path / "srv", extra_args=["--metrics-port", str(port), "--log-format", "json"])
    with srv:
        rid = srv.client("personalize").list_recipes()["ResponseMetadata"]["RequestId"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert 'tastemaker_requests_total{operation="ListRecipes",status="2xx"} 1.0' in text
        (line,) = log_lines(srv, rid)
    record = json.loads(line)
    assert record["request_id"] == rid and record["operation"] == "ListRecipes" and record["status"] == 200
    assert record["level"] == "INFO" and record["logger"] == "tastemaker.requests"


def test_log_level_warning_drops_request_lines(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "srv", extra_args=["--log-level", "warning"])
    with srv:
        rid = srv.client("personalize").list_recipes()["ResponseMetadata"]["RequestId"]
        time.sleep(0.5)
        assert not log_lines(srv, rid, timeout=0.5)


def test_request_metrics_off_counts_no_requests(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "srv", env={"TASTEMAKER_REQUEST_METRICS": "off"})
    with srv:
        srv.client("personalize").list_recipes()
        status, body = signed_get(srv, "/metrics", srv.secret_key)
    assert status == 200 and "tastemaker_job_queue_depth" in body.decode()  # the rest still answers
    assert 'operation="ListRecipes"' not in body.decode()


def test_cloudwatch_refuses_what_it_cannot_answer_with_cloudwatch_errors(mon: LocalServer) -> None:
    cloudwatch = mon.client("cloudwatch")
    now = datetime.now(UTC)
    with pytest.raises(ClientError) as period:
        cloudwatch.get_metric_statistics(Namespace="AWS/Personalize", MetricName="GetRecommendations",
                                         StartTime=now - timedelta(minutes=5), EndTime=now, Period=7,
                                         Statistics=["Sum"])
    assert period.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "multiple of 60" in period.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as math:
        cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}],
                                   StartTime=now - timedelta(minutes=5), EndTime=now)
    assert math.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert cloudwatch.list_metrics(Namespace="AWS/EC2")["Metrics"] == []


def test_a_request_refused_for_its_size_is_logged_and_audited(mon: LocalServer) -> None:
    with pytest.raises(ClientError) as refused:
        mon.client("personalize").create_schema(name=unique("big"), schema="x" * 200_000)
    rid = refused.value.response["ResponseMetadata"]["RequestId"]
    (line,) = log_lines(mon, f"request_id={rid}")
    assert "CreateSchema 413" in line and "RequestEntityTooLargeException" in line
    events = mon.client("cloudtrail").lookup_events(LookupAttributes=[{"AttributeKey": "EventId",
                                                                      "AttributeValue": rid}])["Events"]
    assert json.loads(events[0]["CloudTrailEvent"])["errorCode"] == "RequestEntityTooLargeException"
