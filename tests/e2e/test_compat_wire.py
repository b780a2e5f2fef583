"""The wire as AWS answers it: request ids, the signing service, unknown operations, malformed bodies
(issue #14 items 7, 8, 10)."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer


def signed_call(server: LocalServer, *, method: str = "POST", path: str = "/", body: bytes = b"{}",
                target: str | None = "AmazonPersonalize.ListDatasetGroups", service: str = "personalize",
                region: str = "us-east-1") -> tuple[int, dict[str, str], bytes]:
    """One raw request signed with botocore's own signer for `service`; (status, headers, body)."""
    headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/json"}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method=method, url=server.url + path, data=body if method != "GET" else None,
                         headers=headers)
    credentials = Credentials(server.access_key, server.secret_key)
    SigV4Auth(credentials, service, region).add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(prepared.url, data=prepared.body, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(raw) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_every_answer_carries_a_request_id(server: LocalServer, personalize, runtime) -> None:  # type: ignore[no-untyped-def]
    first = personalize.list_dataset_groups()["ResponseMetadata"]
    second = personalize.list_dataset_groups()["ResponseMetadata"]
    assert first["RequestId"] and second["RequestId"] and first["RequestId"] != second["RequestId"]
    uuid.UUID(first["RequestId"])
    assert first["HTTPHeaders"]["x-amzn-requestid"] == first["RequestId"]
    with pytest.raises(ClientError) as control_error:
        personalize.describe_dataset_group(
            datasetGroupArn="arn:aws:personalize:us-east-1:000000000000:dataset-group/absent")
    assert control_error.value.response["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as runtime_error:
        runtime.get_recommendations(campaignArn="arn:aws:personalize:us-east-1:000000000000:campaign/absent",
                                    userId="u1")
    assert runtime_error.value.response["ResponseMetadata"]["RequestId"]
    status, headers, _ = signed_call(server, target="AmazonPersonalize.NoSuchThing")
    assert status == 400 and headers.get("x-amzn-requestid")


@pytest.mark.parametrize("service", ["s3", "personalize-runtime", "execute-api"])
def test_requests_signed_for_another_service_are_refused(server: LocalServer, service: str) -> None:
    status, _, body = signed_call(server, service=service)
    assert status == 403
    assert b"InvalidSignatureException" in body and b"'personalize'" in body
    status, _, _ = signed_call(server, service="personalize")
    assert status == 200


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"target": "AmazonPersonalize.NoSuchOperation"}, 400),
    ({"target": "SomethingElse.ListDatasetGroups"}, 400),
    ({"target": None}, 400),  # POST / without a target
    ({"target": None, "method": "GET"}, 404),
    ({"target": None, "path": "/no-such-path"}, 404),
    ({"target": None, "method": "GET", "path": "/recommendations"}, 404),
])
def test_unknown_operations_are_refused_as_aws_does(server: LocalServer, kwargs, status: int) -> None:  # type: ignore[no-untyped-def]
    got, headers, body = signed_call(server, **kwargs)
    assert got == status, body
    assert headers["x-amzn-errortype"] == "UnknownOperationException"
    assert b"UnknownOperationException" in body


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\"text\""])
def test_malformed_json_is_a_serialization_exception(server: LocalServer, body: bytes) -> None:
    status, headers, answer = signed_call(server, body=body)
    assert status == 400
    assert headers["x-amzn-errortype"] == "SerializationException", answer
