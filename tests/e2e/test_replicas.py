"""End-to-end: two API replicas and two workers on one PostgreSQL database, one S3 bucket and one Redis.

The replicas are separate `tastemaker serve` processes with their own data directories and ports and no
embedded job threads (as on separate hosts); two `tastemaker worker` processes run every job. The schema is
migrated once with `tastemaker db upgrade` before any of them starts. The tests share one cluster (module
fixture) and build on each other, in file order: read-your-writes across replicas, events on one replica
changing recommendations on the other, each job run once, kill -9 of a replica and of a worker under client
load, a scoped key made once working on both, a replica started later, and a rolling restart under a client
that routes around a refused connection like a load balancer. The last test starts processes together on an
empty database (the migrations take turns). Redis keys are namespaced by the test's own dataset group ARN.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from sqlalchemy.pool import NullPool

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status
from tests.faults.harness import Worker, fresh_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
RECIPE = "arn:aws:personalize:::recipe/"
CLICKED = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")'


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Cluster:
    env: dict[str, str]
    root: Path
    engine: sa.Engine
    replicas: list[LocalServer]
    workers: list[Worker]
    group: str = ""
    campaign: str = ""
    tracker: str = ""
    version: str = ""
    extra: list[LocalServer] = field(default_factory=list)

    def replica(self, directory: str) -> LocalServer:
        return LocalServer(self.root / directory, env=self.env, extra_args=["--job-threads", "0"])

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def unfinished_jobs(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT kind, resource_arn, state FROM jobs "
                                             "WHERE state NOT IN ('done', 'failed')")))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str,
            moto_s3: str) -> Iterator[Cluster]:
    import boto3

    root = tmp_path_factory.mktemp("replicas")
    paths = write_dataset(root / "data", users=80, items=60, per_user=20)
    bucket = f"tm-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(paths["interactions"]), bucket, "input/interactions.csv")
    db_url = fresh_database(postgres_url)
    env = {"TASTEMAKER_DB_URL": db_url, "TASTEMAKER_BLOB_URL": f"s3://{bucket}/tastemaker",
           "TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "TASTEMAKER_REDIS_URL": redis_url,
           "TASTEMAKER_JOB_STALE_SECONDS": "3", "TASTEMAKER_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--data-dir", str(root / "admin")],
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
    engine = sa.create_engine(db_url, poolclass=NullPool)
    found = Cluster(env, root, engine, [], [])
    try:
        found.replicas = [found.replica("a").start(), found.replica("b").start()]
        for name in ("w1", "w2"):
            (root / name).mkdir()
            found.workers.append(Worker(root / name, [], env).start())
        a = found.replicas[0].client("personalize")
        found.group = a.create_dataset_group(name=unique("g"))["datasetGroupArn"]
        yield found
    finally:
        for proc in [*found.replicas, *found.extra, *found.workers]:
            proc.stop()
        engine.dispose()
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def test_a_write_through_one_replica_is_read_through_the_other_at_once(cluster: Cluster) -> None:
    a, b = (r.client("personalize") for r in cluster.replicas)
    wait_status(lambda: b.describe_dataset_group(datasetGroupArn=cluster.group), "datasetGroup")
    schema = a.create_schema(name=unique("s"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    assert b.describe_schema(schemaArn=schema)["schema"]["schemaArn"] == schema  # no wait between the calls
    dataset = b.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=cluster.group,
                               datasetType="Interactions")["datasetArn"]
    wait_status(lambda: a.describe_dataset(datasetArn=dataset), "dataset")
    bucket = cluster.env["TASTEMAKER_BLOB_URL"][5:].split("/", 1)[0]
    job = a.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset, roleArn="arn:aws:iam::000000000000:role/P",
                                      dataSource={"dataLocation": f"s3://{bucket}/input/interactions.csv"})[
        "datasetImportJobArn"]
    assert wait_status(lambda: b.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    solution = b.create_solution(name=unique("up"), datasetGroupArn=cluster.group,
                                 recipeArn=RECIPE + "aws-user-personalization")["solutionArn"]
    wait_status(lambda: a.describe_solution(solutionArn=solution), "solution")
    cluster.version = a.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    assert wait_status(lambda: b.describe_solution_version(solutionVersionArn=cluster.version),
                       "solutionVersion", timeout=300)["status"] == "ACTIVE"
    cluster.campaign = b.create_campaign(name=unique("c"), solutionVersionArn=cluster.version)["campaignArn"]
    assert wait_status(lambda: a.describe_campaign(campaignArn=cluster.campaign), "campaign")["status"] == "ACTIVE"
    cluster.tracker = a.create_event_tracker(name=unique("t"), datasetGroupArn=cluster.group)["eventTrackerArn"]
    wait_status(lambda: b.describe_event_tracker(eventTrackerArn=cluster.tracker), "eventTracker")

    # An update through A is what B serves on the very next call (the control plane's settle wait).
    a.update_campaign(campaignArn=cluster.campaign, campaignConfig={"itemExplorationConfig": {
        "explorationWeight": "0.0"}})
    config = b.describe_campaign(campaignArn=cluster.campaign)["campaign"]
    pending = config.get("latestCampaignUpdate", {}).get("campaignConfig") or config.get("campaignConfig")
    assert pending["itemExplorationConfig"]["explorationWeight"] == "0.0"
    wait_status(lambda: b.describe_campaign(campaignArn=cluster.campaign), "campaign")
    filter_arn = a.create_filter(name=unique("f"), datasetGroupArn=cluster.group, filterExpression=CLICKED)["filterArn"]
    wait_status(lambda: a.describe_filter(filterArn=filter_arn), "filter")
    runtime_b = cluster.replicas[1].client("personalize-runtime")
    assert runtime_b.get_recommendations(campaignArn=cluster.campaign, userId="u1", filterArn=filter_arn,
                                         numResults=5)["itemList"]
    a.delete_filter(filterArn=filter_arn)
    with pytest.raises(ClientError) as gone:  # deleted through A, refused by B on the next call
        runtime_b.get_recommendations(campaignArn=cluster.campaign, userId="u1", filterArn=filter_arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_events_put_on_one_replica_change_recommendations_on_the_other(cluster: Cluster) -> None:
    a, b = (r.client("personalize") for r in cluster.replicas)
    tracking_id = b.describe_event_tracker(eventTrackerArn=cluster.tracker)["eventTracker"]["trackingId"]
    filter_arn = b.create_filter(name=unique("f"), datasetGroupArn=cluster.group, filterExpression=CLICKED)["filterArn"]
    wait_status(lambda: a.describe_filter(filterArn=filter_arn), "filter")
    events_a = cluster.replicas[0].client("personalize-events")
    runtime_b = cluster.replicas[1].client("personalize-runtime")
    user = unique("newuser")

    def recs() -> list[str]:
        items = runtime_b.get_recommendations(campaignArn=cluster.campaign, userId=user, filterArn=filter_arn,
                                              numResults=10)["itemList"]
        return [item["itemId"] for item in items]

    before = recs()
    clicked = before[:3]
    events_a.put_events(trackingId=tracking_id, userId=user, sessionId=unique("sess"),
                        eventList=[{"eventType": "click", "itemId": item, "sentAt": time.time()} for item in clicked])
    after = recs()  # the very next call, on the other replica
    assert not set(clicked) & set(after), (before, after)


def test_each_job_runs_exactly_once(cluster: Cluster) -> None:
    a, b = (r.client("personalize") for r in cluster.replicas)
    solution = a.create_solution(name=unique("pop"), datasetGroupArn=cluster.group,
                                 recipeArn=RECIPE + "aws-popularity-count")["solutionArn"]
    wait_status(lambda: b.describe_solution(solutionArn=solution), "solution")
    versions = [client.create_solution_version(solutionArn=solution)["solutionVersionArn"] for client in (a, b, a)]
    for version in versions:
        assert wait_status(lambda v=version: b.describe_solution_version(solutionVersionArn=v),  # type: ignore[misc]
                           "solutionVersion", timeout=300)["status"] == "ACTIVE"
    with cluster.engine.connect() as conn:
        rows = list(conn.execute(sa.text("SELECT kind, resource_arn, state, attempts, claimed_by FROM jobs")))
    per_resource: dict[tuple[str, str], int] = {}
    for row in rows:  # one job row per (kind, resource), claimed once (attempts counts the claims)
        per_resource[row.kind, row.resource_arn] = per_resource.get((row.kind, row.resource_arn), 0) + 1
    assert all(count == 1 for count in per_resource.values()), per_resource
    assert all(row.state == "done" and row.attempts == 1 for row in rows), rows
    assert {row.resource_arn for row in rows} >= set(versions)
    assert not cluster.unfinished_jobs()


def died(server: LocalServer, wait: float = 2.0) -> bool:
    """Whether the server's process has exited (given a moment: a killed process closes its sockets as it dies)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        if server.process is None or server.process.poll() is not None:
            return True
        time.sleep(0.05)
    return False


