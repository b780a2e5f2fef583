"""Personalize Avro schemas: the parsed form shared by import, filters and recipes.

A schema that breaks a rule raises `SchemaProblem` (an InvalidInputException, so the wire is unchanged) that also
says where: `pointer`, a JSON pointer (RFC 6901) into the schema's JSON such as `/fields/2/type` (the value that
breaks the rule, or the object that lacks a member), or `at`, the character offset of a JSON syntax error. The
console maps either to a line and column in its schema editor (console.json_text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tastemaker.errors import InvalidInputException

# Dataset types as Personalize spells them in CreateDataset (case-insensitive on input).
DATASET_TYPES = ("Interactions", "Items", "Users", "Actions", "Action_Interactions")
NUMERIC_TYPES = ("int", "long", "float", "double")
PRIMITIVE_TYPES = ("int", "long", "float", "double", "string", "boolean")
DOMAINS = ("ECOMMERCE", "VIDEO_ON_DEMAND")
MAX_SCHEMA_CHARS = 20000
# JSON nesting a flat schema needs: record {} > fields [] > field {} > union [] > {"type": ...}; a little more
# is allowed, and deeper documents are refused before parsing (a JSON parser recurses once per level).
MAX_SCHEMA_DEPTH = 8
ID_FIELDS = ("USER_ID", "ITEM_ID", "ACTION_ID")
# Reserved fields holding Unix epoch seconds (sentAt / timestamp in the events API). Their values must name a
# calendar second botocore can send as a datetime: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. Milliseconds
# (13 digits for today) fall outside and are refused with a hint.
TIMESTAMP_FIELDS = ("TIMESTAMP", "CREATION_TIMESTAMP", "EXPIRATION_TIMESTAMP")
MIN_TIMESTAMP = -62135596800
MAX_TIMESTAMP = 253402300799
FLOAT32_MAX = 3.4028234663852886e38


def timestamp_problem(value: float) -> str | None:
    """Why an epoch-seconds value is not a timestamp Tastemaker stores (None when it is one)."""
    if MIN_TIMESTAMP <= value < MAX_TIMESTAMP + 1:
        return None
    hint = " It looks like milliseconds; divide by 1000." if 1e12 <= abs(value) < 1e15 else ""
    return (f"{value!r} is not a timestamp in Unix epoch seconds between {MIN_TIMESTAMP} (year 1) and "
            f"{MAX_TIMESTAMP} (year 9999).{hint}")
AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
AVRO_NAMESPACE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Avro types Personalize does not allow (flat records only), named in the error message.
COMPLEX_TYPES = ("array", "map", "record", "enum", "fixed", "bytes")



class SchemaProblem(InvalidInputException):
    """An invalid schema, and where: `pointer` (JSON pointer to the offending value) or `at` (a character offset,
    for JSON syntax errors); either may be None when the problem is not at one place (its length, its depth)."""

    def __init__(self, message: str, pointer: str | None = None, at: int | None = None) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.at = at


_ARROW_TYPES = {
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
}


@dataclass(frozen=True)
class SchemaField:
    """One flat field of a schema. `avro_type` is the non-null type; `nullable` marks a union with null."""

    name: str
    avro_type: str  # 'string' | 'int' | 'long' | 'float' | 'double' | 'boolean'
    nullable: bool = False
    categorical: bool = False
    textual: bool = False
    item_name: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.avro_type in NUMERIC_TYPES


@dataclass(frozen=True)
class Schema:
    """A parsed, validated Personalize schema."""

    name: str
    fields: tuple[SchemaField, ...] = field(default_factory=tuple)
    namespace: str | None = None

    def field(self, name: str) -> SchemaField | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


# ---------------------------------------------------------------------------------------------------
# Parsing (CreateSchema)


def parse_schema(text: str, domain: str | None = None) -> Schema:
    """Parse and validate a Personalize Avro schema string; raise InvalidInputException naming the rule.

    Checks the Avro shape only (record of flat, primitive or ["null", T] fields); the per-dataset rules
    (required/reserved fields, metadata limits) are in `check_schema_for_dataset`, run at CreateDataset.
    """
    check_domain(domain)
    if not isinstance(text, str) or not text.strip():
        raise SchemaProblem("The schema is empty; pass an Avro record schema as a JSON string.", at=0)
    if len(text) > MAX_SCHEMA_CHARS:
        raise SchemaProblem(
            f"The schema is {len(text)} characters long; the maximum is {MAX_SCHEMA_CHARS}.", at=MAX_SCHEMA_CHARS)
    depth, too_deep = _nesting(text)
    if depth > MAX_SCHEMA_DEPTH:
        raise SchemaProblem(
            f"The schema nests JSON {depth} levels deep; Personalize schemas are flat records (a field's type is "
            f"a primitive name or [\"null\", <type>]), which need at most {MAX_SCHEMA_DEPTH} levels.", at=too_deep)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaProblem(f"The schema is not valid JSON: {exc}.", at=exc.pos) from None
    if not isinstance(doc, dict):
        raise SchemaProblem("The schema must be a JSON object with \"type\": \"record\".", "")
    if doc.get("type") != "record":
        raise SchemaProblem(
            f"The schema's top-level \"type\" must be \"record\", not {json.dumps(doc.get('type'))}.", "/type")
    name = doc.get("name")
    if not isinstance(name, str) or not AVRO_NAME.match(name):
        raise SchemaProblem(
            f"The schema needs a \"name\" matching {AVRO_NAME.pattern} (for example \"Interactions\"); "
            f"got {json.dumps(name)}.", "/name")
    namespace = doc.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not AVRO_NAMESPACE.match(namespace)):
        raise SchemaProblem(
            f"The schema's \"namespace\" must be a dotted Avro name such as "
            f"\"com.amazonaws.personalize.schema\"; got {json.dumps(namespace)}.", "/namespace")
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise SchemaProblem("The schema needs a non-empty \"fields\" list.", "/fields")
    fields = tuple(_parse_field(raw, index) for index, raw in enumerate(raw_fields))
    _check_field_names(fields)
    item_names = [f.name for f in fields if f.item_name]
    if len(item_names) > 1:
        raise SchemaProblem(
            f"At most one field may set \"itemName\": true; found {len(item_names)}: {item_names}.",
            _pointer(fields, item_names[1], "itemName"))
    return Schema(name=name, fields=fields, namespace=namespace)


def _pointer(fields: tuple[SchemaField, ...], name: str, member: str = "") -> str:
    """The JSON pointer of field `name` (its member `member`, when given) in the schema's "fields" list."""
    index = next(k for k, f in enumerate(fields) if f.name == name)
    return f"/fields/{index}" + (f"/{member}" if member else "")


