"""Automatic training end to end: a solution with performAutoTraining gets AUTOMATIC versions on its schedule,
and a campaign that follows the solution's $LATEST moves to each new version (the schedule is shortened with
TASTEMAKER_DAY_SECONDS so that `rate(1 day)` passes in seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.test_training import RECIPE, make_group, unique
from tests.e2e.util import wait_status


@pytest.fixture(scope="module")
def fast_schedule(tmp_path_factory: pytest.TempPathFactory, import_root: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("autotrain"), import_roots=[import_root],
                      env={"TASTEMAKER_AUTO_TRAINING_FIRST_SECONDS": "1", "TASTEMAKER_DAY_SECONDS": "15",
                           "TASTEMAKER_MAINTENANCE_SECONDS": "0.5"})
    srv.start()
    yield srv
    srv.stop()


def automatic_versions(personalize, solution: str) -> list[dict]:  # type: ignore[no-untyped-def]
    summaries = personalize.list_solution_versions(solutionArn=solution)["solutionVersions"]
    described = [personalize.describe_solution_version(solutionVersionArn=s["solutionVersionArn"])["solutionVersion"]
                 for s in summaries]
    return sorted((v for v in described if v.get("trainingType") == "AUTOMATIC"), key=lambda v: v["creationDateTime"])


def wait_for(condition, timeout: float = 240.0):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def test_versions_come_on_schedule_and_campaigns_follow_latest(fast_schedule: LocalServer,
                                                               import_root: Path) -> None:
    personalize = fast_schedule.client("personalize")
    group = make_group(personalize, import_root / "autotrain", users=80, per_user=15)
    manual = personalize.create_solution(name=unique("manual"), datasetGroupArn=group,
                                         recipeArn=RECIPE + "aws-popularity-count",
                                         performAutoTraining=False)["solutionArn"]
    solution = personalize.create_solution(
        name=unique("auto"), datasetGroupArn=group, recipeArn=RECIPE + "aws-popularity-count",
        performAutoTraining=True,
        solutionConfig={"autoTrainingConfig": {"schedulingExpression": "rate(1 day)"}})["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")

    # The first version comes without any CreateSolutionVersion call.
    first = wait_for(lambda: automatic_versions(personalize, solution))[0]
    first = wait_status(lambda: personalize.describe_solution_version(
        solutionVersionArn=first["solutionVersionArn"]), "solutionVersion", timeout=240)
    assert first["status"] == "ACTIVE", first.get("failureReason")
    campaign = personalize.create_campaign(
        name=unique("follows"), solutionVersionArn=f"{solution}/$LATEST",
        campaignConfig={"syncWithLatestSolutionVersion": True})["campaignArn"]
    wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign", timeout=240)

    # One schedule period (15 s here) after the first, a second automatic version trains; the campaign moves to it.
    second = wait_for(lambda: [v for v in automatic_versions(personalize, solution)
                               if v["solutionVersionArn"] != first["solutionVersionArn"]
                               and v["status"] == "ACTIVE"])[0]
    assert second["creationDateTime"] > first["creationDateTime"]
    moved = wait_for(lambda: personalize.describe_campaign(campaignArn=campaign)["campaign"].get(
        "solutionVersionArn") == second["solutionVersionArn"])
    assert moved
    # A solution without performAutoTraining never trains by itself.
    assert personalize.list_solution_versions(solutionArn=manual)["solutionVersions"] == []
