"""Server-side validation of request parameters against botocore input shapes, AWS-style messages.

Conventions (chosen to match what AWS services report, documented here once):

* Every violation found is reported, in one InvalidInputException whose message reads
  `N validation error(s) detected: Value '<v>' at '<path>' failed to satisfy constraint: <rule>; ...`;
  for an operation whose model declares no InvalidInputException (ListDatasetGroups, ListSchemas) it is
  AWS's common ValidationException, with the same message.
* Paths: top-level members by name (`name`), nested structure members with dots
  (`dataSource.dataLocation`), list elements 1-based as AWS writes them (`eventList.1.member.sentAt`),
  map values by key (`filterValues.myKey`); map *key* violations are reported at the map's path as
  `Map keys must satisfy constraint: [<rule>]`.
* Sensitive members (and everything inside a sensitive shape, such as a personalize-events Event) show
  `'***'` instead of their value.
* Unknown members are ignored and left out of the returned dict (AWS JSON services ignore them too;
  boto3 never sends them). An explicit JSON null counts as absent.
* Patterns are matched against the whole value (Java `String.matches`, which the AWS models assume).
* No string member may contain NUL (U+0000): no model pattern admits it and PostgreSQL cannot store it.
* Timestamps accept epoch seconds (what boto3 sends) or an ISO 8601 string, and come back as float epoch.
* `jsonvalue` members (`properties`) must be strings holding a JSON object; they come back unchanged
  (still the JSON string).
* A few limits that AWS documents and enforces but the models do not carry (see EXTRA_LIMITS) are
  checked as if they were in the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import regex
from botocore.model import OperationModel, Shape

from tastemaker.errors import InvalidInputException, ValidationException

# Documented limits the botocore models leave out: (operation, top-level member) -> {"min"/"max": n}.
EXTRA_LIMITS: dict[tuple[str, str], dict[str, int]] = {
    ("GetRecommendations", "numResults"): {"max": 500},
    ("GetActionRecommendations", "numResults"): {"max": 100},
    ("GetPersonalizedRanking", "inputList"): {"max": 500},
}

# Tastemaker extensions that widen a model pattern, by shape name: import and batch locations may also be
# local paths or file:// URLs (the server still confines them to its configured import roots).
PATTERN_OVERRIDES: dict[str, str] = {
    "S3Location": r"(s3|http|https|file)://.+|/.+",
}

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_SHOWN_CHARS = 200  # values longer than this are cut in messages
_SHOWN_ERRORS = 10  # a message lists at most this many violations (and counts the rest)

Errors = list[str]


def _show(value: Any, redact: bool) -> str:
    """How a value appears in a message: `null`, `'***'` or `'<value>'` (cut when long)."""
    if value is None:
        return "null"
    if redact:
        return "'***'"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return f"'{text}'"


def _fail(errors: Errors, value: Any, path: str, rule: str, redact: bool) -> None:
    errors.append(f"Value {_show(value, redact)} at '{path}' failed to satisfy constraint: {rule}")


def _check_length(errors: Errors, value: Any, path: str, low: int | None, high: int | None, redact: bool) -> None:
    length = len(value)
    if low is not None and length < low:
        _fail(errors, value, path, f"Member must have length greater than or equal to {low}", redact)
    if high is not None and length > high:
        _fail(errors, value, path, f"Member must have length less than or equal to {high}", redact)


def java_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile a Java-flavoured model pattern for full-string matching with the `regex` package.

    `regex` understands `\\p{L}`, `\\p{Z}`, `\\p{N}`, `\\p{ASCII}`; Java's `\\d`, `\\w`, `\\s` are ASCII-only,
    so they are spelled out (Python's would accept any Unicode digit).
    """
    ascii_classes = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \\t\\n\\x0B\\f\\r"}
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in ascii_classes:
                body = ascii_classes[nxt]
                out.append(body if in_class else f"[{body}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return regex.compile("".join(out))


# --- compiled nodes: one per (shape, sensitivity, jsonvalue); check() returns the cleaned value ------


class _Node:
    __slots__ = ("redact",)
    kind = "value"

    def __init__(self, redact: bool) -> None:
        self.redact = redact

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        return value


class _StringNode(_Node):
    __slots__ = ("enum", "enum_text", "high", "json_object", "low", "pattern", "pattern_text")

    def __init__(self, shape: Shape, redact: bool, json_object: bool) -> None:
        super().__init__(redact)
        meta = shape.metadata
        self.low: int | None = meta.get("min")
        self.high: int | None = meta.get("max")
        self.pattern_text: str | None = PATTERN_OVERRIDES.get(shape.name, meta.get("pattern"))
        self.pattern = java_pattern(self.pattern_text) if self.pattern_text else None
        enum = meta.get("enum")
        self.enum = frozenset(enum) if enum else None
        self.enum_text = f"[{', '.join(enum)}]" if enum else ""
        self.json_object = json_object

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, str):
            _fail(errors, value, path, "Member must be a string", self.redact)
            return value
        if "\x00" in value:  # no AWS pattern admits it, and PostgreSQL text cannot store it
            _fail(errors, value.replace("\x00", "\\0"), path,
                  "Member must not contain the NUL character (\\u0000)", self.redact)
            return value
        if self.enum is not None and value not in self.enum:
            _fail(errors, value, path, f"Member must satisfy enum value set: {self.enum_text}", self.redact)
        low, high, length = self.low, self.high, len(value)
        if (low is not None and length < low) or (high is not None and length > high):
            _check_length(errors, value, path, low, high, self.redact)
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            _fail(errors, value, path, f"Member must satisfy regular expression pattern: {self.pattern_text}",
                  self.redact)
        if self.json_object:
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                _fail(errors, value, path, "Member must be a string holding a JSON object", self.redact)
        return value


