"""Map events-API payloads onto schema rows (spec §6) and validate them, naming the record and field at fault."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from tastemaker.data.csv_import import MAX_CATEGORICAL_CHARS, MAX_ID_CHARS, MAX_TEXTUAL_CHARS
from tastemaker.data.schemas import (
    FLOAT32_MAX,
    ID_FIELDS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    TIMESTAMP_FIELDS,
    Schema,
    SchemaField,
    timestamp_problem,
)
from tastemaker.errors import InvalidInputException

# Property keys that must not appear in an event's properties (case-insensitive, spec §6).
FORBIDDEN_EVENT_KEYS = ("userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression")
# Interactions fields filled from the event's own members, never from properties.
EVENT_MEMBER_FIELDS = {
    "USER_ID": "userId", "ITEM_ID": "itemId", "TIMESTAMP": "sentAt", "EVENT_TYPE": "eventType",
    "EVENT_VALUE": "eventValue", "IMPRESSION": "impression", "RECOMMENDATION_ID": "recommendationId",
    "EVENT_ATTRIBUTION_SOURCE": "metricAttribution.eventAttributionSource",
}
ACTION_INTERACTION_MEMBER_FIELDS = {
    "USER_ID": "userId", "ACTION_ID": "actionId", "TIMESTAMP": "timestamp", "EVENT_TYPE": "eventType",
    "IMPRESSION": "impression", "RECOMMENDATION_ID": "recommendationId",
}
ACTION_EVENT_TYPES = ("Viewed", "Taken", "Not Taken")
_INTEGER = re.compile(r"^-?[0-9]+$")
_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
PARSED_TEXTS = 4096  # distinct properties texts remembered per mapper (each at most 1024 characters)


def camel_case(field_name: str) -> str:
    """NUMBER_OF_RATINGS -> numberOfRatings: how a schema field is spelled as a properties key."""
    words = [w for w in field_name.lower().split("_") if w]
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else field_name


def _loose(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", name).lower()


class RecordMapper:
    """Resolves properties keys to schema fields and converts values to the fields' Python types."""

    def __init__(self, schema: Schema, reserved: Mapping[str, str], *, member_wins: bool = False) -> None:
        self.schema = schema
        self.reserved = reserved  # schema field -> the request member that carries it
        self.member_wins = member_wins  # properties may repeat a reserved field; the member wins (PutEvents)
        # Schemas keep field names distinct after dropping non-alphanumerics and case, so this is unambiguous.
        self.index = {_loose(f.name): f for f in schema.fields}
        self.by_name = {f.name: f for f in schema.fields}
        self.required = tuple(f for f in schema.fields if not f.nullable)
        self.key_cache: dict[str, SchemaField | None] = {}  # properties key as sent -> field
        # properties text as sent -> its typed fields, for texts that passed (clients repeat a few texts, and a
        # call's 10 events often share one): a hit costs a dict copy instead of a parse and conversions
        self.parsed: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self.optional_fields = {name: self.by_name.get(name) for name in
                                ("EVENT_VALUE", "IMPRESSION", "RECOMMENDATION_ID", "EVENT_ATTRIBUTION_SOURCE")}
        item = self.by_name.get("ITEM_ID")
        self.item_required = item is not None and not item.nullable

    def field_for_key(self, key: str) -> SchemaField | None:
        try:
            return self.key_cache[key]
        except KeyError:
            f = self.index.get(_loose(key))
            if len(self.key_cache) < 1000:
                self.key_cache[key] = f
            return f

    def properties(self, where: str, text: str | None, forbidden: tuple[str, ...] = ()) -> dict[str, Any]:
        """Parse a properties JSON string into {FIELD: typed value}; raise naming `where` and the key."""
        if text is None or text == "":
            return {}
        known = self.parsed.get((text, forbidden))
        if known is not None:
            return known.copy()
        out = self._parse_properties(where, text, forbidden)
        if len(self.parsed) < PARSED_TEXTS and len(text) <= 1024:
            self.parsed[(text, forbidden)] = out.copy()
        return out

    def _parse_properties(self, where: str, text: str, forbidden: tuple[str, ...]) -> dict[str, Any]:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputException(f"{where}.properties is not valid JSON ({exc}); pass a JSON object "
                                        "string such as '{\"numberOfRatings\": 12}'.") from None
        if not isinstance(doc, dict):
            raise InvalidInputException(f"{where}.properties must be a JSON object, not {type(doc).__name__}.")
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if forbidden and key.lower() in forbidden:
                raise InvalidInputException(
                    f"{where}.properties: key '{key}' is not allowed in properties; it is set from the request "
                    f"itself (forbidden keys: {', '.join(forbidden)}).")
            f = self.field_for_key(key)
            if f is None:
                allowed = [camel_case(x.name) for x in self.schema.fields if x.name not in self.reserved]
                raise InvalidInputException(
                    f"{where}.properties: key '{key}' matches no field of the schema {self.schema.name}; "
                    f"allowed keys: {', '.join(allowed) or '(none: the schema has no metadata fields)'}.")
            # PutEvents accepts a key for a field that a request member also carries (AWS's notebooks send
            # '{"itemId": "123"}'), as Personalize does; map_event lets the request member win when both are set.
            if f.name in self.reserved and not self.member_wins:
                raise InvalidInputException(
                    f"{where}.properties: key '{key}' maps to {f.name}, which is set from the request member "
                    f"'{self.reserved[f.name]}', not from properties.")
            if f.name in out:
                raise InvalidInputException(f"{where}.properties: field {f.name} is given twice.")
            if value is None:
                continue
            out[f.name] = convert_value(f, value, f"{where}.properties '{key}' ({f.name})")
        return out

    def require_fields(self, where: str, record: Mapping[str, Any], skip: tuple[str, ...] = ()) -> None:
        """Every non-nullable schema field must have a value (except those in `skip`)."""
        for f in self.required:
            if record.get(f.name) is None and f.name not in skip:
                source = self.reserved.get(f.name) or f"properties key '{camel_case(f.name)}'"
                raise InvalidInputException(
                    f"{where}: field {f.name} is required by the schema {self.schema.name} (not nullable); "
                    f"pass it as {source}.")


