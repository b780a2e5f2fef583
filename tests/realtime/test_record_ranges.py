"""Events-API and Put* values outside Personalize's ranges are refused, naming the field; stored records that
slipped in before are left out of training instead of stopping it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tastemaker.data.schemas import MAX_TIMESTAMP, MIN_TIMESTAMP, parse_schema
from tastemaker.data.tables import write_records
from tastemaker.errors import InvalidInputException
from tastemaker.realtime.records import (
    RecordMapper,
    event_mapper,
    map_action_interaction,
    map_entity,
    map_event,
    trainable,
)
from tests.realtime.conftest import INTERACTIONS, ITEMS

ACTION_INTERACTIONS = {
    "type": "record", "name": "ActionInteractions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ACTION_ID", "type": "string"},
               {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}],
    "version": "1.0",
}


def event(**extra: object) -> dict[str, object]:
    return {"event_type": "click", "item_id": "i1", "sent_at": 1_700_000_000, **extra}


@pytest.mark.parametrize("sent_at", [1e19, -1e19, 1.7e12, MAX_TIMESTAMP + 1, MIN_TIMESTAMP - 1])
def test_sent_at_outside_the_range_is_refused(sent_at: float) -> None:
    mapper = event_mapper(parse_schema(json.dumps(INTERACTIONS)))
    with pytest.raises(InvalidInputException, match=r"eventList\.1 \(event 1\)\.sentAt: .*epoch seconds"):
        map_event(mapper, 0, event(sent_at=sent_at), "u1")


@pytest.mark.parametrize("sent_at", [0, MIN_TIMESTAMP, MAX_TIMESTAMP + 0.5, 1_700_000_000.25])
def test_sent_at_inside_the_range_is_kept_in_whole_seconds(sent_at: float) -> None:
    mapper = event_mapper(parse_schema(json.dumps(INTERACTIONS)))
    assert map_event(mapper, 0, event(sent_at=sent_at), "u1")["TIMESTAMP"] == int(sent_at)


def test_event_value_beyond_a_float_is_refused_even_without_the_schema_field() -> None:
    schema = {**INTERACTIONS, "fields": [f for f in INTERACTIONS["fields"] if f["name"] != "EVENT_VALUE"]}
    mapper = event_mapper(parse_schema(json.dumps(schema)))
    with pytest.raises(InvalidInputException, match=r"eventValue"):
        map_event(mapper, 0, event(event_value=1e300), "u1")


def test_action_interaction_timestamp_outside_the_range_is_refused() -> None:
    mapper = RecordMapper(parse_schema(json.dumps(ACTION_INTERACTIONS)), {})
    with pytest.raises(InvalidInputException, match=r"actionInteractions\.1 .*timestamp: .*milliseconds"):
        map_action_interaction(mapper, 0, {"action_id": "a", "user_id": "u", "event_type": "Taken",
                                           "timestamp": 1_700_000_000_000})


def test_put_items_creation_timestamp_outside_the_range_is_refused(tmp_path: Path) -> None:
    schema = parse_schema(json.dumps(ITEMS))
    mapper = RecordMapper(schema, {"ITEM_ID": "itemId"})
    with pytest.raises(InvalidInputException, match=r"CREATION_TIMESTAMP.*epoch seconds"):
        map_entity(mapper, "items.1", "ITEM_ID", "i1", json.dumps({"creationTimestamp": 9 * 10**18}))
    with pytest.raises(InvalidInputException, match=r"record\[0\], field CREATION_TIMESTAMP: .*epoch seconds"):
        write_records([{"ITEM_ID": "i1", "CREATION_TIMESTAMP": 9 * 10**18}], schema, "Items", tmp_path / "p.parquet")


def test_trainable_leaves_out_records_that_cannot_be_trained_on() -> None:
    good = {"USER_ID": "u", "ITEM_ID": "i", "TIMESTAMP": 1_700_000_000, "EVENT_VALUE": 2.5}
    bad = [{**good, "TIMESTAMP": 10**19}, {**good, "TIMESTAMP": None}, {**good, "NUMBER": 2**64},
           {**good, "EVENT_VALUE": float("nan")}]
    assert trainable([good, *bad]) == ([good], 4)