class _NumberNode(_Node):
    __slots__ = ("high", "integral", "low", "type_word")

    def __init__(self, shape: Shape, redact: bool) -> None:
        super().__init__(redact)
        self.integral = shape.type_name in ("integer", "long")
        bounds = _INT32 if shape.type_name == "integer" else _INT64 if shape.type_name == "long" else (None, None)
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        self.low = low if low is not None else bounds[0]
        self.high = high if high is not None else bounds[1]
        self.type_word = "an integer" if self.integral else "a number"

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(errors, value, path, f"Member must be {self.type_word}", self.redact)
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                _fail(errors, value, path, "Member must be a finite number", self.redact)
                return value
            if self.integral:
                if not value.is_integer():
                    _fail(errors, value, path, "Member must be an integer", self.redact)
                    return value
                value = int(value)
        if self.low is not None and value < self.low:
            _fail(errors, value, path, f"Member must have value greater than or equal to {self.low}", self.redact)
        if self.high is not None and value > self.high:
            _fail(errors, value, path, f"Member must have value less than or equal to {self.high}", self.redact)
        return value


class _BooleanNode(_Node):
    __slots__ = ()

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, bool):
            _fail(errors, value, path, "Member must be a boolean", self.redact)
        return value


class _TimestampNode(_Node):
    __slots__ = ()

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.timestamp()
        _fail(errors, value, path, "Member must be a timestamp (epoch seconds, or an ISO 8601 string)",
              self.redact)
        return value


class _ListNode(_Node):
    __slots__ = ("high", "low", "member")
    kind = "list"

    def __init__(self, shape: Shape, redact: bool) -> None:
        super().__init__(redact)
        self.member: _Node = _Node(redact)  # set by the compiler (shapes may be recursive)
        self.low: int | None = shape.metadata.get("min")
        self.high: int | None = shape.metadata.get("max")

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, list):
            _fail(errors, value, path, "Member must be a list", self.redact)
            return value
        _check_length(errors, value, path, self.low, self.high, self.redact)
        member = self.member
        out: list[Any] = []
        for index, item in enumerate(value, 1):
            item_path = f"{path}.{index}.member"
            if item is None:
                _fail(errors, None, item_path, "Member must not be null", self.redact)
                out.append(item)
            else:
                out.append(member.check(item, item_path, errors))
        return out


class _MapNode(_Node):
    __slots__ = ("high", "key", "low", "value")
    kind = "map"

    def __init__(self, shape: Shape, redact: bool) -> None:
        super().__init__(redact)
        self.key: _Node = _Node(redact)
        self.value: _Node = _Node(redact)
        self.low: int | None = shape.metadata.get("min")
        self.high: int | None = shape.metadata.get("max")

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, dict):
            _fail(errors, value, path, "Member must be a map (a JSON object)", self.redact)
            return value
        _check_length(errors, value, path, self.low, self.high, self.redact)
        out: dict[str, Any] = {}
        for key, item in value.items():
            key_errors: Errors = []
            self.key.check(key, path, key_errors)
            for problem in key_errors:
                rule = problem.split("failed to satisfy constraint: ", 1)[1]
                _fail(errors, key, path, f"Map keys must satisfy constraint: [{rule}]", self.key.redact)
            item_path = f"{path}.{key}"
            if item is None:
                _fail(errors, None, item_path, "Member must not be null", self.redact)
                out[key] = item
            else:
                out[key] = self.value.check(item, item_path, errors)
        return out


class _StructureNode(_Node):
    __slots__ = ("members", "required")
    kind = "structure"

    def __init__(self, shape: Shape, redact: bool) -> None:
        super().__init__(redact)
        self.members: dict[str, _Node] = {}
        self.required: tuple[str, ...] = tuple(shape.metadata.get("required", ()))

    def check(self, value: Any, path: str, errors: Errors) -> Any:
        if not isinstance(value, dict):
            _fail(errors, value, path, "Member must be a structure (a JSON object)", self.redact)
            return value
        return self.check_members(value, f"{path}." if path else "", errors)

    def check_members(self, value: dict[str, Any], prefix: str, errors: Errors) -> dict[str, Any]:
        out = {}
        members = self.members
        for name, item in value.items():
            node = members.get(name)
            if node is None or item is None:
                continue  # unknown members are ignored; null means absent
            out[name] = node.check(item, prefix + name, errors)
        for name in self.required:
            if value.get(name) is None:
                _fail(errors, None, prefix + name, "Member must not be null", False)
        return out


