"""The rolling upgrade of docs/production.md, from the previous release to this one, with data in it.

The previous release (PREVIOUS_RELEASE: the last commit whose schema is migration 0001) is taken from git and
runs as a real server. It creates a campaign and takes events; while it keeps answering GetRecommendations,
Describe* and PutEvents, this version's `tastemaker db upgrade` migrates its database to head. The old server
must not see one error; then this version's server starts on the same data and serves the same recommendations
and every event the old one acknowledged. A second test holds migrations to expand/contract.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.store import db
from tastemaker.store import events as stored_events
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

REPO = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "9539297"  # 2026-11-29, schema 0001_initial
MIGRATIONS = REPO / "tastemaker" / "store" / "migrations" / "versions"
KEY, SECRET = "TMKTESTACCESSKEY0001", "test-secret-key-not-for-production"


def previous_release(folder: Path) -> Path:
    """The previous release's package, extracted from git (skips when the history is not there)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, "tastemaker"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"the previous release {PREVIOUS_RELEASE} is not in this checkout's git history")
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


class OldServer(LocalServer):
    """A LocalServer that runs the previous release's code (from its own folder, so `-m` finds that package)."""

    def __init__(self, code: Path, data_dir: Path, import_root: Path) -> None:
        super().__init__(data_dir, import_roots=[import_root])
        self.code = code

    def start(self, timeout: float = 60.0) -> OldServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(TASTEMAKER_ACCESS_KEY_ID=KEY, TASTEMAKER_SECRET_ACCESS_KEY=SECRET, PYTHONPATH=str(self.code))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tastemaker.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--import-root", str(self.import_roots[0])],
            cwd=self.code, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.process.poll() is None, self.log_tail()
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the previous release did not start:\n{self.log_tail()}")


