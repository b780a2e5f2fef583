"""The Spark backend through boto3: a server with TASTEMAKER_SPARK_MASTER=local[2] scores large batch
inference files on Spark and writes the same bytes as a server without Spark; a local master's driver JVM
gets half the memory as its heap unless the user set it; imports above
TASTEMAKER_SPARK_MIN_IMPORT_BYTES are read and checked on Spark into the same rows (or the same failure) as the
in-process importer; batch segment jobs of models with many users rank them on Spark into the same lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tastemaker.cli.local_server import LocalServer
from tastemaker.data.csv_import import CsvImportError, import_csv
from tastemaker.data.schemas import parse_schema
from tastemaker.data.sources import resolve_data_location
from tastemaker.spark.session import driver_memory_source, failure_reason, local_driver_memory
from tastemaker.store import resources
from tests.e2e.conftest import SPARK_MIN_IMPORT_BYTES, SPARK_MIN_LINES, SPARK_MIN_SEGMENT_USERS
from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, write_dataset, write_taste_groups
from tests.e2e.util import wait_status
from tests.faults.harness import group_with_interactions
from tests.faults.harness import trained_version as harness_trained_version

pytest.importorskip("pyspark")

ROLE = "arn:aws:iam::000000000000:role/PersonalizeRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def trained_version(personalize: Any, import_root: Path) -> str:
    paths = write_dataset(import_root / unique("spark"), users=150, items=120)
    group, _dataset = group_with_interactions(personalize, paths["interactions"], unique("spark"))
    return str(harness_trained_version(personalize, group, "aws-user-personalization"))


@pytest.mark.slow
def test_spark_scored_lines_equal_the_in_process_lines(spark_server: LocalServer, import_root: Path,
                                                       moto_s3: str) -> None:
    personalize = spark_server.client("personalize")
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = unique("spark").lower()
    s3.create_bucket(Bucket=bucket)
    version = trained_version(personalize, import_root)
    users = [f"u{u}" for u in range(0, 150, 2)] + ["nobody-knows"]  # 76 plain lines: scored on Spark
    big = [json.dumps({"userId": u}) for u in users] + ["not json"]
    small = [json.dumps({"userId": u}) for u in users[:SPARK_MIN_LINES - 1]]  # in-process
    for name, lines in (("big.json", big), ("small.json", small)):
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=("\n".join(lines) + "\n").encode())
    arn = personalize.create_batch_inference_job(
        jobName=unique("bij"), solutionVersionArn=version, roleArn=ROLE, numResults=15,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/in/"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/out/"}})["batchInferenceJobArn"]
    job = wait_status(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=arn),
                      "batchInferenceJob", timeout=400)
    assert job["status"] == "ACTIVE", job.get("failureReason")

    def out(name: str) -> list[bytes]:
        return s3.get_object(Bucket=bucket, Key=f"out/{name}.out")["Body"].read().splitlines()

    on_spark, in_process = out("big.json"), out("small.json")
    assert len(on_spark) == len(big) and len(in_process) == len(small)
    # Byte for byte: the same items in the same order with the same scores.
    assert on_spark[:len(small)] == in_process
    parsed = [json.loads(line) for line in on_spark]
    assert all(len(line["output"]["recommendedItems"]) == 15 for line in parsed[:len(users)])
    assert parsed[-1]["output"] is None and "not valid JSON" in parsed[-1]["error"]
    log = spark_server.log_path.read_text(errors="replace")
    assert f"{len(users)} lines scored on Spark (local[2])" in log
    assert f"{len(small)} lines scored on Spark" not in log


# An ALS model (more than EASE_MAX_ITEMS items): its scores are a matrix product, whose last bits depend on the
# block of users it is computed in and on the BLAS threads. 2,000 users in 2,081 lines: blocks of 174 users
# (8 MiB of scores over 12,000 items), two 1,024-line windows, and on Spark several partitions.
ALS_ITEMS, ALS_USERS = 12_000, 2_000


@pytest.fixture(scope="module")
def spark_scoring_server(tmp_path_factory: pytest.TempPathFactory, import_root: Path,
                         moto_s3: str) -> Iterator[LocalServer]:
    """A Spark server that trains in-process (its versions equal the `server` fixture's on the same data and
    seed) and scores batch files of SPARK_MIN_LINES plain lines or more on Spark."""
    srv = LocalServer(tmp_path_factory.mktemp("spark-scoring"), import_roots=[import_root],
                      env={"TASTEMAKER_S3_ENDPOINT_URL": moto_s3, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "TASTEMAKER_SPARK_MASTER": "local[2]",
                           "TASTEMAKER_SPARK_MIN_LINES": str(SPARK_MIN_LINES),
                           "TASTEMAKER_SPARK_MIN_INTERACTIONS": str(10**12)})
    with srv:
        yield srv


def train_als(personalize: Any, csv: Path, out: dict[str, str]) -> None:
    group, _dataset = group_with_interactions(personalize, csv, unique("bits"), timeout=300)
    out["version"] = harness_trained_version(personalize, group, "aws-user-personalization",
                                             {"hidden_dimension": "32"}, timeout=600)


@pytest.mark.slow
def test_a_batch_scored_on_spark_is_byte_identical_to_one_scored_without_spark(
        server: LocalServer, spark_scoring_server: LocalServer, import_root: Path, moto_s3: str) -> None:
    csv = write_taste_groups(import_root / unique("bits") / "interactions.csv", items=ALS_ITEMS, users=ALS_USERS,
                             groups=40, cover=4, extra=6)
    servers = {"local": server, "spark": spark_scoring_server}
    versions: dict[str, dict[str, str]] = {name: {} for name in servers}
    threads = [threading.Thread(target=train_als, args=(srv.client("personalize"), csv, versions[name]))
               for name, srv in servers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(v.get("version") for v in versions.values()), versions
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = unique("bits").lower()
    s3.create_bucket(Bucket=bucket)
    order = np.random.default_rng(5).permutation(ALS_USERS)
    lines = [json.dumps({"userId": f"u{u}"}) for u in order]
    for at, extra in ((700, "not json"), (1500, json.dumps({"userId": "nobody-knows"}))):
        lines.insert(at, extra)
    lines += [json.dumps({"userId": f"u{u}"}) for u in order[:79]]  # 2,081 lines in all
    s3.put_object(Bucket=bucket, Key="in/users.json", Body=("\n".join(lines) + "\n").encode())
    outs: dict[str, list[bytes]] = {}
    for name, srv in servers.items():
        personalize = srv.client("personalize")
        arn = personalize.create_batch_inference_job(
            jobName=unique("bij"), solutionVersionArn=versions[name]["version"], roleArn=ROLE, numResults=100,
            jobInput={"s3DataSource": {"path": f"s3://{bucket}/in/"}},
            jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/{name}/"}})["batchInferenceJobArn"]
        job = wait_status(lambda p=personalize, a=arn: p.describe_batch_inference_job(batchInferenceJobArn=a),
                          "batchInferenceJob", timeout=600)
        assert job["status"] == "ACTIVE", job.get("failureReason")
        outs[name] = s3.get_object(Bucket=bucket, Key=f"{name}/users.json.out")["Body"].read().splitlines()
    log = spark_scoring_server.log_path.read_text(errors="replace")
    assert f"{len(lines) - 1} lines scored on Spark (local[2])" in log  # every line but the one that is not JSON
    assert "scored on Spark" not in server.log_path.read_text(errors="replace")
    assert len(outs["spark"]) == len(outs["local"]) == len(lines)
    differ = [k for k, (a, b) in enumerate(zip(outs["spark"], outs["local"], strict=True)) if a != b]
    other_items = [k for k in differ if (json.loads(outs["spark"][k])["output"] or {}).get("recommendedItems")
                   != (json.loads(outs["local"][k])["output"] or {}).get("recommendedItems")]
    # Byte for byte, every line: the same items in the same order with the same 7-digit scores.
    assert not differ, f"{len(differ)} lines differ (lines {differ[:10]}...), {len(other_items)} in their items"
    assert len(json.loads(outs["spark"][0])["output"]["recommendedItems"]) == 100


HEAP_PROBE = """import json
from tastemaker.spark.session import jvm_max_heap, spark_session
print(json.dumps({"max": jvm_max_heap(spark_session("local[1]"))}))
"""


def jvm_heap_mib(conf_dir: Path) -> float:
    """Runtime.maxMemory of the driver JVM a fresh process's spark_session("local[1]") starts, in MiB, with
    SPARK_CONF_DIR `conf_dir` and no heap in the environment."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYSPARK_SUBMIT_ARGS", "SPARK_DRIVER_MEMORY")}
    done = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, timeout=600,
                          env={**env, "SPARK_CONF_DIR": str(conf_dir)}, check=False)
    found = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert found, done.stderr[-2000:]
    return int(json.loads(found[-1])["max"]) / 2**20


