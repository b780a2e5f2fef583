"""Hypothesis strategies generated from botocore input shapes: valid-shaped requests and invalid ones.

`Inputs(world, operation).cases()` draws one `Case`:

* **valid**: every member respects its shape (types, min/max lengths and values, enums, the model patterns
  through hand-written generators for the dozen patterns the models use), and members with a meaning get
  values that exist on the server (ARNs of the seeded world by the kind the member names, trackingIds, user
  and item ids, data files, schemas, filter expressions), so calls reach the control code, not only the
  validator;
* **invalid**: a valid request with one to three members replaced by something wrong for its shape (another
  type, out of range, outside the enum, a pattern breaker, NUL and odd Unicode, huge strings, ARNs of the
  wrong kind or of nothing, forged nextTokens) or removed;
* **garbage**: a body that is not a request at all (not JSON, not an object, deep nesting, bad UTF-8, lone
  surrogates).
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.model import Shape
from hypothesis import strategies as st

from tastemaker.api.service_models import OperationInfo
from tests.fuzz.world import ARN_KINDS, ARN_WORDS, DESTRUCTIVE_PREFIXES, SCHEMAS, World, fake_arn

SMALL = 3  # valid lists and maps hold at most this many entries (or the model minimum)
DELETE = object()  # a mutation that removes the member

# Valid-shaped is not valid: members a working request needs although the model marks them optional, and
# members that make an otherwise good request fail (by input shape name). Invalid cases still vary them.
PRACTICALLY_REQUIRED: dict[str, set[str]] = {
    "CreateSolutionRequest": {"recipeArn"},
    "DataSource": {"dataLocation"},
    "Event": {"itemId"},
    "Item": {"properties"},  # the seeded Items schema has a required CREATION_TIMESTAMP
    "User": {"properties"},  # and the Users schema a required AGE and MEMBERSHIP
    "GetRecommendationsRequest": {"campaignArn", "userId"},
}
PRACTICALLY_ABSENT: dict[str, set[str]] = {
    # exactly one of campaignArn / recommenderArn; the seeded campaign recommends for users, not items
    "GetRecommendationsRequest": {"recommenderArn", "itemId"},
    "Event": {"properties"},  # the seeded Interactions schema has no extra columns to fill
}
# Columns of the seeded Items / Users schemas, for PutItems / PutUsers properties.
# (columns the schema requires, optional ones).
PROPERTIES: dict[str, tuple[dict[str, st.SearchStrategy[Any]], dict[str, st.SearchStrategy[Any]]]] = {
    "Item": ({"creationTimestamp": st.integers(1_600_000_000, 1_700_000_000)},
             {"genres": st.sampled_from(["Comedy", "Action|Drama"]), "price": st.floats(0, 100),
              "description": st.text(max_size=20)}),
    "User": ({"age": st.integers(0, 99), "membership": st.sampled_from(["gold", "basic"])}, {}),
}
# The dataset type a per-type events operation writes to (the suffix of the dataset ARN).
DATASET_SUFFIX = {"PutItems": "/ITEMS", "PutUsers": "/USERS", "PutActions": "/ACTIONS"}

# Strings that stand for numbers in the models (hyperparameters, exploration, HPO resources, thresholds):
# valid-shaped, but a parser that trusts them fails.
ODD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "-0", "1e400", "1e-400", "1.5", "abc", "",
               " 1", "0x10", "9" * 40, "1_000", "\u0663", "true", "[1]", "1,5"]
GOOD_NUMBERS = ["0", "0.1", "0.3", "1", "10", "30", "64", "100"]
ODD_PATHS = ["/etc/passwd", "/", "/dev/zero", "/proc/self/environ", "file:///etc/shadow", "s3://b/../../x",
             "https://example.invalid/x.csv", "s3://fuzz-bucket", "/tmp/../etc/hosts", "file://relative/path"]
ODD_FILTER_VALUES = ['"', '""', "1e400", '"a","b",', ",", "null", "[1]", '"x"' * 200, "\u0000", "$G", "'a'"]

USER_IDS = [f"u{n}" for n in range(0, 60, 7)]
ITEM_IDS = [f"i{n}" for n in range(0, 40, 3)]
EVENT_TYPES = ["click", "watch"]
DATASET_TYPES = ["Interactions", "Items", "Users", "Actions", "Action_Interactions"]
FILTER_EXPRESSIONS = [
    "EXCLUDE ItemID WHERE Items.GENRES IN ($GENRE)",
    'INCLUDE ItemID WHERE Items.GENRES IN ("Comedy", "Drama")',
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")',
    "INCLUDE ItemID WHERE Items.PRICE < 10 | EXCLUDE ItemID WHERE Items.GENRES IN ($G)",
    "EXCLUDE ItemID WHERE Items.CREATION_TIMESTAMP > $T",
    'INCLUDE ItemID WHERE Items.GENRES IN ("Action") AND Items.PRICE >= 6',
]
BAD_FILTER_EXPRESSIONS = [
    "EXCLUDE", "EXCLUDE ItemID WHERE", "EXCLUDE ItemID WHERE Items.NOPE IN ($X)", 'INCLUDE ItemID WHERE Items.GENRES IN ("',
    "EXCLUDE ItemID WHERE Items.GENRES IN ($)", "((((((((((", "EXCLUDE ItemID WHERE Items.PRICE < 'x'",
    "EXCLUDE ItemID WHERE " + " AND ".join(f"Items.PRICE > {n}" for n in range(400)),
    "EXCLUDE UserID WHERE Users.AGE IN ($A) | " * 20, "INCLUDE ItemID WHERE Items.GENRES IN ($A, $A, $A)",
]
HOSTILE_STRINGS = [
    "", " ", "\x00", "a\x00b", "\u202eevil", "💥🔥", "\u0301\u0301\u0301", "Ω" * 300, "\uffff", "\ud7ff\ue000",
    "' OR 1=1 --", "'; DROP TABLE resources; --", "../../../../etc/passwd", "%s%s%n%x", "{0}{1}", "\n\r\t",
    "\\", '"', "<script>alert(1)</script>", "null", "$LATEST", "*", "%00", "\x7f\x1b[31m",
    "arn:aws:personalize:us-east-1:000000000000:", "arn:aws:personalize:::recipe/", "arn:aws:personalize:*:*:*",
    "s3://", "file:///etc/passwd", "/etc/passwd", "/", ".", "http://169.254.169.254/latest/meta-data/",
]
WRONG_TYPES: list[Any] = [None, 0, -1, 1.5, True, False, "x", "1", [], {}, ["x"], {"a": 1}, [[[]]], 10**30]
BAD_AVRO = ["{}", "not json", '{"type": "record"}', "[]", '"string"',
            json.dumps({"type": "record", "name": "Interactions", "fields": [{"name": "USER_ID", "type": "int"}]}),
            json.dumps({"type": "record", "name": "X", "fields": [{"name": "USER_ID"}, {"name": "USER_ID"}]}),
            json.dumps({"type": "record", "name": "Items", "fields": [{"name": "ITEM_ID", "type": "string"},
                                                                       {"name": "X", "type": {"type": "map"}}]}),
            "[" * 5000 + "]" * 5000, json.dumps({"type": "record", "name": "Users", "fields": "USER_ID"})]
BAD_JSON_OBJECTS = ["not json", "[1, 2]", '{"a":', "{}", "1", '"s"', "[" * 3000 + "]" * 3000,
                    json.dumps({"nested": {"deep": [1, {"x": None}]}}), '{"\\u0000": "\\u0000"}']
GARBAGE_BODIES = [b"", b"null", b"[]", b"1", b'"x"', b"{", b"\xff\xfe\x00", b'{"a": }', b"{}" * 3, b"[" * 100_000,
                  b"{" + b'"a":{' * 5000 + b"}" * 5001, b'{"name": "\\ud800"}', b'{"name": "\xc3\x28"}',
                  b"\x00" * 64, b'{"__proto__": {"admin": true}}', b"1e400", b'{"maxResults": 1e400}']


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


BAD_TOKENS = [_token({"after": -1}), _token({"after": 1e30}), _token({"after": "x"}), _token({"after": 2**63}),
              _token([1]), _token({}), _token({"after": None}), "!!!", "a" * 1500, "a" * 1501, "=" * 20, "\x00",
              base64.urlsafe_b64encode(b"\xff\xfe").decode(), _token({"after": True}), _token({"after": 1.5})]


@dataclass(frozen=True)
class Case:
    """One request to send: `params` serialised as JSON, or `raw` bytes as they are."""

    mode: str  # valid | invalid | garbage
    params: Any = None
    raw: bytes | None = None

    def __repr__(self) -> str:  # huge values would flood the report
        shown = repr(self.raw if self.raw is not None else self.params)
        if len(shown) > 1500:
            shown = shown[:1500] + f"... ({len(shown)} characters)"
        return f"Case({self.mode!r}, {shown})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        try:
            return orjson.dumps(self.params)
        except TypeError:  # integers beyond 64 bits: the standard library writes them
            return json.dumps(self.params, ensure_ascii=False).encode()


def _name() -> st.SearchStrategy[str]:
    return st.from_regex(r"\Afz[a-zA-Z0-9_-]{0,12}\Z")


def _text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=low, max_size=min(high, low + 30))


class Inputs:
    """Strategies for one operation, over the world's pools as they are when the strategy is built."""

    def __init__(self, world: World, info: OperationInfo) -> None:
        self.world = world
        self.info = info
        self.destructive = info.name.startswith(DESTRUCTIVE_PREFIXES)
        self.all_arns = world.all_arns() + [arn for arns in world.created.values() for arn in arns]

    # --- valid ---------------------------------------------------------------------------------------

    def valid(self) -> st.SearchStrategy[dict[str, Any]]:
        shape = self.info.input_shape
        if shape is None:
            return st.just({})
        return self._structure(shape)

    def _arn(self, member: str) -> st.SearchStrategy[str]:
        if member == "resourceArn":
            return st.sampled_from([arn for arn in self.all_arns if ":::" not in arn])
        kind = ARN_KINDS.get(member)
        if kind == "recipe" and self.info.name == "CreateSolution":
            return st.sampled_from(self.world.custom_recipes)  # domain use cases belong to recommenders
        if kind in ("recipe", "algorithm", "feature_transformation"):
            return st.sampled_from(self.world.core.get(kind) or [f"arn:aws:personalize:::{kind}/none"])
        if kind is None:
            return _name().map(lambda n: fake_arn("campaign", n))
        fake = _name().map(lambda n, kind=kind: fake_arn(kind, n))
        pool = self.world.arns(kind, self.destructive)
        suffix = DATASET_SUFFIX.get(self.info.name)
        if kind == "dataset" and suffix:
            pool = [arn for arn in pool if arn.endswith(suffix)]
        if not pool:
            return fake
        if self.info.name == "GetPersonalizedRanking" and self.world.ranking_campaign in pool:
            pool = [self.world.ranking_campaign] * 3 + pool  # the one campaign that ranks
        existing = st.sampled_from(pool)
        if member == "solutionVersionArn":
            latest = st.sampled_from(self.world.arns("solution", False)).map(lambda arn: arn + "/$LATEST")
            return st.one_of(existing, existing, latest, fake)
        return st.one_of(existing, existing, existing, fake)

    def _semantic(self, member: str, shape: Shape, parent: str = "") -> st.SearchStrategy[Any] | None:
        """Values with a meaning on the server, by member name (None: generate from the shape alone)."""
        if shape.type_name == "string":
            if shape.name == "Arn":
                return self._arn(member)
            simple: dict[str, st.SearchStrategy[Any]] = {
                "roleArn": st.sampled_from(["arn:aws:iam::000000000000:role/PersonalizeRole",
                                            "arn:aws:iam::123456789012:role/service/x"]),
                "kmsKeyArn": st.just("arn:aws:kms:us-east-1:000000000000:key/0f00"),
                "trackingId": st.one_of(st.sampled_from(self.world.tracking_ids[:1] * 3 + self.world.tracking_ids),
                                        st.uuids().map(str)),
                "userId": st.one_of(st.sampled_from(USER_IDS), _text(1, 20)),
                "itemId": st.one_of(st.sampled_from(ITEM_IDS), _text(1, 20)),
                "actionId": _text(1, 20),
                "sessionId": _text(1, 36),
                "eventId": _text(1, 36),
                "eventType": st.sampled_from(EVENT_TYPES),
                "schema": st.sampled_from([json.dumps(s) for s in SCHEMAS.values()]),
                "filterExpression": st.sampled_from(FILTER_EXPRESSIONS),
                "datasetType": st.sampled_from(DATASET_TYPES),
                "name": _name(), "jobName": _name(),
                "nextToken": st.one_of(st.integers(0, 10**6).map(lambda n: _token({"after": n})), _text(1, 40)),
                "schedulingExpression": st.integers(1, 30).map(lambda n: f"rate({n} day{'s' if n > 1 else ''})"),
                "recommendationId": st.uuids().map(str),
            }
            if member in simple:
                return simple[member]
            if shape.name == "S3Location":
                return st.sampled_from([*self.world.data_paths, "s3://fuzz-bucket/data.csv", "s3://fuzz-bucket/out/",
                                        *ODD_PATHS])
            if member in ("eventValueThreshold", "maxNumberOfTrainingJobs", "maxParallelTrainingJobs"):
                return st.sampled_from(GOOD_NUMBERS + ODD_NUMBERS)
            if (shape.metadata.get("jsonvalue") or member == "properties") and parent in PROPERTIES:
                needed, optional = PROPERTIES[parent]
                return st.fixed_dictionaries(needed, optional=optional).map(json.dumps)
            if shape.metadata.get("jsonvalue") or member == "properties":
                values = st.one_of(st.sampled_from(["Comedy", "Action|Drama", "gold"]), st.integers(0, 100),
                                   st.floats(0, 100, allow_nan=False))
                keys = st.sampled_from(["genres", "price", "age", "membership", "description", "numberOfRatings"])
                return st.dictionaries(keys, values, min_size=1, max_size=3).map(json.dumps)
        if member == "filterValues":
            return st.dictionaries(st.sampled_from(["GENRE", "G", "T"]), st.sampled_from(
                ['"Action"', '"Comedy","Drama"', "1700000000", *ODD_FILTER_VALUES]), max_size=2)
        numbers = st.sampled_from(GOOD_NUMBERS + ODD_NUMBERS)
        if member in ("algorithmHyperParameters", "featureTransformationParameters"):
            names = st.sampled_from([*self.world.hyperparameters, "max_hist_length_percentile", "bogus"])
            return st.dictionaries(names, numbers, max_size=4)
        if member == "name" and shape.name == "ParameterName":
            return st.sampled_from([*self.world.hyperparameters, "bogus"])
        if member == "metadataColumns":
            return st.dictionaries(st.just("ITEMS"), st.lists(st.sampled_from(["GENRES", "PRICE", "DESCRIPTION"]),
                                                              max_size=3, unique=True), max_size=1)
        if member == "itemExplorationConfig":
            return st.fixed_dictionaries({}, optional={"explorationWeight": numbers,
                                                       "explorationItemAgeCutOff": numbers})
        if member == "context":
            return st.dictionaries(st.sampled_from(["DEVICE", "LOCATION"]), _text(1, 10), max_size=2)
        if member == "numResults":  # the documented maximums (100 to 500) are not in the model
            return st.integers(0, 100)
        if member == "inputList":
            return st.lists(st.one_of(st.sampled_from(ITEM_IDS), _text(1, 10)), min_size=1, max_size=8)
        if shape.type_name == "timestamp":
            return st.one_of(st.floats(1.5e9, 1.8e9, allow_nan=False), st.integers(1_500_000_000, 1_800_000_000))
        return None

    def _value(self, member: str, shape: Shape, parent: str = "") -> st.SearchStrategy[Any]:
        special = self._semantic(member, shape, parent)
        if special is not None:
            return special
        meta, kind = shape.metadata, shape.type_name
        if kind == "string":
            if meta.get("enum"):
                return st.sampled_from(meta["enum"])
            return self._patterned(shape)
        if kind in ("integer", "long"):
            low = meta.get("min", 0 if member in ("maxResults", "numResults") else -1000)
            high = meta.get("max", max(low, 0) + 1000)
            return st.integers(low, high)
        if kind in ("float", "double"):
            low, high = meta.get("min", -1000.0), meta.get("max", 1000.0)
            return st.floats(float(low), float(high), allow_nan=False, allow_infinity=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "timestamp":
            return st.floats(1.5e9, 1.8e9)
        if kind == "list":
            low = meta.get("min", 0)
            high = min(meta.get("max", SMALL), max(low, SMALL))
            return st.lists(self._value(member, shape.member), min_size=low, max_size=high)  # type: ignore[attr-defined]
        if kind == "map":
            low = meta.get("min", 0)
            high = min(meta.get("max", SMALL), max(low, SMALL))
            return st.dictionaries(self._value("", shape.key), self._value("", shape.value),  # type: ignore[attr-defined]
                                   min_size=low, max_size=high)
        if kind == "structure":
            return self._structure(shape)
        return st.none()

    def _patterned(self, shape: Shape) -> st.SearchStrategy[str]:
        meta = shape.metadata
        low, high = meta.get("min", 0), meta.get("max", 256)
        by_shape: dict[str, st.SearchStrategy[str]] = {
            "Name": _name(),
            "KmsKeyArn": st.just("arn:aws:kms:us-east-1:000000000000:key/0f00"),
            "RoleArn": st.just("arn:aws:iam::000000000000:role/P"),
            "TagKey": st.text(alphabet=string.ascii_letters + string.digits + "_.:/=+-@ é", min_size=max(low, 1),
                              max_size=20),
            "TagValue": st.text(alphabet=string.ascii_letters + string.digits + "_.:/=+-@ é", max_size=20),
            "ColumnName": st.sampled_from(["GENRES", "PRICE", "DESCRIPTION", "AGE", "MEMBERSHIP", "EVENT_VALUE"]),
            "DatasetType": st.sampled_from(DATASET_TYPES),
            "NextToken": st.integers(0, 1000).map(lambda n: _token({"after": n})),
            "FilterAttributeName": st.sampled_from(["GENRE", "G"]),
            "AttributeName": st.sampled_from(["GENRES", "PRICE"]),
            "EventAttributionSource": st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=10).filter(
                lambda s: s.strip() != ""),
        }
        if shape.name in by_shape:
            return by_shape[shape.name]
        return _text(low, high)

    def _structure(self, shape: Shape) -> st.SearchStrategy[dict[str, Any]]:
        required = set(shape.metadata.get("required", ())) | PRACTICALLY_REQUIRED.get(shape.name, set())
        absent = PRACTICALLY_ABSENT.get(shape.name, set())
        members = {name: member for name, member in shape.members.items()  # type: ignore[attr-defined]
                   if name not in absent}
        return st.fixed_dictionaries(
            {name: self._value(name, member, shape.name) for name, member in members.items() if name in required},
            optional={name: self._value(name, member, shape.name) for name, member in members.items()
                      if name not in required})

    # --- invalid -------------------------------------------------------------------------------------

    def _bad(self, member: str, shape: Shape) -> st.SearchStrategy[Any]:
        meta, kind = shape.metadata, shape.type_name
        options: list[st.SearchStrategy[Any]] = [st.sampled_from(WRONG_TYPES), st.just(DELETE)]
        if kind == "string":
            low, high = meta.get("min"), meta.get("max")
            options.append(st.sampled_from(HOSTILE_STRINGS))
            options.append(st.text(max_size=50))  # any Unicode
            if high is not None:
                options.append(st.sampled_from(["a" * (high + 1), "é" * (high + 1)]))
            if low:
                options.append(st.just("a" * (low - 1)))
            options.append(st.sampled_from(["x" * 70_000, "\u00e9" * 300_000]))  # huge
            if meta.get("enum"):
                options.append(st.sampled_from(["BOGUS", *(v.lower() for v in meta["enum"]), " " + meta["enum"][0]]))
            if shape.name == "Arn":
                kind_word = ARN_WORDS.get(ARN_KINDS.get(member, ""), "campaign")
                options.append(st.sampled_from([
                    *self.all_arns[:40], f"arn:aws:personalize:eu-west-1:000000000000:{kind_word}/x",
                    f"arn:aws:personalize:us-east-1:999999999999:{kind_word}/x",
                    f"arn:aws:personalize:us-east-1:000000000000:{kind_word}/" + "x" * 250,
                    f"arn:aws:personalize:us-east-1:000000000000:{kind_word}/", "arn:aws:personalize:::recipe/nope",
                    f"arn:aws:personalize:us-east-1:000000000000:{kind_word}/a/b/c/d",
                    f"arn:aws:personalize:us-east-1:000000000000:{kind_word}/x/$LATEST",
                    f"arn:aws:personalize:us-east-1:000000000000:{kind_word}/%2e%2e"]))
            if member == "nextToken":
                options.append(st.sampled_from(BAD_TOKENS))
            if member == "schema":
                options.append(st.sampled_from(BAD_AVRO))
            if member == "filterExpression":
                options.append(st.sampled_from(BAD_FILTER_EXPRESSIONS))
            if member == "properties" or meta.get("jsonvalue"):
                options.append(st.sampled_from(BAD_JSON_OBJECTS))
            if member == "trackingId":
                options.append(st.uuids().map(str))
        elif kind in ("integer", "long", "float", "double"):
            low, high = meta.get("min"), meta.get("max")
            edges = [0, -1, 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**100, 1e308, -1e308, 1.5, 1e-300,
                     501, 100_000]
            if low is not None:
                edges.append(low - 1)
            if high is not None:
                edges.append(high + 1)
            options.append(st.sampled_from(edges))
        elif kind == "timestamp":
            options.append(st.sampled_from([-1, 0, 1e19, -1e19, 1.7e12, 2**63, "yesterday", "2024-13-45T00:00:00",
                                            "2024-01-01T00:00:00+25:00", "1700000000", 1e308]))
        elif kind == "list":
            low, high = meta.get("min", 0), meta.get("max")
            item = self._value(member, shape.member)  # type: ignore[attr-defined]
            if low:
                options.append(st.just([]))
            if high is not None and high < 600:
                options.append(item.map(lambda v, n=high + 1: [v] * n))
            options.append(st.sampled_from([[None], [[]], [{}], ["x"] * 1000]))
        elif kind == "map":
            high = meta.get("max")
            if high is not None and high < 600:
                options.append(st.just({f"k{n}": "v" for n in range(high + 1)}))
            options.append(st.sampled_from([{"": "v"}, {"k": None}, {"k": 1}, {"k": ["v"]}, {"\x00": "v"},
                                            {"k" * 2000: "v"}]))
        elif kind == "structure":
            options.append(st.sampled_from([{}, {"unknownMember": 1}]))
        return st.one_of(options)

    def _slots(self, value: Any, shape: Shape, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str, Shape]]:
        """(path, member name, shape) of every place a mutation may go: members present or not, list items,
        map values."""
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            for name, member in shape.members.items():  # type: ignore[attr-defined]
                yield (*path, name), name, member
                if name in value:
                    yield from self._slots(value[name], member, (*path, name))
        elif kind == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                yield (*path, index), path[-1] if path else "", shape.member  # type: ignore[attr-defined]
                yield from self._slots(item, shape.member, (*path, index))  # type: ignore[attr-defined]
        elif kind == "map" and isinstance(value, dict):
            for key, item in value.items():
                yield (*path, key), "", shape.value  # type: ignore[attr-defined]

    def invalid(self) -> st.SearchStrategy[dict[str, Any]]:
        shape = self.info.input_shape

        @st.composite
        def draw_invalid(draw: st.DrawFn) -> dict[str, Any]:
            params = draw(self.valid())
            if shape is None:
                params = draw(st.dictionaries(_text(1, 10), st.sampled_from(WRONG_TYPES), min_size=1, max_size=3))
                return params
            for _ in range(draw(st.integers(1, 3))):
                slots = list(self._slots(params, shape, ()))
                if not slots:
                    break
                path, member, target = draw(st.sampled_from(slots))
                params = _replace(params, path, draw(self._bad(member, target)))
            return params

        return draw_invalid()

    def cases(self) -> st.SearchStrategy[Case]:
        valid = self.valid().map(lambda p: Case("valid", p))
        invalid = self.invalid().map(lambda p: Case("invalid", p))
        garbage = st.sampled_from(GARBAGE_BODIES).map(lambda b: Case("garbage", raw=b))
        # Weighted by hand (4 valid : 5 invalid : 1 garbage); one_of alone favours the simplest branch.
        return st.sampled_from("vvvviiiiig").flatmap(
            lambda mode: valid if mode == "v" else invalid if mode == "i" else garbage)


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the item at `path` replaced by `new` (or removed for DELETE); paths that no
    longer exist (an earlier mutation replaced a container) leave the value as it is."""
    if not path:
        return value if new is DELETE else new
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and (head in value or not rest):
        out = dict(value)
        if not rest and new is DELETE:
            out.pop(head, None)
        else:
            out[head] = _replace(value.get(head), rest, new)
        return out
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        out_list = list(value)
        if not rest and new is DELETE:
            del out_list[head]
        else:
            out_list[head] = _replace(value[head], rest, new)
        return out_list
    return value