@dataclass
class Load:
    """Client threads looping PutEvents and GetRecommendations over a set of replicas."""

    cluster: Cluster
    targets: list[LocalServer]
    route_around: bool = False  # retry a refused connection on the next replica, as a load balancer would
    acknowledged: list[str] = field(default_factory=list)
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, seconds_or_until: Callable[[], None]) -> None:
        threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            seconds_or_until()
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)

    def _call(self, start: int, fn: Callable[[LocalServer], Any]) -> Any:
        for step in range(len(self.targets) * 20 if self.route_around else 1):
            target = self.targets[(start + step) % len(self.targets)]
            try:
                try:
                    return fn(target)
                except ConnectionClosedError as exc:  # in flight when its replica was killed: not acknowledged
                    if not died(target):
                        raise
                    raise EndpointConnectionError(endpoint_url=f"http://127.0.0.1:{target.port}") from exc
            except EndpointConnectionError:
                with self.lock:
                    self.refused += 1
                if not self.route_around:
                    raise
                time.sleep(0.05)
        raise AssertionError("no replica accepted the connection")

    def _loop(self, index: int) -> None:
        clients: dict[tuple[int, str], Any] = {}

        def client(server: LocalServer, service: str) -> Any:
            key = (server.port, service)
            if key not in clients:
                clients[key] = server.client(service)
            return clients[key]

        tracking_id = self.cluster.replicas[0].client("personalize").describe_event_tracker(
            eventTrackerArn=self.cluster.tracker)["eventTracker"]["trackingId"]
        n = 0
        while not self.stop.is_set():
            n += 1
            event_id = f"load-{index}-{n}-{uuid.uuid4().hex[:6]}"
            try:
                self._call(index + n, lambda s, n=n, event_id=event_id: client(s, "personalize-events").put_events(
                    trackingId=tracking_id, userId=f"u{n % 50}", sessionId=f"s{index}",
                    eventList=[{"eventId": event_id, "eventType": "click", "itemId": f"i{n % 40}",
                                "sentAt": time.time()}]))
                with self.lock:
                    self.acknowledged.append(event_id)
                self._call(index + n + 1, lambda s, n=n: client(s, "personalize-runtime").get_recommendations(
                    campaignArn=self.cluster.campaign, userId=f"u{n % 50}", numResults=5))
            except EndpointConnectionError:
                pass  # a killed replica, without routing around it: the call was not acknowledged
            except Exception as exc:  # noqa: BLE001 - every other failure is counted and shown
                with self.lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
            with self.lock:
                self.calls += 1


