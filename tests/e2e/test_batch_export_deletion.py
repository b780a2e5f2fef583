"""End-to-end: dataset export jobs (CSV parts, round trip) and data deletion jobs (users forgotten everywhere)."""

from __future__ import annotations

import csv
import io
import json
import time
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
SCHEMAS = {"Interactions": INTERACTIONS_SCHEMA, "Items": ITEMS_SCHEMA, "Users": USERS_SCHEMA}
FORGOTTEN = ["u1", "u2", "streamer", "late-streamer"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def s3(moto_s3: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = f"exp-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def make_group(personalize, files: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A custom group with a dataset per file, imported; returns {"arn", "datasets"}."""
    arn = personalize.create_dataset_group(name=unique("exp"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    datasets = {}
    for kind, location in files.items():
        schema_arn = personalize.create_schema(name=unique(kind.lower()),
                                               schema=json.dumps(SCHEMAS[kind]))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds, roleArn=ROLE,
                                                    dataSource={"dataLocation": str(location)})
        done = wait_status(lambda j=job["datasetImportJobArn"]: personalize.describe_dataset_import_job(
            datasetImportJobArn=j), "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
        datasets[kind] = ds
    return {"arn": arn, "datasets": datasets}


@pytest.fixture(scope="module")
def group(personalize, events, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    paths = write_dataset(import_root / unique("exp"))
    made = make_group(personalize, {kind: paths[kind.lower()] for kind in SCHEMAS})
    tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=made["arn"])
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    for user, items in (("streamer", ["i3", "i9", "i15"]), ("u5", ["i4"])):
        events.put_events(trackingId=tracker["trackingId"], userId=user, sessionId=f"s-{user}", eventList=[
            {"eventType": "click", "itemId": item, "sentAt": 1_700_500_000 + k} for k, item in enumerate(items)])
    events.put_users(datasetArn=made["datasets"]["Users"],
                     users=[{"userId": "u7", "properties": json.dumps({"age": 33, "membership": "gold"})}])
    return {**made, "paths": paths, "tracking_id": tracker["trackingId"]}


def export(personalize, dataset: str, target: str, mode: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    kwargs = {"ingestionMode": mode} if mode else {}
    name = unique("exp")
    arn = personalize.create_dataset_export_job(jobName=name, datasetArn=dataset, roleArn=ROLE,
                                                jobOutput={"s3DataDestination": {"path": target}},
                                                **kwargs)["datasetExportJobArn"]
    return wait_status(lambda: personalize.describe_dataset_export_job(datasetExportJobArn=arn), "datasetExportJob")


def exported(s3: Any, bucket: str, prefix: str) -> tuple[list[str], list[list[str]], bytes]:
    """(header, rows, raw bytes) of every CSV part under the prefix."""
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))
    assert keys and all(k.endswith(".csv") for k in keys), keys
    header: list[str] = []
    rows: list[list[str]] = []
    raw = b""
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        raw += body
        reader = csv.reader(io.StringIO(body.decode()))
        header = next(reader)
        rows += list(reader)
    return header, rows, raw


def stored_progress(server, arn: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The progress a job recorded in its stored document (the wire has no such field)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{server.data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        body = json.loads(conn.execute(sa.text("SELECT body FROM resources WHERE arn = :a"), {"a": arn}).scalar())
    engine.dispose()
    progress: dict[str, Any] = body.get("progress") or {}
    return progress


def test_export_modes_and_layout(personalize, group, s3, bucket, server) -> None:  # type: ignore[no-untyped-def]
    interactions = group["datasets"]["Interactions"]
    bulk = export(personalize, interactions, f"s3://{bucket}/bulk/", "BULK")
    assert bulk["status"] == "ACTIVE", bulk.get("failureReason")
    assert bulk["ingestionMode"] == "BULK"
    assert "progress" not in bulk  # the wire shape is Personalize's; the progress is kept for our own tools
    progress = stored_progress(server, bulk["datasetExportJobArn"])
    assert (progress["lines_processed"], progress["unit"]) == (120 * 25, "rows written")
    assert (progress["files_done"], progress["files_total"]) == (1, 1)
    header, rows, _raw = exported(s3, bucket, f"bulk/{bulk['jobName']}/")
    assert header == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    assert len(rows) == 120 * 25 and "streamer" not in {r[0] for r in rows}
    put = export(personalize, interactions, f"s3://{bucket}/put/")  # PUT is the default
    assert put["ingestionMode"] == "PUT"
    _header, rows, _raw = exported(s3, bucket, f"put/{put['jobName']}/")
    assert sorted((r[0], r[1]) for r in rows) == [("streamer", "i15"), ("streamer", "i3"), ("streamer", "i9"),
                                                 ("u5", "i4")]
    every = export(personalize, interactions, f"s3://{bucket}/all/", "ALL")
    _header, rows, _raw = exported(s3, bucket, f"all/{every['jobName']}/")
    assert len(rows) == 120 * 25 + 4
    users = export(personalize, group["datasets"]["Users"], f"s3://{bucket}/users/", "ALL")
    header, rows, _raw = exported(s3, bucket, f"users/{users['jobName']}/")
    assert header == ["USER_ID", "AGE", "MEMBERSHIP"]
    assert len(rows) == 120 and ["u7", "33", "gold"] in rows  # the newest record of u7 only
    listed = personalize.list_dataset_export_jobs(datasetArn=interactions)["datasetExportJobs"]
    assert {bulk["datasetExportJobArn"], put["datasetExportJobArn"]} <= {j["datasetExportJobArn"] for j in listed}
    with pytest.raises(ClientError) as exc:
        personalize.create_dataset_export_job(jobName=unique("x"), datasetArn=interactions, roleArn=ROLE,
                                              jobOutput={"s3DataDestination": {"path": "http://example.com/x/"}})
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"


def test_export_reimports_unchanged(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    first = {}
    for kind in ("Interactions", "Items"):
        job = export(personalize, group["datasets"][kind], f"s3://{bucket}/round/", "BULK")
        assert job["status"] == "ACTIVE", job.get("failureReason")
        first[kind] = (f"s3://{bucket}/round/{job['jobName']}/", exported(s3, bucket, f"round/{job['jobName']}/"))
    again = make_group(personalize, {kind: location for kind, (location, _) in first.items()})
    for kind, (_location, (_header, _rows, raw)) in first.items():
        job = export(personalize, again["datasets"][kind], f"s3://{bucket}/round2/", "BULK")
        assert job["status"] == "ACTIVE", job.get("failureReason")
        assert exported(s3, bucket, f"round2/{job['jobName']}/")[2] == raw


def test_data_deletion_forgets_users(personalize, runtime, events, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    arn = group["arn"]
    sol = personalize.create_solution(name=unique("up"), datasetGroupArn=arn, performAutoTraining=False,
                                      recipeArn=RECIPE + "aws-user-personalization")["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=sol), "solution")
    version = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                       timeout=300)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    campaign = deploy(personalize, version)
    clicked = personalize.create_filter(name=unique("clicked"), datasetGroupArn=arn,
                                        filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    wait_status(lambda: personalize.describe_filter(filterArn=clicked["filterArn"]), "filter")

    def recs(user: str, **kwargs: Any) -> list[str]:
        found = runtime.get_recommendations(campaignArn=campaign, userId=user, numResults=50, **kwargs)
        return [i["itemId"] for i in found["itemList"]]

    # A user the model never saw, known only through events streamed after the training.
    events.put_events(trackingId=group["tracking_id"], userId="late-streamer", sessionId="s-late", eventList=[
        {"eventType": "click", "itemId": item, "sentAt": 1_700_600_000 + k} for k, item in enumerate(["i2", "i8"])])
    events.put_events(trackingId=group["tracking_id"], sessionId="s-late", eventList=[
        {"eventType": "click", "itemId": "i14", "sentAt": 1_700_600_010}])  # anonymous, in the user's session
    assert recs("late-streamer") != recs("brand-new-user")  # the streamed clicks move the list
    u1_filtered = recs("u1", filterArn=clicked["filterArn"])
    assert u1_filtered != recs("u1")  # the filter drops what u1 clicked

    s3.put_object(Bucket=bucket, Key="forget/users.csv", Body=("USER_ID\n" + "\n".join(FORGOTTEN) + "\n").encode())
    job_arn = personalize.create_data_deletion_job(
        jobName=unique("del"), datasetGroupArn=arn, roleArn=ROLE,
        dataSource={"dataLocation": f"s3://{bucket}/forget/users.csv"})["dataDeletionJobArn"]
    job = wait_status(lambda: personalize.describe_data_deletion_job(dataDeletionJobArn=job_arn), "dataDeletionJob",
                      until={"COMPLETED", "FAILED"})
    assert job["status"] == "COMPLETED", job.get("failureReason")
    # u1, u2: 25 interactions and a Users row each; the streamers' 3 + 2 events and the anonymous one
    assert job["numDeleted"] == 2 * 25 + 2 + 3 + 2 + 1
    assert job["dataSource"]["dataLocation"] == f"s3://{bucket}/forget/users.csv"
    listed = personalize.list_data_deletion_jobs(datasetGroupArn=arn)["dataDeletionJobs"]
    assert listed[0]["dataDeletionJobArn"] == job_arn

    assert recs("late-streamer") == recs("someone-new")  # no streamed history left: a new user
    deadline = time.time() + 10  # serving notices the dataset's new data version within about a second
    while recs("u1", filterArn=clicked["filterArn"]) != recs("u1") and time.time() < deadline:
        time.sleep(0.3)
    assert recs("u1", filterArn=clicked["filterArn"]) == recs("u1")  # no interactions left for the filter
    for kind in ("Interactions", "Users"):
        job = export(personalize, group["datasets"][kind], f"s3://{bucket}/after/", "ALL")
        _header, rows, _raw = exported(s3, bucket, f"after/{job['jobName']}/")
        assert not {r[0] for r in rows} & set(FORGOTTEN), kind

    retrained = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=retrained),
                       "solutionVersion", timeout=300)
    assert done["status"] == "ACTIVE", done.get("failureReason")
    later = deploy(personalize, retrained)
    u1_now = runtime.get_recommendations(campaignArn=later, userId="u1", numResults=50)["itemList"]
    nobody = runtime.get_recommendations(campaignArn=later, userId="nobody-at-all", numResults=50)["itemList"]
    assert [i["itemId"] for i in u1_now] == [i["itemId"] for i in nobody]  # the new model never saw u1
    streamer = runtime.get_recommendations(campaignArn=later, userId="streamer", numResults=50)["itemList"]
    assert [i["itemId"] for i in streamer] == [i["itemId"] for i in nobody]


def deploy(personalize, version: str) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_campaign(name=unique("c"), solutionVersionArn=version, campaignConfig={
        "itemExplorationConfig": {"explorationWeight": "0"}})["campaignArn"]
    done = wait_status(lambda: personalize.describe_campaign(campaignArn=arn), "campaign")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    return arn


def test_data_deletion_input_errors(personalize, group, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket, Key="bad/ids.csv", Body=b"ITEM_ID\ni1\n")
    job_arn = personalize.create_data_deletion_job(
        jobName=unique("del"), datasetGroupArn=group["arn"], roleArn=ROLE,
        dataSource={"dataLocation": f"s3://{bucket}/bad/ids.csv"})["dataDeletionJobArn"]
    job = wait_status(lambda: personalize.describe_data_deletion_job(dataDeletionJobArn=job_arn), "dataDeletionJob",
                      until={"COMPLETED", "FAILED"})
    assert job["status"] == "FAILED" and "USER_ID" in job["failureReason"]
    with pytest.raises(ClientError) as exc:
        personalize.create_data_deletion_job(jobName=unique("del"), datasetGroupArn=group["arn"] + "-missing",
                                             roleArn=ROLE, dataSource={"dataLocation": f"s3://{bucket}/bad/ids.csv"})
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql+redis",
                                                             marks=[pytest.mark.postgres, pytest.mark.redis])])
def test_deletion_reaches_every_serving_process(tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> None:
    """`serve --workers 2`: the job runs in the parent, each API process holds its own cached recent events
    (or reads Redis); from COMPLETED on no process answers with the deleted user's streamed history, and Redis
    keeps the other users' state."""
    from tastemaker.cli.local_server import LocalServer

    env: dict[str, str] = {}
    redis_url = None
    if backend != "sqlite":
        env["TASTEMAKER_DB_URL"] = request.getfixturevalue("postgres_url")
        redis_url = env["TASTEMAKER_REDIS_URL"] = request.getfixturevalue("redis_url")
    data = tmp_path / "data"
    paths = write_dataset(data, users=80, items=60, per_user=20)
    (data / "forget.csv").write_text("USER_ID\nlate-streamer\n")
    with LocalServer(tmp_path / "server", import_roots=[data], env=env, extra_args=["--workers", "2"]) as server:
        personalize, runtime = server.client("personalize"), server.client("personalize-runtime")
        made = make_group(personalize, {"Interactions": paths["interactions"]})
        tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=made["arn"])
        wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                    "eventTracker")
        sol = personalize.create_solution(name=unique("up"), datasetGroupArn=made["arn"], performAutoTraining=False,
                                          recipeArn=RECIPE + "aws-user-personalization")["solutionArn"]
        wait_status(lambda: personalize.describe_solution(solutionArn=sol), "solution")
        version = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
        assert wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                           "solutionVersion", timeout=300)["status"] == "ACTIVE"
        campaign = deploy(personalize, version)
        for user in ("late-streamer", "keeper"):
            server.client("personalize-events").put_events(
                trackingId=tracker["trackingId"], userId=user, sessionId=f"s-{user}",
                eventList=[{"eventType": "click", "itemId": item, "sentAt": 1_700_600_000 + k}
                           for k, item in enumerate(["i2", "i8", "i14"])])

        def recs(user: str) -> list[str]:
            found = runtime.get_recommendations(campaignArn=campaign, userId=user, numResults=30)["itemList"]
            return [i["itemId"] for i in found]

        cold = recs("someone-new")
        assert all(recs("late-streamer") != cold for _ in range(12))  # every process has cached the history
        job_arn = personalize.create_data_deletion_job(
            jobName=unique("del"), datasetGroupArn=made["arn"], roleArn=ROLE,
            dataSource={"dataLocation": str(data / "forget.csv")})["dataDeletionJobArn"]
        job = wait_status(lambda: personalize.describe_data_deletion_job(dataDeletionJobArn=job_arn),
                          "dataDeletionJob", until={"COMPLETED", "FAILED"})
        assert job["status"] == "COMPLETED" and job["numDeleted"] == 3, job
        assert all(recs("late-streamer") == cold for _ in range(12))
        assert all(recs("keeper") != cold for _ in range(12))
        if redis_url:
            import redis

            keys = {k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(match=f"tm:rt:{made['arn']}:*")}
            assert any(":u:keeper:" in k for k in keys) and not any("late-streamer" in k for k in keys)
