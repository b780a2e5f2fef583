"""The audit trail: every control-plane call, allowed or refused, as a CloudTrail event in the metadata store.

`record_call` builds the event CloudTrail would log (who: access key and source address; what: operation,
request parameters, resources; outcome: response elements or error code) and appends it in its own
transaction, after the call and before its answer is sent, so a client can find its call at once. Parameters
whose botocore shape is marked sensitive, and any member whose name says secret, password or credential, are
replaced by CloudTrail's `HIDDEN_DUE_TO_SECURITY_REASONS`. Records older than the retention period
(`Settings.audit_retention_days`) are deleted at most once an hour by the writer.

`LookupEvents` (CloudTrail's API, through botocore's `cloudtrail` model) reads them back, newest first, with
one lookup attribute, a time range and pagination; `tastemaker audit` reads the same store.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.model import Shape

from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidNextTokenException, TastemakerError
from tastemaker.services import Services
from tastemaker.store import audit as store

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
EVENT_SOURCE = "personalize.amazonaws.com"
SECRET_WORDS = ("secret", "password", "credential", "authorization")
READ_PREFIXES = ("Describe", "List", "Get")
_PURGE_EVERY = 3600.0
_last_purge = [0.0]
_purge_lock = threading.Lock()


class InvalidLookupAttributesException(TastemakerError):
    code = "InvalidLookupAttributesException"
    status = 400


class InvalidTimeRangeException(TastemakerError):
    code = "InvalidTimeRangeException"
    status = 400


class InvalidMaxResultsException(TastemakerError):
    code = "InvalidMaxResultsException"
    status = 400


class InvalidCloudTrailNextTokenException(InvalidNextTokenException):
    code = "InvalidNextTokenException"


def redact(shape: Shape | None, value: Any) -> Any:
    """The wire value with sensitive members hidden (by the model's `sensitive` trait or the member's name)."""
    if shape is not None and shape.metadata.get("sensitive"):
        return HIDDEN
    if isinstance(value, dict):
        members = getattr(shape, "members", None) if shape is not None and shape.type_name == "structure" else None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if any(word in key.lower() for word in SECRET_WORDS):
                out[key] = HIDDEN
            elif members is not None:
                out[key] = redact(members.get(key), item)
            else:
                out[key] = redact(getattr(shape, "value", None) if shape is not None else None, item)
        return out
    if isinstance(value, list):
        member = getattr(shape, "member", None) if shape is not None else None
        return [redact(member, item) for item in value]
    return value


def resource_type(arn: str) -> str:
    """CloudTrail's resource type for a Personalize ARN, e.g. AWS::Personalize::Campaign."""
    resource = arn.split(":", 5)[-1]
    prefix, _, rest = resource.partition("/")
    if prefix == "solution" and rest.count("/") == 1:
        prefix = "solution-version"
    return "AWS::Personalize::" + "".join(part.capitalize() for part in prefix.split("-"))


def arns_in(*documents: Any) -> list[str]:
    """Personalize ARNs named by the top-level members of request and response documents, in order, once."""
    seen: list[str] = []
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        for key, value in doc.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if (isinstance(item, str) and key.lower().endswith("arn") and item.startswith("arn:")
                        and ":personalize:" in item and item not in seen):
                    seen.append(item)
    return seen


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_call(services: Services, *, now: float, request_id: str, operation_name: str,
                input_shape: Shape | None, params: Any, response: Any, access_key_id: str | None,
                username: str | None, region: str, source_ip: str | None, user_agent: str | None,
                error_code: str | None, error_message: str | None) -> None:
    """Append one CloudTrail event for a control-plane call (the call's own request id is its requestID)."""
    read_only = operation_name.startswith(READ_PREFIXES)
    arns = arns_in(params, response)
    account = services.settings.account_id
    event: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account, "accessKeyId": access_key_id,
                         "userName": username,
                         "arn": f"arn:aws:iam::{account}:user/{username}" if username else None},
        "eventTime": _iso(now),
        "eventSource": EVENT_SOURCE,
        "eventName": operation_name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": redact(input_shape, params) if isinstance(params, dict) else None,
        "responseElements": None if read_only or not isinstance(response, dict) else response,
        "requestID": request_id,
        "eventID": request_id,
        "readOnly": read_only,
        "resources": [{"ARN": arn, "accountId": account, "type": resource_type(arn)} for arn in arns],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        event["errorCode"] = error_code
        event["errorMessage"] = error_message
    with services.engine.begin() as conn:
        store.append(conn, event_id=request_id, event_time=now, event_name=operation_name,
                     event_source=EVENT_SOURCE, read_only=read_only, access_key_id=access_key_id,
                     username=username, resources=[(resource_type(a), a) for a in arns], error_code=error_code,
                     record=event)
    _purge_if_due(services, now)


