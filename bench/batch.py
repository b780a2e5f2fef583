"""Batch benchmark: a batch inference job and a batch segment job through the API, beside the raw floor.

Generates the serving benchmark's catalogue (bench/serving.py: users in genres, power-law popularity),
imports it and trains aws-user-personalization and aws-item-affinity through a `tastemaker serve` server,
restarts the server (so its peak RSS counts only what the batch jobs add to serving), then runs:

* a batch inference job (JSON Lines of every user, numResults 25) through CreateBatchInferenceJob, timed from
  the call to ACTIVE; beside it, in this process, the floor for the same work on this machine: the same
  item factors and the users' folded-in vectors (computed untimed), scored and ranked in chunks with one BLAS
  matrix product and an argpartition per chunk, nothing else;
* a batch segment job of --segment-queries item queries over all users (numResults 25).

Prints users/s of both, their ratio (target >= 50% of the floor), the job's wall seconds, and the server's
peak RSS (VmHWM of the process that runs the jobs; target <= 2 GiB), and the segment job's seconds.

    .venv/bin/python bench/batch.py                                  # 1,000,000 users x 100,000 items
    .venv/bin/python bench/batch.py --users 100000 --items 100000    # what a small machine manages
    .venv/bin/python bench/batch.py --reuse /tmp/tm-batch-bench       # keep the generated data and server state
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as serving_bench  # bench/serving.py: the catalogue generator and schemas

from tastemaker.cli.local_server import LocalServer

TARGET_SHARE, TARGET_RSS_GIB = 0.5, 2.0
ROLE = "arn:aws:iam::000000000000:role/BenchRole"
RECIPE = "arn:aws:personalize:::recipe/"


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train(p: Any, group: str, recipe: str, factors: int, tag: str) -> str:
    solution = p.create_solution(name=f"bench-{recipe[4:]}-{tag}", datasetGroupArn=group, performAutoTraining=False,
                                 recipeArn=RECIPE + recipe,
                                 solutionConfig={"algorithmHyperParameters": {"hidden_dimension": str(factors)}})
    serving_bench.wait(lambda: p.describe_solution(solutionArn=solution["solutionArn"]), "solution")
    started = time.time()
    version = p.create_solution_version(solutionArn=solution["solutionArn"])["solutionVersionArn"]
    serving_bench.wait(lambda: p.describe_solution_version(solutionVersionArn=version), "solutionVersion")
    print(f"  train {recipe}: {time.time() - started:.1f} s", flush=True)
    return str(version)


def setup(server: LocalServer, paths: dict[str, Path], factors: int) -> dict[str, str]:
    p = server.client("personalize")
    tag = uuid.uuid4().hex[:6]
    group = p.create_dataset_group(name=f"batch-{tag}")["datasetGroupArn"]
    serving_bench.wait(lambda: p.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    for kind, schema in (("Interactions", serving_bench.INTERACTIONS), ("Items", serving_bench.ITEMS)):
        schema_arn = p.create_schema(name=f"batch-{kind.lower()}-{tag}", schema=json.dumps(schema))["schemaArn"]
        ds = p.create_dataset(name=f"batch-{kind.lower()}-{tag}", schemaArn=schema_arn, datasetGroupArn=group,
                              datasetType=kind)["datasetArn"]
        serving_bench.wait(lambda ds=ds: p.describe_dataset(datasetArn=ds), "dataset")
        job = p.create_dataset_import_job(jobName=f"batch-{kind.lower()}-{tag}", datasetArn=ds, roleArn=ROLE,
                                          dataSource={"dataLocation": str(paths[kind.lower()])})["datasetImportJobArn"]
        serving_bench.wait(lambda job=job: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    return {"up": train(p, group, "aws-user-personalization", factors, tag),
            "affinity": train(p, group, "aws-item-affinity", factors, tag)}


def write_inputs(folder: Path, users: int, segment_queries: int, items: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    user_file, item_file = folder / "users.jsonl", folder / "items.jsonl"
    with user_file.open("w") as fh:
        for start in range(0, users, 100_000):
            fh.write("".join(f'{{"userId": "u{u}"}}\n' for u in range(start, min(users, start + 100_000))))
    picks = np.linspace(0, items - 1, segment_queries).astype(np.int64)
    item_file.write_text("".join(f'{{"itemId": "i{i}"}}\n' for i in picks.tolist()))
    return user_file, item_file


def run_job(p: Any, create: Any, describe: Any, key: str) -> float:
    started = time.time()
    arn = create()
    serving_bench.wait(lambda: describe(arn), key, timeout=24 * 3600)
    return time.time() - started


def model_dir(server_dir: Path, version: str) -> Path:
    with sqlite3.connect(server_dir / "tastemaker.db") as db:
        body = json.loads(db.execute("SELECT body FROM resources WHERE arn = ?", (version,)).fetchone()[0])
    return server_dir / "blobs" / body["model_prefix"]


def raw_floor(server_dir: Path, version: str, users: int, k: int = 25, chunk: int = 256) -> tuple[float, str]:
    """(users/s, what) of the floor: one matrix product and an argpartition top-k per chunk of users.

    ALS models: the users' folded-in vectors (computed untimed) times the item factors. Item-item (EASE)
    models (catalogues whose active items fit the dense solve): the users' history rows times the item-item
    weights, placed in rows over the whole catalogue (the job ranks every item, so the floor does too).
    Everything the service adds (recent events, transitions, scaling, softmax, JSON) is left out."""
    from tastemaker.recipes import load_model
    from tastemaker.recipes.collaborative import fold_in
    from tastemaker.recipes.common import history_matrix

    model: Any = load_model(model_dir(server_dir, version), mmap=True)
    rows = np.arange(min(users, model.n_users))
    histories = model._histories(rows, [np.zeros(0, np.int32)] * len(rows))
    history = history_matrix(histories, model.n_items, float(model.settings["decay"]))
    if "item_factors" in model.arrays:
        weights = np.ascontiguousarray(np.asarray(model.arrays["item_factors"], dtype=np.float32)).T
        left: Any = np.asarray(fold_in(weights.T, history, gram=model.gram), dtype=np.float32)
        what = f"ALS, {weights.shape[0]} factors x {weights.shape[1]:,} items"
    else:
        active = np.asarray(model.arrays["ease_items"])
        weights = np.asarray(model.arrays["ease"], dtype=np.float32)
        left = history[:, active].tocsr()
        what = f"EASE, {len(active):,} active of {model.n_items:,} items"
    active = None if "item_factors" in model.arrays else np.asarray(model.arrays["ease_items"])
    wide = np.zeros((chunk, model.n_items), np.float32)  # reused: inactive items stay 0
    started = time.perf_counter()
    for start in range(0, len(rows), chunk):
        scores = np.asarray(left[start:start + chunk] @ weights, dtype=np.float32)
        if active is not None:
            wide[:scores.shape[0], active] = scores
            scores = wide[:scores.shape[0]]
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        np.take_along_axis(part, order, axis=1)
    return len(rows) / (time.perf_counter() - started), what


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-user", type=float, default=8.0, help="mean interactions per user")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--segment-queries", type=int, default=500)
    parser.add_argument("--reuse", type=Path, default=None, help="a folder kept between runs")
    args = parser.parse_args()
    root = args.reuse or Path(tempfile.mkdtemp(prefix="tm-batch-bench-"))
    data, server_dir = root / "data", root / "server"
    print(f"batch benchmark: {args.users:,} users x {args.items:,} items in {root}", flush=True)
    paths = serving_bench.generate(data, args.users, args.items, args.per_user)
    state_file = root / "versions.json"
    if not state_file.exists():
        with LocalServer(server_dir, import_roots=[data]) as server:
            state_file.write_text(json.dumps(setup(server, paths, args.factors)))
    versions = json.loads(state_file.read_text())
    user_file, item_file = write_inputs(data / "batch-in", args.users, args.segment_queries, args.items)
    small_file = data / "batch-in" / "small" / "users.jsonl"
    small_file.parent.mkdir(exist_ok=True)
    small_file.write_text("".join(f'{{"userId": "u{u}"}}\n' for u in range(min(1000, args.users))))
    out = data / f"batch-out-{uuid.uuid4().hex[:6]}"
    with LocalServer(server_dir, import_roots=[data]) as server:  # fresh process: VmHWM counts the jobs only
        assert server.process is not None
        p = server.client("personalize")
        idle_rss = peak_rss_mib(server.process.pid)
        small_seconds = run_job(p, lambda: p.create_batch_inference_job(  # the same job over 1,000 lines first
            jobName=f"bench-{uuid.uuid4().hex[:6]}", solutionVersionArn=versions["up"], roleArn=ROLE, numResults=25,
            jobInput={"s3DataSource": {"path": str(small_file)}},
            jobOutput={"s3DataDestination": {"path": str(out / "small")}})["batchInferenceJobArn"],
            lambda arn: p.describe_batch_inference_job(batchInferenceJobArn=arn), "batchInferenceJob")
        small_rss = peak_rss_mib(server.process.pid)
        seconds = run_job(p, lambda: p.create_batch_inference_job(
            jobName=f"bench-{uuid.uuid4().hex[:6]}", solutionVersionArn=versions["up"], roleArn=ROLE, numResults=25,
            jobInput={"s3DataSource": {"path": str(user_file)}},
            jobOutput={"s3DataDestination": {"path": str(out / "inference")}})["batchInferenceJobArn"],
            lambda arn: p.describe_batch_inference_job(batchInferenceJobArn=arn), "batchInferenceJob")
        inference_rss = peak_rss_mib(server.process.pid)
        lines = sum(1 for _ in (out / "inference" / "users.jsonl.out").open())
        assert lines == args.users, lines
        segment_seconds = run_job(p, lambda: p.create_batch_segment_job(
            jobName=f"bench-{uuid.uuid4().hex[:6]}", solutionVersionArn=versions["affinity"], roleArn=ROLE,
            numResults=25, jobInput={"s3DataSource": {"path": str(item_file)}},
            jobOutput={"s3DataDestination": {"path": str(out / "segments")}})["batchSegmentJobArn"],
            lambda arn: p.describe_batch_segment_job(batchSegmentJobArn=arn), "batchSegmentJob")
        segment_rss = peak_rss_mib(server.process.pid)
    floor, floor_model = raw_floor(server_dir, versions["up"], args.users)
    ours = args.users / seconds
    print(f"\nbatch inference, {args.users:,} users, numResults 25 (API call to ACTIVE, output written):")
    print(f"  tastemaker job:   {ours:,.0f} users/s ({seconds:.1f} s)")
    print(f"  raw numpy floor:  {floor:,.0f} users/s (BLAS scores + argpartition top-k; {floor_model})")
    share = ours / floor
    print(f"  ratio:            {share:.0%} of the floor (target >= {TARGET_SHARE:.0%})"
          f"{'' if share >= TARGET_SHARE else '  BELOW TARGET'}")
    print(f"  server peak RSS:  {inference_rss:,.0f} MiB (idle after start {idle_rss:,.0f} MiB; after a 1,000-line "
          f"job {small_rss:,.0f} MiB, {small_seconds:.1f} s; target <= {TARGET_RSS_GIB * 1024:,.0f} MiB)")
    print(f"batch segment job, {args.segment_queries} item queries over {args.users:,} users: "
          f"{segment_seconds:.1f} s, server peak RSS {segment_rss:,.0f} MiB")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
