"""Authentication (SigV4) refusals and routing of every operation of the three service models."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import boto3
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

from tastemaker.api.coverage import coverage_rows
from tastemaker.api.service_models import all_operations
from tastemaker.cli.local_server import LocalServer


def group_names(client) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(g["name"] for g in client.list_dataset_groups()["datasetGroups"])


def other_client(server: LocalServer, key: str, secret: str):  # type: ignore[no-untyped-def]
    return boto3.client("personalize", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


@pytest.mark.parametrize("key,secret,code", [
    ("TMKTESTACCESSKEY0001", "wrong-secret", "InvalidSignatureException"),
    ("AKIAUNKNOWNKEY000000", "whatever", "UnrecognizedClientException"),
])
def test_bad_credentials_are_refused_and_change_nothing(server: LocalServer, personalize, key: str, secret: str,  # type: ignore[no-untyped-def]
                                                        code: str) -> None:
    before = group_names(personalize)
    with pytest.raises(ClientError) as exc:
        other_client(server, key, secret).create_dataset_group(name="should-not-exist")
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert group_names(personalize) == before


def test_skewed_clock_is_refused(server: LocalServer, personalize) -> None:  # type: ignore[no-untyped-def]
    before = group_names(personalize)
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=10)
    client = server.client("personalize")
    with mock.patch("botocore.auth.get_current_datetime", return_value=skewed), pytest.raises(ClientError) as exc:
        client.create_dataset_group(name="skewed-clock")
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "expired" in exc.value.response["Error"]["Message"].lower()
    assert group_names(personalize) == before


def test_unsigned_request_is_refused(server: LocalServer) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "AmazonPersonalize.ListDatasetGroups", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    assert exc.value.code == 403
    assert b"MissingAuthenticationTokenException" in exc.value.read()


def test_all_79_operations_are_routed(server: LocalServer) -> None:
    """Every operation answers with its own result or a uniform error — never a 404 or a stack trace."""
    ops = all_operations()
    assert len(ops) == 79
    clients = {name: server.client(name) for name in ("personalize", "personalize-runtime", "personalize-events")}
    implemented = {name for _, name, ok in coverage_rows() if ok}
    for info in ops:
        if info.name in implemented:
            continue
        client = clients[info.service]
        request = {n: _minimal(s) for n, s in info.input_shape.members.items()
                   if n in info.input_shape.required_members} if info.input_shape else {}
        with pytest.raises(ClientError) as exc:
            getattr(client, xform_name(info.name))(**request)
        assert exc.value.response["Error"]["Code"] == "NotImplementedException", info.name
        assert info.name in exc.value.response["Error"]["Message"]


def test_coverage_doc_is_up_to_date() -> None:
    from pathlib import Path

    from tastemaker.api.coverage import render_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "api-coverage.md"
    assert doc.read_text() == render_markdown(), "run: tastemaker coverage --output docs/api-coverage.md"


def _minimal(shape):  # type: ignore[no-untyped-def]
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.name == "Arn":
            return "arn:aws:personalize:us-east-1:000000000000:solution/x"
        return "x"
    if kind == "structure":
        return {n: _minimal(s) for n, s in shape.members.items() if n in shape.required_members}
    if kind == "list":
        return [_minimal(shape.member)]
    if kind == "map":
        return {}
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return dt.datetime.now(dt.UTC)
    return 1