def _purge_if_due(services: Services, now: float) -> None:
    """Delete what is past retention, at most once an hour (or a tenth of the retention period, if shorter)."""
    retention = services.settings.audit_retention_days * 86400.0
    if now - _last_purge[0] < min(_PURGE_EVERY, retention / 10) or not _purge_lock.acquire(blocking=False):
        return
    try:
        _last_purge[0] = now
        with services.engine.begin() as conn:
            store.purge(conn, now - retention)
    finally:
        _purge_lock.release()


# --- CloudTrail LookupEvents ------------------------------------------------------------------------------

# LookupAttributes key -> the store.page filter it sets.
ATTRIBUTES = {"EventId": "event_id", "EventName": "event_name", "ReadOnly": "read_only", "Username": "username",
              "ResourceType": "resource_type", "ResourceName": "resource_name", "EventSource": "event_source",
              "AccessKeyId": "access_key_id"}


def _token(seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": seq})).decode()


def _untoken(token: str) -> int:
    try:
        before = orjson.loads(base64.urlsafe_b64decode(token.encode()))["before"]
    except Exception as exc:
        raise InvalidCloudTrailNextTokenException(
            "The NextToken is not valid; pass the NextToken of the previous LookupEvents page.") from exc
    if type(before) is not int or before < 0:
        raise InvalidCloudTrailNextTokenException(
            "The NextToken is not valid; pass the NextToken of the previous LookupEvents page.")
    return before


def filters_from(attributes: Iterable[dict[str, str]]) -> dict[str, Any]:
    """LookupAttributes -> store.page filters (CloudTrail takes at most one attribute)."""
    attributes = list(attributes)
    if len(attributes) > 1:
        raise InvalidLookupAttributesException(
            "LookupAttributes takes one attribute; look events up by one of "
            f"{', '.join(ATTRIBUTES)} and filter the rest on your side.")
    found: dict[str, Any] = {}
    for attribute in attributes:
        key, value = attribute["attribute_key"], attribute["attribute_value"]
        if key not in ATTRIBUTES:
            raise InvalidLookupAttributesException(
                f"AttributeKey {key!r} is not one of {', '.join(ATTRIBUTES)}.")
        if key == "ReadOnly":
            if value.lower() not in ("true", "false"):
                raise InvalidLookupAttributesException("The ReadOnly attribute's value must be true or false.")
            found["read_only"] = value.lower() == "true"
        else:
            found[ATTRIBUTES[key]] = value
    return found


def lookup(services: Services, *, filters: dict[str, Any], start: float | None, end: float | None,
           max_results: int, next_token: str | None) -> tuple[list[store.AuditEvent], str | None]:
    """One page of matching events, newest first, and the token of the next page (None at the end)."""
    if start is not None and end is not None and start > end:
        raise InvalidTimeRangeException("StartTime must not be after EndTime.")
    before = _untoken(next_token) if next_token else None
    with services.read_engine.connect() as conn:
        rows = store.page(conn, start=start, end=end, before_seq=before, limit=max_results + 1, **filters)
    token = _token(rows[max_results - 1].seq) if len(rows) > max_results else None
    return rows[:max_results], token


@operation("LookupEvents")
def lookup_events(ctx: RequestContext, lookup_attributes: list[dict[str, str]] | None = None,
                  start_time: float | None = None, end_time: float | None = None,
                  event_category: str | None = None, max_results: int | None = None,
                  next_token: str | None = None) -> dict[str, Any]:
    if max_results is not None and not 1 <= max_results <= 50:
        raise InvalidMaxResultsException("MaxResults must be between 1 and 50.")
    rows, token = lookup(ctx.services, filters=filters_from(lookup_attributes or []), start=start_time,
                         end=end_time, max_results=max_results or 50, next_token=next_token)
    events = [{
        "event_id": row.event_id, "event_name": row.event_name, "read_only": "true" if row.read_only else "false",
        "access_key_id": row.access_key_id, "event_time": row.event_time, "event_source": row.event_source,
        "username": row.username,
        "resources": [{"resource_type": kind, "resource_name": name} for kind, name in row.resources],
        "cloud_trail_event": orjson.dumps(row.record).decode(),
    } for row in rows]
    out: dict[str, Any] = {"events": events}
    if token:
        out["next_token"] = token
    return out