@pytest.mark.slow
def test_a_local_master_s_driver_heap_is_half_the_memory_unless_the_user_set_it(tmp_path: Path) -> None:
    # Nothing set: the JVM really runs with the chosen heap (not Spark's 1g), the setting given before it started.
    chosen = local_driver_memory()
    assert chosen > 1024
    assert abs(jvm_heap_mib(tmp_path) - chosen) <= 0.03 * chosen
    # Set in spark-defaults.conf: left as set (the builder's setting would override the file's).
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.memory   768m\n")
    assert abs(jvm_heap_mib(tmp_path) - 768) <= 0.03 * 768


def test_where_the_user_set_the_driver_heap_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PYSPARK_SUBMIT_ARGS", "SPARK_DRIVER_MEMORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    assert driver_memory_source() is None
    (tmp_path / "spark-defaults.conf").write_text("# spark.driver.memory 2g\nspark.executor.memory 2g\n")
    assert driver_memory_source() is None
    (tmp_path / "spark-defaults.conf").write_text("spark.driver.memory=2g\n")
    assert driver_memory_source() == str(tmp_path / "spark-defaults.conf")
    monkeypatch.setenv("SPARK_DRIVER_MEMORY", "3g")
    assert driver_memory_source() == "SPARK_DRIVER_MEMORY"
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-memory 10g pyspark-shell")
    assert driver_memory_source() == "PYSPARK_SUBMIT_ARGS"
    assert 1024 <= local_driver_memory() <= 31 * 1024


