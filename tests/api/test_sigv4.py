"""SigV4 verification against requests signed by real boto3 clients and by botocore's signer."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from tastemaker.api.sigv4 import Credential, canonical_query_string, verify_sigv4
from tastemaker.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    SignatureExpiredException,
    UnrecognizedClientException,
)

KEYS = {"AKIDTASTEMAKER01": "s3cr3t/Key+With=Symbols", "AKIDOTHER": "other-secret"}


class Captured:
    """One request exactly as it arrived on the wire."""

    def __init__(self, method: str, raw_target: str, header_pairs: list[tuple[str, str]], body: bytes) -> None:
        self.method = method
        self.path, _, self.query = raw_target.partition("?")
        self.headers = Headers(raw=[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in header_pairs])
        self.body = body

    def verify(self, **kwargs: Any) -> Credential:
        return verify_sigv4(self.method, self.path, self.query, self.headers, self.body, KEYS.get, **kwargs)

    def with_headers(self, **changes: str | None) -> Captured:
        """A copy with headers replaced (None removes one); `x_amz_date` names `x-amz-date`."""
        changes = {name.replace("_", "-"): value for name, value in changes.items()}
        pairs = [(k.decode(), v.decode("latin-1")) for k, v in self.headers.raw if k.decode() not in changes]
        pairs += [(name, value) for name, value in changes.items() if value is not None]
        return Captured(self.method, self.path + ("?" + self.query if self.query else ""), pairs, self.body)


@pytest.fixture(scope="module")
def wire() -> Iterator[tuple[str, list[Captured]]]:
    """A loopback HTTP server that records every request and answers `{}` (all boto3 needs here)."""
    seen: list[Captured] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(Captured("POST", self.path, list(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def client(endpoint: str, service: str, key: str = "AKIDTASTEMAKER01", secret: str | None = None,
           token: str | None = None, region: str = "eu-west-1") -> Any:
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret or KEYS.get(key, "x"),
                                    aws_session_token=token, region_name=region)
    return session.client(service, endpoint_url=endpoint, config=Config(retries={"max_attempts": 0}))


def last(seen: list[Captured]) -> Captured:
    return seen[-1]


# --- accepted: what boto3 really sends -------------------------------------------------------------------


def test_boto3_json11_control_plane_request_verifies(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize").create_dataset_group(name="shop-ëvents", domain="ECOMMERCE")
    request = last(seen)
    assert request.headers["x-amz-target"] == "AmazonPersonalize.CreateDatasetGroup"
    credential = request.verify()
    assert credential.access_key_id == "AKIDTASTEMAKER01"
    assert credential.region == "eu-west-1"
    assert credential.service == "personalize"
    assert credential.date == request.headers["x-amz-date"][:8]
    assert abs(credential.timestamp - datetime.now(UTC)) < timedelta(minutes=1)


def test_boto3_rest_json_runtime_request_with_non_ascii_body_verifies(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize-runtime", region="ap-south-1").get_recommendations(
        campaignArn="arn:aws:personalize:ap-south-1:000000000000:campaign/c", userId="ユーザー 1 / ü",
        context={"DEVICE": "téléphone"}, numResults=7)
    request = last(seen)
    assert request.path == "/recommendations"
    assert json.loads(request.body)["userId"] == "ユーザー 1 / ü"
    assert request.verify().region == "ap-south-1"


def test_boto3_events_request_with_session_token_verifies(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize-events", token="FwoGZXIvYXdzE//token==").put_events(
        trackingId="t-1", sessionId="s-1",
        eventList=[{"eventType": "click", "sentAt": datetime(2026, 11, 28, tzinfo=UTC), "itemId": "ï"}])
    request = last(seen)
    assert request.headers["x-amz-security-token"] == "FwoGZXIvYXdzE//token=="
    assert request.verify().service == "personalize"


def test_repeated_headers_and_unsigned_extra_headers_are_handled(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize").list_dataset_groups(maxResults=5)
    # A proxy adding an unsigned header must not break verification.
    last(seen).with_headers(x_forwarded_for="10.0.0.1").verify()


# --- signed with botocore's signer directly: query strings, paths, the Date header -------------------------


def sign(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
         key: str = "AKIDTASTEMAKER01", when: datetime | None = None, use_date_header: bool = False) -> Captured:
    """Sign like botocore does (SigV4Auth + AWSRequest) and return the request as a server would see it."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if use_date_header:
        request.headers["Date"] = "placeholder"  # botocore then signs with Date instead of X-Amz-Date
    signer = SigV4Auth(Credentials(key, KEYS.get(key, "wrong")), "personalize", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:
        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: when.replace(tzinfo=None)
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original
    scheme_host, _, rest = url.partition("://")[2].partition("/")
    pairs = [("Host", scheme_host)] + [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    return Captured(method, "/" + rest, pairs, body)


def test_query_string_with_non_ascii_and_reserved_characters_verifies() -> None:
    # botocore percent-encodes query values (UTF-8, RFC 3986) before signing; boto3 sends it that way.
    captured = sign("GET", "http://localhost:8080/recommendations?b=%C3%BC%20x&a=1&a=0&empty=&c=%2F%2B")
    assert captured.verify().access_key_id == "AKIDTASTEMAKER01"


def test_canonical_query_string_normalises_escaping_and_order() -> None:
    assert canonical_query_string("b=ü x&a=1&a=0&flag") == "a=0&a=1&b=%C3%BC%20x&flag="
    assert canonical_query_string("b=%C3%BC%20x&a=1&a=0&flag=") == "a=0&a=1&b=%C3%BC%20x&flag="


def test_percent_encoded_path_is_verified_as_sent_on_the_wire() -> None:
    # Non-S3 SigV4 signs the path encoded once more than it is sent; the verifier must take the raw path.
    captured = sign("POST", "http://example.test/base%20path/%C3%A9vents/", b"{}")
    assert captured.verify()
    decoded = Captured("POST", "/base path/évents/", [(k.decode(), v.decode()) for k, v in captured.headers.raw],
                       b"{}")
    with pytest.raises(InvalidSignatureException):
        decoded.verify()


def test_date_header_is_accepted_when_x_amz_date_is_absent() -> None:
    when = datetime(2026, 11, 28, 10, 30, 10, tzinfo=UTC)
    captured = sign("POST", "http://localhost/events", b'{"x": 1}', when=when, use_date_header=True)
    assert captured.headers.get("x-amz-date") is None
    assert captured.verify(now=when).timestamp == when


def test_content_sha256_header_must_match_the_body() -> None:
    body = '{"name": "ök"}'.encode()
    good = sign("POST", "http://localhost/", body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    good.verify()
    bad = sign("POST", "http://localhost/", body, headers={"X-Amz-Content-SHA256": "0" * 64})
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        bad.verify()


# --- refusals -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(wire: tuple[str, list[Captured]]) -> Captured:
    endpoint, seen = wire
    client(endpoint, "personalize").describe_dataset_group(
        datasetGroupArn="arn:aws:personalize:eu-west-1:000000000000:dataset-group/g")
    return last(seen)


def test_missing_authorization_is_refused(signed: Captured) -> None:
    with pytest.raises(MissingAuthenticationTokenException, match="^Missing Authentication Token$") as info:
        signed.with_headers(authorization=None).verify()
    assert info.value.status == 403


def test_unknown_access_key_is_refused(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize", key="AKIDNOBODY", secret="whatever").list_dataset_groups()
    with pytest.raises(UnrecognizedClientException, match="security token included in the request is invalid"):
        last(seen).verify()


def test_wrong_secret_is_refused(wire: tuple[str, list[Captured]]) -> None:
    endpoint, seen = wire
    client(endpoint, "personalize", secret="not-the-secret").list_dataset_groups()
    with pytest.raises(InvalidSignatureException, match="does not match the signature you provided") as info:
        last(seen).verify()
    assert info.value.code == "InvalidSignatureException"
    assert info.value.status == 403


@pytest.mark.parametrize("tamper", ["body", "target", "path", "query", "method", "host"])
def test_any_change_to_a_signed_part_is_refused(signed: Captured, tamper: str) -> None:
    changed = signed.with_headers()
    if tamper == "body":
        changed.body = signed.body.replace(b"dataset-group/g", b"dataset-group/h")
    elif tamper == "target":
        changed = signed.with_headers(**{"x-amz-target": "AmazonPersonalize.DeleteDatasetGroup"})
    elif tamper == "path":
        changed.path = "/other"
    elif tamper == "query":
        changed.query = "x=1"
    elif tamper == "method":
        changed.method = "PUT"
    else:
        changed = signed.with_headers(host="evil.example:80")
    with pytest.raises(InvalidSignatureException):
        changed.verify()


def test_signature_for_another_region_or_service_scope_is_refused(signed: Captured) -> None:
    auth = signed.headers["authorization"]
    for old, new in (("/eu-west-1/", "/us-east-1/"), ("/personalize/", "/s3/")):
        with pytest.raises(InvalidSignatureException):
            signed.with_headers(authorization=auth.replace(old, new)).verify()


def test_old_and_future_timestamps_are_refused_with_aws_messages() -> None:
    when = datetime(2026, 11, 28, 10, 10, 10, tzinfo=UTC)
    captured = sign("POST", "http://localhost/", b"{}", when=when)
    now = datetime(2026, 11, 28, 10, 30, 10, tzinfo=UTC)
    with pytest.raises(SignatureExpiredException) as info:
        captured.verify(now=now)
    assert info.value.message == (
        "Signature expired: 20261128T101010Z is now earlier than 20261128T102510Z (20261128T103010Z - 5 min.)")
    assert info.value.code == "InvalidSignatureException" and info.value.status == 403
    with pytest.raises(SignatureExpiredException, match="Signature not yet current: 20261128T101010Z"):
        captured.verify(now=when - timedelta(minutes=6))
    # Within the window either way is fine, and the window is configurable.
    captured.verify(now=when + timedelta(minutes=4, seconds=59))
    captured.verify(now=when - timedelta(minutes=4, seconds=59))
    with pytest.raises(SignatureExpiredException):
        captured.verify(now=when + timedelta(minutes=2), max_skew=timedelta(minutes=1))


@pytest.mark.parametrize(
    ("authorization", "fragment"),
    [
        ("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc", "requires 'Credential' parameter"),
        (("AWS4-HMAC-SHA256 Credential=AKIDTASTEMAKER01/20261128/us-east-1/personalize/aws4_request, "
         "SignedHeaders=host;x-amz-date"), "requires 'Signature' parameter"),
        (("AWS4-HMAC-SHA256 Credential=AKIDTASTEMAKER01/20261128/us-east-1/personalize/aws4_request, "
         "Signature=abc"), "requires 'SignedHeaders' parameter"),
        ("AWS4-HMAC-SHA256 Credential=AKIDTASTEMAKER01/20261128/us-east-1, SignedHeaders=host, Signature=abc",
         "Credential must have the form"),
        (("AWS4-HMAC-SHA256 Credential=AKIDTASTEMAKER01/20261128/us-east-1/personalize/aws5_request, "
         "SignedHeaders=host, Signature=abc"), "valid terminator"),
        (("AWS4-HMAC-SHA256 Credential=AKIDTASTEMAKER01/20261128/us-east-1/personalize/aws4_request, "
         "SignedHeaders=x-amz-date, Signature=abc"), "'Host' must be a 'SignedHeader'"),
        ("AWS AKIDTASTEMAKER01:c2lnbmF0dXJl", "Unsupported AWS 'algorithm'"),
        ("Bearer abc", "Unsupported AWS 'algorithm'"),
    ],
)
def test_malformed_authorization_is_incomplete_signature(signed: Captured, authorization: str, fragment: str) -> None:
    with pytest.raises(IncompleteSignatureException, match=fragment) as info:
        signed.with_headers(authorization=authorization).verify()
    assert info.value.status == 403


def test_missing_date_is_incomplete_signature(signed: Captured) -> None:
    with pytest.raises(IncompleteSignatureException, match="'X-Amz-Date' or a 'Date' header"):
        signed.with_headers(x_amz_date=None).verify()
    with pytest.raises(IncompleteSignatureException, match="ISO 8601 basic format"):
        signed.with_headers(x_amz_date="2026-11-28T10:10:10Z").verify()


def test_unsigned_security_token_is_refused(signed: Captured) -> None:
    with pytest.raises(IncompleteSignatureException, match="X-Amz-Security-Token"):
        signed.with_headers(x_amz_security_token="smuggled").verify()


def test_credential_scope_date_must_match_request_date(signed: Captured) -> None:
    auth = signed.headers["authorization"]
    date = signed.headers["x-amz-date"][:8]
    other = "19990101" if date != "19990101" else "19990102"
    with pytest.raises(InvalidSignatureException, match="Date in Credential scope does not match"):
        signed.with_headers(authorization=auth.replace(f"/{date}/", f"/{other}/")).verify()


def test_signed_header_that_did_not_arrive_is_refused(signed: Captured) -> None:
    with pytest.raises(InvalidSignatureException):
        signed.with_headers(content_type=None).verify()


def test_non_ascii_signature_value_is_refused_not_crashing(signed: Captured) -> None:
    auth = signed.headers["authorization"]
    broken = auth[: auth.index("Signature=") + len("Signature=")] + "é" * 64
    with pytest.raises(InvalidSignatureException):
        signed.with_headers(authorization=broken).verify()
