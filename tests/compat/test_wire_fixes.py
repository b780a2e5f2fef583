"""Wire mismatches the conformance suite found in the operations of issue #14, each pinned through boto3: the
errors must be ones the operation's model declares, in the order a client relies on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import INTERACTIONS_SCHEMA
from tests.e2e.util import wait_status

ROLE = "arn:aws:iam::000000000000:role/P"
METRIC = {"eventType": "click", "metricName": "CLICKS", "expression": "SAMPLECOUNT()"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def attribution(personalize) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A dataset group with an (empty) Interactions dataset and a metric attribution of one metric."""
    group = personalize.create_dataset_group(name=unique("wire"))["datasetGroupArn"]
    schema = personalize.create_schema(name=unique("wire"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    personalize.create_dataset(name=unique("wire"), schemaArn=schema, datasetGroupArn=group,
                               datasetType="Interactions")
    name = unique("ma")
    arn = personalize.create_metric_attribution(name=name, datasetGroupArn=group, metrics=[METRIC],
                                                metricsOutputConfig={"roleArn": ROLE})["metricAttributionArn"]
    wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn), "metricAttribution")
    return {"group": group, "name": name, "arn": arn}


def test_the_same_metric_attribution_again_is_already_exists(personalize, attribution) -> None:  # type: ignore[no-untyped-def]
    # The name (hence the ARN) is taken: that is what a retrying client must be told, not the group's limit.
    with pytest.raises(ClientError) as exc:
        personalize.create_metric_attribution(name=attribution["name"], datasetGroupArn=attribution["group"],
                                              metrics=[METRIC], metricsOutputConfig={"roleArn": ROLE})
    assert code(exc) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as exc:  # a second one under another name: the one-per-group limit
        personalize.create_metric_attribution(name=unique("ma"), datasetGroupArn=attribution["group"],
                                              metrics=[METRIC], metricsOutputConfig={"roleArn": ROLE})
    assert code(exc) == "LimitExceededException"


def test_list_metric_attribution_metrics_refuses_a_bad_token(personalize, attribution) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        personalize.list_metric_attribution_metrics(metricAttributionArn=attribution["arn"],
                                                    nextToken="bm90LWEtdG9rZW4=")
    assert code(exc) == "InvalidNextTokenException"
    assert "nextToken" in exc.value.response["Error"]["Message"]


def test_list_metric_attribution_metrics_pages_with_its_token(personalize, attribution) -> None:  # type: ignore[no-untyped-def]
    arn = attribution["arn"]
    personalize.update_metric_attribution(metricAttributionArn=arn, addMetrics=[
        {"eventType": "watch", "metricName": "WATCHES", "expression": "SAMPLECOUNT()"}])
    wait_status(lambda: personalize.describe_metric_attribution(metricAttributionArn=arn), "metricAttribution")
    first = personalize.list_metric_attribution_metrics(metricAttributionArn=arn, maxResults=1)
    second = personalize.list_metric_attribution_metrics(metricAttributionArn=arn, nextToken=first["nextToken"])
    assert [m["metricName"] for m in first["metrics"] + second["metrics"]] == ["CLICKS", "WATCHES"]
    assert "nextToken" not in second


def test_list_metric_attribution_metrics_of_an_unknown_attribution_is_an_empty_page(personalize) -> None:  # type: ignore[no-untyped-def]
    # The model declares no ResourceNotFoundException for it: like the other List* calls, an empty page.
    answer = personalize.list_metric_attribution_metrics(
        metricAttributionArn="arn:aws:personalize:us-east-1:000000000000:metric-attribution/absent")
    assert answer["metrics"] == []


def test_cloudwatch_and_cloudtrail_clients_are_answered_on_the_same_port(server) -> None:  # type: ignore[no-untyped-def]
    # boto3 signs CloudWatch calls for 'monitoring' and CloudTrail calls for 'cloudtrail': each operation is
    # checked against its own model's signing name, not Personalize's.
    assert "Metrics" in server.client("cloudwatch").list_metrics(Namespace="AWS/Personalize")
    assert "Events" in server.client("cloudtrail").lookup_events(MaxResults=1)


def _signed_for(server, service: str, target: str) -> tuple[int, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """POST / with X-Amz-Target `target`, signed (SigV4) for `service`; (status, decoded body)."""
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(method="POST", url=server.url + "/", data=b"{}", headers=headers)
    SigV4Auth(Credentials(server.access_key, server.secret_key), service, server.region).add_auth(request)
    prepared = urllib.request.Request(server.url + "/", data=b"{}", method="POST",
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_call_signed_for_another_service_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    status, body = _signed_for(server, "monitoring", "AmazonPersonalize.ListDatasetGroups")
    assert status == 403 and body["__type"].endswith("InvalidSignatureException")
    assert "'personalize'" in body["message"]
    status, body = _signed_for(server, "s3", "AmazonPersonalize.ListDatasetGroups")
    assert status == 403 and "'personalize'" in body["message"]
    status, body = _signed_for(server, "personalize", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")
    assert status == 403 and "'cloudtrail'" in body["message"]


def test_list_data_deletion_jobs_of_an_unknown_group_is_an_empty_page(personalize) -> None:  # type: ignore[no-untyped-def]
    # ListDataDeletionJobs declares no ResourceNotFoundException: an unknown group has no jobs.
    answer = personalize.list_data_deletion_jobs(
        datasetGroupArn="arn:aws:personalize:us-east-1:000000000000:dataset-group/absent")
    assert answer["dataDeletionJobs"] == []


@pytest.mark.parametrize("operation", ["list_dataset_groups", "list_schemas"])
def test_out_of_range_max_results_is_a_validation_exception_where_invalid_input_is_not_declared(  # type: ignore[no-untyped-def]
        server, operation: str) -> None:
    """ListDatasetGroups and ListSchemas model only InvalidNextTokenException: 101 (past the model's max 100) is
    refused as AWS's request validation refuses it, with the common ValidationException."""
    import boto3
    from botocore.config import Config

    loose = boto3.client("personalize", endpoint_url=server.url, region_name=server.region,
                         aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                         config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        getattr(loose, operation)(maxResults=101)
    assert code(exc) == "ValidationException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Value '101' at 'maxResults'" in str(exc.value) and "less than or equal to 100" in str(exc.value)
    assert getattr(loose, operation)(maxResults=100)["ResponseMetadata"]["HTTPStatusCode"] == 200
