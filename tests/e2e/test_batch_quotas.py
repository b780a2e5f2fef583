"""End-to-end: the batch job families' concurrency quotas, and jobs that survive a restart or a kill -9.

Phase 1 trains versions with job workers; phase 2 restarts the server with none (`--job-threads 0`), so
created jobs stay pending and the quotas can be hit; phase 3 restarts with workers: every pending job
finishes, and a batch job whose server is killed mid-way is retried to a whole output (or fails with a reason).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"
BIG = 300_000  # input lines of the job that is killed mid-way


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train(personalize, group: str, recipe: str) -> str:  # type: ignore[no-untyped-def]
    sol = personalize.create_solution(name=unique("s"), datasetGroupArn=group, recipeArn=RECIPE + recipe,
                                      performAutoTraining=False)["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=sol), "solution")
    version = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                       timeout=300)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    return str(version)


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.mark.slow
def test_quotas_then_pending_jobs_finish_and_a_killed_job_recovers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    paths = write_dataset(data, users=80, items=60, per_user=20)
    (data / "queries.json").write_text("".join(json.dumps({"userId": f"u{u}"}) + "\n" for u in range(20)))
    (data / "items.json").write_text("".join(json.dumps({"itemId": f"i{i}"}) + "\n" for i in range(10)))
    (data / "forget.csv").write_text("USER_ID\nu70\n")
    with (data / "big.json").open("w") as fh:
        fh.writelines(json.dumps({"userId": f"u{k % 100}"}) + "\n" for k in range(BIG))
    env = {"TASTEMAKER_JOB_STALE_SECONDS": "3"}
    server = LocalServer(tmp_path / "srv", import_roots=[data], env=env)
    with server:
        personalize = server.client("personalize")
        group = personalize.create_dataset_group(name=unique("q"))["datasetGroupArn"]
        wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
        schema = personalize.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
        dataset = personalize.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                             datasetType="Interactions")["datasetArn"]
        wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset, roleArn=ROLE,
                                                    dataSource={"dataLocation": str(paths["interactions"])})
        assert wait_status(lambda: personalize.describe_dataset_import_job(
            datasetImportJobArn=job["datasetImportJobArn"]), "datasetImportJob")["status"] == "ACTIVE"
        up, affinity = train(personalize, group, "aws-user-personalization"), train(personalize, group,
                                                                                    "aws-item-affinity")

    idle = LocalServer(tmp_path / "srv", import_roots=[data], env=env, extra_args=["--job-threads", "0"])
    made: dict[str, list[str]] = {"inference": [], "segment": [], "export": [], "deletion": []}
    with idle:
        personalize = idle.client("personalize")

        def inference() -> str:
            return str(personalize.create_batch_inference_job(
                jobName=unique("bij"), solutionVersionArn=up, roleArn=ROLE,
                jobInput={"s3DataSource": {"path": str(data / "queries.json")}},
                jobOutput={"s3DataDestination": {"path": str(data / unique("out"))}})["batchInferenceJobArn"])

        def segment() -> str:
            return str(personalize.create_batch_segment_job(
                jobName=unique("bsj"), solutionVersionArn=affinity, roleArn=ROLE,
                jobInput={"s3DataSource": {"path": str(data / "items.json")}},
                jobOutput={"s3DataDestination": {"path": str(data / unique("seg"))}})["batchSegmentJobArn"])

        def export() -> str:
            return str(personalize.create_dataset_export_job(
                jobName=unique("exp"), datasetArn=dataset, roleArn=ROLE, ingestionMode="BULK",
                jobOutput={"s3DataDestination": {"path": str(data / unique("exp"))}})["datasetExportJobArn"])

        def deletion() -> str:
            return str(personalize.create_data_deletion_job(
                jobName=unique("del"), datasetGroupArn=group, roleArn=ROLE,
                dataSource={"dataLocation": str(data / "forget.csv")})["dataDeletionJobArn"])

        for key, create in (("inference", inference), ("segment", segment), ("export", export),
                            ("deletion", deletion)):
            made[key] = [create() for _ in range(5)]
            with pytest.raises(ClientError) as exc:
                create()
            assert code(exc) == "LimitExceededException" and "5" in str(exc.value), key
        described = personalize.describe_batch_inference_job(batchInferenceJobArn=made["inference"][0])
        assert described["batchInferenceJob"]["status"] == "CREATE PENDING"
        assert personalize.describe_data_deletion_job(
            dataDeletionJobArn=made["deletion"][0])["dataDeletionJob"]["status"] == "PENDING"

    with server:
        personalize = server.client("personalize")
        describe = {
            "inference": lambda a: personalize.describe_batch_inference_job(batchInferenceJobArn=a)["batchInferenceJob"],
            "segment": lambda a: personalize.describe_batch_segment_job(batchSegmentJobArn=a)["batchSegmentJob"],
            "export": lambda a: personalize.describe_dataset_export_job(datasetExportJobArn=a)["datasetExportJob"],
            "deletion": lambda a: personalize.describe_data_deletion_job(dataDeletionJobArn=a)["dataDeletionJob"],
        }
        for key, arns in made.items():
            for arn in arns:
                final = wait_status(lambda arn=arn, key=key: {"j": describe[key](arn)}, "j", timeout=180,
                                    until={"ACTIVE", "COMPLETED", "CREATE FAILED", "FAILED"})
                assert final["status"] in ("ACTIVE", "COMPLETED"), (key, final.get("failureReason"))

        big_out = data / "big-out"
        arn = personalize.create_batch_inference_job(
            jobName=unique("big"), solutionVersionArn=up, roleArn=ROLE, numResults=5,
            jobInput={"s3DataSource": {"path": str(data / "big.json")}},
            jobOutput={"s3DataDestination": {"path": str(big_out)}})["batchInferenceJobArn"]
        wait_status(lambda: {"j": describe["inference"](arn)}, "j",
                    until={"CREATE IN_PROGRESS", "ACTIVE", "CREATE FAILED"})
        time.sleep(0.5)
        server.kill()
    with server:
        personalize = server.client("personalize")
        final = wait_status(lambda: {"j": describe["inference"](arn)}, "j", timeout=300,
                            until={"ACTIVE", "CREATE FAILED"})
        listing = sorted(p.name for p in big_out.iterdir()) if big_out.exists() else []
        if final["status"] == "ACTIVE":
            assert listing == ["big.json.out"]  # no temporary file left, no half file published
            lines = (big_out / "big.json.out").read_text().splitlines()
            assert len(lines) == BIG and json.loads(lines[-1])["input"] == {"userId": f"u{(BIG - 1) % 100}"}
        else:
            assert final["failureReason"] and listing == []