class _Compiler:
    """Turns botocore shapes into nodes, sharing one node per (shape, redact, jsonvalue)."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, bool, bool], _Node] = {}

    def compile(self, shape: Shape, redact: bool = False, json_object: bool = False) -> _Node:
        redact = redact or bool(shape.metadata.get("sensitive"))
        key = (shape.name, redact, json_object)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        type_name = shape.type_name
        node: _Node
        if type_name == "string":
            node = _StringNode(shape, redact, json_object)
        elif type_name in ("integer", "long", "float", "double"):
            node = _NumberNode(shape, redact)
        elif type_name == "boolean":
            node = _BooleanNode(redact)
        elif type_name == "timestamp":
            node = _TimestampNode(redact)
        elif type_name == "list":
            node = _ListNode(shape, redact)
        elif type_name == "map":
            node = _MapNode(shape, redact)
        elif type_name == "structure":
            node = _StructureNode(shape, redact)
        else:  # blob / document: no model in these services uses them; accept as sent
            node = _Node(redact)
        self.cache[key] = node  # before the children, so a recursive shape finds itself
        if isinstance(node, _ListNode):
            node.member = self.compile(shape.member, redact)  # type: ignore[attr-defined]
        elif isinstance(node, _MapNode):
            node.key = self.compile(shape.key, redact)  # type: ignore[attr-defined]
            node.value = self.compile(shape.value, redact)  # type: ignore[attr-defined]
        elif isinstance(node, _StructureNode):
            for name, member in shape.members.items():  # type: ignore[attr-defined]
                node.members[name] = self.compile(member, redact, bool(member.serialization.get("jsonvalue")))
        return node


def _children(node: _Node) -> list[_Node]:
    if isinstance(node, _ListNode):
        return [node.member]
    if isinstance(node, _MapNode):
        return [node.key, node.value]
    if isinstance(node, _StructureNode):
        return list(node.members.values())
    return []


def _hide_sensitive_containers(node: _Node, seen: dict[int, bool]) -> bool:
    """Mark lists/maps/structures holding anything sensitive as redacted, so messages never print them."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = node.redact
    hidden = node.redact
    for child in _children(node):
        hidden = _hide_sensitive_containers(child, seen) or hidden
    node.redact = hidden
    seen[id(node)] = hidden
    return hidden


def _with_limits(node: _Node, limits: dict[str, int]) -> _Node:
    """A copy of a number/list/string/map node with tighter documented limits."""
    clone = object.__new__(type(node))
    for cls in type(node).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            setattr(clone, slot, getattr(node, slot))
    for bound, limit in limits.items():
        setattr(clone, "low" if bound == "min" else "high", limit)
    return clone


_compilers: dict[str, _Compiler] = {}
_operations: dict[tuple[str, str], _StructureNode | None] = {}


def _compiled(operation_model: OperationModel) -> _StructureNode | None:
    service = operation_model.service_model.service_name
    key = (service, operation_model.name)
    if key in _operations:
        return _operations[key]
    shape = operation_model.input_shape
    node: _StructureNode | None = None
    if shape is not None:
        compiler = _compilers.setdefault(service, _Compiler())
        compiled = compiler.compile(shape)
        assert isinstance(compiled, _StructureNode)
        _hide_sensitive_containers(compiled, {})
        node = compiled
        extras = {member: limits for (op, member), limits in EXTRA_LIMITS.items() if op == operation_model.name}
        if extras:  # a private top-level node so the shared member nodes keep the model's limits
            node = _StructureNode(shape, compiled.redact)
            node.members = dict(compiled.members)
            for member, limits in extras.items():
                node.members[member] = _with_limits(compiled.members[member], limits)
    _operations[key] = node
    return node


def _refusal(operation_model: OperationModel) -> type[InvalidInputException]:
    """ValidationException for a Personalize operation whose model declares no InvalidInputException."""
    personalize = operation_model.service_model.service_name.startswith("personalize")
    declared = any(e.name == "InvalidInputException" for e in operation_model.error_shapes)
    return ValidationException if personalize and not declared else InvalidInputException


def validate_input(operation_model: OperationModel, params: Any) -> dict[str, Any]:
    """Check request params against the operation's input shape; return them cleaned.

    Raises InvalidInputException listing every violation (see the module docstring for the format).
    The result drops unknown members and nulls, and turns timestamps into float epoch seconds.
    """
    if not isinstance(params, dict):
        raise InvalidInputException("The request body must be a JSON object.")
    node = _compiled(operation_model)
    if node is None:
        return {}
    errors: Errors = []
    cleaned = node.check_members(params, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(errors[:_SHOWN_ERRORS])
        if count > _SHOWN_ERRORS:
            shown += f"; and {count - _SHOWN_ERRORS} more"
        raise _refusal(operation_model)(f"{count} validation {noun} detected: {shown}")
    return cleaned


def precompile_all(operations: Iterable[OperationModel]) -> None:
    """Compile every operation up front (server start), so the first request pays nothing."""
    for operation in operations:
        _compiled(operation)

