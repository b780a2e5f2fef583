"""End-to-end: batch segment jobs (item affinity, item-attribute affinity) through boto3 with S3 in and out.

The data has taste clusters (tests.e2e.datagen); each user's newest interactions are held out of training,
and a segment must hold the users who later interact with the queried item or genre well above chance.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import GENRES, INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"
USERS, HELD_OUT = 240, 5  # interactions per user kept out of training (the "later" ones)
SEGMENT = 24  # users per segment: 10% of the users


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3(moto_s3: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"seg-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def split_by_time(path: Path, train: Path) -> dict[str, set[str]]:
    """Write each user's oldest interactions to `train`; return user -> items of the newest HELD_OUT."""
    by_user: dict[str, list[list[str]]] = defaultdict(list)
    with path.open() as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for row in reader:
            by_user[row[0]].append(row)
    later: dict[str, set[str]] = {}
    with train.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        for user, rows in by_user.items():
            rows.sort(key=lambda r: int(r[2]))
            out.writerows(rows[:-HELD_OUT])
            later[user] = {r[1] for r in rows[-HELD_OUT:]}
    return later


@pytest.fixture(scope="module")
def group(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    paths = write_dataset(import_root / unique("seg"), users=USERS, items=90, per_user=25, seed=3)
    train = paths["interactions"].with_name("train.csv")
    later = split_by_time(paths["interactions"], train)
    arn = personalize.create_dataset_group(name=unique("seg"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    files = {"Interactions": train, "Items": paths["items"], "Users": paths["users"]}
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA), ("Users", USERS_SCHEMA)):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds, roleArn=ROLE,
                                                    dataSource={"dataLocation": str(files[kind])})
        done = wait_status(lambda j=job["datasetImportJobArn"]: personalize.describe_dataset_import_job(
            datasetImportJobArn=j), "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    versions = {}
    for key, recipe in (("item", "aws-item-affinity"), ("attr", "aws-item-attribute-affinity")):
        sol = personalize.create_solution(name=unique(key), datasetGroupArn=arn, recipeArn=RECIPE + recipe,
                                          performAutoTraining=False)["solutionArn"]
        wait_status(lambda sol=sol: personalize.describe_solution(solutionArn=sol), "solution")
        versions[key] = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    for key, version in versions.items():
        done = wait_status(lambda v=version: personalize.describe_solution_version(solutionVersionArn=v),
                           "solutionVersion", timeout=300)
        assert done["status"] == "ACTIVE", (key, done.get("failureReason"))
    return {"arn": arn, "versions": versions, "later": later}


def put_lines(s3: Any, bucket: str, key: str, lines: list[Any]) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body="".join(json.dumps(line) + "\n" for line in lines).encode())
    return f"s3://{bucket}/{key}"


def read_out(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in text.splitlines()]


