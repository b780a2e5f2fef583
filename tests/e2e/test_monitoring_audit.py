"""End-to-end: the audit trail through CloudTrail LookupEvents (boto3) and `tastemaker audit` (issue 17 item 3)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer

SECRET = "audit-secret-never-stored-0123456789"
KEY = "TMKAUDITKEY000000001"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("audit"), access_key=KEY, secret_key=SECRET)
    server.start()
    yield server
    server.stop()


def events_of(srv: LocalServer, **kwargs: Any) -> list[dict[str, Any]]:
    return srv.client("cloudtrail").lookup_events(**kwargs)["Events"]


def test_control_plane_calls_are_recorded_with_who_what_and_outcome(srv: LocalServer) -> None:
    personalize = srv.client("personalize")
    name = unique("grp")
    answer = personalize.create_dataset_group(name=name, tags=[{"tagKey": "team", "tagValue": "hidden-value"}])
    arn = answer["datasetGroupArn"]
    (event,) = events_of(srv, LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}])
    assert event["EventName"] == "CreateDatasetGroup" and event["ReadOnly"] == "false"
    assert event["AccessKeyId"] == KEY and event["Username"] == "root"
    assert event["EventSource"] == "personalize.amazonaws.com"
    assert event["Resources"] == [{"ResourceType": "AWS::Personalize::DatasetGroup", "ResourceName": arn}]
    record = json.loads(event["CloudTrailEvent"])
    assert record["requestID"] == answer["ResponseMetadata"]["RequestId"] == event["EventId"]
    assert record["sourceIPAddress"] == "127.0.0.1" and record["userAgent"].startswith("Boto3/")
    assert record["requestParameters"]["name"] == name
    # TagKey and TagValue are sensitive in botocore's model: hidden as CloudTrail hides them
    assert record["requestParameters"]["tags"] == [{"tagKey": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                                    "tagValue": "HIDDEN_DUE_TO_SECURITY_REASONS"}]
    assert "hidden-value" not in event["CloudTrailEvent"]
    assert "errorCode" not in record


def test_refused_calls_are_recorded_with_their_error_code(srv: LocalServer) -> None:
    personalize = srv.client("personalize")
    missing = "arn:aws:personalize:us-east-1:000000000000:dataset-group/" + unique("none")
    with pytest.raises(ClientError) as refused:
        personalize.delete_dataset_group(datasetGroupArn=missing)
    with pytest.raises(ClientError):
        personalize.create_dataset_group(name="bad name with spaces")
    impostor = LocalServer(srv.data_dir, port=srv.port, access_key=KEY, secret_key="not-" + SECRET)
    with pytest.raises(ClientError):
        impostor.client("personalize").list_dataset_groups()
    rid = refused.value.response["ResponseMetadata"]["RequestId"]
    (event,) = events_of(srv, LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": rid}])
    record = json.loads(event["CloudTrailEvent"])
    assert record["errorCode"] == "ResourceNotFoundException" and missing in record["errorMessage"]
    assert event["Resources"][0]["ResourceName"] == missing
    writes = events_of(srv, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateDatasetGroup"}])
    invalid = [json.loads(e["CloudTrailEvent"]) for e in writes]
    assert any(r.get("errorCode") == "InvalidInputException" for r in invalid)
    listed = events_of(srv, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListDatasetGroups"}])
    bad_signature = [json.loads(e["CloudTrailEvent"]) for e in listed]
    assert any(r.get("errorCode") == "InvalidSignatureException" and r["userIdentity"]["accessKeyId"] == KEY
               for r in bad_signature)
    trail = srv.data_dir / "tastemaker.db"
    assert SECRET.encode() not in trail.read_bytes()


def test_lookup_events_pages_filters_by_time_and_refuses_bad_input(srv: LocalServer) -> None:
    personalize = srv.client("personalize")
    before = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):
        personalize.list_schemas()
    cloudtrail = srv.client("cloudtrail")
    attrs = [{"AttributeKey": "EventName", "AttributeValue": "ListSchemas"}]
    first = cloudtrail.lookup_events(LookupAttributes=attrs, MaxResults=2, StartTime=before)
    assert len(first["Events"]) == 2 and first["NextToken"]
    second = cloudtrail.lookup_events(LookupAttributes=attrs, MaxResults=2, StartTime=before,
                                      NextToken=first["NextToken"])
    assert len(second["Events"]) == 1 and "NextToken" not in second
    ids = [e["EventId"] for e in first["Events"] + second["Events"]]
    assert len(set(ids)) == 3
    times = [e["EventTime"] for e in first["Events"] + second["Events"]]
    assert times == sorted(times, reverse=True)  # newest first
    paginated = [e for page in cloudtrail.get_paginator("lookup_events").paginate(
        LookupAttributes=attrs, StartTime=before, PaginationConfig={"PageSize": 1}) for e in page["Events"]]
    assert [e["EventId"] for e in paginated] == ids
    assert cloudtrail.lookup_events(LookupAttributes=attrs, EndTime=before)["Events"] == [] or all(
        e["EventTime"] <= before for e in cloudtrail.lookup_events(LookupAttributes=attrs, EndTime=before)["Events"])
    reads = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    assert reads["Events"] and all(e["ReadOnly"] == "true" for e in reads["Events"])
    with pytest.raises(ClientError) as two:
        cloudtrail.lookup_events(LookupAttributes=attrs + [{"AttributeKey": "ReadOnly", "AttributeValue": "true"}])
    assert two.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as backwards:
        cloudtrail.lookup_events(StartTime=datetime.now(UTC), EndTime=before)
    assert backwards.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    with pytest.raises(ClientError) as token:
        cloudtrail.lookup_events(NextToken="not-a-token")
    assert token.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_runtime_and_cloudwatch_calls_are_not_control_plane_events(srv: LocalServer) -> None:
    srv.client("cloudwatch").list_metrics(Namespace="AWS/Personalize")
    assert events_of(srv, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListMetrics"}]) == []


def test_tastemaker_audit_prints_filtered_records(srv: LocalServer) -> None:
    personalize = srv.client("personalize")
    arn = personalize.create_dataset_group(name=unique("cli"))["datasetGroupArn"]
    time.sleep(0.1)

    def audit(*args: str) -> list[str]:
        out = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "audit", "--data-dir", str(srv.data_dir),
                              *args], capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.splitlines()

    (line,) = audit("--resource", arn)
    assert "CreateDatasetGroup ok" in line and f"key={KEY}" in line and arn in line
    documents = [json.loads(x) for x in audit("--event-name", "CreateDatasetGroup", "--json", "--max", "100")]
    assert any(d["responseElements"] == {"datasetGroupArn": arn} for d in documents)
    assert all(d["eventName"] == "CreateDatasetGroup" for d in documents)
    failures = audit("--errors")
    assert failures and all(" ok " not in x for x in failures)
    assert audit("--start", "2999-01-01T00:00:00Z") == []


def test_old_records_are_deleted_after_the_retention_period(tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "srv", env={"TASTEMAKER_AUDIT_RETENTION_DAYS": "0.00001"})  # ~1 s
    with server:
        personalize = server.client("personalize")
        personalize.list_recipes()
        time.sleep(1.5)
        personalize.list_schemas()  # the first write of this process purges what is past retention
        names = {e["EventName"] for e in events_of(server)}
    assert "ListSchemas" in names and "ListRecipes" not in names


def test_scoped_keys_need_cloudtrail_and_cloudwatch_actions(srv: LocalServer) -> None:
    from tests.e2e.test_access_keys import create_key

    personalize_only = create_key(srv.data_dir, unique("p"), {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "personalize:*", "Resource": "*"}]})
    reader = create_key(srv.data_dir, unique("r"), {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["cloudtrail:LookupEvents", "cloudwatch:ListMetrics"], "Resource": "*"}]})

    def client(service: str, key: tuple[str, str]) -> Any:
        return boto3.client(service, endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=key[0],
                            aws_secret_access_key=key[1])

    def outcome(call: Any) -> str:
        deadline = time.time() + 10
        while True:  # a new key reaches the server within its refresh period
            try:
                call()
                return "ok"
            except ClientError as exc:
                code = str(exc.response["Error"]["Code"])
                if code not in ("UnrecognizedClientException", "InvalidClientTokenId") or time.time() > deadline:
                    return code
            time.sleep(0.2)

    assert outcome(lambda: client("cloudtrail", personalize_only).lookup_events()) == "AccessDeniedException"
    assert outcome(lambda: client("cloudwatch", personalize_only).list_metrics()) == "AccessDeniedException"
    assert outcome(lambda: client("cloudtrail", reader).lookup_events()) == "ok"
    assert outcome(lambda: client("cloudwatch", reader).list_metrics()) == "ok"
    assert outcome(lambda: client("personalize", reader).list_schemas()) == "AccessDeniedException"
