"""AWS Signature Version 4 verification of incoming requests (botocore's path normalisation, cached keys)."""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from hashlib import sha256
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import SIGV4_TIMESTAMP
from botocore.utils import normalize_url_path

from tastemaker.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    SignatureExpiredException,
    UnrecognizedClientException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
DEFAULT_MAX_SKEW = timedelta(minutes=5)
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY_MESSAGE = "The security token included in the request is invalid."
_BASIC_ISO = re.compile(r"[0-9]{8}T[0-9]{6}Z")


@dataclass(frozen=True)
class Credential:
    """Who signed a verified request, and the scope they signed it for."""

    access_key_id: str
    region: str  # from the credential scope: the region the client is configured for
    service: str  # signing name from the scope ("personalize" for all three APIs)
    date: str  # YYYYMMDD of the credential scope
    timestamp: datetime  # the request time the client signed (UTC)


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


class HeaderLists(dict[str, list[str]]):
    """Request headers as lower-case name -> every value received (what the ASGI server hands over)."""

    @classmethod
    def from_asgi(cls, raw: list[tuple[bytes, bytes]]) -> HeaderLists:
        out = cls()
        for name, value in raw:
            key = name.decode("latin-1").lower()
            found = out.get(key)
            if found is None:
                out[key] = [value.decode("latin-1")]
            else:
                found.append(value.decode("latin-1"))
        return out

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None


class _HeaderView:
    """Case-insensitive access to request headers, keeping repeated headers (Starlette's `getlist`)."""

    def __init__(self, headers: Mapping[str, str] | HeaderLists) -> None:
        if isinstance(headers, HeaderLists):
            self._all: Callable[[str], list[str]] = lambda name: headers.get(name, [])
            return
        getlist = getattr(headers, "getlist", None)
        if getlist is None:
            lowered: dict[str, list[str]] = {}
            for name, value in headers.items():
                lowered.setdefault(name.lower(), []).append(value)
            self._all = lambda name: lowered.get(name, [])
        else:
            self._all = lambda name: list(getlist(name))

    def all(self, name: str) -> list[str]:
        return self._all(name.lower())

    def first(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None


@functools.lru_cache(maxsize=1024)
def _canonical_path(path: str) -> str:
    """botocore's path normalisation (the same function its signer uses), then SigV4's encoding."""
    return quote(normalize_url_path(urlsplit(f"http://sigv4.invalid{path}").path), safe="/~")


def _canonical_headers(signed: list[tuple[str, str]]) -> str:
    """Lower-case names, sorted; values trimmed with inner whitespace collapsed; repeats joined by commas."""
    values: dict[str, list[str]] = {}
    for name, value in signed:
        values.setdefault(name, []).append(" ".join(value.split()))
    return "\n".join(f"{name}:{','.join(values[name])}" for name in sorted(values))


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived SigV4 key; it changes once a day per key and scope, so it is cached."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), sha256).digest()
    return key


def canonical_query_string(query_string: str) -> str:
    """SigV4's canonical query: each name and value RFC 3986-encoded (UTF-8), pairs sorted.

    Decoding then re-encoding makes the result independent of how (or whether) the client escaped
    characters; for what botocore sends it is the query string sorted.
    """
    pairs = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _parse_authorization(value: str, has_date: bool) -> _Authorization:
    """The Authorization header's parts. A client sends the same credential scope and signed headers with
    every request and only the signature changes, so that part is parsed once and kept."""
    head, sep, signature = value.rpartition(", Signature=")
    if sep and has_date and len(signature) == 64:
        found = _parse_scope(head)
        return _Authorization(found.access_key_id, found.date, found.region, found.service, found.signed_headers,
                              signature)
    return _parse_full(value, has_date)


@functools.lru_cache(maxsize=256)
def _parse_scope(head: str) -> _Authorization:
    return _parse_full(head + ", Signature=-", True)


def _parse_full(value: str, has_date: bool) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm}'; requests must be signed with {ALGORITHM} "
            f"(Signature Version 4). Authorization={value}"
        )
    parts: dict[str, str] = {}
    for piece in rest.split(","):
        key, sep, val = piece.strip().partition("=")
        if sep:
            parts[key.strip()] = val.strip()
    problems = [f"Authorization header requires '{name}' parameter."
                for name in ("Credential", "Signature", "SignedHeaders") if not parts.get(name)]
    if not has_date:
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={value}")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope[:4]):
        raise IncompleteSignatureException(
            "Credential must have the form '<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request'; "
            f"got '{parts['Credential']}'."
        )
    access_key_id, date, region, service, terminator = scope
    if terminator != "aws4_request":
        raise IncompleteSignatureException(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )
    if len(date) != 8 or not date.isdigit():
        raise IncompleteSignatureException(f"Credential scope date must be YYYYMMDD; got '{date}'.")
    signed_headers = tuple(name.strip().lower() for name in parts["SignedHeaders"].split(";") if name.strip())
    return _Authorization(access_key_id, date, region, service, signed_headers, parts["Signature"])