def convert_value(f: SchemaField, value: Any, where: str) -> Any:
    """A JSON value (or its string form) as the Python value of the field's Avro type; raise naming `where`."""
    kind = f.avro_type
    if isinstance(value, (dict, list)):
        raise InvalidInputException(f"{where}: a JSON {type(value).__name__} is not allowed; use a "
                                    f"{kind} value (multiple categorical values are joined with '|').")
    if kind in ("int", "long"):
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise InvalidInputException(f"{where}: {value!r} is not an integer.")
        if isinstance(value, str):
            if not _INTEGER.match(value.strip()):
                raise InvalidInputException(f"{where}: '{value}' is not an integer.")
            value = int(value.strip())
        number = int(value)
        low, high = _INT_RANGES[kind]
        if not low <= number <= high:
            raise InvalidInputException(f"{where}: {number} is out of range for {kind}.")
        if f.name in TIMESTAMP_FIELDS and (problem := timestamp_problem(number)):
            raise InvalidInputException(f"{where}: {problem}")
        return number
    if kind in ("float", "double"):
        if isinstance(value, bool):
            raise InvalidInputException(f"{where}: {value!r} is not a {kind}.")
        try:
            real = float(value)
        except (TypeError, ValueError):
            raise InvalidInputException(f"{where}: {value!r} is not a {kind}.") from None
        if not math.isfinite(real) or (kind == "float" and abs(real) > FLOAT32_MAX):
            raise InvalidInputException(f"{where}: {value!r} is not a finite {kind}.")
        return real
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise InvalidInputException(f"{where}: {value!r} is not a boolean (use true or false).")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = str(value)
    check_string(f, text, where)
    return text


def check_string(f: SchemaField, text: str, where: str) -> None:
    if f.name in ID_FIELDS:
        limit, what = MAX_ID_CHARS, "ids"
    elif f.textual:
        limit, what = MAX_TEXTUAL_CHARS, "textual values"
    elif f.categorical or f.name == "IMPRESSION":
        limit, what = MAX_CATEGORICAL_CHARS, "categorical values"
    else:
        return
    if len(text) > limit:
        raise InvalidInputException(f"{where}: the value is {len(text)} characters long; {what} are limited "
                                    f"to {limit}.")


def event_mapper(schema: Schema) -> RecordMapper:
    return RecordMapper(schema, EVENT_MEMBER_FIELDS, member_wins=True)


