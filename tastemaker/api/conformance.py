"""Wire conformance against botocore's service models: an answer checked field by field against its output
shape, and an error code checked against the errors the operation models.

`output_problems(shape, value)` walks a decoded JSON answer (wire names, camelCase) and lists every
difference from the shape: members the shape does not have, required members missing, wrong JSON types
(timestamps are epoch-second numbers on these protocols), enum values, and the model's min/max and pattern
constraints. `error_problem(operation, code)` says when an error code is not one the operation declares; AWS's
common ValidationException counts as declared for a Personalize operation that models no InvalidInputException,
since that is how AWS's request validation refuses a model constraint there.
The conformance suite (tests/compat/test_conformance.py) drives every implemented operation with valid and
generated invalid calls, and records per operation whether it is wire-exact in `CONFORMANCE_FILE`, which
`tastemaker coverage` renders into docs/api-coverage.md.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.model import OperationModel, Shape

CONFORMANCE_FILE = Path(__file__).resolve().parents[2] / "docs" / "api-conformance.json"
MAX_PROBLEMS = 20


def output_problems(shape: Shape | None, value: Any, path: str = "") -> list[str]:
    """Every way `value` (a decoded JSON answer) differs from `shape`; [] when it is exact."""
    problems: list[str] = []
    if shape is None:
        if value not in ({}, None):
            problems.append(f"{path or 'answer'}: the operation has no output, but the answer is {value!r}")
        return problems
    _check(shape, value, path or shape.name, problems)
    return problems[:MAX_PROBLEMS]


def error_problem(operation: OperationModel, code: str) -> str | None:
    """None when `code` (the __type or x-amzn-ErrorType, any namespace prefix) is an error of the operation."""
    name = code.rsplit("#", 1)[-1].split(":", 1)[0]
    declared = {e.name for e in operation.error_shapes}
    validation = (name == "ValidationException" and "InvalidInputException" not in declared
                  and operation.service_model.service_name.startswith("personalize"))
    if name in declared or validation:
        return None
    return f"{operation.name} answered {name}, which its model does not declare ({', '.join(sorted(declared))})"


@lru_cache(maxsize=512)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # a Java-only construct: not checked here
        return None


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        members = shape.members  # type: ignore[attr-defined]
        for key in value:
            if key not in members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
        for key in shape.required_members:  # type: ignore[attr-defined]
            if value.get(key) is None:
                problems.append(f"{path}.{key}: required member missing")
        for key, item in value.items():
            if key in members and item is not None:
                _check(members[key], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        _bounds(len(value), meta, path, "items", problems)
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object (map), got {type(value).__name__}")
            return
        _bounds(len(value), meta, path, "entries", problems)
        for key, item in value.items():
            _check(shape.key, key, f"{path}<key {key!r}>", problems)  # type: ignore[attr-defined]
            _check(shape.value, item, f"{path}[{key!r}]", problems)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {type(value).__name__} {value!r}")
            return
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        _bounds(len(value), meta, path, "characters", problems)
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        # The model gives echoed IAM role and KMS key ARNs (roleArn, kmsKeyArn) the Personalize "Arn" shape,
        # whose pattern AWS's own answers do not match: those are not held against an answer.
        foreign = shape.name == "Arn" and re.match(r"arn:[a-z\d-]+:(iam|kms):", value) is not None
        if pattern is not None and not foreign and not pattern.search(value):
            problems.append(f"{path}: {value!r} does not match the pattern {meta['pattern']}")
        if meta.get("jsonvalue"):
            try:
                json.loads(value)
            except ValueError:
                problems.append(f"{path}: not a JSON document")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
            return
        _bounds(value, meta, path, "", problems)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {value!r}")
            return
        _bounds(value, meta, path, "", problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true or false, got {value!r}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected epoch seconds (a number), got {value!r}")
    elif kind == "blob" and not isinstance(value, str):
        problems.append(f"{path}: expected base64 text, got {type(value).__name__}")


def _bounds(size: float, meta: dict[str, Any], path: str, unit: str, problems: list[str]) -> None:
    low, high = meta.get("min"), meta.get("max")
    what = f"{size} {unit}".strip()
    if low is not None and size < low:
        problems.append(f"{path}: {what}, below the minimum {low}")
    if high is not None and size > high:
        problems.append(f"{path}: {what}, above the maximum {high}")


def load_results(path: Path = CONFORMANCE_FILE) -> dict[str, dict[str, Any]]:
    """Operation name -> its recorded conformance result ({} when the suite has not recorded any)."""
    try:
        return dict(json.loads(path.read_text())["operations"])
    except (OSError, ValueError, KeyError):
        return {}