def test_failure_reason_names_the_executor_error() -> None:
    executor = ("An error occurred while calling o57.collectToPython.\n: org.apache.spark.SparkException: Job "
                "aborted due to stage failure: Task 0 in stage 1.0 failed 1 times\nTraceback (most recent call "
                "last):\n  File \"worker.py\", line 1, in main\nMemoryError: Unable to allocate 3.7 GiB for an "
                "array with shape (4096, 250000) and data type float32\n\tat org.apache.spark.api.python")
    assert failure_reason(RuntimeError(executor)) == ("MemoryError: Unable to allocate 3.7 GiB for an array with "
                                                      "shape (4096, 250000) and data type float32")
    jvm = "java.net.ConnectException: Connection refused\n\tat java.base/sun.nio.ch.Net.pollConnect"
    assert failure_reason(RuntimeError(jvm)) == "java.net.ConnectException: Connection refused"


# --- imports -------------------------------------------------------------------------------------------------


def import_job(personalize: Any, schema: dict[str, Any], kind: str, location: str) -> tuple[str, dict[str, Any]]:
    group = personalize.create_dataset_group(name=unique("spimp"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schema_arn = personalize.create_schema(name=unique("s"), schema=json.dumps(schema))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("d"), schemaArn=schema_arn, datasetGroupArn=group,
                                         datasetType=kind)["datasetArn"]
    wait_status(lambda: personalize.describe_dataset(datasetArn=dataset), "dataset")
    arn = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=dataset, roleArn=ROLE,
                                                dataSource={"dataLocation": location})["datasetImportJobArn"]
    done = wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=arn),
                       "datasetImportJob", timeout=300)
    return arn, done


