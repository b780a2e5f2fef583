"""The operation registry: control functions register under their AWS operation name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPERATIONS: dict[str, Callable[..., Any]] = {}
# Operations the API may run on the event loop: read-only, and every step that could block calls
# tastemaker.serving.inline.slow_step() first (the request then moves to the thread pool).
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


def load_all() -> dict[str, Callable[..., Any]]:
    """Import every module that registers operations and return the registry."""
    import importlib

    for module in (
        "tastemaker.control.dataset_groups",
        "tastemaker.control.schemas",
        "tastemaker.control.datasets",
        "tastemaker.control.import_jobs",
        "tastemaker.control.tags",
        "tastemaker.control.solutions",
        "tastemaker.control.filters",
        "tastemaker.control.recipes",
    ):
        importlib.import_module(module)
    for optional in (
        "tastemaker.control.campaigns",
        "tastemaker.control.recommenders",
        "tastemaker.control.event_trackers",
        "tastemaker.control.batch_jobs",
        "tastemaker.control.export_jobs",
        "tastemaker.serving.runtime",
        "tastemaker.realtime.events_api",
    ):
        try:
            importlib.import_module(optional)
        except ModuleNotFoundError as exc:
            if exc.name != optional:
                raise
    return OPERATIONS
