"""Each recipe's solution metrics come from its own model and its own evaluation (issue #14 item 15):
aws-personalized-ranking is evaluated on ranking inputLists, not on searching the catalogue."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import redirect_stdout
from pathlib import Path

from tastemaker.cli.local_server import LocalServer
from tastemaker.cli.main import build_parser
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ranking_and_user_personalization_report_their_own_metrics(  # type: ignore[no-untyped-def]
        server: LocalServer, personalize, import_root: Path) -> None:
    paths = write_dataset(import_root / unique("metrics"), users=150, items=300, per_user=20)
    group = personalize.create_dataset_group(name=unique("metrics"))["datasetGroupArn"]
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    versions = {}
    for recipe in ("aws-user-personalization", "aws-personalized-ranking"):
        solution = personalize.create_solution(name=unique("s"), datasetGroupArn=group, recipeArn=RECIPE + recipe,
                                               solutionConfig={"algorithmHyperParameters": {"hidden_dimension": "32"}},
                                               )["solutionArn"]
        versions[recipe] = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    metrics = {}
    for recipe, version in versions.items():
        done = wait_status(lambda v=version: personalize.describe_solution_version(solutionVersionArn=v),
                           "solutionVersion", timeout=300)
        assert done["status"] == "ACTIVE", done.get("failureReason")
        metrics[recipe] = personalize.get_solution_metrics(solutionVersionArn=version)["metrics"]
    ranking, personalization = metrics["aws-personalized-ranking"], metrics["aws-user-personalization"]
    assert set(ranking) == set(personalization)
    assert ranking != personalization

    out = io.StringIO()
    args = build_parser().parse_args(["evaluation", "--solution-version", versions["aws-personalized-ranking"],
                                      "--data-dir", str(server.data_dir)])
    with redirect_stdout(out):
        assert args.fn(args) == 0
    report = json.loads(out.getvalue())
    assert "ranking" in report["protocol"]
    for query in report["queries"]:
        # a ranking recipe ranks an inputList: the truth plus items the user never touched, never its history
        assert not set(query["recommended"]) & (set(query["input"]) - set(query["truth"]))
        assert len(query["recommended"]) == 25
