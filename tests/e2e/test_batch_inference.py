"""End-to-end: batch inference jobs through boto3, AWS's sample flow (JSON Lines on S3 in, `.out` files out)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def s3(moto_s3: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"batch-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def group(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A custom group with data and UP / SIMS / popularity / ranking / similar-items versions, each deployed."""
    paths = write_dataset(import_root / unique("batch"))
    arn = personalize.create_dataset_group(name=unique("batch"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA), ("Users", USERS_SCHEMA)):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds, roleArn=ROLE,
                                                    dataSource={"dataLocation": str(paths[kind.lower()])})
        done = wait_status(lambda j=job["datasetImportJobArn"]: personalize.describe_dataset_import_job(
            datasetImportJobArn=j), "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    versions, campaigns = {}, {}
    for key, recipe in (("up", "aws-user-personalization"), ("sims", "aws-sims"), ("pop", "aws-popularity-count"),
                        ("pr", "aws-personalized-ranking"), ("similar", "aws-similar-items")):
        sol = personalize.create_solution(name=unique(key), datasetGroupArn=arn, recipeArn=RECIPE + recipe,
                                          performAutoTraining=False)["solutionArn"]
        wait_status(lambda sol=sol: personalize.describe_solution(solutionArn=sol), "solution")
        versions[key] = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    for key, version in versions.items():
        done = wait_status(lambda v=version: personalize.describe_solution_version(solutionVersionArn=v),
                           "solutionVersion", timeout=300)
        assert done["status"] == "ACTIVE", (key, done.get("failureReason"))
        # Exploration off, as the batch lines are compared with these campaigns' answers.
        config = {"campaignConfig": {"itemExplorationConfig": {"explorationWeight": "0"}}} if key == "up" else {}
        campaigns[key] = personalize.create_campaign(name=unique(key), solutionVersionArn=version,
                                                     **config)["campaignArn"]
    for campaign in campaigns.values():
        done = wait_status(lambda c=campaign: personalize.describe_campaign(campaignArn=c), "campaign")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    genre = personalize.create_filter(name=unique("genre"), datasetGroupArn=arn,
                                      filterExpression="EXCLUDE ItemID WHERE Items.GENRES IN ($G)")["filterArn"]
    wait_status(lambda: personalize.describe_filter(filterArn=genre), "filter")
    return {"arn": arn, "versions": versions, "campaigns": campaigns, "filter": genre}


def put_lines(s3: Any, bucket: str, key: str, lines: list[Any]) -> str:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return f"s3://{bucket}/{key}"


def read_out(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in text.splitlines()]


def run_job(personalize, version: str, source: str, target: str, **kwargs: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    arn = personalize.create_batch_inference_job(
        jobName=unique("bij"), solutionVersionArn=version, roleArn=ROLE,
        jobInput={"s3DataSource": {"path": source}}, jobOutput={"s3DataDestination": {"path": target}},
        **kwargs)["batchInferenceJobArn"]
    return wait_status(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=arn),
                       "batchInferenceJob", timeout=180)


def test_user_personalization_lines_equal_get_recommendations(personalize, runtime, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    users = [f"u{u}" for u in range(0, 40, 3)]
    lines: list[Any] = [{"userId": u} for u in users] + ["not json", {"itemId": "i1"}, {"userId": "nobody-knows"}]
    source = put_lines(s3, bucket, "in/users.json", lines)
    job = run_job(personalize, group["versions"]["up"], source, f"s3://{bucket}/out/", numResults=10)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["numResults"] == 10 and job["jobInput"]["s3DataSource"]["path"] == source
    out = read_out(s3, bucket, "out/users.json.out")
    assert len(out) == len(lines)
    for line, user in zip(out, users, strict=False):
        assert line["input"] == {"userId": user} and line["error"] is None
        live = runtime.get_recommendations(campaignArn=group["campaigns"]["up"], userId=user, numResults=10)
        assert line["output"]["recommendedItems"] == [i["itemId"] for i in live["itemList"]]
        assert line["output"]["scores"] == pytest.approx([i["score"] for i in live["itemList"]], abs=2e-7)
    bad_json, no_user, cold = out[len(users):]
    assert bad_json["output"] is None and "not valid JSON" in bad_json["error"]
    assert no_user["output"] is None and "userId" in no_user["error"]
    assert cold["error"] is None and len(cold["output"]["recommendedItems"]) == 10


def test_filter_values_per_line(personalize, runtime, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    lines = [{"userId": "u0", "filterValues": {"G": '"Action"'}}, {"userId": "u1", "filterValues": {"G": '"Comedy"'}},
             {"userId": "u2"}]
    source = put_lines(s3, bucket, "filtered/in.json", lines)
    job = run_job(personalize, group["versions"]["up"], source, f"s3://{bucket}/filtered-out/",
                  filterArn=group["filter"])
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["filterArn"] == group["filter"]
    out = read_out(s3, bucket, "filtered-out/in.json.out")
    for line, request in zip(out, lines, strict=True):
        kwargs: dict[str, Any] = {"filterValues": request["filterValues"]} if "filterValues" in request else {}
        live = runtime.get_recommendations(campaignArn=group["campaigns"]["up"], userId=request["userId"],
                                           filterArn=group["filter"], **kwargs)["itemList"]
        assert line["output"]["recommendedItems"] == [i["itemId"] for i in live]
        assert line["output"]["scores"] == pytest.approx([i["score"] for i in live], abs=2e-7)


def test_ranking_related_and_popular(personalize, runtime, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    ranking_lines = [{"userId": "u3", "itemList": ["i1", "i7", "i13", "i2", "unknown-item"]}]
    job = run_job(personalize, group["versions"]["pr"], put_lines(s3, bucket, "rank/in.json", ranking_lines),
                  f"s3://{bucket}/rank-out/")
    assert job["status"] == "ACTIVE", job.get("failureReason")
    line = read_out(s3, bucket, "rank-out/in.json.out")[0]
    live = runtime.get_personalized_ranking(campaignArn=group["campaigns"]["pr"], userId="u3",
                                            inputList=ranking_lines[0]["itemList"])["personalizedRanking"]
    assert line["output"]["recommendedItems"] == [i["itemId"] for i in live]
    assert line["output"]["recommendedItems"][-1] == "unknown-item"

    related = [{"itemId": "i4"}, {"itemId": "i9"}, {"userId": "u1"}]
    job = run_job(personalize, group["versions"]["sims"], put_lines(s3, bucket, "sims/in.json", related),
                  f"s3://{bucket}/sims-out/", numResults=5)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    out = read_out(s3, bucket, "sims-out/in.json.out")
    for line, request in zip(out[:2], related, strict=False):
        live = runtime.get_recommendations(campaignArn=group["campaigns"]["sims"], itemId=request["itemId"],
                                           numResults=5)["itemList"]
        assert line["output"] == {"recommendedItems": [i["itemId"] for i in live]}  # no scores for SIMS
    assert out[2]["output"] is None and "itemId" in out[2]["error"]

    job = run_job(personalize, group["versions"]["pop"], put_lines(s3, bucket, "pop/in.json",
                                                                     [{"userId": "u1"}, {"userId": "u2"}]),
                  f"s3://{bucket}/pop-out/", numResults=5)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    first, second = read_out(s3, bucket, "pop-out/in.json.out")
    assert first["output"] == second["output"] and "scores" not in first["output"]


def test_folder_input_writes_one_out_per_file_in_order(personalize, group, s3, bucket, import_root) -> None:  # type: ignore[no-untyped-def]
    put_lines(s3, bucket, "many/a.json", [{"userId": f"u{u}"} for u in range(30)])
    put_lines(s3, bucket, "many/b.json", [{"userId": f"u{u}"} for u in range(30, 0, -1)])
    job = run_job(personalize, group["versions"]["up"], f"s3://{bucket}/many/", f"s3://{bucket}/many-out/",
                  numResults=3)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="many-out/")["Contents"])
    assert keys == ["many-out/a.json.out", "many-out/b.json.out"]  # no temporary object left behind
    assert [line["input"]["userId"] for line in read_out(s3, bucket, "many-out/b.json.out")] == \
        [f"u{u}" for u in range(30, 0, -1)]

    local_in = import_root / unique("local-batch")
    local_in.mkdir()
    (local_in / "users.jsonl").write_text("".join(json.dumps({"userId": f"u{u}"}) + "\n" for u in range(5)))
    job = run_job(personalize, group["versions"]["up"], str(local_in / "users.jsonl"), str(local_in / "out"))
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert len((local_in / "out" / "users.jsonl.out").read_text().splitlines()) == 5


def test_theme_generation_names_each_item_set(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    source = put_lines(s3, bucket, "themes/in.json", [{"itemId": "i2"}, {"itemId": "i5"}])
    job = run_job(personalize, group["versions"]["similar"], source, f"s3://{bucket}/themes-out/", numResults=5,
                  batchInferenceJobMode="THEME_GENERATION",
                  themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "DESCRIPTION"}})
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["batchInferenceJobMode"] == "THEME_GENERATION"
    for line in read_out(s3, bucket, "themes-out/in.json.out"):
        output = line["output"]
        assert output["theme"] and len(output["recommendedItems"]) == 5
        assert len(output["itemsThemeRelevanceScores"]) == 5
    too_many = put_lines(s3, bucket, "themes/many.json", [{"itemId": f"i{k % 90}"} for k in range(101)])
    job = run_job(personalize, group["versions"]["similar"], too_many, f"s3://{bucket}/themes-many/",
                  batchInferenceJobMode="THEME_GENERATION",
                  themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "DESCRIPTION"}})
    assert job["status"] == "CREATE FAILED" and "many.json" in job["failureReason"] and "100" in job["failureReason"]
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(
            jobName=unique("bij"), solutionVersionArn=group["versions"]["up"], roleArn=ROLE,
            jobInput={"s3DataSource": {"path": source}}, jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/x/"}},
            batchInferenceJobMode="THEME_GENERATION",
            themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "DESCRIPTION"}})
    assert code(exc) == "InvalidInputException" and "aws-similar-items" in str(exc.value)


