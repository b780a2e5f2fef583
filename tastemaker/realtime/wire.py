"""The hot requests' shapes (PutEvents, the common GetRecommendations) checked by straight-line code instead
of the generic model walker.

The API layer validates every request against its botocore input shape (tastemaker.api.validation) and converts
camelCase members to snake_case (tastemaker.api.convert): a walk over nodes and shapes that, for a PutEvents of
10 events, visits ~70 values through as many method calls, most of the events path's CPU. `put_events_input`
does the same checks for the shape that clients actually send, in one pass:

    trackingId, sessionId (1-256 chars), userId (optional, 1-256), eventList (1-10 events), each event with
    eventType (1-256) and sentAt (epoch seconds), and optionally eventId, itemId (1-256), eventValue (a finite
    number) and properties (1-1024 chars holding a JSON object); no string holds NUL.

It returns exactly what `to_python(shape, validate_input(model, raw))` returns for such a request, or None for
anything else (a member it does not know, a null, an ISO 8601 sentAt, impression, recommendationId,
metricAttribution, and every violation): the caller then runs the generic walker, which accepts or refuses
the request with its usual message. So this path can only make an accepted request cheaper; every error is
still the walker's (tests/realtime/test_wire.py compares both on valid and broken requests).

`get_recommendations_input` does the same for GetRecommendations with campaignArn and userId, optionally
numResults, filterArn and filterValues: every other member (itemId, context, promotions, ...) goes to the walker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson

_TOP = frozenset(("trackingId", "sessionId", "userId", "eventList"))
_OPTIONAL_IDS = (("eventId", "event_id"), ("itemId", "item_id"))
_EVENT_MEMBERS = frozenset(("eventId", "eventType", "eventValue", "itemId", "properties", "sentAt"))
_isfinite = math.isfinite


def _id(value: Any) -> bool:
    """A string member of 1-256 characters without NUL (StringType, UserId, ItemId)."""
    return type(value) is str and 0 < len(value) <= 256 and "\x00" not in value


def put_events_input(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The validated snake_case parameters of a plain PutEvents request, or None (use the generic walker)."""
    if not _TOP.issuperset(raw):
        return None
    tracking_id, session_id, events = raw.get("trackingId"), raw.get("sessionId"), raw.get("eventList")
    if not (_id(tracking_id) and _id(session_id) and type(events) is list and 0 < len(events) <= 10):
        return None
    out: dict[str, Any] = {"tracking_id": tracking_id, "session_id": session_id}
    if "userId" in raw:
        user_id = raw["userId"]
        if not _id(user_id):
            return None
        out["user_id"] = user_id
    converted = []
    members = _EVENT_MEMBERS
    for event in events:  # _id's checks written out: this loop runs 10 times a call
        if type(event) is not dict or not members.issuperset(event):
            return None
        sent_at: Any = event.get("sentAt")
        kind = type(sent_at)
        if not (kind is float and _isfinite(sent_at) or kind is int):
            return None
        event_type = event.get("eventType")
        if type(event_type) is not str or not 0 < len(event_type) <= 256 or "\x00" in event_type:
            return None
        item: dict[str, Any] = {"sent_at": float(sent_at), "event_type": event_type}
        for wire, name in _OPTIONAL_IDS:
            value = event.get(wire)
            if value is not None:
                if type(value) is not str or not 0 < len(value) <= 256 or "\x00" in value:
                    return None
                item[name] = value
            elif wire in event:  # an explicit null: the walker drops it; leave such requests to it
                return None
        value = event.get("eventValue")
        if value is not None:
            kind = type(value)
            if not (kind is float and _isfinite(value) or kind is int):
                return None
            item["event_value"] = value
        elif "eventValue" in event:
            return None
        text = event.get("properties")
        if text is not None:
            if type(text) is not str or not 0 < len(text) <= 1024 or "\x00" in text or not _json_object(text):
                return None
            item["properties"] = text
        elif "properties" in event:
            return None
        converted.append(item)
    out["event_list"] = converted
    return out


def _json_object(text: str) -> bool:
    try:
        return type(orjson.loads(text)) is dict
    except orjson.JSONDecodeError:
        return False


_RECOMMENDATIONS = frozenset(("campaignArn", "userId", "numResults", "filterArn", "filterValues"))
# The model's Arn pattern for a value without line terminators or NUL (Java's `.` matches neither, and `\d`
# is ASCII there): so fullmatch here accepts exactly what the walker's Java-flavoured pattern accepts.
_ARN = re.compile(r"arn:([a-z0-9-]+):personalize:.*:.*:.+")
_FILTER_NAME = re.compile(r"[A-Za-z0-9_]+")
_LINE_ENDS = frozenset("\n\r\x85\u2028\u2029\x00")


def _arn(value: Any) -> bool:
    return (type(value) is str and len(value) <= 256 and _LINE_ENDS.isdisjoint(value)
            and _ARN.fullmatch(value) is not None)


def get_recommendations_input(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The validated snake_case parameters of the common GetRecommendations (campaignArn, userId, optional
    numResults 0-500, filterArn and up to 25 filterValues), or None (use the generic walker)."""
    if not _RECOMMENDATIONS.issuperset(raw):
        return None
    campaign, user = raw.get("campaignArn"), raw.get("userId")
    if not (_arn(campaign) and _id(user)):
        return None
    out: dict[str, Any] = {"campaign_arn": campaign, "user_id": user}
    if "numResults" in raw:
        num = raw["numResults"]
        if type(num) is not int or not 0 <= num <= 500:
            return None
        out["num_results"] = num
    if "filterArn" in raw:
        if not _arn(raw["filterArn"]):
            return None
        out["filter_arn"] = raw["filterArn"]
    if "filterValues" in raw:
        values = raw["filterValues"]
        if type(values) is not dict or len(values) > 25:
            return None
        for name, value in values.items():
            if not (len(name) <= 50 and _FILTER_NAME.fullmatch(name) and type(value) is str and len(value) <= 1000
                    and "\x00" not in value):
                return None
        out["filter_values"] = values
    return out


# Operation name -> its straight-line input check (the API layer falls back to the walker on None).
FAST_INPUTS: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "PutEvents": put_events_input, "GetRecommendations": get_recommendations_input}