def deploy(server: LocalServer, data: Path) -> dict[str, Any]:
    p = server.client("personalize")
    paths = write_dataset(data, users=80, items=60, per_user=20)
    group = p.create_dataset_group(name=f"up-{uuid.uuid4().hex[:6]}")["datasetGroupArn"]
    wait_status(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema = p.create_schema(name=f"up-{uuid.uuid4().hex[:6]}", schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = p.create_dataset(name="up-i", schemaArn=schema, datasetGroupArn=group,
                               datasetType="Interactions")["datasetArn"]
    wait_status(lambda: p.describe_dataset(datasetArn=dataset), "dataset")
    job = p.create_dataset_import_job(jobName="up", datasetArn=dataset, roleArn="arn:aws:iam::000000000000:role/x",
                                      dataSource={"dataLocation": str(paths["interactions"])})["datasetImportJobArn"]
    assert wait_status(lambda: p.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    solution = p.create_solution(name="up-s", datasetGroupArn=group,
                                 recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")["solutionArn"]
    wait_status(lambda: p.describe_solution(solutionArn=solution), "solution")
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert wait_status(lambda: p.describe_solution_version(solutionVersionArn=version), "solutionVersion",
                       timeout=300)["status"] == "ACTIVE"
    campaign = p.create_campaign(name="up-c", solutionVersionArn=version, minProvisionedTPS=1,
                                 campaignConfig={"itemExplorationConfig": {"explorationWeight": "0"}})["campaignArn"]
    assert wait_status(lambda: p.describe_campaign(campaignArn=campaign), "campaign", timeout=300)["status"] == "ACTIVE"
    tracker = p.create_event_tracker(name="up-t", datasetGroupArn=group)
    wait_status(lambda: p.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    return {"group": group, "campaign": campaign, "tracking_id": tracker["trackingId"]}


def top10(server: LocalServer, campaign: str, users: list[str]) -> dict[str, list[str]]:
    runtime = server.client("personalize-runtime")
    return {u: [r["itemId"] for r in runtime.get_recommendations(campaignArn=campaign, userId=u,
                                                                 numResults=10)["itemList"]] for u in users}


@pytest.mark.slow
def test_rolling_upgrade_from_the_previous_release(tmp_path: Path) -> None:
    old = OldServer(previous_release(tmp_path / "old-code"), tmp_path / "data", tmp_path / "imports")
    users = [f"u{k}" for k in range(6)]
    errors: list[str] = []
    acked: list[str] = []
    calls_after_upgrade = 0
    upgraded = threading.Event()
    stop = threading.Event()
    with old:
        made = deploy(old, tmp_path / "imports")
        before = top10(old, made["campaign"], users)

        def traffic() -> None:  # what the old version keeps doing while the database is migrated
            nonlocal calls_after_upgrade
            p, runtime, events = (old.client(s) for s in ("personalize", "personalize-runtime",
                                                          "personalize-events"))
            n = 0
            while not stop.is_set():
                try:
                    runtime.get_recommendations(campaignArn=made["campaign"], userId=users[n % len(users)])
                    p.describe_campaign(campaignArn=made["campaign"])
                    p.list_solutions(datasetGroupArn=made["group"])
                    events.put_events(trackingId=made["tracking_id"], userId="streamer", sessionId="s1", eventList=[
                        {"eventId": f"up-{n}", "eventType": "click", "itemId": f"i{n % 60}", "sentAt": time.time()}])
                    acked.append(f"up-{n}")
                    calls_after_upgrade += upgraded.is_set()
                except Exception as exc:  # noqa: BLE001 - every error of the old version is a failure
                    errors.append(f"{type(exc).__name__}: {exc}")
                n += 1

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        time.sleep(0.5)
        run = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--data-dir",
                              str(old.data_dir)], capture_output=True, text=True, timeout=300, check=False)
        upgraded.set()
        assert run.returncode == 0, run.stderr
        deadline = time.time() + 60
        while calls_after_upgrade < 20 and time.time() < deadline and not errors:
            time.sleep(0.1)
        stop.set()
        thread.join(30)
    assert not errors, errors[:5]
    assert calls_after_upgrade >= 20
    with pytest.raises(AssertionError, match="locate revision"):  # docs/production.md: an old process does not start again
        old.start()

    new = LocalServer(tmp_path / "data", import_roots=[tmp_path / "imports"])
    with new:
        assert top10(new, made["campaign"], users) == before
        assert new.client("personalize").describe_campaign(campaignArn=made["campaign"])["campaign"]["status"] == \
            "ACTIVE"
        engine = db.create_engine(f"sqlite:///{tmp_path / 'data' / 'tastemaker.db'}")
        try:
            stored = {e.event_id for e in stored_events.events_after(engine, made["group"], 0, 1_000_000)}
        finally:
            engine.dispose()
    assert set(acked) <= stored


CONTRACT_OPS = {"drop_table", "drop_column", "alter_column", "rename_table"}


def test_migrations_only_expand_unless_marked_as_contract() -> None:
    """Old code keeps working on a migrated database when a migration only adds (tables, nullable columns,
    indexes). One that removes or changes what a previous release reads must say so: CONTRACT = "why it is
    safe now" (shipped a release after the code that stopped reading it; docs/production.md)."""
    for path in sorted(MIGRATIONS.glob("0*.py")):
        tree = ast.parse(path.read_text())
        upgrade = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade")
        ops = {n.func.attr for n in ast.walk(upgrade) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and n.func.value.id == "op"}
        marked = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "CONTRACT" for t in n.targets)
                     for n in tree.body)
        assert marked or not ops & CONTRACT_OPS, f"{path.name} uses {sorted(ops & CONTRACT_OPS)} without CONTRACT"


def test_the_upgrade_test_pins_a_release_whose_schema_is_the_first_migration() -> None:
    listing = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", PREVIOUS_RELEASE,
                              "tastemaker/store/migrations/versions/"], capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        pytest.skip("no git history")
    assert [n.rsplit("/", 1)[1] for n in listing.stdout.split() if "/0" in n] == ["0001_initial.py"]
