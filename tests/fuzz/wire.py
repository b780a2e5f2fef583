"""Raw signed HTTP calls: any JSON body (or bytes) to any operation, signed with botocore's SigV4Auth.

boto3 refuses many malformed inputs before sending them (types, required members, minimum lengths); the fuzzer
needs them to reach the server, so it serialises the body itself and only borrows botocore's signer. One
keep-alive connection is reused and reopened when the server ends it (it closes after refusing a body as too
large).
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tastemaker.api.limits import body_limit
from tastemaker.api.service_models import OperationInfo

TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """What the server answered: HTTP status, the AWS error code (None on success) and the parsed body."""

    status: int
    code: str | None
    body: Any
    raw: bytes


class SignedWire:
    """Sends signed requests to one server over a reused connection."""

    def __init__(self, host: str, port: int, access_key: str, secret_key: str, region: str) -> None:
        self.host, self.port, self.region = host, port, region
        self.credentials = Credentials(access_key, secret_key)
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, info: OperationInfo, params: Any) -> Answer:
        """Call one operation with `params` serialised as JSON as they are (no client-side validation)."""
        return self.send(info, orjson.dumps(params))

    def send(self, info: OperationInfo, body: bytes) -> Answer:
        """Send `body` (any bytes) to the operation's route, signed like boto3 signs it."""
        headers = {"Content-Type": "application/x-amz-json-1.1" if info.protocol == "json" else "application/json"}
        if info.target:
            headers["X-Amz-Target"] = info.target
        url = f"http://{self.host}:{self.port}{info.request_uri}"
        request = AWSRequest(method=info.http_method, url=url, data=body, headers=headers)
        SigV4Auth(self.credentials, "personalize", self.region).add_auth(request)
        prepared = request.prepare()
        response, raw = self._exchange(info, prepared.method, body, dict(prepared.headers.items()))
        if response is None:  # the server closed the connection while the body was still being sent
            assert len(body) > body_limit(info.name), (
                f"{info.name}: the server closed the connection during a {len(body)}-byte body, which is within "
                f"the operation's {body_limit(info.name)}-byte limit")
            return Answer(413, "RequestEntityTooLargeException", {}, b"")
        try:
            parsed = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            parsed = raw
        code = None
        if response.status >= 300:
            code = response.getheader("x-amzn-errortype") or (parsed.get("__type") if isinstance(parsed, dict)
                                                              else None)
            if code and ":" in code:
                code = code.split(":", 1)[0]
            if code and "#" in code:
                code = code.rsplit("#", 1)[1]
        return Answer(response.status, code, parsed, raw)

    def _exchange(self, info: OperationInfo, method: str, body: bytes,
                  headers: dict[str, str]) -> tuple[http.client.HTTPResponse | None, bytes]:
        """Send and read one answer; a kept-alive connection the server had ended gets one fresh try. Returns
        (None, b"") when the server stopped reading an oversized body and closed before an answer came."""
        for attempt in (1, 2):
            reused = self.conn is not None
            conn = self._connection()
            try:
                conn.request(method, info.request_uri, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                if reused and attempt == 1:
                    self.close()
                    continue
                try:  # it may have answered (413) before closing
                    response = conn.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException):
                    self.close()
                    return None, b""
                self.close()
                return response, raw
            try:
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError):
                self.close()
                if reused and attempt == 1:
                    continue
                raise
            if response.getheader("connection", "").lower() == "close":
                self.close()
            return response, raw
        raise AssertionError("unreachable")

    def ping(self) -> int:
        """The status of GET /ping on a fresh connection (the server is alive and serving)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status
        finally:
            conn.close()
