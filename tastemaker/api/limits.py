"""Request body size limits per operation, derived from the botocore input shapes, enforced before reading.

An operation's limit is the largest body a valid request can have: every string at its model maximum with
every character escaped as JSON `\\uXXXX` (6 bytes; botocore sends non-ASCII that way), every list and map
at its maximum length (or the documented limit in validation.EXTRA_LIMITS), plus SLACK for whitespace a
hand-written client may add; capped at CEILING. Anything larger cannot pass validation, so the server
refuses it from its Content-Length (or while a chunked body streams in) before authentication reads a
byte of it. Requests that name no known operation get UNKNOWN_OPERATION_LIMIT.
"""

from __future__ import annotations

import functools

from botocore.model import Shape

from tastemaker.api import service_models
from tastemaker.api.validation import EXTRA_LIMITS
from tastemaker.errors import RequestEntityTooLargeException

SLACK = 16 << 10  # bytes of formatting whitespace allowed on top of the largest valid compact body
CEILING = 4 << 20  # no request body is read beyond this, whatever its model allows
UNKNOWN_OPERATION_LIMIT = 64 << 10  # unknown target/path: the request fails anyway; read little of it
_ESCAPED_CHAR = 6  # `\uXXXX`
_NUMBER = 32  # the longest JSON number or epoch timestamp worth sending
_UNBOUNDED = 1000  # strings/lists/maps without a model maximum (none today but ranking maps) count as this


def _largest(shape: Shape, extra: dict[str, dict[str, int]] | None = None, seen: frozenset[str] = frozenset()) -> int:
    """Bytes of the largest compact JSON value that the shape's validation accepts."""
    meta, kind = shape.metadata, shape.type_name
    if shape.name in seen:  # a recursive shape: no Personalize model has one; count it as empty
        return 2
    seen = seen | {shape.name}
    if kind == "string":
        if meta.get("enum"):
            return 2 + max(len(value) for value in meta["enum"])
        return 2 + _ESCAPED_CHAR * int(meta.get("max", _UNBOUNDED))
    if kind in ("integer", "long", "float", "double", "timestamp"):
        return _NUMBER
    if kind == "boolean":
        return 5
    if kind == "list":
        count = int(meta.get("max", _UNBOUNDED))
        return 2 + count * (1 + _largest(shape.member, None, seen))  # type: ignore[attr-defined]
    if kind == "map":
        count = int(meta.get("max", _UNBOUNDED))
        pair = 2 + _largest(shape.key, None, seen) + _largest(shape.value, None, seen)  # type: ignore[attr-defined]
        return 2 + count * pair
    if kind == "structure":
        total = 2
        for name, member in shape.members.items():  # type: ignore[attr-defined]
            size = _largest(member, None, seen)
            if extra and name in extra and "max" in extra[name]:
                if member.type_name == "list":
                    size = 2 + extra[name]["max"] * (1 + _largest(member.member, None, seen))  # type: ignore[attr-defined]
                elif member.type_name == "string":
                    size = 2 + _ESCAPED_CHAR * extra[name]["max"]
            total += len(name) + 4 + size
        return total
    return _UNBOUNDED


@functools.cache
def body_limits() -> dict[str, int]:
    """The one table: operation name -> the most body bytes the server reads for it."""
    table: dict[str, int] = {}
    for info in service_models.all_operations():
        if info.input_shape is None:
            table[info.name] = SLACK
            continue
        extra = {member: limits for (op, member), limits in EXTRA_LIMITS.items() if op == info.name}
        table[info.name] = min(_largest(info.input_shape, extra) + SLACK, CEILING)
    return table


def body_limit(operation: str | None) -> int:
    """The limit for an operation name, or UNKNOWN_OPERATION_LIMIT when the request names none we know."""
    if operation is None:
        return UNKNOWN_OPERATION_LIMIT
    return body_limits().get(operation, UNKNOWN_OPERATION_LIMIT)


def too_large(operation: str | None, limit: int, declared: int | None = None) -> RequestEntityTooLargeException:
    """The refusal: `declared` is the Content-Length when the client sent one, else the body grew past `limit`."""
    what = operation or "a request that names no Personalize operation"
    size = f"is {declared} bytes" if declared is not None else f"is more than {limit} bytes"
    return RequestEntityTooLargeException(
        f"The request body {size}; {what} accepts at most {limit} bytes (the largest body its valid "
        "parameters can make). Send smaller requests; bulk data goes through CreateDatasetImportJob.")
