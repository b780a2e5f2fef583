"""End-to-end: `tastemaker ingest` from moto's Kinesis (server mode) and from a Redis Stream into an event tracker:
at least once, nothing stored twice, resumes after kill -9, bad records to the dead-letter stream (issue 17 item 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.store import db
from tastemaker.store import events as stored_events
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, import_root: Path) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("ingest"), import_roots=[import_root])
    server.start()
    yield server
    server.stop()


def tracker(srv: LocalServer) -> tuple[str, str]:
    """A new dataset group with an Interactions dataset and an event tracker: (group ARN, trackingId)."""
    personalize = srv.client("personalize")
    group = personalize.create_dataset_group(name=unique("ing"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    made = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=made["eventTrackerArn"]), "eventTracker")
    return group, made["trackingId"]


def record(k: int, tracking_id: str | None = None, with_id: bool = True) -> bytes:
    event: dict[str, Any] = {"eventType": "click", "itemId": f"i{k % 40}", "sentAt": 1_700_000_000 + k}
    if with_id:
        event["eventId"] = f"e{k}"
    body: dict[str, Any] = {"userId": f"u{k % 7}", "sessionId": f"s{k % 7}", "eventList": [event]}
    if tracking_id:
        body["trackingId"] = tracking_id
    return json.dumps(body).encode()


def stored(srv: LocalServer, group: str) -> int:
    engine = db.create_engine(f"sqlite:///{srv.data_dir / 'tastemaker.db'}")
    try:
        return stored_events.count(engine, group)
    finally:
        engine.dispose()


def ingest(srv: LocalServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tastemaker.cli.main", "ingest", "--data-dir", str(srv.data_dir),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})


def test_kinesis_records_are_stored_once_across_a_kill_9(srv: LocalServer, moto_s3: str) -> None:  # Must show
    group, tracking_id = tracker(srv)
    kinesis = boto3.client("kinesis", endpoint_url=moto_s3, region_name="us-east-1")
    stream, dead = unique("events"), unique("dead")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.create_stream(StreamName=dead, ShardCount=1)
    total = 400
    for start in range(0, total, 100):  # half with eventIds, half without (ids derived from the position)
        kinesis.put_records(StreamName=stream, Records=[
            {"Data": record(k, tracking_id if k % 3 else None, with_id=k % 2 == 0), "PartitionKey": f"u{k % 7}"}
            for k in range(start, start + 100)])
    kinesis.put_records(StreamName=stream, Records=[
        {"Data": b"not json", "PartitionKey": "x"},
        {"Data": json.dumps({"sessionId": "s", "eventList": [{"eventType": "click"}]}).encode(), "PartitionKey": "x"},
        {"Data": record(9999, "no-such-tracker"), "PartitionKey": "x"}])
    args = ["--kinesis-stream", stream, "--kinesis-endpoint-url", moto_s3, "--region", "us-east-1",
            "--tracking-id", tracking_id, "--dead-letter-stream", dead, "--batch", "5"]

    first = ingest(srv, *args)
    deadline = time.time() + 120
    while stored(srv, group) < 40 and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # mid-stream: no cleanup, a batch may be stored but not checkpointed
    first.wait(10)
    partial = stored(srv, group)
    assert 0 < partial < total

    second = ingest(srv, *args, "--until-idle", "2")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert stored(srv, group) == total  # nothing lost, nothing twice
    letters = []
    shard = kinesis.list_shards(StreamName=dead)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=dead, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    letters = [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]
    reasons = {json.dumps(x["data"]) if not isinstance(x["data"], str) else x["data"]: x["reason"] for x in letters}
    assert "not JSON" in reasons["not json"]
    assert any("trackingId" in r or "userId" in r or "InvalidInput" in r for r in reasons.values())
    assert any("no-such-tracker" in r for r in reasons.values())

    third = ingest(srv, *args, "--until-idle", "1")  # everything is checkpointed: nothing is read again
    out, _ = third.communicate(timeout=120)
    assert json.loads(out.strip().splitlines()[-1]) == {"stored": 0, "dead_lettered": 0}
    assert stored(srv, group) == total


@pytest.mark.redis
def test_redis_stream_records_are_stored_once_and_resume_at_the_checkpoint(srv: LocalServer, redis_url: str) -> None:
    import redis

    group, tracking_id = tracker(srv)
    client = redis.Redis.from_url(redis_url)
    key, dead = unique("tm-events"), unique("tm-dead")
    try:
        for k in range(60):
            client.xadd(key, {"data": record(k, with_id=k % 2 == 0)})
        client.xadd(key, {"data": b"{\"eventList\": 3}"})
        args = ["--redis-stream", key, "--redis-url", redis_url, "--tracking-id", tracking_id,
                "--dead-letter-stream", dead, "--batch", "7", "--until-idle", "1"]
        out, err = ingest(srv, *args).communicate(timeout=120)
        assert json.loads(out.strip().splitlines()[-1]) == {"stored": 60, "dead_lettered": 1}, err
        assert stored(srv, group) == 60
        (letter,) = client.xrange(dead)
        assert b"eventList" in letter[1][b"data"]
        for k in range(60, 70):
            client.xadd(key, {"data": record(k)})
        out, err = ingest(srv, *args).communicate(timeout=120)
        assert json.loads(out.strip().splitlines()[-1]) == {"stored": 10, "dead_lettered": 0}, err
        assert stored(srv, group) == 70
    finally:
        client.delete(key, dead)


def test_ingest_needs_a_redis_url_for_a_redis_stream(srv: LocalServer, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "ingest", "--data-dir", str(tmp_path),
                           "--redis-stream", "k"], check=False, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "TASTEMAKER_REDIS_URL"})
    assert done.returncode == 2 and "--redis-url" in done.stdout


def test_events_from_kinesis_reach_a_users_recommendations(srv: LocalServer, moto_s3: str,  # Must show
                                                           import_root: Path) -> None:
    personalize, runtime = srv.client("personalize"), srv.client("personalize-runtime")
    group = personalize.create_dataset_group(name=unique("rec"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = personalize.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    paths = write_dataset(import_root / unique("ingest"))
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    made = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=made["eventTrackerArn"]), "eventTracker")
    solution = personalize.create_solution(name=unique("pop"), datasetGroupArn=group,
                                           recipeArn="arn:aws:personalize:::recipe/aws-popularity-count")["solutionArn"]
    wait_status(lambda: personalize.describe_solution(solutionArn=solution), "solution")
    version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                timeout=300)
    campaign = personalize.create_campaign(name=unique("c"), solutionVersionArn=version)["campaignArn"]
    wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign")
    unclicked = personalize.create_filter(name=unique("f"), datasetGroupArn=group,
                                          filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    wait_status(lambda: personalize.describe_filter(filterArn=unclicked["filterArn"]), "filter")
    user = unique("reader")

    def recommended() -> list[str]:
        return [r["itemId"] for r in runtime.get_recommendations(
            campaignArn=campaign, userId=user, numResults=10, filterArn=unclicked["filterArn"])["itemList"]]

    clicked = recommended()[:3]
    assert len(clicked) == 3
    kinesis = boto3.client("kinesis", endpoint_url=moto_s3, region_name="us-east-1")
    stream = unique("clicks")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.put_record(StreamName=stream, PartitionKey=user, Data=json.dumps({
        "trackingId": made["trackingId"], "userId": user, "sessionId": unique("s"),
        "eventList": [{"eventType": "click", "itemId": item, "sentAt": time.time()} for item in clicked]}).encode())
    out, err = ingest(srv, "--kinesis-stream", stream, "--kinesis-endpoint-url", moto_s3, "--region", "us-east-1",
                      "--until-idle", "1").communicate(timeout=120)
    assert json.loads(out.strip().splitlines()[-1]) == {"stored": 1, "dead_lettered": 0}, err
    deadline = time.time() + 10
    shown = recommended()
    while set(clicked) & set(shown) and time.time() < deadline:
        time.sleep(0.2)
        shown = recommended()
    assert shown and not set(clicked) & set(shown), (clicked, shown)