def test_failures_and_refusals(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    missing = f"s3://{bucket}/nothing-here.json"
    job = run_job(personalize, group["versions"]["up"], missing, f"s3://{bucket}/never/")
    assert job["status"] == "CREATE FAILED" and missing in job["failureReason"]

    source = put_lines(s3, bucket, "refuse/in.json", [{"userId": "u1"}])
    base = {"jobName": unique("bij"), "roleArn": ROLE, "jobInput": {"s3DataSource": {"path": source}},
            "jobOutput": {"s3DataDestination": {"path": f"s3://{bucket}/refuse-out/"}}}
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(solutionVersionArn=group["versions"]["up"],
                                               **{**base, "jobOutput": {"s3DataDestination": {"path": source}}})
    assert code(exc) == "InvalidInputException" and "must differ" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(solutionVersionArn=group["versions"]["up"], numResults=501, **base)
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(
            solutionVersionArn=group["versions"]["up"], **base,
            batchInferenceJobConfig={"itemExplorationConfig": {"explorationWeight": "2"}})
    assert code(exc) == "InvalidInputException" and "explorationWeight" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(
            solutionVersionArn=group["versions"]["sims"], **base,
            batchInferenceJobConfig={"itemExplorationConfig": {"explorationWeight": "0.5"}})
    assert code(exc) == "InvalidInputException" and "aws-user-personalization" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(
            solutionVersionArn=group["versions"]["up"] + "0", **base)
    assert code(exc) in ("ResourceNotFoundException", "InvalidInputException")
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_segment_job(solutionVersionArn=group["versions"]["up"], **base)
    assert code(exc) == "InvalidInputException" and "USER_SEGMENTATION" in str(exc.value)


def test_list_filters_by_version_and_pages(personalize, group) -> None:  # type: ignore[no-untyped-def]
    version = group["versions"]["up"]
    listed = personalize.list_batch_inference_jobs(solutionVersionArn=version)["batchInferenceJobs"]
    assert len(listed) >= 4 and all(j["solutionVersionArn"] == version for j in listed)
    assert {"batchInferenceJobArn", "jobName", "status", "creationDateTime"} <= set(listed[0])
    first = personalize.list_batch_inference_jobs(solutionVersionArn=version, maxResults=2)
    assert len(first["batchInferenceJobs"]) == 2 and first.get("nextToken")
    rest = personalize.list_batch_inference_jobs(solutionVersionArn=version, nextToken=first["nextToken"])
    seen = [j["batchInferenceJobArn"] for j in first["batchInferenceJobs"] + rest["batchInferenceJobs"]]
    assert seen == [j["batchInferenceJobArn"] for j in listed]


def test_batch_top_k_matches_serving_top_k_on_large_rows() -> None:
    """The batch path's block search must pick exactly what serving's top_k picks, ties included."""
    import numpy as np

    from tastemaker.serving.batch import top_with_softmax
    from tastemaker.serving.topk import softmax_scores, top_k

    rng = np.random.default_rng(0)
    for trial in range(60):
        rows = rng.standard_normal((3, int(rng.integers(30_000, 120_000)))).astype(np.float32)
        if trial % 3 == 0:
            rows = np.round(rows, 1)  # many ties at the boundary
        if trial % 5 == 0:
            rows[:] = 0
            rows[:, rng.integers(0, rows.shape[1], 10)] = 1  # fewer distinct scores than k
        expected = [top_k(row, 25) for row in rows]
        expected_values = [softmax_scores(row, None, picked) for row, picked in zip(rows, expected, strict=True)]
        picked, values = top_with_softmax(rows.copy(), 25)
        for r in range(rows.shape[0]):
            assert np.array_equal(picked[r], expected[r]), trial
            assert np.allclose(values[r], expected_values[r], rtol=1e-12, atol=0), trial
