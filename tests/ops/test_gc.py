"""`tastemaker gc`: the dry run lists what goes and removes nothing; the real run removes orphan blobs, superseded
versions' artifacts, old job rows and (when asked) old events, and never what a live campaign or the next training
needs -- the server is restarted after it (cold caches) and still serves, updates and trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.store import db, resources
from tastemaker.store.inventory import Live, is_orphan
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/aws-popularity-count"


def gc(server: LocalServer, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "gc", "--data-dir", str(server.data_dir),
                          *args], capture_output=True, text=True, env=dict(os.environ), timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def blob_files(server: LocalServer) -> set[str]:
    root = server.data_dir / "blobs"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_gc_removes_only_what_nothing_needs(tmp_path: Path) -> None:
    data = tmp_path / "imports"
    server = LocalServer(tmp_path / "server", import_roots=[data])
    with server:
        p = server.client("personalize")
        paths = write_dataset(data, users=80, items=60, per_user=20)
        group = p.create_dataset_group(name=f"gc-{uuid.uuid4().hex[:6]}")["datasetGroupArn"]
        wait_status(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
        schema = p.create_schema(name=f"gc-{uuid.uuid4().hex[:6]}", schema=json.dumps(INTERACTIONS_SCHEMA))
        dataset = p.create_dataset(name="gc-i", schemaArn=schema["schemaArn"], datasetGroupArn=group,
                                   datasetType="Interactions")["datasetArn"]
        wait_status(lambda: p.describe_dataset(datasetArn=dataset), "dataset")
        job = p.create_dataset_import_job(jobName="gc", datasetArn=dataset, dataSource={
            "dataLocation": str(paths["interactions"])})["datasetImportJobArn"]
        assert wait_status(lambda: p.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")["status"] == "ACTIVE"
        solution = p.create_solution(name="gc-pop", datasetGroupArn=group, recipeArn=RECIPE)["solutionArn"]
        wait_status(lambda: p.describe_solution(solutionArn=solution), "solution")
        versions = []
        for _ in range(4):
            arn = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
            assert wait_status(lambda arn=arn: p.describe_solution_version(solutionVersionArn=arn),
                               "solutionVersion", timeout=300)["status"] == "ACTIVE"
            versions.append(arn)
        oldest, superseded, kept = versions[0], versions[1], versions[2:]
        campaign = p.create_campaign(name="gc-campaign", solutionVersionArn=oldest)["campaignArn"]
        assert wait_status(lambda: p.describe_campaign(campaignArn=campaign), "campaign",
                           timeout=300)["status"] == "ACTIVE"

    # Orphans: the folder of a resource that no longer exists, and a stray part of the finished import.
    blobs = server.data_dir / "blobs"
    dataset_folder = next(p for p in (blobs / "datasets").iterdir())
    stray = dataset_folder / "bulk" / job.rsplit("/", 1)[-1] / "stray-part-00000.parquet"
    gone = blobs / "models" / "0123456789abcdef" / "model.json"
    for path in (stray, gone):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    before = blob_files(server)
    model_of = model_prefixes(server, versions)

    plan = gc(server, "--dry-run", "--job-days", "0")
    assert blob_files(server) == before  # a dry run removes nothing
    assert "would remove: 2 orphan blobs" in plan and f"superseded {superseded}" in plan, plan
    assert "finished job rows" in plan
    for version in (oldest, *kept):
        assert version not in plan

    done = gc(server, "--job-days", "0")
    assert "removed: 2 orphan blobs" in done
    after = blob_files(server)
    assert stray.relative_to(blobs).as_posix() not in after and gone.relative_to(blobs).as_posix() not in after
    assert not any(k.startswith(model_of[superseded]) for k in after)
    for version in (oldest, *kept):
        assert any(k.startswith(model_of[version]) for k in after), version

    with server:  # a fresh process: nothing cached, everything read from the stores again
        p, runtime = server.client("personalize"), server.client("personalize-runtime")
        assert runtime.get_recommendations(campaignArn=campaign, userId="u1", numResults=5)["itemList"]
        p.update_campaign(campaignArn=campaign, solutionVersionArn=kept[0])  # a kept older version deploys
        update = wait_status(lambda: {"u": p.describe_campaign(campaignArn=campaign)["campaign"]
                                      .get("latestCampaignUpdate") or {"status": "ACTIVE"}}, "u", timeout=300)
        assert update["status"] == "ACTIVE", update
        arn = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]  # the next training
        assert wait_status(lambda: p.describe_solution_version(solutionVersionArn=arn), "solutionVersion",
                           timeout=300)["status"] == "ACTIVE"
        assert runtime.get_recommendations(campaignArn=campaign, userId="u1", numResults=5)["itemList"]
    assert "orphan" not in gc(server, "--dry-run")


def model_prefixes(server: LocalServer, versions: list[str]) -> dict[str, str]:
    """Each version's model folder in the blob store (DescribeSolutionVersion does not show it)."""
    engine = db.create_engine(f"sqlite:///{server.data_dir / 'tastemaker.db'}")
    try:
        with engine.connect() as conn:
            return {v: resources.get(conn, v, "solution_version").body["model_prefix"] for v in versions}
    finally:
        engine.dispose()


def test_gc_removes_old_staging_folders_but_not_the_users_own_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--data-dir", str(data_dir)],
                   check=True, capture_output=True)
    imports = data_dir / "imports"
    old, new, mine = imports / "quickstart-aaaaaa", imports / "quickstart-bbbbbb", imports / "my-own-data"
    for folder in (old, new, mine):
        folder.mkdir(parents=True)
        (folder / "interactions.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\n")
    ten_days_ago = time.time() - 10 * 86400
    for folder in (old, mine):
        os.utime(folder, (ten_days_ago, ten_days_ago))
    server = LocalServer(data_dir)  # only for its data_dir; not started
    assert str(old) in gc(server, "--dry-run") and old.exists()
    gc(server)
    assert not old.exists() and new.exists() and mine.exists()


def test_only_finished_imports_leave_orphan_parts() -> None:
    found = Live(storage_ids={"ds1"}, part_keys={"datasets/ds1/bulk/job1/a.parquet"}, finished_imports={"job1"})
    assert not is_orphan("datasets/ds1/bulk/job1/a.parquet", found)  # referenced
    assert is_orphan("datasets/ds1/bulk/job1/b.parquet", found)  # a finished import's leftover
    assert not is_orphan("datasets/ds1/bulk/job2/c.parquet", found)  # an import still running (or just started)
    assert is_orphan("datasets/ds9/bulk/job3/d.parquet", found)  # a deleted dataset
    assert not is_orphan("datasets/ds1/put/batch/e.parquet", found) and not is_orphan("README", found)
