"""Fault injection: kill -9 and SIGSTOP of the job's owner at random points of import, training, deploy and the
batch jobs (batch inference, batch segments, dataset export, data deletion).

An API server (no job threads) and two `tastemaker worker` processes share one database (SQLite, or
PostgreSQL under the postgres mark) and one data directory, with a short lease (3 s). For each case a job is
started, and at a point drawn by a seeded random generator after its claim the owning worker is killed
(kill -9, then started again) or frozen (SIGSTOP until the other worker has taken the job over and ended it,
then SIGCONT, so the stale owner wakes up and tries to go on). Every case must end with:

- exactly-once completion or a clear failure: an import adds its rows once (INCREMENTAL imports would show a
  double commit) or none; a training's model folder is the winner's alone; a campaign update is ACTIVE or
  CREATE FAILED with a reason while the campaign stays ACTIVE and serves;
- batch inference, batch segments and export: exactly one complete set of outputs under their final names (every `.out` has a
  line per input line, the export's parts hold the job's rowCount rows), no `<name>.tmp-` copy left, the job
  ACTIVE or CREATE FAILED with a reason; a woken stale owner replaces no output (names, sizes, times unchanged);
- data deletion: COMPLETED with numDeleted exactly the users' records (counted before the job), the users gone
  from every part, or FAILED with a reason;
- no stuck job (nothing queued or running once the resource has settled), no orphan temp folder;
- old data intact: the rows, models and campaign that existed before still work.

The suite is bounded: CASES cases per kind and fault, drawn from SEED; it prints its counts.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import write_dataset
from tests.e2e.test_crash_recovery import write_big_csv
from tests.e2e.util import wait_status
from tests.faults.harness import Worker, group_with_interactions, trained_version, unique

SEED = 20261212
CASES = {"kill9": 1, "sigstop": 1}  # per kind and database (seven kinds: the suite's time is bounded)
CASES_OF: dict[str, dict[str, int]] = {}  # a kind that runs more (or fewer) cases than CASES
LATEST_POINT = {"import": 0.6, "train": 2.5, "deploy": 0.4,  # seconds after the claim a fault may hit
                "batch": 1.0, "segment": 1.5, "export": 1.0, "delete": 4.0}
BATCH_LINES = 25_000  # lines of the batch inference input: a job that lasts long enough to be hit
SEGMENT_FILES, SEGMENT_QUERIES = 60, 500  # input files of the batch segment job, item queries per file (the limit)
STALE = 3.0
WAKE_SECONDS = 2 * STALE  # how long a woken stale owner is given to (try to) write
IMPORT_ROWS = 600_000  # an import that lasts long enough to be hit
RESULTS: list[tuple[str, str | None]] = []


@dataclass
class Cluster:
    server: LocalServer
    workers: list[Worker]
    engine: sa.Engine
    data: Path
    client: Any = None
    runtime: Any = None
    dataset: str = ""
    solution: str = ""
    versions: list[str] = field(default_factory=list)
    campaign: str = ""
    affinity: str = ""  # an aws-item-affinity version, trained by the first segment case

    def row(self, arn: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT * FROM jobs WHERE resource_arn = :a ORDER BY id DESC LIMIT 1"),
                                {"a": arn}).first()

    def owner(self, claimed_by: str) -> Worker:
        pid = int(claimed_by.split(":")[1])
        return next(w for w in self.workers if w.pid == pid)

    def rows_of(self, dataset: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COALESCE(SUM(rows), 0) FROM dataset_parts WHERE dataset_arn = :a"),
                                    {"a": dataset}).scalar() or 0)

    def part_keys(self, dataset: str) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text("SELECT blob_key FROM dataset_parts WHERE dataset_arn = :a"),
                                               {"a": dataset})}

    def resource(self, arn: str) -> Any:
        import orjson

        with self.engine.connect() as conn:
            body = conn.execute(sa.text("SELECT body FROM resources WHERE arn = :a"), {"a": arn}).scalar()
        return body if isinstance(body, dict) else orjson.loads(body)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("fault-data")
    write_dataset(data, users=200, items=120, per_user=20)
    write_big_csv(data / "big.csv", IMPORT_ROWS)
    (data / "batch-in").mkdir()
    (data / "batch-in" / "users.jsonl").write_text("".join(f'{{"userId": "u{k % 200}"}}\n'
                                                           for k in range(BATCH_LINES)))
    (data / "segment-in").mkdir()
    for number in range(SEGMENT_FILES):
        (data / "segment-in" / f"items-{number:03d}.jsonl").write_text("".join(
            f'{{"itemId": "i{(number + k) % 120}"}}\n' for k in range(SEGMENT_QUERIES)))
    state = tmp_path_factory.mktemp("fault-server")
    env = {"TASTEMAKER_JOB_STALE_SECONDS": str(STALE)}
    if request.param == "postgresql":
        from tests.faults.harness import fresh_database

        env["TASTEMAKER_DB_URL"] = fresh_database(request.getfixturevalue("postgres_url"))
        url = env["TASTEMAKER_DB_URL"]
    else:
        url = f"sqlite:///{state / 'tastemaker.db'}"
    server = LocalServer(state, import_roots=[data], env=env, extra_args=["--job-threads", "0"]).start()
    workers = [Worker(state, [data], env).start() for _ in range(2)]
    engine = sa.create_engine(url, poolclass=NullPool)
    found = Cluster(server, workers, engine, data, server.client("personalize"), server.client("personalize-runtime"))
    try:
        group, found.dataset = group_with_interactions(found.client, data / "interactions.csv")
        found.versions = [trained_version(found.client, group)]
        found.solution = found.client.describe_solution_version(
            solutionVersionArn=found.versions[0])["solutionVersion"]["solutionArn"]
        found.campaign = found.client.create_campaign(name=unique("c"), solutionVersionArn=found.versions[0])[
            "campaignArn"]
        assert wait_status(lambda: found.client.describe_campaign(campaignArn=found.campaign), "campaign")[
            "status"] == "ACTIVE"
        yield found
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        engine.dispose()
        cases, failures = len(RESULTS), [r for r in RESULTS if r[1]]
        print(f"\nfault injection ({request.param}): {cases} cases, {len(failures)} failures")
        for name, problem in RESULTS:
            print(f"  {name}: {problem or 'ok'}")
        RESULTS.clear()


def freeze(cluster: Cluster, pid: int) -> None:
    """SIGSTOP the process. On SQLite, not inside one of its write transactions: SQLite has one writer at a
    time, so a process frozen while it holds the write lock stops every other writer until it resumes (a limit
    of SQLite that docs/production.md states; the property tested here, that a stale owner can neither write
    nor finish, is about an owner frozen between its writes). If the database is write-locked just after the
    freeze, the process is let go for a moment and frozen again."""
    database = cluster.engine.url.database if cluster.engine.url.get_backend_name() == "sqlite" else None
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        if database is None:
            return
        probe = sqlite3.connect(database, timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:  # the frozen process holds the write lock
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.02)
        finally:
            probe.close()
    raise AssertionError(f"process {pid} held SQLite's write lock at each of 50 tries to freeze it")


def inject(cluster: Cluster, fault: str, arn: str, delay: float, outcome: Callable[[], Any]) -> str:
    """Hit the job's owner `delay` s after its claim; returns what happened (for the case's name).

    A frozen owner stays frozen until the other worker has ended the job; `outcome()` (what the job left: rows,
    model files with their times, the campaign) is read then, and again after the woken owner had time to run
    on (WAKE_SECONDS): it must not change, the stale owner may neither write nor finish.
    """
    deadline = time.time() + 60
    while (row := cluster.row(arn)) is None or row.state == "queued":
        assert time.time() < deadline, f"the job of {arn} was never claimed"
        time.sleep(0.02)
    time.sleep(delay)
    row = cluster.row(arn)
    if row.state != "running":
        return "finished before the fault"
    owner = cluster.owner(row.claimed_by)
    if fault == "kill9":
        owner.kill()
        owner.start()
        return f"killed claim {row.attempts}"
    freeze(cluster, owner.pid)
    try:  # frozen until the other worker has taken the job and ended it (or given up on it)
        deadline = time.time() + 180
        while (now := cluster.row(arn)).state in ("queued", "running") or now.attempts == row.attempts:
            assert time.time() < deadline, f"nobody took over the job of {arn} from the frozen owner"
            time.sleep(0.1)
        before = outcome()
    finally:
        os.kill(owner.pid, signal.SIGCONT)
    time.sleep(WAKE_SECONDS)
    after, ended = outcome(), cluster.row(arn)
    what = f"froze claim {row.attempts}"
    assert after == before, f"{what}: the woken stale owner changed the outcome: {before} -> {after}"
    assert (ended.state, ended.attempts) == (now.state, now.attempts), f"{what}: the job changed after its end"
    return what


def settle(cluster: Cluster, arn: str) -> None:
    """No job of `arn` left queued or running, no temp folder left behind (the woken stale owner included)."""
    deadline = time.time() + 180
    while cluster.row(arn).state in ("queued", "running"):
        assert time.time() < deadline, f"the job of {arn} is stuck: {cluster.row(arn)}"
        time.sleep(0.1)
    tmp = cluster.server.data_dir / "tmp"
    deadline = time.time() + 60
    while (left := sorted(p.name for p in tmp.glob("tm-*"))) if tmp.exists() else []:
        assert time.time() < deadline, f"orphan temp folders: {left}"
        time.sleep(0.2)


def case_import(cluster: Cluster, fault: str, delay: float) -> str:
    before = cluster.rows_of(cluster.dataset)
    job = cluster.client.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=cluster.dataset, importMode="INCREMENTAL",
        dataSource={"dataLocation": str(cluster.data / "big.csv")})["datasetImportJobArn"]
    what = inject(cluster, fault, job, delay, lambda: (cluster.rows_of(cluster.dataset),
                                                        cluster.part_keys(cluster.dataset)))
    settle(cluster, job)
    final = cluster.client.describe_dataset_import_job(datasetImportJobArn=job)["datasetImportJob"]
    after = cluster.rows_of(cluster.dataset)
    what += f", import took {cluster.resource(job).get('execution_seconds')}s"
    blobs = cluster.server.data_dir / "blobs"
    folder = blobs / "datasets" / cluster.resource(cluster.dataset)["storage_id"]
    deadline = time.time() + 30  # a woken stale owner removes its uploads once its commit is refused
    while (extra := {str(p.relative_to(blobs)) for p in folder.rglob("*") if p.is_file()}
           - cluster.part_keys(cluster.dataset)):
        assert time.time() < deadline, f"{what}: files no dataset part names: {sorted(extra)[:3]}"
        time.sleep(0.2)
    if final["status"] == "ACTIVE":
        assert after - before == IMPORT_ROWS, f"{what}: {after - before} rows added, expected {IMPORT_ROWS} once"
    else:
        assert final["status"] == "CREATE FAILED" and final.get("failureReason"), final
        assert after == before, f"{what}: a failed import changed the data ({before} -> {after})"
    return what


def model_files(cluster: Cluster, version: str) -> dict[str, int]:
    """The version's model files with their modification times (ns)."""
    folder = cluster.server.data_dir / "blobs" / "models" / cluster.resource(version)["storage_id"]
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} \
        if folder.exists() else {}