def stored(server: LocalServer, arn: str) -> dict[str, Any]:
    """The import job's stored document (its progress, skipped rows: what the console and import-report show)."""
    engine = sa.create_engine(f"sqlite:///{server.data_dir / 'tastemaker.db'}")
    try:
        with engine.connect() as conn:
            return dict(resources.get(conn, arn, "dataset_import_job").body)
    finally:
        engine.dispose()


def local_import(path: Path, root: Path, schema: dict[str, Any], kind: str, out: Path) -> tuple[pa.Table, Any] | str:
    """The in-process importer on the same file: its rows and result, or its failure reason."""
    sources = resolve_data_location(str(path), import_roots=[root], s3_client_factory=lambda: None)
    try:
        result = import_csv(sources, parse_schema(json.dumps(schema)), kind, out)
    except CsvImportError as exc:
        return exc.reason
    return pa.concat_tables([pq.read_table(f) for f in result.files]), result


def spark_parts(server: LocalServer, job_arn: str) -> pa.Table:
    name = job_arn.rsplit("/", 1)[-1]
    files = sorted(server.data_dir.glob(f"blobs/datasets/*/bulk/{name}-j*/*.parquet"))
    assert files, f"no parts for {name}"
    tables = [pq.read_table(f) for f in files]
    assert all(t.schema == tables[0].schema for t in tables)
    return pa.concat_tables(tables)


