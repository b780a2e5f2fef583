"""The operation registry: functions register under their AWS operation name (`@operation`).

The modules that implement operations are listed once, in tastemaker.api.operations, which imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPERATIONS: dict[str, Callable[..., Any]] = {}
# Operations the API may run on the event loop: every step that could block calls
# tastemaker.realtime.inline.slow_step() first, before any write (the request then starts over in the thread pool).
INLINE_OPERATIONS: set[str] = set()


def operation(name: str, *, inline: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` as the implementation of the AWS operation `name` (e.g. "CreateDatasetGroup")."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} registered twice")
        OPERATIONS[name] = fn
        if inline:
            INLINE_OPERATIONS.add(name)
        return fn

    return register