def test_kill_9_of_a_replica_and_a_worker_under_load_loses_no_acknowledged_write(cluster: Cluster) -> None:
    victim, survivor = cluster.replicas
    a = victim.client("personalize")
    solution = a.create_solution(name=unique("kill"), datasetGroupArn=cluster.group,
                                 recipeArn=RECIPE + "aws-user-personalization")["solutionArn"]
    wait_status(lambda: a.describe_solution(solutionArn=solution), "solution")
    load = Load(cluster, [victim, survivor])
    versions: list[str] = []
    killed: list[int] = []

    def during() -> None:
        time.sleep(1.0)
        versions.append(a.create_solution_version(solutionArn=solution)["solutionVersionArn"])
        deadline = time.time() + 60
        while time.time() < deadline and not cluster.scalar(
                "SELECT claimed_by FROM jobs WHERE resource_arn = :a AND state = 'running'", a=versions[0]):
            time.sleep(0.05)
        owner = cluster.scalar("SELECT claimed_by FROM jobs WHERE resource_arn = :a", a=versions[0])
        victim.kill()  # the replica that took the CreateSolutionVersion, under client load
        for worker in cluster.workers:
            if owner and owner.split(":")[1] == str(worker.pid):
                worker.kill()  # and the worker running its training
                killed.append(worker.pid)
        time.sleep(2.0)

    try:
        load.run(during)
        check_kill_9_outcome(cluster, load, survivor, versions, killed)
    finally:  # whatever failed above, the module's next tests get two replicas and two workers back
        for index, worker in enumerate(cluster.workers):
            if worker.process is not None and worker.process.poll() is not None:
                cluster.workers[index] = Worker(worker.data_dir, [], cluster.env).start()
        if victim.process is None or victim.process.poll() is not None:
            victim.start()  # the same data directory and port again; the others were not restarted
    assert not cluster.unfinished_jobs()


def check_kill_9_outcome(cluster: Cluster, load: Load, survivor: LocalServer, versions: list[str],
                         killed: list[int]) -> None:
    print(f"kill -9: {load.calls} client iterations, {len(load.acknowledged)} PutEvents acknowledged, "
          f"{load.refused} refused by the killed replica")
    assert load.calls > 20 and not load.failures, load.failures[:5]
    with cluster.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(sa.text("SELECT event_id FROM events WHERE event_id LIKE 'load-%'"))}
    missing = set(load.acknowledged) - stored
    assert load.acknowledged and not missing, f"{len(missing)} acknowledged events lost: {sorted(missing)[:5]}"
    b = survivor.client("personalize")
    final = wait_status(lambda: b.describe_solution_version(solutionVersionArn=versions[0]), "solutionVersion",
                        timeout=300)
    assert final["status"] == "ACTIVE", final
    assert killed, "the training's worker was not found running"
    # the other worker took the job over after the lease went stale: two claims, one finished run
    assert cluster.scalar("SELECT attempts FROM jobs WHERE resource_arn = :a", a=versions[0]) == 2
    assert cluster.scalar("SELECT COUNT(*) FROM jobs WHERE resource_arn = :a", a=versions[0]) == 1