def in_order(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


@pytest.mark.slow
def test_a_spark_import_has_the_rows_and_failures_of_the_local_import(
        spark_server: LocalServer, import_root: Path, moto_s3: str, tmp_path: Path) -> None:
    personalize = spark_server.client("personalize")
    folder = import_root / unique("spimp")
    paths = write_dataset(folder, users=300, items=120, seed=11)
    good = paths["interactions"]
    size = good.stat().st_size
    assert size >= SPARK_MIN_IMPORT_BYTES
    # From S3 (the driver streams the object to Spark through the S3 client).
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = unique("spimp").lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/interactions.csv", Body=good.read_bytes())
    arn, done = import_job(personalize, INTERACTIONS_SCHEMA, "Interactions", f"s3://{bucket}/in/interactions.csv")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    local = local_import(good, import_root, INTERACTIONS_SCHEMA, "Interactions", tmp_path / "good")
    assert not isinstance(local, str)
    on_spark = spark_parts(spark_server, arn)
    assert on_spark.schema == local[0].schema and on_spark.num_rows == local[0].num_rows
    assert in_order(on_spark).equals(in_order(local[0]))
    log = spark_server.log_path.read_text(errors="replace")
    assert f"{local[0].num_rows} rows read and checked on Spark (local[2])" in log
    body = stored(spark_server, arn)
    assert body["row_count"] == local[0].num_rows and body["data_size_bytes"] == size
    assert body["progress"]["rows_read"] == local[0].num_rows
    assert body["progress"]["bytes_read"] == body["progress"]["bytes_total"] == size

    # A bad file (a local one): the same failureReason, word for word.
    lines = good.read_text().splitlines()
    lines[7] = lines[7].replace(",17", ",x17", 1)  # TIMESTAMP not an integer
    user, item, *_ = lines[4000].split(",")
    lines[4000] = f"{user},{item},,watch,1.0"  # empty TIMESTAMP
    lines[6000] = lines[6000].rsplit(",", 1)[0] + ",1e50"  # not a finite float
    bad = folder / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    arn, done = import_job(personalize, INTERACTIONS_SCHEMA, "Interactions", str(bad))
    expected = local_import(bad, import_root, INTERACTIONS_SCHEMA, "Interactions", tmp_path / "bad")
    assert isinstance(expected, str) and "line 8, column TIMESTAMP" in expected and "line 6001" in expected
    assert done["status"] == "CREATE FAILED" and done["failureReason"] == expected

    # Items whose rows with an empty non-nullable cell are skipped: the same rows kept, the same named skips.
    items = paths["items"].read_text().splitlines()
    copies = SPARK_MIN_IMPORT_BYTES // len(paths["items"].read_text()) + 1
    rows = [f"x{k}-{row}" for k, row in enumerate(row for _ in range(copies) for row in items[1:])]
    for k in (3, 2000):
        rows[k] = rows[k].split(",", 1)[0] + ',Comedy,5.5,,"no timestamp"'
    skipping = folder / "items-skipping.csv"
    skipping.write_text("\n".join([items[0], *rows]) + "\n")
    arn, done = import_job(personalize, ITEMS_SCHEMA, "Items", str(skipping))
    assert done["status"] == "ACTIVE", done.get("failureReason")
    local = local_import(skipping, import_root, ITEMS_SCHEMA, "Items", tmp_path / "skipping")
    assert not isinstance(local, str) and local[1].skipped == 2
    assert in_order(spark_parts(spark_server, arn)).equals(in_order(local[0]))
    body = stored(spark_server, arn)
    assert (body["skipped_rows"], body["skipped_examples"]) == (local[1].skipped, local[1].skipped_examples)
    assert f"{local[0].num_rows} rows read and checked on Spark" in spark_server.log_path.read_text(errors="replace")

    # A value holding a line break: Spark's line-per-row reader cannot split that file, so it is imported
    # in-process, with the same rows.
    multi = folder / "items-multiline.csv"
    multi.write_text("\n".join([items[0], *rows[:10], 'i-multi,Drama,1.5,1699999999,"two\nlines"', *rows[10:]]) + "\n")
    arn, done = import_job(personalize, ITEMS_SCHEMA, "Items", str(multi))
    assert done["status"] == "ACTIVE", done.get("failureReason")
    local = local_import(multi, import_root, ITEMS_SCHEMA, "Items", tmp_path / "multi")
    assert not isinstance(local, str) and local[0].num_rows == len(rows) - 1
    assert in_order(spark_parts(spark_server, arn)).equals(in_order(local[0]))
    log = spark_server.log_path.read_text(errors="replace")
    assert f"import {arn}: in-process, as Spark's CSV reader cannot read the files alike" in log


# --- batch segment jobs --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_spark_segment_lines_equal_the_in_process_lines(spark_server: LocalServer, import_root: Path,
                                                        moto_s3: str) -> None:
    from tastemaker.jobs.segments import _answer, _item_index, _query
    from tastemaker.recipes import load_model

    personalize = spark_server.client("personalize")
    users = 240
    assert users >= SPARK_MIN_SEGMENT_USERS
    paths = write_dataset(import_root / unique("spseg"), users=users, items=90, seed=5)
    group, _dataset = group_with_interactions(personalize, paths["interactions"], unique("spseg"), timeout=300)
    version = harness_trained_version(personalize, group, "aws-item-affinity")

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    bucket = unique("spseg").lower()
    s3.create_bucket(Bucket=bucket)
    lines = [json.dumps({"itemId": f"i{i}"}) for i in range(90)] + [json.dumps({"itemId": "nothing"}), "not json"]
    s3.put_object(Bucket=bucket, Key="in/items.json", Body=("\n".join(lines) + "\n").encode())
    arn = personalize.create_batch_segment_job(
        jobName=unique("bsj"), solutionVersionArn=version, roleArn=ROLE, numResults=25,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/in/items.json"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/out/"}})["batchSegmentJobArn"]
    job_done = wait_status(lambda: personalize.describe_batch_segment_job(batchSegmentJobArn=arn),
                           "batchSegmentJob", timeout=300)
    assert job_done["status"] == "ACTIVE", job_done.get("failureReason")
    on_spark = s3.get_object(Bucket=bucket, Key="out/items.json.out")["Body"].read().splitlines()
    log = spark_server.log_path.read_text(errors="replace")
    assert f"{users} users ranked on Spark (local[2])" in log

    # The in-process path on the same model files: the job's own functions without Spark.
    folders = [f for f in spark_server.data_dir.glob("blobs/models/*/*") if (f / "model.json").exists()]
    models = sorted(((os.path.getmtime(f), f) for f in folders), reverse=True)
    model = next(m for m in (load_model(f) for _, f in models) if m.recipe_name == "aws-item-affinity")
    in_process = _answer(model, [_query(line, False) for line in lines], 25, None, False, _item_index(model))
    assert on_spark == in_process
    parsed = [json.loads(line) for line in on_spark]
    assert all(len(p["output"]["recommendedUsers"]) == 25 for p in parsed[:90])
    assert parsed[90]["error"] and parsed[91]["error"]


