"""Automatic training: solutions with performAutoTraining get a new version on their schedule."""

from __future__ import annotations

import logging
import re

from tastemaker.control.common import ACTIVE
from tastemaker.control.context import Services
from tastemaker.store import resources

log = logging.getLogger("tastemaker.jobs")
FIRST_RUN_AFTER = 3600.0  # Personalize trains within an hour of the solution becoming ACTIVE
DEFAULT_DAYS = 7
_RATE = re.compile(r"^rate\((\d+) days?\)$")


def schedule_seconds(solution: resources.Resource) -> float:
    config = (solution.body.get("solution_config") or {}).get("auto_training_config") or {}
    match = _RATE.match((config.get("scheduling_expression") or "").strip())
    return (int(match.group(1)) if match else DEFAULT_DAYS) * 86400.0


def due(solution: resources.Resource, versions: list[resources.Resource], now: float) -> bool:
    if solution.status != ACTIVE or not solution.body.get("perform_auto_training", True):
        return False
    if not versions:
        return now - solution.updated_at >= FIRST_RUN_AFTER
    return now - versions[-1].created_at >= schedule_seconds(solution)


def run_due_trainings(services: Services) -> list[str]:
    """Create AUTOMATIC versions for every solution whose schedule has come; returns their ARNs."""
    from tastemaker.control.solutions import new_version

    started = []
    now = resources.now()
    with services.read_engine.connect() as conn:
        solutions = resources.children(conn, kind="solution")
    for solution in solutions:
        with services.engine.begin() as conn:
            current = resources.find(conn, solution.arn, "solution")
            if current is None:
                continue
            versions = resources.children(conn, kind="solution_version", parent_arn=solution.arn)
            if not due(current, versions, now):
                continue
            try:
                arn = new_version(conn, current, mode="FULL", training_type="AUTOMATIC")
            except Exception:
                log.exception("auto-training of %s could not start", solution.arn)
                continue
            started.append(arn)
    return started
