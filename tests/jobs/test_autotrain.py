"""Auto-training schedules: when a solution is due for an AUTOMATIC version."""

from __future__ import annotations

from tastemaker.config import Settings
from tastemaker.jobs.autotrain import DEFAULT_DAYS, due, schedule_days
from tastemaker.store.resources import Resource


def solution(config: dict | None = None, auto: bool = True, updated: float = 0.0) -> Resource:
    body = {"perform_auto_training": auto, "solution_config": config or {}}
    return Resource("arn:s", "solution", "ACTIVE", body, "arn:g", "arn:g", updated, updated)


def version(created: float) -> Resource:
    return Resource("arn:v", "solution_version", "ACTIVE", {}, "arn:g", "arn:s", created, created)


SETTINGS = Settings()
FIRST_RUN_AFTER = SETTINGS.auto_training_first_seconds


def test_schedule_expression() -> None:
    assert schedule_days(solution()) == DEFAULT_DAYS
    assert schedule_days(solution({"auto_training_config": {"scheduling_expression": "rate(3 days)"}})) == 3
    assert schedule_days(solution({"auto_training_config": {"scheduling_expression": "rate(1 day)"}})) == 1


def test_first_run_waits_an_hour_and_respects_the_flag() -> None:
    assert not due(SETTINGS, solution(), [], now=FIRST_RUN_AFTER - 1)
    assert due(SETTINGS, solution(), [], now=FIRST_RUN_AFTER + 1)
    assert not due(SETTINGS, solution(auto=False), [], now=10 * FIRST_RUN_AFTER)


def test_next_run_follows_the_latest_version() -> None:
    week = DEFAULT_DAYS * 86400
    assert not due(SETTINGS, solution(), [version(100.0)], now=100.0 + week - 1)
    assert due(SETTINGS, solution(), [version(100.0)], now=100.0 + week + 1)
