"""Walk botocore shapes to turn wire members (camelCase) into Python keys (snake_case) and back."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from botocore.model import Shape

_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")


@lru_cache(maxsize=4096)
def camel_to_snake(name: str) -> str:
    """minProvisionedTPS -> min_provisioned_tps, autoMLConfig -> auto_ml_config, Filters -> filters."""
    return _LOWER_UPPER.sub(r"\1_\2", _ACRONYM_WORD.sub(r"\1_\2", name)).lower()


def to_python(shape: Shape | None, value: Any) -> Any:
    """Request value -> Python: structure members become snake_case keys; map keys are kept as sent."""
    if shape is None or value is None:
        return value
    if shape.type_name == "structure":
        members = shape.members
        return {camel_to_snake(k): to_python(members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list":
        return [to_python(shape.member, v) for v in value]
    if shape.type_name == "map":
        return {k: to_python(shape.value, v) for k, v in value.items()}
    return value


Converter = Callable[[Any], Any]
_WIRE_CONVERTERS: dict[int, tuple[Shape, Converter | None]] = {}


def _identity_kind(kind: str) -> bool:
    return kind in ("string", "boolean", "blob")


def wire_converter(shape: Shape) -> Converter | None:
    """A function turning a Python value of this shape into its wire form; None where the value goes out
    as it is. Built once per shape (responses are hot: 25-500 predicted items per GetRecommendations)."""
    hit = _WIRE_CONVERTERS.get(id(shape))
    if hit is not None and hit[0] is shape:
        return hit[1]
    _BUILDING.add(id(shape))
    try:
        converter = _build_converter(shape)
    finally:
        _BUILDING.discard(id(shape))
    _WIRE_CONVERTERS[id(shape)] = (shape, converter)
    return converter


_BUILDING: set[int] = set()


def _build_converter(shape: Shape) -> Converter | None:
    kind = shape.type_name
    if kind == "structure":
        # Keyed by what a result may use for a member: its snake_case key or the wire name itself. Walking the
        # value's own keys (2-3 on a predicted item) instead of every member the shape declares is the hot loop
        # of large responses.
        plan: dict[str, tuple[str, Converter | None]] = {}
        for member, member_shape in shape.members.items():
            entry = (member, _nested(member_shape))
            plan[member] = entry
            plan[camel_to_snake(member)] = entry

        def structure(value: Any) -> Any:
            out = {}
            for key, item in value.items():
                entry = plan.get(key)
                if entry is None or item is None:
                    continue
                convert = entry[1]
                out[entry[0]] = convert(item) if convert is not None else item
            return out

        return structure
    if kind == "list":
        member = _nested(shape.member)
        if member is None:
            return list
        return lambda value: [member(v) for v in value]
    if kind == "map":
        value_of = _nested(shape.value)
        if value_of is None:
            return dict
        return lambda value: {k: value_of(v) for k, v in value.items()}
    if kind == "timestamp" or kind in ("float", "double"):
        return float
    if kind in ("integer", "long"):
        return int
    return None


def _nested(shape: Shape) -> Converter | None:
    if _identity_kind(shape.type_name):
        return None
    if id(shape) in _BUILDING:  # a shape that contains itself: look it up when a value arrives
        return lambda value: to_wire(shape, value)
    return wire_converter(shape)


def to_wire(shape: Shape | None, value: Any) -> Any:
    """Python result -> response JSON, keeping only members the shape declares (None is omitted)."""
    if shape is None or value is None:
        return value
    converter = wire_converter(shape)
    return value if converter is None else converter(value)
