"""Polling helpers for asynchronous Personalize resources."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TERMINAL = {"ACTIVE", "CREATE FAILED", "CREATE STOPPED", "INACTIVE"}


def wait_status(describe: Callable[[], dict[str, Any]], key: str, *, timeout: float = 120.0,
                until: set[str] | None = None) -> dict[str, Any]:
    """Poll a Describe call until the resource under `key` reaches a terminal status; return it."""
    until = until or TERMINAL
    deadline = time.time() + timeout
    last: dict[str, Any] = {}
    while time.time() < deadline:
        last = describe()[key]
        if last.get("status") in until:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{key} still {last.get('status')} after {timeout}s: {last}")


def wait_gone(describe: Callable[[], dict[str, Any]], client: Any, *, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            describe()
        except client.exceptions.ResourceNotFoundException:
            return
        time.sleep(0.2)
    raise AssertionError("resource was not deleted in time")
