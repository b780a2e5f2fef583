"""What any correct server must refuse, judged without the server's own validator.

Two independent judges of a request's parameters:

* botocore's client-side `ParamValidator` (required members, types, minimum lengths and values), less what
  the AWS JSON protocols tolerate and boto3 users never send: unknown members (ignored), explicit nulls
  (absent), integral floats for integers;
* the model's maximums (lengths, values, list and map sizes) and enums, which botocore leaves to the server,
  and NUL characters (no model pattern admits one).

`must_refuse(shape, params)` lists the reasons; an empty list means "may be accepted".
"""

from __future__ import annotations

from typing import Any

from botocore.model import Shape
from botocore.validate import ParamValidator

_TOLERATED = {"unknown field"}


def _without_nulls(value: Any) -> Any:
    """Structure and map members that are null are absent on the wire; list items stay (a null item is bad)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _botocore(shape: Shape, params: dict[str, Any]) -> list[str]:
    try:
        report = ParamValidator().validate(_without_nulls(params), shape)
    except (OverflowError, ValueError, TypeError):  # botocore's own parser gave up (e.g. epoch 1e19)
        return []
    reasons = []
    for kind, name, details in report._errors:  # (reason, parameter path, details)
        if kind in _TOLERATED:
            continue
        value = details.get("param")
        if kind == "invalid type" and isinstance(value, float) and value.is_integer():
            continue  # 5.0 for an integer: JSON does not tell them apart
        reasons.append(f"{name}: {kind} {details}")
    return reasons


def _limits(shape: Shape, value: Any, path: str, out: list[str]) -> None:
    meta, kind = shape.metadata, shape.type_name
    high = meta.get("max")
    if kind == "string" and isinstance(value, str):
        if high is not None and len(value) > high:
            out.append(f"{path}: longer than {high}")
        if meta.get("enum") and value not in meta["enum"]:
            out.append(f"{path}: not one of {meta['enum']}")
        if "\x00" in value:
            out.append(f"{path}: holds NUL")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        if high is not None and value > high:
            out.append(f"{path}: above {high}")
    elif kind == "list" and isinstance(value, list):
        if high is not None and len(value) > high:
            out.append(f"{path}: more than {high} items")
        for index, item in enumerate(value):
            _limits(shape.member, item, f"{path}[{index}]", out)  # type: ignore[attr-defined]
    elif kind == "map" and isinstance(value, dict):
        if high is not None and len(value) > high:
            out.append(f"{path}: more than {high} entries")
        for key, item in value.items():
            _limits(shape.key, key, f"{path} key", out)  # type: ignore[attr-defined]
            _limits(shape.value, item, f"{path}.{key}", out)  # type: ignore[attr-defined]
    elif kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        for name, item in value.items():
            if name in members and item is not None:
                _limits(members[name], item, f"{path}.{name}" if path else name, out)


def must_refuse(shape: Shape | None, params: Any) -> list[str]:
    """Why a server must refuse `params` for an operation with this input shape (empty: it may accept)."""
    if shape is None or not isinstance(params, dict):
        return [] if shape is None else ["the body is not a JSON object"]
    reasons = _botocore(shape, params)
    _limits(shape, params, "", reasons)
    return reasons