def run_segments(personalize, version: str, source: str, target: str, **kwargs: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    arn = personalize.create_batch_segment_job(
        jobName=unique("bsj"), solutionVersionArn=version, roleArn=ROLE,
        jobInput={"s3DataSource": {"path": source}}, jobOutput={"s3DataDestination": {"path": target}},
        **kwargs)["batchSegmentJobArn"]
    return wait_status(lambda: personalize.describe_batch_segment_job(batchSegmentJobArn=arn), "batchSegmentJob",
                       timeout=180)


def lift(segments: list[list[str]], targets: list[set[str]], population: int) -> float:
    """Share of segment users in the target set, over the share a random pick of users would hit."""
    hit = sum(len(set(seg) & target) for seg, target in zip(segments, targets, strict=True))
    picked = sum(len(seg) for seg in segments)
    chance = sum(len(target) for target in targets) / (population * len(targets))
    return (hit / picked) / chance


def test_item_affinity_segments_find_later_interactions(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    items = [f"i{i}" for i in range(0, 90, 3)]
    source = put_lines(s3, bucket, "items/queries.json", [{"itemId": i} for i in items] + [{"itemId": "nope"}])
    job = run_segments(personalize, group["versions"]["item"], source, f"s3://{bucket}/items-out/",
                       numResults=SEGMENT)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["numResults"] == SEGMENT
    out = read_out(s3, bucket, "items-out/queries.json.out")
    assert [line["input"] for line in out[:-1]] == [{"itemId": i} for i in items]
    assert out[-1]["output"] is None and "nope" in out[-1]["error"]
    segments = [line["output"]["recommendedUsers"] for line in out[:-1]]
    assert all(len(seg) == SEGMENT and len(set(seg)) == SEGMENT for seg in segments)
    later = group["later"]
    # The target of each query: users whose held-out interactions include the item.
    targets = [{u for u, seen in later.items() if item in seen} for item in items]
    measured = lift(segments, targets, USERS)
    print(f"item-affinity lift over random: {measured:.2f}")
    assert measured > 2.0


def test_attribute_affinity_segments_and_user_filters(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    queries = [{"itemAttributes": f'ITEMS.GENRES = "{genre}"'} for genre in GENRES]
    queries.append({"itemAttributes": 'ITEMS.GENRES = "Comedy" AND ITEMS.PRICE > "3"'})
    source = put_lines(s3, bucket, "attrs/queries.json", queries)
    job = run_segments(personalize, group["versions"]["attr"], source, f"s3://{bucket}/attrs-out/",
                       numResults=SEGMENT)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    out = read_out(s3, bucket, "attrs-out/queries.json.out")
    assert [line["itemAttributes"] for line in out] == [q["itemAttributes"] for q in queries]
    assert out[-1]["output"] is None and "AND" in out[-1]["error"]  # only = and AND
    segments = [line["output"]["recommendedUsers"] for line in out[:-1]]
    genre_of = {f"i{i}": GENRES[i % len(GENRES)] for i in range(90)}
    targets = [{u for u, seen in group["later"].items() if any(genre_of[i] == g for i in seen)} for g in GENRES]
    measured = lift(segments, targets, USERS)
    print(f"item-attribute-affinity lift over random: {measured:.2f}")
    assert measured > 1.5

    gold = personalize.create_filter(name=unique("gold"), datasetGroupArn=group["arn"],
                                     filterExpression='INCLUDE UserID WHERE Users.MEMBERSHIP IN ("gold")')["filterArn"]
    wait_status(lambda: personalize.describe_filter(filterArn=gold), "filter")
    job = run_segments(personalize, group["versions"]["attr"], put_lines(s3, bucket, "gold/q.json", queries[:2]),
                       f"s3://{bucket}/gold-out/", filterArn=gold, numResults=10)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    for line in read_out(s3, bucket, "gold-out/q.json.out"):
        users = line["output"]["recommendedUsers"]
        assert len(users) == 10 and all(int(u[1:]) % 3 == 0 for u in users)  # datagen: every third user is gold

    items_filter = personalize.create_filter(name=unique("items"), datasetGroupArn=group["arn"],
                                             filterExpression='EXCLUDE ItemID WHERE Items.GENRES IN ("Comedy")')
    wait_status(lambda: personalize.describe_filter(filterArn=items_filter["filterArn"]), "filter")
    with pytest.raises(ClientError) as exc:
        run_segments(personalize, group["versions"]["attr"], source, f"s3://{bucket}/x/",
                     filterArn=items_filter["filterArn"])
    assert exc.value.response["Error"]["Code"] == "InvalidInputException" and "UserID" in str(exc.value)


def test_per_file_query_limit_fails_the_job(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    queries = [{"itemAttributes": f'ITEMS.GENRES = "{GENRES[k % len(GENRES)]}"'} for k in range(11)]
    source = put_lines(s3, bucket, "limit/too-many.json", queries)
    job = run_segments(personalize, group["versions"]["attr"], source, f"s3://{bucket}/limit-out/")
    assert job["status"] == "CREATE FAILED"
    assert "too-many.json" in job["failureReason"] and "10" in job["failureReason"]
    listed = personalize.list_batch_segment_jobs(solutionVersionArn=group["versions"]["attr"])["batchSegmentJobs"]
    assert job["batchSegmentJobArn"] in [j["batchSegmentJobArn"] for j in listed]
    with pytest.raises(ClientError) as exc:
        personalize.create_batch_inference_job(
            jobName=unique("bij"), solutionVersionArn=group["versions"]["item"], roleArn=ROLE,
            jobInput={"s3DataSource": {"path": source}},
            jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/never/"}})
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    assert "CreateBatchSegmentJob" in str(exc.value)
