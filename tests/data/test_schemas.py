"""Schema parsing (CreateSchema) and per-dataset checks (CreateDataset)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest

from tastemaker.data.schemas import (
    SchemaField,
    SchemaProblem,
    arrow_type,
    check_schema_for_dataset,
    id_field,
    normalize_dataset_type,
    parse_schema,
)
from tastemaker.errors import InvalidInputException


def schema_json(*fields: dict[str, Any], name: str = "Interactions") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema",
                       "fields": list(fields), "version": "1.0"})


def f(name: str, typ: Any, **flags: Any) -> dict[str, Any]:
    return {"name": name, "type": typ, **flags}


INTERACTIONS = schema_json(f("USER_ID", "string"), f("ITEM_ID", "string"), f("TIMESTAMP", "long"),
                           f("EVENT_TYPE", "string"), f("EVENT_VALUE", ["null", "float"]))
# The shape of the Personalize docs' examples (movie items with a multi-valued categorical GENRES).
ITEMS = schema_json(f("ITEM_ID", "string"), f("TITLE", "string"), f("GENRES", ["null", "string"], categorical=True),
                    f("YEAR", ["null", "int"]), f("DESCRIPTION", ["null", "string"], textual=True), name="Items")
USERS = schema_json(f("USER_ID", "string"), f("AGE", "int"), f("GENDER", "string", categorical=True), name="Users")
ECOMMERCE_ITEMS = schema_json(
    f("ITEM_ID", "string"), f("PRICE", "float"), f("CATEGORY_L1", "string", categorical=True),
    f("CATEGORY_L2", ["null", "string"], categorical=True), f("PRODUCT_DESCRIPTION", ["null", "string"], textual=True),
    f("CREATION_TIMESTAMP", "long"), f("ADULT", "string", categorical=True), name="Items")
VOD_ITEMS = schema_json(f("ITEM_ID", "string"), f("GENRES", "string", categorical=True),
                        f("CREATION_TIMESTAMP", "long"), f("DURATION", ["null", "float"]), name="Items")
ACTIONS = schema_json(f("ACTION_ID", "string"), f("VALUE", ["null", "long"]), f("CREATION_TIMESTAMP", "long"),
                      f("REPEAT_FREQUENCY", ["null", "long"]), f("TYPE", ["null", "string"]), name="Actions")
ACTION_INTERACTIONS = schema_json(f("USER_ID", "string"), f("ACTION_ID", "string"), f("EVENT_TYPE", "string"),
                                  f("TIMESTAMP", "long"), f("IMPRESSION", ["null", "string"]),
                                  name="ActionInteractions")


def test_parses_personalize_interactions_schema() -> None:
    schema = parse_schema(INTERACTIONS)
    assert schema.name == "Interactions"
    assert schema.namespace == "com.amazonaws.personalize.schema"
    assert schema.field_names == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    assert schema.field("EVENT_VALUE") == SchemaField("EVENT_VALUE", "float", nullable=True)
    assert schema.field("TIMESTAMP") == SchemaField("TIMESTAMP", "long")


def test_parses_flags_and_unions_in_either_order() -> None:
    text = schema_json(f("ITEM_ID", "string"), f("GENRES", ["string", "null"], categorical=True),
                       f("TITLE", {"type": "string"}, itemName=True), f("ABOUT", "string", textual=True),
                       name="Items")
    schema = parse_schema(text)
    assert schema.field("GENRES") == SchemaField("GENRES", "string", nullable=True, categorical=True)
    assert schema.field("TITLE").item_name and not schema.field("TITLE").categorical
    assert schema.field("ABOUT").textual


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "schema is empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"type": "enum", "name": "X", "fields": []}), "top-level \"type\" must be \"record\""),
    (json.dumps({"type": "record", "fields": [f("A", "string")]}), "needs a \"name\""),
    (json.dumps({"type": "record", "name": "1bad", "fields": [f("A", "string")]}), "needs a \"name\""),
    (json.dumps({"type": "record", "name": "X", "fields": []}), "non-empty \"fields\""),
    (json.dumps({"type": "record", "name": "X", "namespace": "a..b", "fields": [f("A", "string")]}), "namespace"),
    (schema_json(f("A-B", "string")), "invalid name \"A-B\""),
    (schema_json({"name": "A"}), "Field A has no \"type\""),
    (schema_json(f("TAGS", {"type": "array", "items": "string"})), "Field TAGS: type \"array\" is not supported"),
    (schema_json(f("M", {"type": "map", "values": "string"})), "type \"map\" is not supported"),
    (schema_json(f("R", {"type": "record", "name": "R", "fields": []})), "type \"record\" is not supported"),
    (schema_json(f("E", {"type": "enum", "name": "E", "symbols": ["A"]})), "type \"enum\" is not supported"),
    (schema_json(f("B", "bytes")), "type \"bytes\" is not supported"),
    (schema_json(f("D", "date")), "unknown type \"date\""),
    (schema_json(f("N", "null")), "type \"null\" only"),
    (schema_json(f("U", ["null", "string", "int"])), "must be [<type>] or [\"null\", <type>]"),
    (schema_json(f("U", ["string", "int"])), "must be [<type>] or [\"null\", <type>]"),
    (schema_json(f("U", ["null", "null"])), "repeats a type"),
    (schema_json(f("U", ["null"])), "must be [<type>] or [\"null\", <type>]"),
    (schema_json(f("U", ["string", "string"])), "repeats a type"),
    (schema_json(f("U", ["null", ["null", "string"]])), "nested unions"),
    (schema_json(f("PRICE", "float", categorical=True)), ("Field PRICE: \"categorical\": true is only allowed on "
                                                         "string fields, not on float")),
    (schema_json(f("YEAR", "int", textual=True)), "\"textual\": true is only allowed on string"),
    (schema_json(f("N", "long", itemName=True)), "\"itemName\": true is only allowed on string"),
    (schema_json(f("G", "string", categorical="yes")), "\"categorical\" must be true or false"),
    (schema_json(f("G", "string", categorical=True, textual=True)), "cannot be both categorical and textual"),
    (schema_json(f("A", "string"), f("A", "int")), "Field name A appears more than once"),
    (schema_json(f("GENRES_FIELD_1", "string"), f("GENRESFIELD1", "string")),
     "GENRES_FIELD_1 and GENRESFIELD1 clash"),
    (schema_json(f("genres", "string"), f("GENRES", "string")), "genres and GENRES clash"),
    (schema_json(f("A", "string", itemName=True), f("B", "string", itemName=True)), "At most one field"),
    (schema_json(f("A", "string"), f("B", "x" * 20000)), "maximum is 20000"),
])
def test_rejects_invalid_schemas(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as info:
        parse_schema(text)
    assert fragment in info.value.message


def test_rejects_unknown_domain() -> None:
    with pytest.raises(InvalidInputException, match="Unknown domain 'RETAIL'"):
        parse_schema(INTERACTIONS, domain="RETAIL")


@pytest.mark.parametrize(("text", "dataset_type", "domain"), [
    (INTERACTIONS, "Interactions", None),
    (INTERACTIONS, "interactions", "ECOMMERCE"),
    (INTERACTIONS, "INTERACTIONS", "VIDEO_ON_DEMAND"),
    (ITEMS, "Items", None),
    (USERS, "Users", None),
    (USERS, "users", "ECOMMERCE"),
    (ECOMMERCE_ITEMS, "Items", "ECOMMERCE"),
    (VOD_ITEMS, "Items", "VIDEO_ON_DEMAND"),
    (ACTIONS, "Actions", None),
    (ACTION_INTERACTIONS, "action_interactions", None),
    (schema_json(f("USER_ID", "string"), f("ITEM_ID", "string"), f("TIMESTAMP", "long"),
                 f("DEVICE", "string", categorical=True), f("LOCATION", ["null", "string"], categorical=True),
                 f("IMPRESSION", ["null", "string"]), f("RECOMMENDATION_ID", ["null", "string"]),
                 f("EVENT_ATTRIBUTION_SOURCE", ["null", "string"])), "Interactions", None),
])
def test_accepts_valid_dataset_schemas(text: str, dataset_type: str, domain: str | None) -> None:
    check_schema_for_dataset(parse_schema(text, domain), dataset_type, domain)


def fields_for(dataset_type: str, *extra: dict[str, Any]) -> str:
    base = {"Interactions": [f("USER_ID", "string"), f("ITEM_ID", "string"), f("TIMESTAMP", "long")],
            "Items": [f("ITEM_ID", "string")], "Users": [f("USER_ID", "string")],
            "Actions": [f("ACTION_ID", "string")]}[dataset_type]
    return schema_json(*base, *extra)


@pytest.mark.parametrize(("text", "dataset_type", "domain", "fragment"), [
    (schema_json(f("USER_ID", "string"), f("ITEM_ID", "string")), "Interactions", None,
     "Interactions schema is missing required field(s): TIMESTAMP"),
    (schema_json(f("USER_ID", "string"), f("ITEM_ID", "string"), f("TIMESTAMP", "int")), "Interactions", None,
     "Field TIMESTAMP is required in the Interactions schema and must be long (not nullable); it is int"),
    (schema_json(f("USER_ID", ["null", "string"]), f("ITEM_ID", "string"), f("TIMESTAMP", "long")),
     "Interactions", None, "Field USER_ID is required"),
    (schema_json(f("USER_ID", "string", categorical=True), f("ITEM_ID", "string"), f("TIMESTAMP", "long")),
     "Interactions", None, "without \"categorical\""),
    (fields_for("Interactions"), "Interactions", "ECOMMERCE",
     "Interactions schema (ECOMMERCE domain) is missing required field(s): EVENT_TYPE"),
    (fields_for("Interactions", f("EVENT_TYPE", "string", categorical=True)), "Interactions", None,
     ("Field EVENT_TYPE is reserved in the Interactions schema and must be string without \"categorical\"; it "
     "is string categorical")),
    (fields_for("Interactions", f("EVENT_VALUE", "string")), "Interactions", None,
     "Field EVENT_VALUE is reserved in the Interactions schema and must be float or double"),
    (fields_for("Interactions", f("IMPRESSION", "long")), "Interactions", None, "Field IMPRESSION is reserved"),
    (fields_for("Interactions", f("RECOMMENDATION_ID", "int")), "Interactions", None,
     "Field RECOMMENDATION_ID is reserved"),
    (fields_for("Interactions", *[f(f"C{i}", "string", categorical=True) for i in range(6)]), "Interactions",
     None, "has 6 non-reserved metadata fields (C0, C1, C2, C3, C4, C5); the maximum is 5"),
    (fields_for("Interactions", f("NOTE", "string", textual=True)), "Interactions", None,
     "textual fields are only allowed in Items schemas"),
    (fields_for("Users"), "Users", None, "needs at least one metadata field besides USER_ID"),
    (fields_for("Users", f("NAME", "string")), "Users", None, "Plain string fields are ignored"),
    (fields_for("Users", *[f(f"A{i}", "int") for i in range(26)]), "Users", None,
     "Users schema has 26 metadata fields besides USER_ID; the maximum is 25"),
    (fields_for("Users", f("PLAN", "string")), "Users", "VIDEO_ON_DEMAND", "needs at least one metadata field"),
    (fields_for("Users", f("SUBSCRIPTION_MODEL", "string"), f("AGE", "int")), "Users", "VIDEO_ON_DEMAND",
     ("Field SUBSCRIPTION_MODEL is reserved in the Users schema (VIDEO_ON_DEMAND domain) and must be string "
     "with \"categorical\": true")),
    (fields_for("Items", f("TITLE", "string", itemName=True)), "Items", None,
     "Items schema needs at least one metadata field besides ITEM_ID: a categorical or textual string"),
    (fields_for("Items", *[f(f"A{i}", "int") for i in range(101)]), "Items", None, "the maximum is 100"),
    (fields_for("Items", f("A", "string", textual=True), f("B", "string", textual=True)), "Items", None,
     "has 2 textual fields (A, B); at most 1 is allowed"),
    (fields_for("Items", f("CREATION_TIMESTAMP", "string", categorical=True)), "Items", None,
     "Field CREATION_TIMESTAMP is reserved in the Items schema and must be long"),
    (fields_for("Items", f("PRICE", "float")), "Items", "ECOMMERCE",
     "Items schema (ECOMMERCE domain) is missing required field(s): CATEGORY_L1"),
    (fields_for("Items", f("PRICE", "float"), f("CATEGORY_L1", "string")), "Items", "ECOMMERCE",
     ("Field CATEGORY_L1 is required in the Items schema (ECOMMERCE domain) and must be string with "
     "\"categorical\": true; it is string")),
    (fields_for("Items", f("PRICE", "string", categorical=True), f("CATEGORY_L1", "string", categorical=True)),
     "Items", "ECOMMERCE", "Field PRICE is required"),
    (fields_for("Items", f("PRICE", "float"), f("CATEGORY_L1", "string", categorical=True),
                f("PRODUCT_DESCRIPTION", "string", categorical=True)), "Items", "ECOMMERCE",
     ("Field PRODUCT_DESCRIPTION is reserved in the Items schema (ECOMMERCE domain) and must be string with "
     "\"textual\": true")),
    (fields_for("Items", f("GENRES", "string", categorical=True)), "Items", "VIDEO_ON_DEMAND",
     "missing required field(s): CREATION_TIMESTAMP"),
    (fields_for("Actions"), "Actions", None, "needs at least one metadata field besides ACTION_ID"),
    (fields_for("Actions", f("VALUE", "string", categorical=True)), "Actions", None, "Field VALUE is reserved"),
    (fields_for("Actions", *[f(f"A{i}", "int") for i in range(11)]), "Actions", None, "the maximum is 10"),
    (ACTIONS, "Actions", "ECOMMERCE", "cannot be created in a domain dataset group"),
    (schema_json(f("USER_ID", "string"), f("ACTION_ID", "string"), f("TIMESTAMP", "long")),
     "Action_Interactions", None, "missing required field(s): EVENT_TYPE"),
    (INTERACTIONS, "Clicks", None, ("Unknown dataset type 'Clicks'; valid types are Interactions, Items, Users, "
                                   "Actions, Action_Interactions")),
])
def test_rejects_schemas_that_do_not_fit_the_dataset(text: str, dataset_type: str, domain: str | None,
                                                      fragment: str) -> None:
    with pytest.raises(InvalidInputException) as info:
        check_schema_for_dataset(parse_schema(text), dataset_type, domain)
    assert fragment in info.value.message


def test_dataset_type_helpers() -> None:
    assert normalize_dataset_type("action_interactions") == "Action_Interactions"
    assert normalize_dataset_type("ITEMS") == "Items"
    assert id_field("users") == "USER_ID"
    assert id_field("Items") == "ITEM_ID"
    assert id_field("Actions") == "ACTION_ID"
    assert id_field("Interactions") is None
    with pytest.raises(InvalidInputException, match="valid types are"):
        normalize_dataset_type("Interaction")


def test_arrow_types() -> None:
    expected = {"int": pa.int32(), "long": pa.int64(), "float": pa.float32(), "double": pa.float64(),
                "boolean": pa.bool_(), "string": pa.string()}
    for avro, arrow in expected.items():
        assert arrow_type(SchemaField("X", avro)) == arrow


@pytest.mark.parametrize(("text", "dataset_type", "pointer"), [
    (json.dumps({"type": "enum", "name": "X", "fields": []}), None, "/type"),
    (json.dumps({"type": "record", "name": "1bad", "fields": [f("A", "string")]}), None, "/name"),
    (json.dumps({"type": "record", "name": "X", "namespace": "a..b", "fields": [f("A", "string")]}), None,
     "/namespace"),
    (json.dumps({"type": "record", "name": "X", "fields": []}), None, "/fields"),
    ("[1, 2]", None, ""),
    (schema_json(f("A", "string"), f("A-B", "string")), None, "/fields/1/name"),
    (schema_json(f("A", "string"), {"name": "B"}), None, "/fields/1"),
    (schema_json(f("D", "date")), None, "/fields/0/type"),
    (schema_json(f("U", ["null", "strin"])), None, "/fields/0/type/1"),
    (schema_json(f("U", ["null", {"type": "strin"}])), None, "/fields/0/type/1/type"),
    (schema_json(f("U", ["string", "int"])), None, "/fields/0/type"),
    (schema_json(f("G", "string", categorical="yes")), None, "/fields/0/categorical"),
    (schema_json(f("A", "string"), f("a", "int")), None, "/fields/1/name"),
    (schema_json(f("A", "string", itemName=True), f("B", "string", itemName=True)), None, "/fields/1/itemName"),
    (schema_json(f("USER_ID", "string"), f("ITEM_ID", "string")), "Interactions", "/fields"),
    (schema_json(f("USER_ID", "string"), f("ITEM_ID", "string"), f("TIMESTAMP", "int")), "Interactions",
     "/fields/2/type"),
    (fields_for("Interactions", f("EVENT_TYPE", "string", categorical=True)), "Interactions", "/fields/3/categorical"),
    (fields_for("Interactions", f("NOTE", "string", textual=True)), "Interactions", "/fields/3/textual"),
    (fields_for("Items", f("A", "string", textual=True), f("B", "string", textual=True)), "Items", "/fields/2/textual"),
    (fields_for("Users", *[f(f"A{i}", "int") for i in range(26)]), "Users", "/fields/26"),
    (fields_for("Users"), "Users", "/fields"),
])
def test_a_schema_problem_points_at_the_value_that_breaks_the_rule(text: str, dataset_type: str | None,
                                                                    pointer: str) -> None:
    """The console marks the offending value in its schema editor from this JSON pointer (console.json_text)."""
    with pytest.raises(SchemaProblem) as info:
        schema = parse_schema(text)
        if dataset_type:
            check_schema_for_dataset(schema, dataset_type, None)
    assert (info.value.pointer, info.value.at, info.value.code) == (pointer, None, "InvalidInputException")


def test_a_json_syntax_error_gives_its_offset() -> None:
    text = '{"type": "record",\n "name": "X" "fields": []}'
    with pytest.raises(SchemaProblem) as info:
        parse_schema(text)
    assert info.value.pointer is None and text[info.value.at] == '"' and info.value.at == text.index('"fields"')
