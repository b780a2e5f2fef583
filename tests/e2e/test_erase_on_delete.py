"""End-to-end: deleting a tracker, its Interactions dataset and its group erases the streamed events and the
real-time state; a group re-created with the same name starts empty and never trains on the deleted events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.test_events import ev, unique
from tests.e2e.util import train_and_deploy, wait_gone, wait_status

REDIS_PREFIX = "tm:rt:"  # RedisState's default key prefix


@pytest.fixture(params=["sqlite", pytest.param("sqlite+redis", marks=pytest.mark.redis),
                        pytest.param("postgresql+redis", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request: pytest.FixtureRequest, tmp_path: Path, import_root: Path,
            moto_s3: str) -> Iterator[dict[str, Any]]:
    """A server on the parameter's database (and Redis for the real-time state when named)."""
    env = {"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    db_url = redis_url = None
    if request.param.startswith("postgresql"):
        db_url = env["TASTEMAKER_DB_URL"] = request.getfixturevalue("postgres_url")
    if request.param.endswith("redis"):
        redis_url = env["TASTEMAKER_REDIS_URL"] = request.getfixturevalue("redis_url")
    server = LocalServer(tmp_path / "server", import_roots=[import_root], env=env).start()
    try:
        yield {"server": server, "db_url": db_url or f"sqlite:///{server.data_dir / 'tastemaker.db'}",
               "redis_url": redis_url}
    finally:
        server.stop()


def stored_rows(db_url: str, partition: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM events WHERE dataset_group_arn = :g"),
                                    {"g": partition}).scalar_one())
    finally:
        engine.dispose()


def redis_keys(redis_url: str | None, group: str) -> list[bytes]:
    if redis_url is None:
        return []
    import redis

    client = redis.Redis.from_url(redis_url)
    return [k for k in client.scan_iter(match=f"{REDIS_PREFIX}{group}:*", count=1000)]


def make_interactions(personalize, group: str) -> str:  # type: ignore[no-untyped-def]
    schema = personalize.create_schema(name=unique("schema"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    arn = personalize.create_dataset(name="interactions", schemaArn=schema, datasetGroupArn=group,
                                     datasetType="Interactions")["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=arn), "dataset")
    return str(arn)


def make_tracker(personalize, group: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    arn = personalize.create_event_tracker(name="tracker", datasetGroupArn=group)["eventTrackerArn"]
    return wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=arn), "eventTracker")


@pytest.mark.slow
def test_a_recreated_group_never_sees_the_deleted_groups_events(backend: dict[str, Any], import_root: Path) -> None:
    server: LocalServer = backend["server"]
    personalize, runtime = server.client("personalize"), server.client("personalize-runtime")
    events = server.client("personalize-events")
    name = unique("erase")
    group = personalize.create_dataset_group(name=name)["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    interactions = make_interactions(personalize, group)
    tracker = make_tracker(personalize, group)
    ghosts = [f"ghost-{n}" for n in range(12)]  # items that exist only in the deleted group
    for n in range(4):
        events.put_events(trackingId=tracker["trackingId"], userId=f"u{n}", sessionId=f"s{n}",
                          eventList=[ev(item, sent_at=1_700_000_000.0 + k) for k, item in enumerate(ghosts[:10])])
        events.put_events(trackingId=tracker["trackingId"], sessionId=f"anon{n}", eventList=[ev(ghosts[10 + n % 2])])
    assert stored_rows(backend["db_url"], group) == 44
    if backend["redis_url"]:
        assert redis_keys(backend["redis_url"], group)  # the state is there before the delete

    personalize.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    wait_gone(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), personalize)
    assert stored_rows(backend["db_url"], group) == 44  # a tracker's events belong to the Interactions dataset
    personalize.delete_dataset(datasetArn=interactions)
    wait_gone(lambda: personalize.describe_dataset(datasetArn=interactions), personalize)
    assert stored_rows(backend["db_url"], group) == 0
    assert redis_keys(backend["redis_url"], group) == []
    personalize.delete_dataset_group(datasetGroupArn=group)
    wait_gone(lambda: personalize.describe_dataset_group(datasetGroupArn=group), personalize)

    again = personalize.create_dataset_group(name=name)["datasetGroupArn"]
    assert again == group
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    interactions = make_interactions(personalize, group)
    data = write_dataset(import_root / unique("erase"), users=50, items=30, per_user=25)
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=interactions, dataSource={"dataLocation": str(data["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/Personalize")["datasetImportJobArn"]
    done = wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    make_tracker(personalize, group)
    _, campaign = train_and_deploy(personalize, group, "aws-user-personalization", unique("t"))
    for user in ("u0", "u1", "u2", "u3", "s0", "anon0"):
        items = [r["itemId"] for r in runtime.get_recommendations(campaignArn=campaign, userId=user,
                                                                   numResults=100)["itemList"]]
        assert items and not set(items) & set(ghosts), (user, items)
    assert stored_rows(backend["db_url"], group) == 0
    assert redis_keys(backend["redis_url"], group) == []
