"""A kill -9 in the middle of an import leaves no job stuck and no half-imported data."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

ROWS = 2_000_000


def write_big_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 50_000, rows)
    items = rng.integers(0, 5_000, rows)
    ts = 1_600_000_000 + np.arange(rows)
    with path.open("w") as fh:
        fh.write("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n")
        for start in range(0, rows, 500_000):
            sl = slice(start, start + 500_000)
            lines = [f"u{u},i{i},{t},click,1.0" for u, i, t in zip(users[sl], items[sl], ts[sl], strict=True)]
            fh.write("\n".join(lines) + "\n")


@pytest.mark.slow
def test_kill_9_mid_import_then_restart(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    csv_path = root / "big.csv"
    write_big_csv(csv_path, ROWS)
    # a stale timeout longer than the test: the restarted server takes its dead predecessor's job back at once
    server = LocalServer(tmp_path / "srv", import_roots=[root], env={"TASTEMAKER_JOB_STALE_SECONDS": "600"})
    server.start()
    try:
        client = server.client("personalize")
        group = client.create_dataset_group(name="crashy")["datasetGroupArn"]
        wait_status(lambda: client.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
        schema = client.create_schema(name="crashy-int", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
        dataset = client.create_dataset(name="crashy-int", schemaArn=schema, datasetGroupArn=group,
                                        datasetType="Interactions")["datasetArn"]
        wait_status(lambda: client.describe_dataset(datasetArn=dataset), "dataset")
        job = client.create_dataset_import_job(jobName="crashy-import", datasetArn=dataset,
                                               dataSource={"dataLocation": str(csv_path)})["datasetImportJobArn"]
        wait_status(lambda: client.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob",
                    until={"CREATE IN_PROGRESS", "ACTIVE", "CREATE FAILED"})
        time.sleep(0.3)
        server.kill()
        server.start()
        client = server.client("personalize")
        final = wait_status(lambda: client.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob",
                            timeout=180)
        rows = stored_row_count(server.data_dir, dataset)
        left = sorted(p.name for p in (server.data_dir / "tmp").glob("tm-*"))
        assert not left, f"temp folders of the killed import are left behind: {left}"
        if final["status"] == "ACTIVE":
            assert rows == ROWS  # the retried import is whole, never doubled or partial
        else:
            assert final["status"] == "CREATE FAILED" and final["failureReason"]
            assert rows == 0
    finally:
        server.stop()


def stored_row_count(data_dir: Path, dataset_arn: str) -> int:
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text("SELECT blob_key FROM dataset_parts WHERE dataset_arn = :a"),
                                           {"a": dataset_arn})]
    engine.dispose()
    return sum(pq.ParquetFile(data_dir / "blobs" / key).metadata.num_rows for key in keys)


def ctrl_c(server: LocalServer) -> None:
    """What a terminal's Ctrl-C does: SIGINT to every process of the server's process group (the server and
    the children that share its group; not this test process, which happens to share it too)."""
    from tests.faults.harness import descendants

    assert server.process is not None
    group = os.getpgid(server.process.pid)
    for pid in [server.process.pid, *descendants(server.process.pid)]:
        try:
            if os.getpgid(pid) == group:
                os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            continue


def job_rows(data_dir: Path, arn: str) -> list[Any]:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{data_dir / 'tastemaker.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM jobs WHERE resource_arn = :a ORDER BY id"), {"a": arn}).all()
    engine.dispose()
    return list(rows)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_shutdown_hands_a_running_training_back_and_a_restart_resumes_it(tmp_path: Path, how: str) -> None:
    """Ctrl-C (SIGINT to the process group) or SIGTERM during a training: the job is requeued at once without
    spending an attempt (never CREATE FAILED), the trainer subprocess stops, and a restarted server trains it
    without waiting for a stale timeout (set to 10 minutes here)."""
    from tests.faults.harness import alive, group_with_interactions, trainer_pids, unique

    data = tmp_path / "data"
    write_dataset(data, users=300, items=150, per_user=30)
    server = LocalServer(tmp_path / "srv", import_roots=[data], env={"TASTEMAKER_JOB_STALE_SECONDS": "600"})
    server.start()
    try:
        client = server.client("personalize")
        group, _dataset = group_with_interactions(client, data / "interactions.csv")
        solution = client.create_solution(name=unique("sol"), datasetGroupArn=group,
                                          recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")[
            "solutionArn"]
        wait_status(lambda: client.describe_solution(solutionArn=solution), "solution")
        version = client.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        deadline = time.time() + 120
        while not (trainers := trainer_pids(server)):
            assert time.time() < deadline, "the training subprocess never started"
            time.sleep(0.02)
        assert server.process is not None
        if how == "ctrl-c":
            ctrl_c(server)
        else:
            server.process.send_signal(signal.SIGTERM)
        server.process.wait(60)
        assert not any(alive(pid) for pid in trainers)
        [job] = job_rows(server.data_dir, version)
        assert (job.state, job.attempts, job.error) == ("queued", 0, None)
        server.start()
        client = server.client("personalize")
        final = wait_status(lambda: client.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                            timeout=300)
        assert final["status"] == "ACTIVE", final
    finally:
        server.stop()


@pytest.mark.slow
def test_a_campaign_update_interrupted_twice_leaves_the_campaign_active_on_its_version(tmp_path: Path) -> None:
    """The update job's workers died twice (attempts spent): latestCampaignUpdate is CREATE FAILED with a reason,
    the campaign stays ACTIVE on its previous version and serves, and UpdateCampaign and DeleteCampaign work."""
    import sqlalchemy as sa

    from tests.faults.harness import group_with_interactions, trained_version, unique

    data = tmp_path / "data"
    write_dataset(data, users=100, items=60, per_user=20)
    server = LocalServer(tmp_path / "srv", import_roots=[data], env={"TASTEMAKER_JOB_STALE_SECONDS": "600"})
    server.start()
    try:
        client = server.client("personalize")
        group, _dataset = group_with_interactions(client, data / "interactions.csv")
        old, new = trained_version(client, group), trained_version(client, group)
        campaign = client.create_campaign(name=unique("c"), solutionVersionArn=old)["campaignArn"]
        assert wait_status(lambda: client.describe_campaign(campaignArn=campaign), "campaign")["status"] == "ACTIVE"
        server.stop()
        server.extra_args = ["--job-threads", "0"]  # the update job is queued, and nobody runs it
        server.start()
        server.client("personalize").update_campaign(campaignArn=campaign, solutionVersionArn=new)
        server.stop()
        engine = sa.create_engine(f"sqlite:///{server.data_dir / 'tastemaker.db'}")
        with engine.begin() as conn:  # as two workers left it: claimed twice, the last owner dead
            conn.execute(sa.text("UPDATE jobs SET state = 'running', attempts = max_attempts, lease = 2, "
                                 "claimed_by = 'old-container:1:0123456789abcdef', heartbeat_at = 0 "
                                 "WHERE resource_arn = :a AND kind = 'campaign_update'"), {"a": campaign})
        engine.dispose()
        server.extra_args = []
        server.env["TASTEMAKER_JOB_STALE_SECONDS"] = "2"
        server.start()
        client = server.client("personalize")
        deadline = time.time() + 60
        while (found := client.describe_campaign(campaignArn=campaign)["campaign"])[
                "latestCampaignUpdate"]["status"] != "CREATE FAILED":
            assert time.time() < deadline, found
            time.sleep(0.2)
        assert found["status"] == "ACTIVE" and found["solutionVersionArn"] == old
        assert "interrupted 2 times" in found["latestCampaignUpdate"]["failureReason"]
        runtime = server.client("personalize-runtime")
        assert runtime.get_recommendations(campaignArn=campaign, userId="u1", numResults=3)["itemList"]
        client.update_campaign(campaignArn=campaign, solutionVersionArn=new)
        deadline = time.time() + 60
        while (found := client.describe_campaign(campaignArn=campaign)["campaign"])[
                "latestCampaignUpdate"]["status"] != "ACTIVE":
            assert time.time() < deadline, found
            time.sleep(0.2)
        assert found["solutionVersionArn"] == new
        client.delete_campaign(campaignArn=campaign)
    finally:
        server.stop()