def test_a_key_created_once_signs_requests_on_every_replica(cluster: Cluster) -> None:
    """Scoped keys live in the database, sealed under the key-encryption key every process is given."""
    out = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "keys", "create", "--name", unique("k"),
                          "--admin", "--data-dir", str(cluster.root / "admin")], env={**os.environ, **cluster.env},
                         check=True, capture_output=True, text=True, timeout=60).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith(("AccessKeyId", "SecretAcc")))
    for replica in cluster.replicas:
        import boto3

        client = boto3.client("personalize", endpoint_url=replica.url, region_name=replica.region,
                              aws_access_key_id=fields["AccessKeyId"], aws_secret_access_key=fields["SecretAccessKey"])
        deadline = time.time() + 30  # servers re-read the keys about every second
        while True:
            try:
                assert client.describe_dataset_group(datasetGroupArn=cluster.group)["datasetGroup"]
                break
            except ClientError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)


def test_a_replica_started_later_catches_up(cluster: Cluster) -> None:
    a = cluster.replicas[0].client("personalize")
    filter_arn = a.create_filter(name=unique("f"), datasetGroupArn=cluster.group, filterExpression=CLICKED)["filterArn"]
    wait_status(lambda: a.describe_filter(filterArn=filter_arn), "filter")
    tracking_id = a.describe_event_tracker(eventTrackerArn=cluster.tracker)["eventTracker"]["trackingId"]
    user = unique("late")
    cluster.replicas[0].client("personalize-events").put_events(
        trackingId=tracking_id, userId=user, sessionId=unique("s"),
        eventList=[{"eventType": "click", "itemId": "i1", "sentAt": time.time()}])
    late = cluster.replica("c").start()
    cluster.extra.append(late)
    c = late.client("personalize")
    assert c.describe_campaign(campaignArn=cluster.campaign)["campaign"]["status"] == "ACTIVE"
    assert {f["filterArn"] for f in c.list_filters(datasetGroupArn=cluster.group)["Filters"]} >= {filter_arn}
    items = late.client("personalize-runtime").get_recommendations(
        campaignArn=cluster.campaign, userId=user, filterArn=filter_arn, numResults=50)["itemList"]
    assert items and "i1" not in {item["itemId"] for item in items}
    # and the replica started later is a full peer: what it creates, the first replica serves
    group = c.create_dataset_group(name=unique("late"))["datasetGroupArn"]
    assert a.describe_dataset_group(datasetGroupArn=group)["datasetGroup"]["datasetGroupArn"] == group


def test_rolling_restart_fails_no_request_behind_a_retrying_balancer(cluster: Cluster) -> None:
    """Restart each replica in turn (SIGTERM, start) under load; the client moves a refused connection to the
    next replica, as a load balancer does once its health check marks a replica down."""
    load = Load(cluster, list(cluster.replicas), route_around=True)

    def during() -> None:
        for replica in cluster.replicas:
            time.sleep(1.0)
            replica.stop()
            replica.start()
        time.sleep(1.0)

    load.run(during)
    print(f"rolling restart: {load.calls} client iterations, {len(load.acknowledged)} PutEvents acknowledged, "
          f"{load.refused} refused connections routed to the other replica, {len(load.failures)} failed")
    assert load.calls > 20
    assert not load.failures, load.failures[:5]
    with cluster.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(sa.text("SELECT event_id FROM events WHERE event_id LIKE 'load-%'"))}
    assert not set(load.acknowledged) - stored


def test_processes_starting_together_on_an_empty_database_all_migrate_it(postgres_url: str,
                                                                          tmp_path: Path) -> None:
    """Replicas brought up at once (a fresh install, every unit started together) each run the migrations on
    start: they take turns (an advisory lock), so none of them fails on the tables another just created."""
    db_url = fresh_database(postgres_url)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "tastemaker.cli.main", "db", "upgrade", "--db-url", db_url,
                                   "--data-dir", str(tmp_path / f"p{i}")], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for i in range(4)]
        outcomes = [(proc.wait(120), proc.communicate()[0].decode(errors="replace")[-2000:]) for proc in procs]
        assert all(code == 0 for code, _ in outcomes), [out for code, out in outcomes if code]
    finally:
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
