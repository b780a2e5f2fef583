"""The events-API field mapping: camelCase properties keys, value conversion, precise refusals."""

from __future__ import annotations

import json

import pytest

from tastemaker.data.schemas import parse_schema
from tastemaker.errors import InvalidInputException
from tastemaker.realtime.records import RecordMapper, camel_case, event_mapper, map_entity, map_event
from tests.realtime.conftest import INTERACTIONS, ITEMS


def test_camel_case_of_schema_fields() -> None:
    assert camel_case("NUMBER_OF_RATINGS") == "numberOfRatings"
    assert camel_case("DEVICE") == "device"
    assert camel_case("CATEGORY_L1") == "categoryL1"


def mapper() -> RecordMapper:
    return event_mapper(parse_schema(json.dumps(INTERACTIONS)))


@pytest.mark.parametrize("key", ["numberOfRatings", "NUMBER_OF_RATINGS", "number_of_ratings"])
def test_properties_keys_match_fields_in_any_spelling(key: str) -> None:
    record = map_event(mapper(), 0, {"event_type": "x", "item_id": "i", "sent_at": 5.9,
                                     "properties": json.dumps({key: 3})}, "u")
    assert record["NUMBER_OF_RATINGS"] == 3 and record["TIMESTAMP"] == 5


@pytest.mark.parametrize("value, expected", [(3, 3), ("3", 3), ("-7", -7), (4.0, 4)])
def test_integer_values(value: object, expected: int) -> None:
    record = map_event(mapper(), 0, {"event_type": "x", "item_id": "i", "sent_at": 1,
                                     "properties": json.dumps({"numberOfRatings": value})}, "u")
    assert record["NUMBER_OF_RATINGS"] == expected


@pytest.mark.parametrize("props, fragment", [
    ({"numberOfRatings": 2.5}, "not an integer"),
    ({"numberOfRatings": True}, "not an integer"),
    ({"numberOfRatings": 2**40}, "out of range for int"),
    ({"device": ["a", "b"]}, "joined with '|'"),
    ({"device": "x" * 1001}, "limited to 1000"),
    ({"eventType": "buy"}, "'eventType' is not allowed"),
    ({"Timestamp": 5}, "'Timestamp' is not allowed"),
    ({"shoeSize": 5}, "matches no field"),
])
def test_bad_properties_name_event_and_key(props: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as exc:
        map_event(mapper(), 4, {"event_type": "x", "item_id": "i", "sent_at": 1, "properties": json.dumps(props)}, "u")
    assert "eventList.5 (event 5)" in exc.value.message and fragment in exc.value.message, exc.value.message


def test_properties_must_be_a_json_object() -> None:
    for text, fragment in (("[1, 2]", "must be a JSON object"), ("{oops", "not valid JSON")):
        with pytest.raises(InvalidInputException, match=fragment):
            map_event(mapper(), 0, {"event_type": "x", "item_id": "i", "sent_at": 1, "properties": text}, "u")


def test_reserved_members_are_dropped_when_the_schema_lacks_them() -> None:
    schema = {**INTERACTIONS, "fields": INTERACTIONS["fields"][:4]}
    record = map_event(event_mapper(parse_schema(json.dumps(schema))), 0, {
        "event_type": "x", "item_id": "i", "sent_at": 1, "event_value": 3.0, "impression": ["a"],
        "recommendation_id": "RID-1"}, None)
    assert record == {"USER_ID": None, "ITEM_ID": "i", "TIMESTAMP": 1, "EVENT_TYPE": "x"}


def test_entity_records_use_the_id_member() -> None:
    items = RecordMapper(parse_schema(json.dumps(ITEMS)), {"ITEM_ID": "itemId"})
    assert map_entity(items, "items.1", "ITEM_ID", "i9", json.dumps({"genres": "A|B", "price": "2.5"})) == {
        "ITEM_ID": "i9", "GENRES": "A|B", "PRICE": 2.5}
    with pytest.raises(InvalidInputException, match="items.1.properties: key 'itemId' maps to ITEM_ID"):
        map_entity(items, "items.1", "ITEM_ID", "i9", json.dumps({"itemId": "other"}))


def test_event_properties_may_repeat_a_member_field_and_the_member_wins() -> None:
    """AWS's notebooks send the item in properties ('{"itemId": "123"}'); Personalize accepts it (#14 item 1)."""
    from_properties = map_event(mapper(), 0, {"event_type": "x", "sent_at": 1,
                                              "properties": json.dumps({"itemId": "123", "eventValue": 5})}, "u")
    assert from_properties["ITEM_ID"] == "123"
    both = map_event(mapper(), 0, {"event_type": "x", "item_id": "i", "sent_at": 1, "event_value": 2.0,
                                   "properties": json.dumps({"itemId": "123", "eventValue": 5})}, "u")
    assert both["ITEM_ID"] == "i" and both["EVENT_VALUE"] == 2.0
