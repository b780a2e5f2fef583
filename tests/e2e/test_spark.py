"""The Spark backend through boto3: a server with TASTEMAKER_SPARK_MASTER=local[2] scores large batch
inference files on Spark and writes the same lines as the in-process path."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.spark.session import failure_reason
from tests.e2e.conftest import SPARK_MIN_LINES
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

pytest.importorskip("pyspark")

ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def trained_version(personalize: Any, import_root: Path) -> str:
    paths = write_dataset(import_root / unique("spark"), users=150, items=120)
    group = personalize.create_dataset_group(name=unique("spark"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("i"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("i"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset, roleArn=ROLE,
                                                dataSource={"dataLocation": str(paths["interactions"])})
    done = wait_status(lambda: personalize.describe_dataset_import_job(
        datasetImportJobArn=job["datasetImportJobArn"]), "datasetImportJob")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    solution = personalize.create_solution(name=unique("up"), datasetGroupArn=group,
                                           recipeArn="arn:aws:personalize:::recipe/aws-user-personalization",
                                           performAutoTraining=False)["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                       "solutionVersion", timeout=300)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    return str(version)


@pytest.mark.slow
def test_spark_scored_lines_equal_the_in_process_lines(spark_server: LocalServer, import_root: Path,
                                                       moto_s3: str) -> None:
    personalize = spark_server.client("personalize")
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = unique("spark").lower()
    s3.create_bucket(Bucket=bucket)
    version = trained_version(personalize, import_root)
    users = [f"u{u}" for u in range(0, 150, 2)] + ["nobody-knows"]  # 76 plain lines: scored on Spark
    big = [json.dumps({"userId": u}) for u in users] + ["not json"]
    small = [json.dumps({"userId": u}) for u in users[:SPARK_MIN_LINES - 1]]  # in-process
    for name, lines in (("big.json", big), ("small.json", small)):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=("\n".join(lines) + "\n").encode())
    arn = personalize.create_batch_inference_job(
        jobName=unique("bij"), solutionVersionArn=version, roleArn=ROLE, numResults=15,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/in/"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/out/"}})["batchInferenceJobArn"]
    job = wait_status(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=arn),
                      "batchInferenceJob", timeout=400)
    assert job["status"] == "ACTIVE", job.get("failureReason")

    def out(name: str) -> list[bytes]:
        return s3.get_object(Bucket=bucket, Key=f"out/{name}.out")["Body"].read().splitlines()

    on_spark, in_process = out("big.json"), out("small.json")
    assert len(on_spark) == len(big) and len(in_process) == len(small)
    # Byte for byte: the same items in the same order with the same scores.
    assert on_spark[:len(small)] == in_process
    parsed = [json.loads(line) for line in on_spark]
    assert all(len(line["output"]["recommendedItems"]) == 15 for line in parsed[:len(users)])
    assert parsed[-1]["output"] is None and "not valid JSON" in parsed[-1]["error"]
    log = spark_server.log_path.read_text(errors="replace")
    assert f"{len(users)} lines scored on Spark (local[2])" in log
    assert f"{len(small)} lines scored on Spark" not in log


def test_failure_reason_names_the_executor_error() -> None:
    executor = ("An error occurred while calling o57.collectToPython.\n: org.apache.spark.SparkException: Job "
                "aborted due to stage failure: Task 0 in stage 1.0 failed 1 times\nTraceback (most recent call "
                "last):\n  File \"worker.py\", line 1, in main\nMemoryError: Unable to allocate 3.7 GiB for an "
                "array with shape (4096, 250000) and data type float32\n\tat org.apache.spark.api.python")
    assert failure_reason(RuntimeError(executor)) == ("MemoryError: Unable to allocate 3.7 GiB for an array with "
                                                      "shape (4096, 250000) and data type float32")
    jvm = "java.net.ConnectException: Connection refused\n\tat java.base/sun.nio.ch.Net.pollConnect"
    assert failure_reason(RuntimeError(jvm)) == "java.net.ConnectException: Connection refused"
