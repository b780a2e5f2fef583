"""PutEvents' straight-line input check gives what the generic walker gives, and leaves every refusal to it."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from tastemaker.api import service_models
from tastemaker.api.convert import to_python
from tastemaker.api.validation import validate_input
from tastemaker.errors import InvalidInputException
from tastemaker.realtime.wire import get_recommendations_input, put_events_input

INFO = service_models.operation_for_path("POST", "/events")



def agreed(fast_check: Any, walker: Any, raw: dict[str, Any]) -> Any:
    """The straight-line check's answer for `raw`, asserted against the generic model walker's: None where the
    walker refuses the input (the fast check must defer then) or where the fast check defers by itself."""
    fast = fast_check(copy.deepcopy(raw))
    try:
        expected = walker(copy.deepcopy(raw))
    except InvalidInputException:
        assert fast is None, raw
        return None
    assert fast is None or fast == expected, raw
    return fast

def walker(raw: dict[str, Any]) -> dict[str, Any]:
    assert INFO is not None
    return to_python(INFO.input_shape, validate_input(INFO.model, raw))  # type: ignore[no-any-return]


def request(events: int = 10, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "trackingId": "7f0c7a1e-1111-2222-3333-444455556666", "sessionId": "s-1", "userId": "u-1",
        "eventList": [{"eventId": f"e{j}", "eventType": "click", "itemId": f"i{j}", "sentAt": 1.7e9 + j,
                       "eventValue": 1.5, "properties": '{"device": "ios"}'} for j in range(events)]}
    body.update(top)
    return body


def test_plain_requests_match_the_walker() -> None:
    for raw in (request(), request(1), request(events=3, userId="x" * 256),
                {"trackingId": "t", "sessionId": "s", "eventList": [{"eventType": "buy", "sentAt": 1700000000}]},
                request(eventList=[{"eventType": "v", "sentAt": 5, "eventValue": 3, "itemId": "i"}])):
        fast = put_events_input(copy.deepcopy(raw))
        assert fast is not None
        assert fast == walker(copy.deepcopy(raw))
        assert isinstance(fast["event_list"][0]["sent_at"], float)


BREAKS: list[tuple[str, Any]] = [
    ("trackingId", ""), ("trackingId", "t" * 257), ("trackingId", 5), ("trackingId", None), ("sessionId", "a\x00b"),
    ("userId", ""), ("userId", True), ("eventList", []), ("eventList", {}), ("unknownMember", 1),
    ("eventList", [None]), ("eventList", ["x"]),
]
EVENT_BREAKS: list[tuple[str, Any]] = [
    ("eventType", None), ("eventType", ""), ("eventType", 3), ("sentAt", None), ("sentAt", "2024-01-01T00:00:00"),
    ("sentAt", True), ("sentAt", "x"), ("eventValue", True), ("eventValue", "1"), ("eventValue", None),
    ("itemId", "i" * 257), ("itemId", ""), ("eventId", "\x00"), ("properties", "[1]"), ("properties", "{"),
    ("properties", ""), ("properties", "{}" + " " * 1023), ("properties", {"a": 1}), ("impression", ["a", "b"]),
    ("recommendationId", "r"), ("metricAttribution", {"eventAttributionSource": "x"}), ("other", 1),
]


@pytest.mark.parametrize(("member", "value"), BREAKS)
def test_anything_else_goes_to_the_walker(member: str, value: Any) -> None:
    raw = request(**{member: value})
    assert put_events_input(copy.deepcopy(raw)) is None


@pytest.mark.parametrize(("member", "value"), EVENT_BREAKS)
def test_event_members_outside_the_plain_shape_go_to_the_walker(member: str, value: Any) -> None:
    raw = request()
    raw["eventList"][4][member] = value
    assert put_events_input(copy.deepcopy(raw)) is None


def test_eleven_events_go_to_the_walker_which_refuses_them() -> None:
    raw = request(11)
    assert put_events_input(raw) is None
    with pytest.raises(InvalidInputException, match="eventList"):
        walker(raw)


def test_random_mutations_never_disagree_with_the_walker() -> None:
    """Whenever the fast check accepts a request, the walker accepts it with the same parameters."""
    rng = random.Random(7)
    values: list[Any] = [None, "", "a", "x" * 300, 0, -1, 1.5, float("inf"), True, [], {}, '{"a": 1}', "[]", "\x00"]
    for _ in range(3000):
        raw = request(rng.randrange(1, 11))
        for _ in range(rng.randrange(1, 3)):
            if rng.random() < 0.3:
                raw[rng.choice(["trackingId", "sessionId", "userId", "extra"])] = rng.choice(values)
            else:
                event = rng.choice(raw["eventList"])
                event[rng.choice(["eventId", "eventType", "itemId", "sentAt", "eventValue", "properties"])] = \
                    rng.choice(values)
        agreed(put_events_input, walker, raw)


RECOMMENDATIONS = service_models.operation_for_path("POST", "/recommendations")
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/c1"


def recommendations_walker(raw: dict[str, Any]) -> dict[str, Any]:
    assert RECOMMENDATIONS is not None and RECOMMENDATIONS.name == "GetRecommendations"
    return to_python(RECOMMENDATIONS.input_shape,  # type: ignore[no-any-return]
                     validate_input(RECOMMENDATIONS.model, raw))


def test_common_get_recommendations_match_the_walker() -> None:
    filter_arn = "arn:aws:personalize:us-east-1:000000000000:filter/f"
    for raw in ({"campaignArn": CAMPAIGN, "userId": "u1"},
                {"campaignArn": CAMPAIGN, "userId": "u" * 256, "numResults": 500},
                {"campaignArn": CAMPAIGN, "userId": "u1", "numResults": 0, "filterArn": filter_arn},
                {"campaignArn": CAMPAIGN, "userId": "u1", "filterArn": filter_arn,
                 "filterValues": {"G": '"g1"', "Price_2": '"1", "2"', "e": ""}}):
        fast = get_recommendations_input(copy.deepcopy(raw))
        assert fast is not None
        assert fast == recommendations_walker(copy.deepcopy(raw))


def test_get_recommendations_mutations_never_disagree_with_the_walker() -> None:
    """Every other member and every break goes to the walker; what the fast check accepts, the walker accepts
    with the same parameters."""
    rng = random.Random(8)
    values: list[Any] = [None, "", "u", "x" * 257, 0, -1, 25, 501, 2**40, 1.5, True, [], {}, "\x00", "a\nb",
                         CAMPAIGN, CAMPAIGN + "\n", "arn:aws:personalize:x", "arn:aws:s3:::b/k", "arn:\u0661:personalize:us-east-1:1:x",
                         {"G": "x"}, {"bad-name": "x"}, {"G": 1}, {"G": "x" * 1001}, {f"k{j}": "v" for j in range(26)},
                         {"\u00e9": "x"}, {"G": "\x00"}]
    members = ["campaignArn", "userId", "numResults", "filterArn", "filterValues", "itemId", "context",
               "recommenderArn", "promotions", "metadataColumns"]
    accepted = 0
    for _ in range(4000):
        raw: dict[str, Any] = {"campaignArn": CAMPAIGN, "userId": "u1"}
        for _ in range(rng.randrange(1, 3)):
            raw[rng.choice(members)] = rng.choice(values)
        accepted += agreed(get_recommendations_input, recommendations_walker, raw) is not None
    assert accepted > 50
