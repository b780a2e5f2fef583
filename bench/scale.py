"""Scale-out: training cost per interaction, and batch inference in-process beside Spark, in one run.

    .venv/bin/python bench/scale.py [--users 200000 --items 20000 --interactions 2000000]
                                    [--score-users 200000] [--spark-master local[2]]

1. Training rate: aws-user-personalization (hidden_dimension --factors) fitted on the generated data
   (bench/train_scale.py's generator: power-law users, Zipf-like items) and on half of it, so the printed
   CPU seconds per million interactions show whether the fit grows with the work. The saved model's size
   per user and per item is printed (what a serving process maps).
2. Batch inference: --score-users users answered the way a batch inference job answers plain
   `{"userId": ...}` lines (score_users, then the job's top-k with softmax, 25 results), once in this
   process (tastemaker.serving.batch's block scoring) and once on Spark (tastemaker.spark.batch.SparkScorer
   on --spark-master); the two outputs are compared (they must be identical) and users/s printed side by
   side. Spark's time includes broadcasting the model, not starting the session (printed apart).

3. Imports (`--import-rows`): an Interactions CSV of that many rows (the generator's users, items and
   timestamps, an EVENT_TYPE) imported in this process (tastemaker.data.csv_import.import_csv) and on Spark
   (tastemaker.spark.imports.import_on_spark into a local blob folder), `--rounds` times interleaved; the
   rows written are compared. Printed: rows/s by wall time, and CPU seconds of this process and of every
   process below it (Spark's JVM and Python workers) read from /proc, medians over the rounds.
4. Batch segments (`--segment-users`): aws-item-affinity fitted on generated data with that many users, then
   `--segment-queries` item queries of 100 users each ranked in-process (tastemaker.jobs.segments.rank_users over
   all users) and on Spark (tastemaker.spark.segments.SparkSegments: users in ranges), compared (identical).
`--only imports,segments` runs just those parts (no training run).

Replica and worker scaling of the HTTP paths is measured by bench/serving.py (--workers) and bench/events.py
(--replicas); docs/scaling.md puts the figures together.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

NUM_RESULTS = 25


def training_data(users, items, times, n_items: int):
    import numpy as np
    import pyarrow as pa

    from tastemaker.recipes.training_data import TrainingConfig, TrainingData

    table = pa.table({
        "USER_ID": pa.DictionaryArray.from_arrays(pa.array(users), pa.array(
            [f"user-{u}" for u in range(int(users.max()) + 1)])).cast(pa.string()),
        "ITEM_ID": pa.DictionaryArray.from_arrays(pa.array(items), pa.array(
            [f"item-{i}" for i in range(n_items)])).cast(pa.string()),
        "TIMESTAMP": pa.array(np.asarray(times)),
    })
    return TrainingData.from_tables(table, None, None, TrainingConfig())


def fit(data, factors: int):
    from tastemaker.recipes import get_recipe

    cpu, wall = time.process_time(), time.perf_counter()
    model = get_recipe("aws-user-personalization").fit(data, {"hidden_dimension": str(factors)}, seed=0)
    return model, time.process_time() - cpu, time.perf_counter() - wall


def score_in_process(model, rows, step: int):
    import numpy as np

    from tastemaker.serving.batch import top_with_softmax

    out = []
    empty = np.zeros(0, np.int32)
    for start in range(0, len(rows), step):
        block = rows[start:start + step]
        picked, values = top_with_softmax(np.asarray(model.score_users(block, [empty] * len(block))), NUM_RESULTS)
        out.extend(zip(picked, values, strict=True))
    return out


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and every live process below it, plus reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is not None:  # utime stime cutime cstime are fields 14-17 (11-14 after the command)
            total += sum(int(v) for v in fields[11:15]) / tick
        todo += children.get(pid, [])
    return total


def write_interactions_csv(path: Path, n_rows: int) -> None:
    """An Interactions CSV of `n_rows` generated rows (USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from train_scale import generate

    users, items, times = generate(max(1, n_rows // 10), 20_000, n_rows, seed=1)
    kinds = np.asarray(["click", "watch"])[np.arange(len(users)) % 2]
    table = pa.table({"USER_ID": pa.array(np.char.add("user-", users.astype(str))),
                      "ITEM_ID": pa.array(np.char.add("item-", items.astype(str))),
                      "TIMESTAMP": pa.array(times), "EVENT_TYPE": pa.array(kinds)})
    pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))


def import_rows(args: argparse.Namespace) -> None:
    """Part 3: import rows/s in-process and on Spark, interleaved rounds, medians."""
    import json
    import statistics

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tastemaker.data.csv_import import import_csv
    from tastemaker.data.schemas import parse_schema
    from tastemaker.data.sources import resolve_data_location
    from tastemaker.spark.imports import import_on_spark
    from tastemaker.spark.session import spark_session

    schema = parse_schema(json.dumps({"type": "record", "name": "Interactions", "fields": [
        {"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}], "version": "1.0"}))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        csv_path = root / "interactions.csv"
        write_interactions_csv(csv_path, args.import_rows)
        size = csv_path.stat().st_size
        sources = resolve_data_location(str(csv_path), import_roots=[root], s3_client_factory=lambda: None)
        wall = time.perf_counter()
        session = spark_session(args.spark_master)
        print(f"\n3. import of {args.import_rows:,} interaction rows ({size / 2**20:.0f} MiB CSV); Spark session "
              f"started in {time.perf_counter() - wall:.0f} s (not counted)", flush=True)
        figures: dict[str, list[tuple[float, float, float]]] = {"in-process": [], "spark": []}
        tables: dict[str, pa.Table] = {}
        for r in range(args.rounds + 1):  # round 0 warms Spark's Python workers up; not counted
            for side in ("in-process", "spark"):
                out = root / f"{side}-{r}"
                cpu, own, wall = tree_cpu(), time.process_time(), time.perf_counter()
                if side == "in-process":
                    files = import_csv(sources, schema, "Interactions", out).files
                else:
                    done = import_on_spark(session, sources, schema, "Interactions", stage_dir=out / "stage",
                                           blob_url=str(out / "blobs"), s3_endpoint_url=None, key_prefix="parts/")
                    files = [out / "blobs" / key for key, _ in done.parts]
                figure = (time.perf_counter() - wall, time.process_time() - own, tree_cpu() - cpu)
                if r:
                    figures[side].append(figure)
                tables[side] = pa.concat_tables([pq.read_table(f) for f in files])
                shutil.rmtree(out, ignore_errors=True)
        same = tables["in-process"].equals(tables["spark"])
        for side, runs in figures.items():
            wall, own, tree = (statistics.median(f[k] for f in runs) for k in range(3))
            print(f"   {side:<11}: wall {wall:6.1f} s = {args.import_rows / wall:10,.0f} rows/s; cpu this process "
                  f"{own:6.1f} s, with its Spark processes {tree:6.1f} s = {args.import_rows / tree:9,.0f} rows per "
                  f"cpu s (medians of {len(runs)})")
        print(f"   rows written identical (same order too): {same}; load average {os.getloadavg()[0]:.1f}")


def segment_rows(args: argparse.Namespace) -> None:
    """Part 4: a batch segment block ranked in-process and on Spark."""
    import statistics

    import numpy as np
    from train_scale import generate

    from tastemaker.jobs.segments import rank_users
    from tastemaker.recipes import get_recipe, load_model
    from tastemaker.spark.segments import SparkSegments
    from tastemaker.spark.session import spark_session

    users, items, times = generate(args.segment_users, 20_000, args.segment_users * 8, seed=2)
    data = training_data(users, items, times, 20_000)
    fitted = get_recipe("aws-item-affinity").fit(data, {"hidden_dimension": str(args.factors)}, seed=0)
    session = spark_session(args.spark_master)
    queries = np.arange(args.segment_queries, dtype=np.int64) * 7 % data.n_items
    num = 100
    with tempfile.TemporaryDirectory() as folder:
        fitted.save(Path(folder))
        model = load_model(Path(folder))
        n_users = len(model.user_ids)
        spark = SparkSegments(session, Path(folder), n_users, None, num, rank_users)
        print(f"\n4. batch segment block: {len(queries)} item queries x {n_users:,} users, top {num}, "
              f"{args.factors} factors, engine {model.settings.get('engine')}", flush=True)
        figures: dict[str, list[tuple[float, float, float]]] = {"in-process": [], "spark": []}
        outs: dict[str, list[np.ndarray]] = {}
        for r in range(args.rounds + 1):  # round 0 loads the broadcast model on the executors; not counted
            for side in ("in-process", "spark"):
                cpu, own, wall = tree_cpu(), time.process_time(), time.perf_counter()
                if side == "in-process":
                    outs[side] = [rows for rows, _ in rank_users(model, False, queries, num, None)]
                else:
                    outs[side] = spark.top(False, queries)
                if r:
                    figures[side].append((time.perf_counter() - wall, time.process_time() - own, tree_cpu() - cpu))
        spark.close()
    same = all(np.array_equal(a, b) for a, b in zip(outs["in-process"], outs["spark"], strict=True))
    for side, runs in figures.items():
        wall, own, tree = (statistics.median(f[k] for f in runs) for k in range(3))
        scored = len(queries) * n_users
        print(f"   {side:<11}: wall {wall:6.2f} s = {scored / wall / 1e6:7.1f} M user scores/s; cpu this process "
              f"{own:6.2f} s, with its Spark processes {tree:6.2f} s (medians of {len(runs)})")
    print(f"   segments identical: {same}; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=2_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--score-users", type=int, default=200_000)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--import-rows", type=int, default=2_000_000)
    parser.add_argument("--segment-users", type=int, default=500_000)
    parser.add_argument("--segment-queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of parts 3 and 4")
    parser.add_argument("--only", default="", help="comma-separated parts to run alone: imports, segments")
    args = parser.parse_args()
    if args.only:
        parts = set(args.only.split(","))
        if "imports" in parts:
            import_rows(args)
        if "segments" in parts:
            segment_rows(args)
        return
    import numpy as np
    from train_scale import generate

    from tastemaker.serving.batch import SCORE_BYTES, top_with_softmax

    users, items, times = generate(args.users, args.items, args.interactions)
    print(f"{len(users):,} interactions, {len(np.unique(users)):,} users, {args.items:,} items, "
          f"{args.factors} factors; OPENBLAS_NUM_THREADS=1, implicit's own threads", flush=True)

    half = len(users) // 2  # the first half of the users (users are generated in order)
    _, cpu_half, wall_half = fit(training_data(users[:half], items[:half], times[:half], args.items), args.factors)
    data = training_data(users, items, times, args.items)
    model, cpu_full, wall_full = fit(data, args.factors)
    print("\n1. training (aws-user-personalization fit: ALS, transitions, histories; no evaluation)")
    print(f"   {half:>12,} interactions: cpu {cpu_half:7.1f} s  wall {wall_half:7.1f} s  "
          f"= {cpu_half / half * 1e6:6.1f} cpu s per 1M interactions")
    print(f"   {len(users):>12,} interactions: cpu {cpu_full:7.1f} s  wall {wall_full:7.1f} s  "
          f"= {cpu_full / len(users) * 1e6:6.1f} cpu s per 1M interactions (x{cpu_full / cpu_half:.2f} for x2 work)")
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder))
        size = sum(p.stat().st_size for p in Path(folder).iterdir())
        print(f"   saved model {size / 2**20:.0f} MiB, engine {model.settings['engine']}: "
              f"{size / data.n_users:.0f} B per user, items included")

        rows = np.arange(min(args.score_users, data.n_users), dtype=np.int64)
        step = max(1, SCORE_BYTES // (4 * data.n_items))
        cpu, wall = time.process_time(), time.perf_counter()
        local = score_in_process(model, rows, step)
        local_wall, local_cpu = time.perf_counter() - wall, time.process_time() - cpu
        from tastemaker.spark.batch import SparkScorer
        from tastemaker.spark.session import spark_session

        wall = time.perf_counter()
        session = spark_session(args.spark_master)
        start_wall = time.perf_counter() - wall
        empty = np.zeros(0, np.int32)
        wall = time.perf_counter()
        scorer = SparkScorer(session, Path(folder), NUM_RESULTS, top_with_softmax, step)
        spark = scorer.score([(int(r), empty) for r in rows])
        spark_wall = time.perf_counter() - wall
        scorer.close()
    same = all(np.array_equal(a[0], b[0]) and np.array_equal(np.round(a[1], 7), np.round(b[1], 7))
               for a, b in zip(local, spark, strict=True))
    print(f"\n2. batch inference of {len(rows):,} users, top {NUM_RESULTS} of {data.n_items:,} items")
    print(f"   in-process        : wall {local_wall:7.1f} s  cpu {local_cpu:7.1f} s  "
          f"{len(rows) / local_wall:9,.0f} users/s  ({len(rows) / local_cpu:,.0f} users per cpu s)")
    print(f"   Spark {args.spark_master:<11} : wall {spark_wall:7.1f} s  "
          f"{len(rows) / spark_wall:9,.0f} users/s  (x{local_wall / spark_wall:.2f} of in-process; "
          f"session start {start_wall:.0f} s, not counted)")
    print(f"   outputs identical: {same}")
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
          f"(Spark's JVM and Python workers are separate processes)")
    import_rows(args)
    segment_rows(args)


if __name__ == "__main__":
    main()
