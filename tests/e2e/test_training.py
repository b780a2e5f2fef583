"""End-to-end training: solutions, versions, metrics, stop, minimum data and a killed trainer."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
METRIC_KEYS = {"coverage", "mean_reciprocal_rank_at_25", "normalized_discounted_cumulative_gain_at_5",
               "normalized_discounted_cumulative_gain_at_10", "normalized_discounted_cumulative_gain_at_25",
               "precision_at_5", "precision_at_10", "precision_at_25"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_group(personalize, folder: Path, *, users: int = 150, per_user: int = 25) -> str:  # type: ignore[no-untyped-def]
    data = write_dataset(folder, users=users, per_user=per_user)
    group = personalize.create_dataset_group(name=unique("train"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    for kind, schema, path in (("Interactions", INTERACTIONS_SCHEMA, data["interactions"]),
                               ("Items", ITEMS_SCHEMA, data["items"]), ("Users", USERS_SCHEMA, data["users"])):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=group,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds,
                                                    dataSource={"dataLocation": str(path)})["datasetImportJobArn"]
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    return group


@pytest.fixture(scope="module")
def group(personalize, import_root: Path) -> str:  # type: ignore[no-untyped-def]
    return make_group(personalize, import_root / "training")


def train(personalize, group: str, recipe: str, **kwargs) -> dict:  # type: ignore[no-untyped-def]
    solution = personalize.create_solution(name=unique(recipe.split("-", 1)[1][:20]), datasetGroupArn=group,
                                           recipeArn=RECIPE + recipe, **kwargs)["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    return wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                       "solutionVersion", timeout=300)


@pytest.mark.parametrize("recipe", [
    "aws-user-personalization", "aws-popularity-count", "aws-personalized-ranking", "aws-sims",
    "aws-similar-items", "aws-trending-now", "aws-semantic-similarity",
])
def test_each_recipe_trains_and_reports_metrics(personalize, group: str, recipe: str) -> None:  # type: ignore[no-untyped-def]
    version = train(personalize, group, recipe)
    assert version["status"] == "ACTIVE", version.get("failureReason")
    assert version["trainingMode"] == "FULL" and version["recipeArn"] == RECIPE + recipe
    metrics = personalize.get_solution_metrics(solutionVersionArn=version["solutionVersionArn"])["metrics"]
    assert METRIC_KEYS <= set(metrics), metrics
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


@pytest.mark.parametrize("recipe", ["aws-item-affinity", "aws-item-attribute-affinity"])
def test_segmentation_recipes_report_hit_and_recall(personalize, group: str, recipe: str) -> None:  # type: ignore[no-untyped-def]
    version = train(personalize, group, recipe)
    assert version["status"] == "ACTIVE", version.get("failureReason")
    metrics = personalize.get_solution_metrics(solutionVersionArn=version["solutionVersionArn"])["metrics"]
    assert {"hit", "recall"} <= set(metrics)


def test_personalization_learns_more_than_popularity(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    key = "normalized_discounted_cumulative_gain_at_10"
    scores = {}
    for recipe in ("aws-user-personalization", "aws-popularity-count"):
        version = train(personalize, group, recipe)
        scores[recipe] = personalize.get_solution_metrics(
            solutionVersionArn=version["solutionVersionArn"])["metrics"][key]
    assert scores["aws-user-personalization"] > scores["aws-popularity-count"], scores


def test_bad_hyperparameters_and_recipes_are_refused(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        personalize.create_solution(name=unique("bad"), datasetGroupArn=group,
                                    recipeArn=RECIPE + "aws-user-personalization",
                                    solutionConfig={"algorithmHyperParameters": {"hidden_dimension": "9999"}})
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    assert "hidden_dimension" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        personalize.create_solution(name=unique("bad"), datasetGroupArn=group, recipeArn=RECIPE + "aws-nonsense")
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"


def test_too_little_data_fails_with_personalizes_message(personalize, import_root: Path) -> None:  # type: ignore[no-untyped-def]
    small = make_group(personalize, import_root / "tiny", users=20, per_user=10)
    version = train(personalize, small, "aws-user-personalization")
    assert version["status"] == "CREATE FAILED"
    assert "fewer than 1000 interactions" in version["failureReason"]
    with pytest.raises(ClientError) as exc:
        personalize.get_solution_metrics(solutionVersionArn=version["solutionVersionArn"])
    assert exc.value.response["Error"]["Code"] == "ResourceInUseException"


def test_event_type_filter_applies_minimum_after_filtering(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    version = train(personalize, group, "aws-user-personalization", eventType="no-such-event")
    assert version["status"] == "CREATE FAILED"
    assert "fewer than 1000 interactions" in version["failureReason"]


def _trainer_pids(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "tastemaker.jobs.train_process" in cmd and str(data_dir) in cmd:
            pids.append(int(entry.name))
    return pids


def test_stop_and_killed_trainer(personalize, group: str, server) -> None:  # type: ignore[no-untyped-def]
    solution = personalize.create_solution(name=unique("stop"), datasetGroupArn=group, performHPO=True,
                                           recipeArn=RECIPE + "aws-user-personalization",
                                           solutionConfig={"hpoConfig": {"hpoResourceConfig": {
                                               "maxNumberOfTrainingJobs": "40", "maxParallelTrainingJobs": "1"}}}
                                           )["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    # A stop while training ends CREATE STOPPED.
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                until={"CREATE IN_PROGRESS", "ACTIVE", "CREATE FAILED"})
    personalize.stop_solution_version_creation(solutionVersionArn=version)
    final = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                        "solutionVersion", until={"CREATE STOPPED", "ACTIVE", "CREATE FAILED"})
    assert final["status"] == "CREATE STOPPED"
    # A trainer killed by the kernel (simulated with SIGKILL) fails the version; the server keeps serving.
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    deadline = time.time() + 60
    while time.time() < deadline and not _trainer_pids(server.data_dir):
        time.sleep(0.05)
    for pid in _trainer_pids(server.data_dir):
        os.kill(pid, signal.SIGKILL)
    final = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                        "solutionVersion")
    assert final["status"] == "CREATE FAILED"
    assert "SIGKILL" in final["failureReason"]
    assert personalize.describe_solution(solutionArn=solution)["solution"]["status"] == "ACTIVE"


def test_metrics_match_an_independent_computation(personalize, group: str, server) -> None:  # type: ignore[no-untyped-def]
    """The evaluation evidence (per held-out user: input, truth, top 25) reproduces GetSolutionMetrics."""
    import math
    import subprocess
    import sys

    version = train(personalize, group, "aws-user-personalization")
    metrics = personalize.get_solution_metrics(solutionVersionArn=version["solutionVersionArn"])["metrics"]
    out = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "evaluation", "--solution-version",
                          version["solutionVersionArn"], "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    queries = report["queries"]
    assert queries and all(len(q["recommended"]) == 25 for q in queries)

    def ndcg(rec: list[str], truth: set[str], k: int) -> float:
        dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(rec[:k]) if item in truth)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(truth))))
        return dcg / ideal

    def first_hit(rec: list[str], truth: set[str]) -> float:
        return next((1 / (i + 1) for i, item in enumerate(rec[:25]) if item in truth), 0.0)

    expected = {"coverage": len({i for q in queries for i in q["recommended"]}) / report["catalogue_size"],
                "mean_reciprocal_rank_at_25": sum(first_hit(q["recommended"], set(q["truth"])) for q in queries)
                / len(queries)}
    for k in (5, 10, 25):
        expected[f"normalized_discounted_cumulative_gain_at_{k}"] = sum(
            ndcg(q["recommended"], set(q["truth"]), k) for q in queries) / len(queries)
        expected[f"precision_at_{k}"] = sum(
            len(set(q["recommended"][:k]) & set(q["truth"])) / k for q in queries) / len(queries)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key
