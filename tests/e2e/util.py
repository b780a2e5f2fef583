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


def train_and_deploy(personalize: Any, group: str, recipe: str, name: str) -> tuple[str, str]:
    """Create a solution of `recipe` in `group`, train a version and deploy it; returns (version, campaign), both named `name`."""
    solution = personalize.create_solution(name=name, datasetGroupArn=group,
                                           recipeArn=f"arn:aws:personalize:::recipe/{recipe}")["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    trained = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                          "solutionVersion", timeout=300)
    assert trained["status"] == "ACTIVE", trained.get("failureReason")
    campaign = personalize.create_campaign(name=name, solutionVersionArn=version)["campaignArn"]
    wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign", timeout=300)
    return version, campaign
