"""Automatic training: solutions with performAutoTraining get a new AUTOMATIC version on their schedule.

The job runner's maintenance loop calls `run_due_trainings` every few seconds. A solution is due
`auto_training_first_seconds` after it turned ACTIVE (Personalize: within an hour) when it has no version,
then `rate(N days)` (default 7) after its newest version. The new version trains like any other; when it
turns ACTIVE, campaigns that follow the solution's $LATEST move to it (tastemaker.jobs.training).
"""

from __future__ import annotations

import logging
import re

from tastemaker.config import Settings
from tastemaker.control.solutions import new_version
from tastemaker.errors import TastemakerError
from tastemaker.services import Services
from tastemaker.store import resources
from tastemaker.store.records import Solution
from tastemaker.store.status import Status

log = logging.getLogger("tastemaker.jobs")
DEFAULT_DAYS = 7
_RATE = re.compile(r"^rate\((\d+) days?\)$")


def schedule_days(solution: resources.Resource) -> int:
    config = Solution.of(solution).solution_config.get("auto_training_config") or {}
    match = _RATE.match((config.get("scheduling_expression") or "").strip())
    return int(match.group(1)) if match else DEFAULT_DAYS


def due(settings: Settings, solution: resources.Resource, versions: list[resources.Resource], now: float) -> bool:
    if solution.status != Status.ACTIVE or not Solution.of(solution).perform_auto_training:
        return False
    if not versions:
        return now - solution.updated_at >= settings.auto_training_first_seconds
    return now - versions[-1].created_at >= schedule_days(solution) * settings.day_seconds


def run_due_trainings(services: Services) -> list[str]:
    """Create AUTOMATIC versions for every solution whose schedule has come; returns their ARNs."""
    started = []
    now = resources.now()
    with services.read_engine.connect() as conn:
        solutions = resources.children(conn, kind="solution")
    for solution in solutions:
        if solution.status != Status.ACTIVE or not Solution.of(solution).perform_auto_training:
            continue
        with services.engine.begin() as conn:
            current = resources.find(conn, solution.arn, "solution")
            if current is None:
                continue
            versions = resources.children(conn, kind="solution_version", parent_arn=solution.arn)
            if not due(services.settings, current, versions, now):
                continue
            if any(v.status in (Status.CREATE_PENDING, Status.CREATE_IN_PROGRESS) for v in versions):
                continue  # one training at a time per solution
            try:
                arn = new_version(conn, current, mode="FULL", training_type="AUTOMATIC")
            except TastemakerError as exc:  # e.g. the limit of trainings in progress: try again next time
                log.warning("automatic training of %s could not start: %s", solution.arn, exc.message)
                continue
        log.info("automatic training of %s started: %s", solution.arn, arn)
        started.append(arn)
    return started