def map_event(mapper: RecordMapper, index: int, event: Mapping[str, Any], user_id: str | None) -> dict[str, Any]:
    """One PutEvents event -> the Interactions row in schema field names (EVENT_TYPE always kept)."""
    text = event.get("properties")
    if text:
        known = mapper.parsed.get((text, FORBIDDEN_EVENT_KEYS))
        record = known.copy() if known is not None else mapper.properties(_event_where(index), text,
                                                                          FORBIDDEN_EVENT_KEYS)
    else:
        record = {}
    item_id = event.get("item_id")
    if item_id is None:  # the request member wins; else the properties' itemId (how AWS's notebooks send it)
        item_id = record.get("ITEM_ID")
    if item_id is None and mapper.item_required:
        raise InvalidInputException(f"{_event_where(index)}: itemId is required; the Interactions schema's "
                                    "ITEM_ID is not nullable.")
    record["USER_ID"] = user_id
    record["ITEM_ID"] = item_id
    sent_at = event.get("sent_at")
    if sent_at is None:
        raise InvalidInputException(f"{_event_where(index)}: sentAt is required (epoch seconds of the event).")
    record["TIMESTAMP"] = (int(sent_at) if MIN_TIMESTAMP <= sent_at < MAX_TIMESTAMP + 1
                           else _timestamp(_event_where(index), "sentAt", sent_at))
    record["EVENT_TYPE"] = event["event_type"]
    fields = mapper.optional_fields
    event_value = event.get("event_value")
    if event_value is not None:
        if not (math.isfinite(event_value) and abs(event_value) <= FLOAT32_MAX):
            raise InvalidInputException(f"{_event_where(index)}.eventValue: {event_value!r} is outside the range "
                                        f"of a float (EVENT_VALUE is a 32-bit float: at most {FLOAT32_MAX:g} in "
                                        "magnitude).")
        value_field = fields["EVENT_VALUE"]
        if value_field is not None and value_field.avro_type in ("float", "double"):
            record["EVENT_VALUE"] = float(event_value)  # what convert_value returns for a number checked above
        elif value_field is not None:
            _optional(mapper, _event_where(index), record, "EVENT_VALUE", event_value, "eventValue")
    impression = event.get("impression")
    if impression:
        _optional(mapper, _event_where(index), record, "IMPRESSION", "|".join(impression), "impression")
    recommendation = event.get("recommendation_id")
    if recommendation is not None:
        _optional(mapper, _event_where(index), record, "RECOMMENDATION_ID", recommendation, "recommendationId")
    attribution = event.get("metric_attribution")
    if attribution:
        _optional(mapper, _event_where(index), record, "EVENT_ATTRIBUTION_SOURCE",
                  attribution.get("event_attribution_source"), "metricAttribution.eventAttributionSource")
    for f in mapper.required:  # USER_ID is skipped: anonymous events (session only) are not trained on
        if f.name not in record or record[f.name] is None:
            mapper.require_fields(_event_where(index), record, skip=("USER_ID",))
            break
    return record


def _event_where(index: int) -> str:
    """How messages name an event (built only when one is needed)."""
    return f"eventList.{index + 1} (event {index + 1})"


def _timestamp(where: str, member: str, value: float) -> int:
    """An event's epoch seconds as the stored TIMESTAMP (whole seconds), refused outside Personalize's range."""
    problem = timestamp_problem(value)
    if problem:
        raise InvalidInputException(f"{where}.{member}: {problem}")
    return int(value)


def trainable(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The stored event records a training can use, and how many it skips: records written before the edge
    checked ranges may hold a TIMESTAMP outside timestamp_problem's range, an integer beyond 64 bits or a
    non-finite number, which would stop the whole training; they are left out instead."""
    low, high = _INT_RANGES["long"]
    kept = []
    for record in records:
        timestamp = record.get("TIMESTAMP")
        ok = isinstance(timestamp, (int, float)) and timestamp_problem(timestamp) is None
        for value in record.values():
            if not ok:
                break
            if isinstance(value, int) and not isinstance(value, bool):
                ok = low <= value <= high
            elif isinstance(value, float):
                ok = math.isfinite(value)
        if ok:
            kept.append(record)
    return kept, len(records) - len(kept)


def _optional(mapper: RecordMapper, where: str, record: dict[str, Any], name: str, value: Any, member: str) -> None:
    """Reserved fields the schema may lack: kept when the schema has them, else left out of the row."""
    if value is None:
        return
    f = mapper.by_name.get(name)
    if f is not None:
        record[name] = convert_value(f, value, f"{where}.{member}")


def map_action_interaction(mapper: RecordMapper, index: int, item: Mapping[str, Any]) -> dict[str, Any]:
    """One PutActionInteractions entry -> the Action_Interactions row."""
    where = f"actionInteractions.{index + 1} (action interaction {index + 1})"
    if item["event_type"] not in ACTION_EVENT_TYPES:
        raise InvalidInputException(f"{where}: eventType '{item['event_type']}' is not one of "
                                    f"{', '.join(ACTION_EVENT_TYPES)}.")
    record = mapper.properties(where, item.get("properties"), FORBIDDEN_EVENT_KEYS)
    record.update({"USER_ID": item.get("user_id"), "ACTION_ID": item["action_id"],
                   "TIMESTAMP": _timestamp(where, "timestamp", item["timestamp"]), "EVENT_TYPE": item["event_type"]})
    impression = item.get("impression")
    _optional(mapper, where, record, "IMPRESSION", "|".join(impression) if impression else None, "impression")
    _optional(mapper, where, record, "RECOMMENDATION_ID", item.get("recommendation_id"), "recommendationId")
    mapper.require_fields(where, record, skip=("USER_ID",))
    return record


def map_entity(mapper: RecordMapper, where: str, id_field: str, ident: str, properties: str | None) -> dict[str, Any]:
    """One PutItems/PutUsers/PutActions record -> {ID_FIELD: id, FIELD: value, ...} (typed values)."""
    record = mapper.properties(where, properties)
    record[id_field] = ident
    return record