def _nesting(text: str) -> tuple[int, int]:
    """The deepest [ / { nesting of a JSON text (brackets inside strings do not count), without recursion, and
    the offset of the first bracket deeper than MAX_SCHEMA_DEPTH (0 when none is)."""
    depth = deepest = too_deep = 0
    in_string = escaped = False
    for at, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_SCHEMA_DEPTH and not too_deep:
                too_deep = at
        elif char in "]}":
            depth -= 1
    return deepest, too_deep


def _parse_field(raw: Any, index: int) -> SchemaField:
    at = f"/fields/{index}"
    if not isinstance(raw, dict):
        raise SchemaProblem(f"Schema field #{index + 1} must be a JSON object with \"name\" and \"type\".", at)
    name = raw.get("name")
    if not isinstance(name, str) or not AVRO_NAME.match(name):
        raise SchemaProblem(
            f"Schema field #{index + 1} has an invalid name {json.dumps(name)}: names must match "
            f"{AVRO_NAME.pattern} (letters, digits and underscores, not starting with a digit).", at + "/name")
    if "type" not in raw:
        raise SchemaProblem(f"Field {name} has no \"type\".", at)
    avro_type, nullable = _parse_type(name, raw["type"], at + "/type")
    flags = {}
    for flag in ("categorical", "textual", "itemName"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            raise SchemaProblem(f"Field {name}: \"{flag}\" must be true or false, not {json.dumps(value)}.",
                                f"{at}/{flag}")
        flags[flag] = value
        if value and avro_type != "string":
            raise SchemaProblem(
                f"Field {name}: \"{flag}\": true is only allowed on string fields, not on {avro_type}.",
                f"{at}/{flag}")
    if flags["categorical"] and flags["textual"]:
        raise SchemaProblem(f"Field {name} cannot be both categorical and textual; choose one.", at + "/textual")
    return SchemaField(name=name, avro_type=avro_type, nullable=nullable, categorical=flags["categorical"],
                       textual=flags["textual"], item_name=flags["itemName"])


def _parse_type(name: str, spec: Any, at: str) -> tuple[str, bool]:
    """Return (non-null type, nullable) for a field's Avro type (at JSON pointer `at`), or raise."""
    if isinstance(spec, list):
        # Valid Avro unions Personalize accepts: one branch (["string"], the type itself, as AWS's samples
        # write) or null plus one type, in either order (nullable). Avro forbids repeating a type in a union.
        members = [_primitive_name(name, member, f"{at}/{k}") for k, member in enumerate(spec)]
        others = [m for m in members if m != "null"]
        if len(set(members)) != len(members):
            raise SchemaProblem(
                f"Field {name}: the union {json.dumps(spec)} repeats a type, which Avro does not allow.", at)
        if len(others) != 1 or len(members) > 2:
            raise SchemaProblem(
                f"Field {name}: a union type must be [<type>] or [\"null\", <type>] (either order); "
                f"got {json.dumps(spec)}.", at)
        return others[0], "null" in members
    primitive = _primitive_name(name, spec, at)
    if primitive == "null":
        raise SchemaProblem(
            f"Field {name} has type \"null\" only; use a union such as [\"null\", \"string\"] for a nullable field.",
            at)
    return primitive, False


def _primitive_name(name: str, spec: Any, at: str) -> str:
    if isinstance(spec, dict) and set(spec) == {"type"} and isinstance(spec["type"], str):
        spec, at = spec["type"], at + "/type"  # Avro also allows {"type": "string"} for a primitive
    if isinstance(spec, dict):
        kind = spec.get("type")
        raise SchemaProblem(
            f"Field {name}: type {json.dumps(kind)} is not supported; schemas must be flat "
            f"(allowed types: {', '.join(PRIMITIVE_TYPES)}, null, or [\"null\", <type>]).", at)
    if isinstance(spec, list):
        raise SchemaProblem(f"Field {name}: nested unions are not supported.", at)
    if spec in COMPLEX_TYPES:
        raise SchemaProblem(
            f"Field {name}: type \"{spec}\" is not supported; schemas must be flat "
            f"(allowed types: {', '.join(PRIMITIVE_TYPES)}, null, or [\"null\", <type>]).", at)
    if spec not in PRIMITIVE_TYPES and spec != "null":
        raise SchemaProblem(
            f"Field {name}: unknown type {json.dumps(spec)}; allowed types are {', '.join(PRIMITIVE_TYPES)}, "
            f"null, or [\"null\", <type>].", at)
    return str(spec)


def _alnum_key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", name).lower()


def _check_field_names(fields: tuple[SchemaField, ...]) -> None:
    seen: dict[str, str] = {}
    for index, f in enumerate(fields):
        key = _alnum_key(f.name)
        if key in seen:
            other = seen[key]
            if other == f.name:
                raise SchemaProblem(f"Field name {f.name} appears more than once in the schema.",
                                    f"/fields/{index}/name")
            raise SchemaProblem(
                f"Field names {other} and {f.name} clash: names must stay distinct after removing "
                f"non-alphanumeric characters and ignoring case.", f"/fields/{index}/name")
        seen[key] = f.name


# ---------------------------------------------------------------------------------------------------
# Dataset rules (CreateDataset / UpdateDataset)


@dataclass(frozen=True)
class _Rule:
    """What a required or reserved field must look like."""

    types: tuple[str, ...]
    categorical: bool | None = None  # True: must be categorical; False: must not be; None: either
    textual: bool | None = None
    nullable_ok: bool = True

    def describe(self) -> str:
        text = " or ".join(self.types)
        if self.categorical:
            text += " with \"categorical\": true"
        if self.textual:
            text += " with \"textual\": true"
        if self.categorical is False:
            text += " without \"categorical\""
        if not self.nullable_ok:
            text += " (not nullable)"
        return text


_ID = _Rule(("string",), categorical=False, textual=False, nullable_ok=False)
_TIMESTAMP = _Rule(("long",), nullable_ok=False)
_LONG = _Rule(("long",))
_FLOAT = _Rule(("float", "double"))
_STRING = _Rule(("string",))
_CATEGORICAL = _Rule(("string",), categorical=True)
_TEXTUAL = _Rule(("string",), textual=True)
_EVENT_TYPE = _Rule(("string",), categorical=False)
_EVENT_TYPE_REQUIRED = _Rule(("string",), categorical=False, nullable_ok=False)

_REQUIRED: dict[str, dict[str, _Rule]] = {
    "Interactions": {"USER_ID": _ID, "ITEM_ID": _ID, "TIMESTAMP": _TIMESTAMP},
    "Users": {"USER_ID": _ID},
    "Items": {"ITEM_ID": _ID},
    "Actions": {"ACTION_ID": _ID},
    "Action_Interactions": {"USER_ID": _ID, "ACTION_ID": _ID, "EVENT_TYPE": _EVENT_TYPE_REQUIRED,
                            "TIMESTAMP": _TIMESTAMP},
}
_RESERVED: dict[str, dict[str, _Rule]] = {
    "Interactions": {"EVENT_TYPE": _EVENT_TYPE, "EVENT_VALUE": _FLOAT, "IMPRESSION": _STRING,
                     "RECOMMENDATION_ID": _STRING, "EVENT_ATTRIBUTION_SOURCE": _STRING},
    "Users": {},
    "Items": {"CREATION_TIMESTAMP": _LONG},
    "Actions": {"CREATION_TIMESTAMP": _LONG, "VALUE": _LONG, "TYPE": _STRING, "EXPIRATION_TIMESTAMP": _LONG,
                "REPEAT_FREQUENCY": _LONG},
    "Action_Interactions": {"IMPRESSION": _STRING, "RECOMMENDATION_ID": _STRING},
}
# Domain dataset groups add required and reserved fields on top of the custom rules.
_DOMAIN_REQUIRED: dict[tuple[str, str], dict[str, _Rule]] = {
    ("ECOMMERCE", "Interactions"): {"EVENT_TYPE": _EVENT_TYPE_REQUIRED},
    ("VIDEO_ON_DEMAND", "Interactions"): {"EVENT_TYPE": _EVENT_TYPE_REQUIRED},
    ("ECOMMERCE", "Items"): {"PRICE": _FLOAT, "CATEGORY_L1": _CATEGORICAL},
    ("VIDEO_ON_DEMAND", "Items"): {"GENRES": _CATEGORICAL, "CREATION_TIMESTAMP": _LONG},
}
_DOMAIN_RESERVED: dict[tuple[str, str], dict[str, _Rule]] = {
    ("ECOMMERCE", "Items"): {"CATEGORY_L2": _CATEGORICAL, "CATEGORY_L3": _CATEGORICAL,
                             "PRODUCT_DESCRIPTION": _TEXTUAL, "AGE_GROUP": _CATEGORICAL,
                             "ADULT": _CATEGORICAL, "GENDER": _CATEGORICAL},
    ("VIDEO_ON_DEMAND", "Items"): {"PRICE": _FLOAT, "DURATION": _FLOAT, "GENRE_L2": _CATEGORICAL,
                                   "GENRE_L3": _CATEGORICAL, "AVERAGE_RATING": _FLOAT,
                                   "PRODUCT_DESCRIPTION": _TEXTUAL, "CONTENT_OWNER": _CATEGORICAL,
                                   "CONTENT_CLASSIFICATION": _CATEGORICAL},
    ("VIDEO_ON_DEMAND", "Users"): {"SUBSCRIPTION_MODEL": _CATEGORICAL},
}
# Metadata field caps (spec 9.1). For interaction types the cap counts non-reserved fields only.
_METADATA_LIMITS = {"Users": 25, "Items": 100, "Actions": 10, "Interactions": 5, "Action_Interactions": 5}
MAX_TEXTUAL_FIELDS = 1


def check_domain(domain: str | None) -> None:
    if domain is not None and domain not in DOMAINS:
        raise InvalidInputException(f"Unknown domain {domain!r}; valid domains are {', '.join(DOMAINS)}.")


def normalize_dataset_type(dataset_type: str) -> str:
    """Canonical spelling of a dataset type given in any case ("action_interactions" -> "Action_Interactions")."""
    lookup = {t.lower(): t for t in DATASET_TYPES}
    canonical = lookup.get(str(dataset_type).lower()) if isinstance(dataset_type, str) else None
    if canonical is None:
        raise InvalidInputException(
            f"Unknown dataset type {dataset_type!r}; valid types are {', '.join(DATASET_TYPES)}.")
    return canonical


def id_field(dataset_type: str) -> str | None:
    """The id column whose last record wins for Users/Items/Actions; None for interaction datasets."""
    return {"Users": "USER_ID", "Items": "ITEM_ID", "Actions": "ACTION_ID"}.get(normalize_dataset_type(dataset_type))


def arrow_type(f: SchemaField) -> pa.DataType:
    """The Arrow type a field's values are stored as in Parquet."""
    return _ARROW_TYPES[f.avro_type]


def arrow_schema(schema: Schema) -> pa.Schema:
    """Arrow schema of a dataset's stored columns (all nullable at the Arrow level; validation enforces it)."""
    return pa.schema([pa.field(f.name, arrow_type(f)) for f in schema.fields])


def check_schema_for_dataset(schema: Schema, dataset_type: str, domain: str | None) -> None:
    """Raise InvalidInputException unless `schema` fits a dataset of `dataset_type` in a group of `domain`."""
    dataset_type = normalize_dataset_type(dataset_type)
    check_domain(domain)
    if domain is not None and dataset_type in ("Actions", "Action_Interactions"):
        raise InvalidInputException(
            f"{dataset_type} datasets cannot be created in a domain dataset group ({domain}); "
            f"use a custom dataset group.")
    where = f"{dataset_type} schema" + (f" ({domain} domain)" if domain else "")
    required = dict(_REQUIRED[dataset_type])
    reserved = dict(_RESERVED[dataset_type])
    if domain is not None:
        required.update(_DOMAIN_REQUIRED.get((domain, dataset_type), {}))
        reserved.update(_DOMAIN_RESERVED.get((domain, dataset_type), {}))
    missing = [name for name in required if schema.field(name) is None]
    if missing:
        raise SchemaProblem(f"The {where} is missing required field(s): {', '.join(missing)}.", "/fields")
    for name, rule in {**reserved, **required}.items():
        f = schema.field(name)
        if f is not None:
            _check_rule(schema, f, rule, where, "required" if name in required else "reserved")
    for f in schema.fields:
        if f.textual and dataset_type != "Items":
            raise SchemaProblem(f"Field {f.name}: textual fields are only allowed in Items schemas.",
                                _pointer(schema.fields, f.name, "textual"))
        if f.item_name and dataset_type != "Items":
            raise SchemaProblem(f"Field {f.name}: \"itemName\" is only allowed in Items schemas.",
                                _pointer(schema.fields, f.name, "itemName"))
    _check_metadata(schema, dataset_type, where, set(required) | set(reserved))


def _check_rule(schema: Schema, f: SchemaField, rule: _Rule, where: str, kind: str) -> None:
    typed = f.avro_type in rule.types and (rule.nullable_ok or not f.nullable)
    categorical = rule.categorical is None or f.categorical == rule.categorical
    if not (typed and categorical and (rule.textual is None or f.textual == rule.textual)):
        actual = f'["null", "{f.avro_type}"]' if f.nullable else f.avro_type
        if f.categorical:
            actual += " categorical"
        if f.textual:
            actual += " textual"
        member = "type" if not typed else "categorical" if not categorical else "textual"
        raise SchemaProblem(
            f"Field {f.name} is {kind} in the {where} and must be {rule.describe()}; it is {actual}.",
            _pointer(schema.fields, f.name, member))


def _check_metadata(schema: Schema, dataset_type: str, where: str, known: set[str]) -> None:
    if dataset_type in ("Interactions", "Action_Interactions"):
        extra = [f.name for f in schema.fields if f.name not in known]
        limit = _METADATA_LIMITS[dataset_type]
        if len(extra) > limit:
            raise SchemaProblem(
                f"The {where} has {len(extra)} non-reserved metadata fields ({', '.join(extra)}); "
                f"the maximum is {limit}.", _pointer(schema.fields, extra[limit]))
        return
    key = id_field(dataset_type)
    metadata = [f for f in schema.fields if f.name != key]
    limit = _METADATA_LIMITS[dataset_type]
    if len(metadata) > limit:
        raise SchemaProblem(
            f"The {where} has {len(metadata)} metadata fields besides {key}; the maximum is {limit}.",
            _pointer(schema.fields, metadata[limit].name))
    textual = [f.name for f in metadata if f.textual]
    if len(textual) > MAX_TEXTUAL_FIELDS:
        raise SchemaProblem(
            f"The {where} has {len(textual)} textual fields ({', '.join(textual)}); at most "
            f"{MAX_TEXTUAL_FIELDS} is allowed.", _pointer(schema.fields, textual[MAX_TEXTUAL_FIELDS], "textual"))
    usable = [f for f in metadata if f.avro_type != "string" or f.categorical or f.textual]
    if not usable:
        raise SchemaProblem(
            f"The {where} needs at least one metadata field besides {key}: a categorical"
            + (" or textual" if dataset_type == "Items" else "")
            + " string (\"categorical\": true) or a numeric or boolean field. Plain string fields are "
            "ignored in training.", "/fields")