@functools.lru_cache(maxsize=64)
def _basic_iso(stamp: str) -> datetime:
    """YYYYMMDDTHHMMSSZ, parsed by hand (strptime is slow) and kept: requests of the same second share it."""
    if not _BASIC_ISO.fullmatch(stamp):
        raise ValueError(stamp)
    return datetime(int(stamp[0:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[9:11]), int(stamp[11:13]),
                    int(stamp[13:15]), tzinfo=UTC)


def _request_time(headers: _HeaderView) -> tuple[str, datetime] | None:
    """The signed timestamp in SigV4 form and as a datetime, from X-Amz-Date or else Date."""
    amz_date = headers.first("x-amz-date")
    if amz_date is not None:
        stamp = amz_date.strip()
        try:
            moment = _basic_iso(stamp)
        except ValueError:
            raise IncompleteSignatureException(
                f"X-Amz-Date must be in ISO 8601 basic format (YYYYMMDD'T'HHMMSS'Z'); got '{amz_date}'."
            ) from None
        return stamp, moment
    http_date = headers.first("date")
    if http_date is None:
        return None
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        raise IncompleteSignatureException(f"Date header is not an RFC 7231 date: '{http_date}'.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime(SIGV4_TIMESTAMP), moment


def _check_skew(stamp: str, moment: datetime, now: datetime, max_skew: timedelta) -> None:
    if now - max_skew <= moment <= now + max_skew:
        return  # the usual case: format the messages only when they are needed
    minutes = f"{max_skew.total_seconds() / 60:g} min."
    now_text = now.strftime(SIGV4_TIMESTAMP)
    if moment < now - max_skew:
        raise SignatureExpiredException(
            f"Signature expired: {stamp} is now earlier than {(now - max_skew).strftime(SIGV4_TIMESTAMP)} "
            f"({now_text} - {minutes})"
        )
    if moment > now + max_skew:
        raise SignatureExpiredException(
            f"Signature not yet current: {stamp} is still later than "
            f"{(now + max_skew).strftime(SIGV4_TIMESTAMP)} ({now_text} + {minutes})"
        )


def verify_sigv4(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str] | HeaderLists,
    body: bytes,
    secret_for: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
) -> Credential:
    """Check a request's SigV4 `Authorization` header; return who signed it or raise the AWS auth error.

    `path` must be the path exactly as it arrived on the wire, still percent-encoded (ASGI
    `scope["raw_path"]`), and `query_string` the raw query without `?`; `headers` is case-insensitive
    (a Starlette `Headers` keeps repeated headers). `secret_for(access_key_id)` returns the secret key, or
    None for an unknown key. Checks, in order: a header is present (MissingAuthenticationToken), it is
    complete (IncompleteSignature), the key is known (UnrecognizedClient), the clock skew is within
    `max_skew` (SignatureExpired), the body matches X-Amz-Content-Sha256 when sent, and the signature
    matches (InvalidSignature).
    """
    view = _HeaderView(headers)
    authorization = view.first("authorization")
    if not authorization:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    timing = _request_time(view)
    auth = _parse_authorization(authorization, timing is not None)
    assert timing is not None  # _parse_authorization refuses a request without a date
    stamp, moment = timing

    if "host" not in auth.signed_headers:
        raise IncompleteSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if view.first("x-amz-security-token") is not None and "x-amz-security-token" not in auth.signed_headers:
        raise IncompleteSignatureException("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")

    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise UnrecognizedClientException(UNKNOWN_KEY_MESSAGE)

    _check_skew(stamp, moment, now or datetime.now(UTC), max_skew)
    if auth.date != stamp[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.date}' != '{stamp[:8]}', from '{stamp}'."
        )

    payload_hash = sha256(body).hexdigest()
    content_sha = view.first("x-amz-content-sha256")
    if content_sha is not None and content_sha.strip() != payload_hash:
        raise InvalidSignatureException("The provided 'x-amz-content-sha256' header does not match what was computed.")

    signed: list[tuple[str, str]] = []
    for name in auth.signed_headers:
        values = view.all(name)
        if not values:  # the client signed a header that did not arrive (e.g. stripped by a proxy)
            raise InvalidSignatureException(MISMATCH_MESSAGE)
        signed.extend((name, value) for value in values)

    canonical = "\n".join((
        method.upper(), _canonical_path(path or "/"), canonical_query_string(query_string),
        _canonical_headers(signed) + "\n", ";".join(sorted({name for name, _ in signed})),
        content_sha.strip() if content_sha is not None else payload_hash))
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    string_to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{sha256(canonical.encode('utf-8')).hexdigest()}"
    key = _signing_key(secret, auth.date, auth.region, auth.service)
    expected = hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()  # one-shot C path
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "surrogateescape")):
        raise InvalidSignatureException(MISMATCH_MESSAGE)
    return Credential(auth.access_key_id, auth.region, auth.service, auth.date, moment)


SIGNING_NAME = "personalize"  # the signing name of all three models (control plane, runtime, events)


def check_service(credential: Credential, expected: str = SIGNING_NAME) -> None:
    """Refuse a request signed for another service (e.g. `s3`), as AWS does, with its message."""
    if credential.service != expected:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{expected}'. The request was signed for "
            f"'{credential.service}'; sign it with the service name '{expected}' (what boto3's client for this "
            "API does).")
