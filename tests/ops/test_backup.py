"""`tastemaker backup` under PutEvents load and `tastemaker restore` on a new machine, end to end: the restored
server serves the same recommendations, and holds every event acknowledged before the backup started.
SQLite with a local blob folder, and PostgreSQL (pg_dump) with S3 blobs (moto) under CI=true."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tastemaker.cli.local_server import LocalServer
from tastemaker.store import db
from tastemaker.store import events as stored_events
from tests.conftest import POSTGRES_URL, need_service
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/aws-user-personalization"


def tastemaker(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", *args], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=600, check=False)
    assert run.returncode == 0, f"tastemaker {args[0]} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return run


def deploy(server: LocalServer, data: Path) -> dict[str, Any]:
    """A group with imported interactions, a trained aws-user-personalization, a campaign, an event tracker."""
    p = server.client("personalize")
    paths = write_dataset(data, users=80, items=60, per_user=20)
    group = p.create_dataset_group(name=f"bk-{uuid.uuid4().hex[:6]}")["datasetGroupArn"]
    wait_status(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = p.create_schema(name=f"bk-{uuid.uuid4().hex[:6]}", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = p.create_dataset(name="bk-interactions", schemaArn=schema, datasetGroupArn=group,
                               datasetType="Interactions")["datasetArn"]
    wait_status(lambda: p.describe_dataset(datasetArn=dataset), "dataset")
    job = p.create_dataset_import_job(jobName="bk", datasetArn=dataset,
                                      dataSource={"dataLocation": str(paths["interactions"])})["datasetImportJobArn"]
    assert wait_status(lambda: p.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    solution = p.create_solution(name="bk-up", datasetGroupArn=group, recipeArn=RECIPE)["solutionArn"]
    wait_status(lambda: p.describe_solution(solutionArn=solution), "solution")
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert wait_status(lambda: p.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                       timeout=300)["status"] == "ACTIVE"
    campaign = p.create_campaign(name="bk-campaign", solutionVersionArn=version,  # no exploration: exact top-k
                                 campaignConfig={"itemExplorationConfig": {"explorationWeight": "0"}})["campaignArn"]
    assert wait_status(lambda: p.describe_campaign(campaignArn=campaign), "campaign", timeout=300)["status"] == "ACTIVE"
    tracker = p.create_event_tracker(name="bk-tracker", datasetGroupArn=group)
    wait_status(lambda: p.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    return {"group": group, "campaign": campaign, "tracking_id": tracker["trackingId"]}


class EventLoad:
    """PutEvents in a loop from one thread; remembers when each event was acknowledged."""

    def __init__(self, server: LocalServer, tracking_id: str) -> None:
        self.client, self.tracking_id = server.client("personalize-events"), tracking_id
        self.acked: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            ids = [f"ev-{n + k}" for k in range(5)]
            self.client.put_events(trackingId=self.tracking_id, userId=f"streamer{n % 7}", sessionId=f"s{n % 7}",
                                   eventList=[{"eventId": e, "eventType": "click", "itemId": f"i{(n + k) % 60}",
                                               "sentAt": time.time()} for k, e in enumerate(ids)])
            acked_at = time.time()
            self.acked += [(acked_at, e) for e in ids]
            n += 5


def recommendations(server: LocalServer, campaign: str, users: list[str]) -> dict[str, list[str]]:
    runtime = server.client("personalize-runtime")
    return {u: [r["itemId"] for r in runtime.get_recommendations(campaignArn=campaign, userId=u,
                                                                 numResults=10)["itemList"]] for u in users}


def backup_under_load_and_restore(tmp_path: Path, source: dict[str, str], target: dict[str, str],
                                  env: dict[str, str]) -> None:
    data = tmp_path / "imports"
    old = LocalServer(tmp_path / "old", import_roots=[data], env=env, extra_args=_flags(source))
    with old:
        made = deploy(old, data)
        users = [f"u{k}" for k in range(8)]  # imported users that the event load never touches
        before = recommendations(old, made["campaign"], users)
        load = EventLoad(old, made["tracking_id"])
        load.thread.start()
        while len(load.acked) < 50:
            time.sleep(0.05)
        backup_started = time.time()
        tastemaker("backup", str(tmp_path / "backup"), "--data-dir", str(old.data_dir), *_flags(source), env=env)
        time.sleep(0.3)
        load.stop.set()
        load.thread.join(30)
    acked_before = {e for at, e in load.acked if at < backup_started}
    acked_later = {e for at, e in load.acked if at >= backup_started}
    assert acked_before and acked_later, "the backup did not run while events were being acknowledged"

    # A new machine: nothing shared with the old one but the backup folder.
    tastemaker("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "new"), *_flags(target), env=env)
    new = LocalServer(tmp_path / "new", env=env, extra_args=_flags(target))
    with new:
        assert recommendations(new, made["campaign"], users) == before
        engine = db.create_engine(target.get("db_url") or f"sqlite:///{tmp_path / 'new' / 'tastemaker.db'}")
        try:
            restored = {e.event_id for e in stored_events.events_after(engine, made["group"], 0, 1_000_000)}
        finally:
            engine.dispose()
    missing = acked_before - restored
    assert not missing, f"{len(missing)} acknowledged events are not in the restore, e.g. {sorted(missing)[:5]}"
    assert restored <= acked_before | acked_later


def _flags(stores: dict[str, str]) -> list[str]:
    flags = []
    if stores.get("db_url"):
        flags += ["--db-url", stores["db_url"]]
    if stores.get("blob_url"):
        flags += ["--blob-url", stores["blob_url"]]
    return flags


@pytest.mark.slow
def test_sqlite_and_local_blobs(tmp_path: Path) -> None:
    backup_under_load_and_restore(tmp_path, {}, {}, {})


def _fresh_postgres_database() -> str:
    try:
        engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        name = f"tm_backup_{uuid.uuid4().hex[:10]}"
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        need_service("PostgreSQL", "Start it on 127.0.0.1:5432 (trust auth) or set TASTEMAKER_TEST_POSTGRES_URL.",
                     False, str(exc).splitlines()[0])
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.mark.slow
def test_postgresql_and_s3_blobs(tmp_path: Path, moto_s3: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    buckets = [f"tm-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    env = {"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    backup_under_load_and_restore(
        tmp_path, {"db_url": _fresh_postgres_database(), "blob_url": f"s3://{buckets[0]}/old"},
        {"db_url": _fresh_postgres_database(), "blob_url": f"s3://{buckets[1]}/new"}, env)


def test_restore_refuses_a_database_that_holds_data(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    tastemaker("db", "upgrade", "--data-dir", str(tmp_path / "a"), env=env)
    tastemaker("backup", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "a"), env=env)
    run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "restore", str(tmp_path / "backup"),
                          "--data-dir", str(tmp_path / "a")], capture_output=True, text=True, check=False)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "already holds Tastemaker data" in run.stderr or "restore into a new data dir" in run.stderr