def case_train(cluster: Cluster, fault: str, delay: float) -> str:
    version = cluster.client.create_solution_version(solutionArn=cluster.solution)["solutionVersionArn"]
    what = inject(cluster, fault, version, delay, lambda: model_files(cluster, version))
    settle(cluster, version)
    final = cluster.client.describe_solution_version(solutionVersionArn=version)["solutionVersion"]
    body = cluster.resource(version)
    blobs = cluster.server.data_dir / "blobs"
    keep = body.get("model_prefix") if final["status"] == "ACTIVE" else None
    deadline = time.time() + 30  # a woken stale owner removes its uploads once its commit is refused
    while True:
        folder = blobs / "models" / body["storage_id"]
        files = sorted(str(p.relative_to(blobs)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
        stray = [f for f in files if not (keep and f.startswith(keep))]
        if not stray:
            break
        assert time.time() < deadline, f"{what}: files beside the winner's ({keep}): {stray[:3]}"
        time.sleep(0.2)
    if final["status"] == "ACTIVE":
        assert files, f"{what}: the ACTIVE version has no model files"
        cluster.versions.append(version)
    else:
        assert final["status"] == "CREATE FAILED" and final.get("failureReason"), final
    first = cluster.resource(cluster.versions[0])  # the older model is intact
    assert (cluster.server.data_dir / "blobs" / first["model_prefix"]).is_dir()
    return what


def case_deploy(cluster: Cluster, fault: str, delay: float) -> str:
    current = cluster.client.describe_campaign(campaignArn=cluster.campaign)["campaign"]["solutionVersionArn"]
    target = next((v for v in reversed(cluster.versions) if v != current), cluster.versions[0])
    cluster.client.update_campaign(campaignArn=cluster.campaign, solutionVersionArn=target)
    what = inject(cluster, fault, cluster.campaign, delay,
                  lambda: cluster.resource(cluster.campaign).get("latest_campaign_update"))
    settle(cluster, cluster.campaign)
    campaign = cluster.client.describe_campaign(campaignArn=cluster.campaign)["campaign"]
    update = campaign["latestCampaignUpdate"]
    assert campaign["status"] == "ACTIVE", f"{what}: campaign {campaign['status']}"
    if update["status"] == "ACTIVE":
        assert campaign["solutionVersionArn"] == target
    else:
        assert update["status"] == "CREATE FAILED" and update.get("failureReason"), update
        assert campaign["solutionVersionArn"] == current
    items = cluster.runtime.get_recommendations(campaignArn=cluster.campaign, userId="u1", numResults=5)["itemList"]
    assert items, f"{what}: the campaign serves nothing"
    return what


def folder_files(folder: Path) -> dict[str, tuple[int, int]]:
    """The files of an output folder with their sizes and modification times (ns)."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()} \
        if folder.is_dir() else {}


def no_temporaries(folder: Path, what: str) -> dict[str, tuple[int, int]]:
    """The folder's files once no `<name>.tmp-` copy is left (a woken stale owner removes its copy)."""
    deadline = time.time() + 30
    while True:
        files = folder_files(folder)
        if not any(".tmp-" in name for name in files):
            return files
        assert time.time() < deadline, f"{what}: temporary copies left in {folder}: {sorted(files)}"
        time.sleep(0.2)


def case_batch(cluster: Cluster, fault: str, delay: float) -> str:
    folder = cluster.data / unique("batch-out")
    job = cluster.client.create_batch_inference_job(
        jobName=unique("bij"), solutionVersionArn=cluster.versions[0], roleArn="arn:aws:iam::000000000000:role/x",
        jobInput={"s3DataSource": {"path": str(cluster.data / "batch-in") + "/"}},
        jobOutput={"s3DataDestination": {"path": str(folder) + "/"}})["batchInferenceJobArn"]
    what = inject(cluster, fault, job, delay, lambda: folder_files(folder))
    settle(cluster, job)
    final = cluster.client.describe_batch_inference_job(batchInferenceJobArn=job)["batchInferenceJob"]
    what += f", job took {cluster.resource(job).get('execution_seconds')}s"
    files = no_temporaries(folder, what)
    for name in files:  # whatever is visible under a final name is whole
        lines = (folder / name).read_bytes().splitlines()
        assert len(lines) == BATCH_LINES, f"{what}: {name} has {len(lines)} lines, expected {BATCH_LINES}"
    if final["status"] == "ACTIVE":
        assert sorted(files) == ["users.jsonl.out"], f"{what}: outputs {sorted(files)}"
    else:
        assert final["status"] == "CREATE FAILED" and final.get("failureReason"), final
    return what


def case_segment(cluster: Cluster, fault: str, delay: float) -> str:
    if not cluster.affinity:
        group = cluster.client.describe_dataset(datasetArn=cluster.dataset)["dataset"]["datasetGroupArn"]
        cluster.affinity = trained_version(cluster.client, group, "aws-item-affinity")
    folder = cluster.data / unique("segment-out")
    job = cluster.client.create_batch_segment_job(
        jobName=unique("bsj"), solutionVersionArn=cluster.affinity, roleArn="arn:aws:iam::000000000000:role/x",
        numResults=50, jobInput={"s3DataSource": {"path": str(cluster.data / "segment-in") + "/"}},
        jobOutput={"s3DataDestination": {"path": str(folder) + "/"}})["batchSegmentJobArn"]
    what = inject(cluster, fault, job, delay, lambda: folder_files(folder))
    settle(cluster, job)
    final = cluster.client.describe_batch_segment_job(batchSegmentJobArn=job)["batchSegmentJob"]
    what += f", job took {cluster.resource(job).get('execution_seconds')}s"
    files = no_temporaries(folder, what)
    for name in files:  # whatever is visible under a final name is whole: a segment of 50 users per query
        lines = [orjson.loads(line) for line in (folder / name).read_bytes().splitlines()]
        assert len(lines) == SEGMENT_QUERIES, f"{what}: {name} has {len(lines)} lines, expected {SEGMENT_QUERIES}"
        assert all(line["error"] is None and len(line["output"]["recommendedUsers"]) == 50 for line in lines), \
            f"{what}: {name} holds a line without its segment"
    if final["status"] == "ACTIVE":
        assert sorted(files) == [f"items-{n:03d}.jsonl.out" for n in range(SEGMENT_FILES)], \
            f"{what}: outputs {sorted(files)}"
    else:
        assert final["status"] == "CREATE FAILED" and final.get("failureReason"), final
    return what


def case_export(cluster: Cluster, fault: str, delay: float) -> str:
    path = cluster.data / unique("export")
    name = unique("exp")
    job = cluster.client.create_dataset_export_job(
        jobName=name, datasetArn=cluster.dataset, roleArn="arn:aws:iam::000000000000:role/x", ingestionMode="BULK",
        jobOutput={"s3DataDestination": {"path": str(path) + "/"}})["datasetExportJobArn"]
    folder = path / name
    what = inject(cluster, fault, job, delay, lambda: folder_files(folder))
    settle(cluster, job)
    final = cluster.client.describe_dataset_export_job(datasetExportJobArn=job)["datasetExportJob"]
    what += f", job took {cluster.resource(job).get('execution_seconds')}s"
    files = no_temporaries(folder, what)
    if final["status"] == "ACTIVE":
        names = sorted(files)
        assert names == [f"part-{n:05d}.csv" for n in range(len(names))] and names, f"{what}: parts {names}"
        rows = sum(len((folder / n).read_bytes().splitlines()) - 1 for n in names)
        assert rows == cluster.resource(job)["row_count"] == cluster.rows_of(cluster.dataset) - duplicates(cluster), \
            f"{what}: {rows} rows exported, the job says {cluster.resource(job)['row_count']}"
    else:
        assert final["status"] == "CREATE FAILED" and final.get("failureReason"), final
    return what


def duplicates(cluster: Cluster) -> int:
    """Rows of the dataset an export leaves out (exact duplicate interactions count once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    blobs = cluster.server.data_dir / "blobs"
    table = pa.concat_tables([pq.read_table(blobs / key) for key in sorted(cluster.part_keys(cluster.dataset))])
    return table.num_rows - table.group_by(table.column_names).aggregate([]).num_rows


def user_rows(cluster: Cluster, users: set[str]) -> int:
    """The dataset's rows of these users (every part)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    blobs = cluster.server.data_dir / "blobs"
    wanted = pa.array(sorted(users))
    return sum(int(pc.sum(pc.is_in(pq.read_table(blobs / key, columns=["USER_ID"]).column("USER_ID").cast(pa.string()),
                                   value_set=wanted)).as_py() or 0) for key in cluster.part_keys(cluster.dataset))


DELETED: list[int] = []  # users already deleted by earlier cases (each case forgets new ones)


def case_delete(cluster: Cluster, fault: str, delay: float) -> str:
    start = 100 + 3 * len(DELETED)
    users = {f"u{k}" for k in range(start, start + 3)}
    DELETED.append(start)
    source = cluster.data / f"{unique('forget')}.csv"
    source.write_text("USER_ID\n" + "".join(f"{u}\n" for u in sorted(users)))
    expected = user_rows(cluster, users)
    assert expected > 0
    group = cluster.client.describe_dataset(datasetArn=cluster.dataset)["dataset"]["datasetGroupArn"]
    job = cluster.client.create_data_deletion_job(
        jobName=unique("del"), datasetGroupArn=group, roleArn="arn:aws:iam::000000000000:role/x",
        dataSource={"dataLocation": str(source)})["dataDeletionJobArn"]
    what = inject(cluster, fault, job, delay, lambda: (cluster.part_keys(cluster.dataset),
                                                       cluster.resource(job).get("num_deleted")))
    settle(cluster, job)
    final = cluster.client.describe_data_deletion_job(dataDeletionJobArn=job)["dataDeletionJob"]
    if final["status"] == "COMPLETED":
        assert final["numDeleted"] == expected, f"{what}: numDeleted {final['numDeleted']}, expected {expected}"
        assert user_rows(cluster, users) == 0, f"{what}: the deleted users still have rows"
    else:
        assert final["status"] == "FAILED" and final.get("failureReason"), final
    blobs = cluster.server.data_dir / "blobs"
    folder = blobs / "datasets" / cluster.resource(cluster.dataset)["storage_id"]
    deadline = time.time() + 30  # a stale owner fenced out removes the parts it wrote
    while (extra := {str(p.relative_to(blobs)) for p in folder.rglob("*") if p.is_file()}
           - cluster.part_keys(cluster.dataset)):
        assert time.time() < deadline, f"{what}: files no dataset part names: {sorted(extra)[:3]}"
        time.sleep(0.2)
    return what


KINDS: dict[str, Callable[[Cluster, str, float], str]] = {"import": case_import, "train": case_train,
                                                          "deploy": case_deploy, "batch": case_batch,
                                                          "segment": case_segment, "export": case_export, "delete": case_delete}


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(CASES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_fault_injection(cluster: Cluster, kind: str, fault: str) -> None:
    rng = random.Random(f"{SEED}-{kind}-{fault}")
    problems = []
    for index in range(CASES_OF.get(kind, CASES)[fault]):
        delay = round(rng.uniform(0.0, LATEST_POINT[kind]), 3)
        name = f"{kind}/{fault}#{index} at +{delay}s"
        try:
            what = KINDS[kind](cluster, fault, delay)
            RESULTS.append((f"{name} ({what})", None))
        except AssertionError as exc:
            RESULTS.append((name, str(exc)))
            problems.append(f"{name}: {exc}")
    assert not problems, "\n".join(problems)
