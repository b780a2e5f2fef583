"""Walk botocore shapes to turn wire members (camelCase) into Python keys (snake_case) and back."""

from __future__ import annotations

import re
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


_MEMBER_PLANS: dict[int, tuple[Shape, list[tuple[str, str, Shape]]]] = {}


def _wire_members(shape: Shape) -> list[tuple[str, str, Shape]]:
    """(member, snake_case key, member shape) of a structure, worked out once per shape (hot on responses)."""
    plan = _MEMBER_PLANS.get(id(shape))
    if plan is None or plan[0] is not shape:
        plan = (shape, [(m, camel_to_snake(m), s) for m, s in shape.members.items()])
        _MEMBER_PLANS[id(shape)] = plan
    return plan[1]


def to_wire(shape: Shape | None, value: Any) -> Any:
    """Python result -> response JSON, keeping only members the shape declares (None is omitted)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for member, key, member_shape in _wire_members(shape):
            if key in value and value[key] is not None:
                out[member] = to_wire(member_shape, value[key])
            elif member in value and value[member] is not None:
                out[member] = to_wire(member_shape, value[member])
        return out
    if kind == "list":
        return [to_wire(shape.member, v) for v in value]
    if kind == "map":
        return {k: to_wire(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    return value