@pytest.mark.parametrize("engine", ["ease", "als"])
def test_users_ranked_in_ranges_then_merged_are_the_users_ranked_at_once(engine: str) -> None:
    """What the Spark segment path relies on, without Spark: each range of users ranked with rank_users (the
    model's scoring restricted to those rows) and the ranges' tops merged gives the whole ranking, ties and
    the job filter's mask included, for item and attribute queries and both of the model's engines."""
    import numpy as np

    from tastemaker.data.schemas import Schema, SchemaField
    from tastemaker.jobs.segments import rank_users
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.affinity import AffinityModel
    from tastemaker.recipes.training_data import TrainingConfig, TrainingData
    from tastemaker.recipes.user_personalization import fit_collaborative
    from tastemaker.spark.segments import merge_tops
    from tests.recipes.synthetic import GENRES, make_tables

    interactions, items, _users = make_tables(n_users=300, events_per_user=12)
    schema = Schema("items", (SchemaField("ITEM_ID", "string"), SchemaField("GENRES", "string", categorical=True)))
    data = TrainingData.from_tables(interactions, items.select(["ITEM_ID", "GENRES"]), None, TrainingConfig(),
                                    item_schema=schema)
    recipe = get_recipe("aws-item-attribute-affinity")
    model = fit_collaborative(recipe, data, recipe.validate_hyperparameters({"hidden_dimension": "32"}), seed=0,
                              progress=None, should_stop=None, model_class=AffinityModel, keep_user_factors=True,
                              engine=engine)
    recipe.add_attributes(model, data)  # type: ignore[attr-defined]
    n = len(model.user_ids)
    keep = np.arange(n) % 3 != 0
    ranges = [slice(start, min(start + 64, n)) for start in range(0, n, 64)]
    queries = ((False, np.arange(-1, 15, dtype=np.int64)),  # -1: an unknown item, every score 0 (all tied)
               (True, [[("GENRES", genre)] for genre in GENRES] + [[("GENRES", "classic")]]))
    for by_attributes, asked in queries:
        for mask in (None, keep):
            whole = [rows for rows, _ in rank_users(model, by_attributes, asked, 40, mask)]
            found = [(k, rows.tolist(), scores.tolist()) for users in ranges
                     for k, (rows, scores) in enumerate(rank_users(model, by_attributes, asked, 40, mask, users))]
            merged = merge_tops(found, len(asked), 40)
            assert all(np.array_equal(a, b) for a, b in zip(whole, merged, strict=True)), (engine, by_attributes)
            if not by_attributes:  # the unknown item: every user tied, the lowest rows the filter lets through
                expected = np.arange(n) if mask is None else np.flatnonzero(mask)
                assert np.array_equal(whole[0], expected[:40])
