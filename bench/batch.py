"""Batch benchmark: a batch inference job through the API beside its floor, measured in the same run.

Generates the serving benchmark's catalogue (bench/serving.py: users in genres, power-law popularity),
imports it and trains aws-user-personalization and aws-item-affinity through a `tastemaker serve` server,
restarts the server (so its peak RSS counts only what the batch jobs add to serving), then measures:

* **the job**: a batch inference job over a JSON Lines file of every user (numResults 25), from the
  CreateBatchInferenceJob call to ACTIVE with the output written; its wall seconds and the CPU seconds of the
  server's process tree (utime + stime of /proc/PID/stat, every thread, and of any process below it) over the
  same span;
* **the floor**: the job's own scoring loop, in this process, without the job machinery: the same solution
  version loaded by serving's model cache, and `LineAnswerer.users` (score_users over the same chunks of
  1,024 users, the same top-k and softmax, the same item names and rounded scores) over the same users; no
  JSON parsing or writing, no file, no queue, no HTTP. Wall seconds and CPU seconds of this process. With
  `--floor-users N` both floors score a seeded sample of N of the job's users (in the job's order) and their
  per-user rates are compared with the job's: at 1M users x 100k items each pass over every user costs as
  much CPU as the job itself;
* rounds: floor, job, floor, job, ... (`--rounds`, default 3), so each job is measured next to a floor of the
  same moment; the ratio printed is median job users/s over median floor users/s, by wall time and by CPU time
  (the CPU ratio holds when other work shares the machine; the wall ratio does not);
* memory: the server's RSS sampled every 0.1 s during each job, split into anonymous memory (what the job
  allocates; flat in the number of lines if nothing is held) and file-backed pages (the memory-mapped model
  artifacts the job touches, bounded by the model's size and reclaimable by the kernel), after a 1,000-line
  job and after each full job; the peak VmHWM too (target <= 2 GiB);
* a batch segment job of --segment-queries item queries over all users: seconds and peak RSS;
* for reference, the issue's first floor: a raw chunked BLAS product + argpartition top-k of the same model
  (no softmax, no names; `raw_floor`).

The load average at the start and end is printed: on a shared machine, read the CPU ratio.

    .venv/bin/python bench/batch.py                                  # 1,000,000 users x 100,000 items
    .venv/bin/python bench/batch.py --users 100000 --items 100000    # what a small machine manages
    .venv/bin/python bench/batch.py --reuse /tmp/tm-batch-bench       # keep the generated data and server state
    nice -n 5 .venv/bin/python bench/batch.py --rounds 1 --floor-users 100000 --reuse /tmp/tm-batch-1m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving as serving_bench  # bench/serving.py: the catalogue generator and schemas

from tastemaker.cli.local_server import LocalServer

TARGET_SHARE, TARGET_RSS_GIB = 0.5, 2.0
ROLE = "arn:aws:iam::000000000000:role/BenchRole"
RECIPE = "arn:aws:personalize:::recipe/"


def proc_status(pid: int) -> dict[str, float]:
    """VmHWM, VmRSS, RssAnon, RssFile of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds so far of a process tree: utime + stime of every thread of `pid` and of each live process
    below it, plus cutime + cstime (the children each of them has reaped)."""
    parents: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            stats[int(entry)] = fields
            parents.setdefault(int(fields[1]), []).append(int(entry))
    ticks, todo = 0, [pid]
    while todo:
        here = todo.pop()
        if here in stats:  # fields 14-17 of /proc/PID/stat: utime stime cutime cstime
            ticks += sum(int(v) for v in stats[here][11:15])
        todo += parents.get(here, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


class RssSampler:
    """Peak RssAnon / RssFile / VmRSS of a process, sampled every `interval` s on a thread while in the `with`."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak: dict[str, float] = {"RssAnon": 0.0, "RssFile": 0.0, "VmRSS": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = proc_status(self.pid)
            for key in self.peak:
                self.peak[key] = max(self.peak[key], now[key])
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def train(p: Any, group: str, recipe: str, factors: int, tag: str) -> str:
    solution = p.create_solution(name=f"bench-{recipe[4:]}-{tag}-{uuid.uuid4().hex[:4]}",  # a retry: a new name
                                 datasetGroupArn=group, performAutoTraining=False,
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
    return {"group": group, "tag": tag, "up": train(p, group, "aws-user-personalization", factors, tag)}


def write_inputs(folder: Path, users: int, segment_queries: int, items: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    user_file, item_file = folder / "users.jsonl", folder / "items.jsonl"
    with user_file.open("w") as fh:
        for start in range(0, users, 100_000):
            fh.write("".join(f'{{"userId": "u{u}"}}\n' for u in range(start, min(users, start + 100_000))))
    picks = np.linspace(0, items - 1, segment_queries).astype(np.int64)
    item_file.write_text("".join(f'{{"itemId": "i{i}"}}\n' for i in picks.tolist()))
    return user_file, item_file


def run_job(create: Any, describe: Any, key: str, pid: int) -> tuple[float, float, dict[str, float]]:
    """(wall s, server CPU s, peak memory) of one job, from the create call to its terminal status."""
    with RssSampler(pid) as sampler:
        cpu, started = cpu_seconds(pid), time.perf_counter()
        arn = create()
        said = started
        while (final := describe(arn)[key])["status"] not in ("ACTIVE", "CREATE FAILED"):
            time.sleep(0.1)
            if time.perf_counter() - said >= 60:  # a long job shows it is alive
                said = time.perf_counter()
                print(f"    ... {said - started:,.0f} s, server CPU {cpu_seconds(pid) - cpu:,.0f} s, "
                      f"VmRSS {proc_status(pid)['VmRSS']:,.0f} MiB, {load()}", flush=True)
        wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    assert final.get("status") == "ACTIVE", final
    return wall, cpu, dict(sampler.peak)


def floor_sample(lines: int, count: int | None) -> np.ndarray:
    """The user numbers the floors score: every line's user, or a seeded sample of `count` of them in
    ascending order (the job's own order)."""
    if count is None or count >= lines:
        return np.arange(lines)
    return np.sort(np.random.default_rng(0).choice(lines, size=count, replace=False))


def in_process_floor(server_dir: Path, data: Path, version: str, users: np.ndarray) -> Any:
    """A function measuring the floor once: (wall s, CPU s) of the job's scoring loop over the given users."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.serving.batch import CHUNK, LineAnswerer, deployment_for
    from tastemaker.serving.models import model_cache
    from tastemaker.store import records
    from tastemaker.store.records import BatchInferenceJob, SolutionVersion
    from tastemaker.store.resources import Resource

    services = build_services(Settings.from_env(data_dir=str(server_dir), import_roots=[str(data)]), migrate=False)
    with services.read_engine.connect() as conn:
        solution_version = records.load(conn, version, SolutionVersion)
    dep = deployment_for(solution_version, {})
    assert dep.model_prefix
    loaded = model_cache(services).get(services, dep.model_prefix)
    spec = BatchInferenceJob.of(Resource("bench", "batch_inference_job", "ACTIVE", {
        "solution_version_arn": version, "job_input": {}, "job_output": {}, "num_results": 25},
        None, None, 0.0, 0.0, 0))
    answer = LineAnswerer(services, dep, loaded, spec)
    ids = [f"u{u}" for u in users.tolist()]

    def measure(count: int | None = None) -> tuple[float, float]:
        chosen = ids[:count]
        cpu, started = time.process_time(), time.perf_counter()
        answered = 0
        for start in range(0, len(chosen), CHUNK):
            part = chosen[start:start + CHUNK]
            for _result in answer.users(part, list(range(len(part)))):  # every line of the chunk plain
                answered += 1
        assert answered == len(chosen)
        return time.perf_counter() - started, time.process_time() - cpu

    return measure


def model_dir(server_dir: Path, version: str) -> Path:
    with sqlite3.connect(server_dir / "tastemaker.db") as db:
        body = json.loads(db.execute("SELECT body FROM resources WHERE arn = ?", (version,)).fetchone()[0])
    return server_dir / "blobs" / body["model_prefix"]


def raw_floor(server_dir: Path, version: str, users: np.ndarray, k: int = 25, chunk: int = 256) -> tuple[float, float, str]:
    """(users/s wall, users per CPU second, what was measured) of the issue's first floor over the given users:
    one matrix product and an argpartition top-k per chunk of users.

    ALS models: the users' folded-in vectors (computed untimed) times the item factors. Item-item (EASE)
    models (catalogues whose active items fit the dense solve): the users' history rows times the item-item
    weights, placed in rows over the whole catalogue (the job ranks every item, so the floor does too).
    Everything the service adds (recent events, transitions, scaling, softmax, JSON) is left out."""
    from tastemaker.recipes import load_model
    from tastemaker.recipes.collaborative import fold_in
    from tastemaker.recipes.common import history_matrix

    model: Any = load_model(model_dir(server_dir, version), mmap=True)
    rows = np.sort(model.user_index([f"u{u}" for u in users.tolist()]))
    assert rows.size and rows[0] >= 0, "every floor user is in the model"
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
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(rows), chunk):
        scores = np.asarray(left[start:start + chunk] @ weights, dtype=np.float32)
        if active is not None:
            wide[:scores.shape[0], active] = scores
            scores = wide[:scores.shape[0]]
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        np.take_along_axis(part, order, axis=1)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(rows) / wall, len(rows) / cpu, what


def median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-user", type=float, default=8.0, help="mean interactions per user")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--segment-queries", type=int, default=500,
                        help="item queries of the segment job (0: no segment job, no aws-item-affinity training)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="floor + job rounds (medians are reported); 0: the segment job only")
    parser.add_argument("--lines", type=int, default=None,
                        help="users in the job's input and the floor (default: every user; the model keeps them all)")
    parser.add_argument("--floor-users", type=int, default=None,
                        help="score only a seeded sample of this many of the job's users in the floors (default: all "
                             "of them); the job always answers every line")
    parser.add_argument("--reuse", type=Path, default=None, help="a folder kept between runs")
    args = parser.parse_args()
    # One BLAS thread, as in the server's API and job processes (cli/wiring.build_server_app): the floors run
    # the job's loop, not a differently threaded one (with the default pool, a loaded machine made the floor's
    # ALS products spin: 825 users per CPU s against the job's 2,011 at 1M users).
    threadpool_limits(1, user_api="blas")
    root = args.reuse or Path(tempfile.mkdtemp(prefix="tm-batch-bench-"))
    data, server_dir = root / "data", root / "server"
    print(f"batch benchmark: {args.users:,} users x {args.items:,} items in {root}", flush=True)
    paths = serving_bench.generate(data, args.users, args.items, args.per_user)
    state_file = root / "versions.json"
    if not state_file.exists():
        with LocalServer(server_dir, import_roots=[data]) as server:
            state_file.write_text(json.dumps(setup(server, paths, args.factors)))
    versions = json.loads(state_file.read_text())
    if args.segment_queries and "affinity" not in versions:  # trained apart: a failure keeps the rest of the state
        with LocalServer(server_dir, import_roots=[data]) as server:
            versions["affinity"] = train(server.client("personalize"), versions["group"], "aws-item-affinity",
                                         args.factors, versions["tag"])
        state_file.write_text(json.dumps(versions))
    lines = min(args.lines or args.users, args.users)
    user_file, item_file = write_inputs(data / f"batch-in-{lines}", lines, args.segment_queries, args.items)
    small_file = data / "batch-in" / "small" / "users.jsonl"
    small_file.parent.mkdir(parents=True, exist_ok=True)
    small_file.write_text("".join(f'{{"userId": "u{u}"}}\n' for u in range(min(1000, args.users))))
    out = data / f"batch-out-{uuid.uuid4().hex[:6]}"
    load_start = os.getloadavg()
    sample = floor_sample(lines, args.floor_users)
    print(f"  models ready; {load()}", flush=True)
    if args.rounds:
        floor = in_process_floor(server_dir, data, versions["up"], sample)
        floor(10_000)  # warm: the model's first pages and the catalogue, as the job's first chunks would
    rounds: list[dict[str, Any]] = []
    with LocalServer(server_dir, import_roots=[data]) as server:  # fresh process: VmHWM counts the jobs only
        assert server.process is not None
        pid = server.process.pid
        p = server.client("personalize")

        def inference(path: Path, folder: str) -> tuple[float, float, dict[str, float]]:
            return run_job(lambda: p.create_batch_inference_job(
                jobName=f"bench-{uuid.uuid4().hex[:6]}", solutionVersionArn=versions["up"], roleArn=ROLE,
                numResults=25, jobInput={"s3DataSource": {"path": str(path)}},
                jobOutput={"s3DataDestination": {"path": str(out / folder)}})["batchInferenceJobArn"],
                lambda arn: p.describe_batch_inference_job(batchInferenceJobArn=arn), "batchInferenceJob", pid)

        idle = proc_status(pid)
        small_wall, _small_cpu, small_peak = inference(small_file, "small")
        print(f"  1,000-line job: {small_wall:.1f} s, peak anon {small_peak['RssAnon']:,.0f} MiB, "
              f"file-backed {small_peak['RssFile']:,.0f} MiB", flush=True)
        for number in range(args.rounds):
            floor_wall, floor_cpu = floor()
            print(f"  floor over {len(sample):,} users: {len(sample) / floor_wall:,.0f} users/s wall "
                  f"({len(sample) / floor_cpu:,.0f} per CPU s); {load()}", flush=True)
            wall, cpu, peak = inference(user_file, f"inference-{number}")
            written = sum(1 for _ in (out / f"inference-{number}" / "users.jsonl.out").open())
            assert written == lines, written
            shutil.rmtree(out / f"inference-{number}", ignore_errors=True)
            rounds.append({"floor_wall": floor_wall, "floor_cpu": floor_cpu, "wall": wall, "cpu": cpu, **peak})
            print(f"  round {number + 1}: floor {len(sample) / floor_wall:,.0f} users/s wall "
                  f"({len(sample) / floor_cpu:,.0f} per CPU s); job {lines / wall:,.0f} users/s wall "
                  f"({lines / cpu:,.0f} per CPU s); peak anon {peak['RssAnon']:,.0f} MiB, "
                  f"file-backed {peak['RssFile']:,.0f} MiB; {load()}", flush=True)
        inference_hwm = proc_status(pid)["VmHWM"]
        segment = None
        if args.segment_queries:
            segment_wall, segment_cpu, segment_peak = run_job(lambda: p.create_batch_segment_job(
                jobName=f"bench-{uuid.uuid4().hex[:6]}", solutionVersionArn=versions["affinity"], roleArn=ROLE,
                numResults=25, jobInput={"s3DataSource": {"path": str(item_file)}},
                jobOutput={"s3DataDestination": {"path": str(out / "segments")}})["batchSegmentJobArn"],
                lambda arn: p.describe_batch_segment_job(batchSegmentJobArn=arn), "batchSegmentJob", pid)
            segment = (segment_wall, segment_peak["RssAnon"], proc_status(pid)["VmHWM"], segment_cpu)
    load_end = os.getloadavg()
    if rounds:
        raw, raw_cpu, raw_model = raw_floor(server_dir, versions["up"], sample)
        load_end = os.getloadavg()
        n, f = lines, len(sample)
        job_wall, job_cpu = median([n / r["wall"] for r in rounds]), median([n / r["cpu"] for r in rounds])
        floor_wall_rate = median([f / r["floor_wall"] for r in rounds])
        floor_cpu_rate = median([f / r["floor_cpu"] for r in rounds])
        floors = "every one of them" if f == n else f"a seeded sample of {f:,} of them"
        print(f"\nbatch inference, {n:,} of the model's {args.users:,} users (floors over {floors}), numResults 25, "
              f"medians of {len(rounds)} rounds (load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at "
              f"the end on {os.cpu_count()} CPUs):")
        print(f"  tastemaker job (API call to ACTIVE, output written): {job_wall:,.0f} users/s wall, "
              f"{job_cpu:,.0f} users per server CPU second")
        print(f"  floor (the job's scoring loop in-process):           {floor_wall_rate:,.0f} users/s wall, "
              f"{floor_cpu_rate:,.0f} users per CPU second")
        for what, share in (("wall", job_wall / floor_wall_rate), ("CPU", job_cpu / floor_cpu_rate)):
            print(f"  ratio by {what:4}: {share:.0%} of the floor (target >= {TARGET_SHARE:.0%})"
                  f"{'' if share >= TARGET_SHARE else '  BELOW TARGET'}")
        print(f"  raw BLAS + argpartition of the same model (the issue's first floor, measured after the rounds): "
              f"{raw:,.0f} users/s wall, {raw_cpu:,.0f} users per CPU second ({raw_model})")
        for what, share in (("wall", job_wall / raw), ("CPU", job_cpu / raw_cpu)):
            print(f"  ratio by {what:4}: {share:.0%} of the raw floor (target >= {TARGET_SHARE:.0%})"
                  f"{'' if share >= TARGET_SHARE else '  BELOW TARGET'}")
        anon = [r["RssAnon"] for r in rounds]
        print(f"  server memory: idle {idle['VmRSS']:,.0f} MiB (anon {idle['RssAnon']:,.0f}); peak anon during the "
              f"1,000-line job {small_peak['RssAnon']:,.0f} MiB, during the {n:,}-line jobs "
              f"{', '.join(f'{a:,.0f}' for a in anon)} MiB; peak file-backed (mapped model) "
              f"{max(r['RssFile'] for r in rounds):,.0f} MiB; VmHWM {inference_hwm:,.0f} MiB "
              f"(target <= {TARGET_RSS_GIB * 1024:,.0f} MiB)")
    else:
        print(f"\nbatch inference: not run (--rounds 0); load average {load_start[0]:.1f} at the start, "
              f"{load_end[0]:.1f} at the end")
    if segment is not None:
        print(f"batch segment job, {args.segment_queries} item queries over {args.users:,} users: {segment[0]:.1f} s wall, "
              f"{segment[3]:.1f} s server CPU, peak anon {segment[1]:,.0f} MiB, VmHWM {segment[2]:,.0f} MiB")
    else:
        print("batch segment job: not run (--segment-queries 0)")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
