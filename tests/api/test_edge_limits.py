"""The per-operation body limits: derived from the service models, large enough for every valid request."""

from __future__ import annotations

import json

from tastemaker.api import service_models
from tastemaker.api.limits import CEILING, SLACK, UNKNOWN_OPERATION_LIMIT, body_limit, body_limits
from tastemaker.api.validation import validate_input


def _largest_put_events() -> dict:
    """A valid PutEvents request at every model maximum, all in non-ASCII text (6 bytes per character)."""
    wide = "\u00e9"
    event = {"eventId": wide * 256, "eventType": wide * 256, "eventValue": -3.4e38, "itemId": wide * 256,
             "properties": json.dumps({"k": wide * 1010}, ensure_ascii=False), "sentAt": 1_700_000_000.123,
             "recommendationId": wide * 40, "impression": [wide * 256] * 25,
             "metricAttribution": {"eventAttributionSource": "A" * 1024}}
    return {"trackingId": wide * 256, "userId": wide * 256, "sessionId": wide * 256, "eventList": [event] * 10}


def test_every_operation_has_a_limit_between_slack_and_ceiling() -> None:
    table = body_limits()
    assert set(table) == {info.name for info in service_models.all_operations()}
    assert all(SLACK <= limit <= CEILING for limit in table.values())
    assert body_limit(None) == body_limit("NoSuchOperation") == UNKNOWN_OPERATION_LIMIT


def test_the_largest_valid_put_events_fits_its_limit() -> None:
    request = _largest_put_events()
    info = service_models.operation_by_name("personalize-events", "PutEvents")
    assert info is not None
    validate_input(info.model, request)  # valid: the limit must admit it
    body = json.dumps(request).encode()  # what botocore sends (non-ASCII escaped)
    assert len(body) <= body_limit("PutEvents")


def test_control_plane_calls_are_small_and_bulk_data_paths_larger() -> None:
    assert body_limit("DescribeDatasetGroup") < 64 << 10
    assert body_limit("CreateDatasetGroup") < 1 << 20  # a 50 MB CreateDatasetGroup is refused unread
    assert body_limit("PutItems") > body_limit("CreateDatasetGroup")
