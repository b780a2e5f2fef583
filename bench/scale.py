"""Scale-out: training cost per interaction, and batch inference in-process beside Spark, in one run.

    .venv/bin/python bench/scale.py [--users 200000 --items 20000 --interactions 2000000]
                                    [--score-users 200000] [--spark-master local[2]]
    .venv/bin/python bench/scale.py --spark-training [--users ... --interactions ...] [--training-rounds 3]
                                    [--movielens FOLDER] [--sides local,spark]
    .venv/bin/python bench/scale.py --only batch --users 2000000 --interactions 20000000 --score-users 1000000

1. Training rate: aws-user-personalization (hidden_dimension --factors) fitted on the generated data
   (bench/train_scale.py's generator: power-law users, Zipf-like items) and on half of it, so the printed
   CPU seconds per million interactions show whether the fit grows with the work. The saved model's size
   per user and per item is printed (what a serving process maps).
2. Batch inference: --score-users users answered the way a batch inference job answers plain
   `{"userId": ...}` lines (score_users, then the job's top-k with softmax, 25 results), once in this
   process (tastemaker.serving.batch's block scoring) and once on Spark (tastemaker.spark.batch.SparkScorer
   on --spark-master), SPARK_CHUNK (200,704) users at a time as a job hands them to Spark, in the job's blocks
   (score_blocks), the sides interleaved per chunk; the two outputs are compared chunk by chunk, scores to the
   last bit (they must be identical) and users/s
   and CPU seconds printed side by side (in-process: this process; Spark: this process and every process
   below it, its JVM and Python workers). Spark's time includes broadcasting the model, not starting the
   session (printed apart). `--only batch` fits the data once and runs this part alone.

3. Imports (`--import-rows`): an Interactions CSV of that many rows (the generator's users, items and
   timestamps, an EVENT_TYPE) imported in this process (tastemaker.data.csv_import.import_csv) and on Spark
   (tastemaker.spark.imports.import_on_spark into a local blob folder), `--rounds` times interleaved; the
   rows written are compared. Printed: rows/s by wall time, and CPU seconds of this process and of every
   process below it (Spark's JVM and Python workers) read from /proc, medians over the rounds.
4. Batch segments (`--segment-users`): aws-item-affinity fitted on generated data with that many users, then
   `--segment-queries` item queries of 100 users each ranked in-process (tastemaker.jobs.segments.rank_users over
   all users) and on Spark (tastemaker.spark.segments.SparkSegments: users in ranges), compared (identical).
`--only imports,segments` runs just those parts (no training run).
5. Training on Spark (--spark-training, only this part runs): a solution version's fitting work (the offline
   evaluation: its own fit on 90% of the users and the scoring of the held-out ones, then the final fit) for
   aws-user-personalization with the ALS engine, single-process (implicit) and with the ALS fits on Spark
   --spark-master (tastemaker.spark.training), each side in its own process, the sides interleaved over
   --training-rounds; medians of wall time, CPU seconds (this process; Spark's JVM apart, read from /proc),
   peak RSS (this process; the JVM's apart) and NDCG@10 of each, on the generated data (--users/--items/
   --interactions) and, with --movielens FOLDER, on MovieLens (a Personalize-shaped folder, e.g.
   /work/shared/data/movielens-1m-partial/personalize; ALS is forced there: ML's catalogue would get EASE).
   The CPU of each side's whole process tree is printed too. `--sides local` (or `spark`) runs one side only,
   for a size the other cannot finish in the time available.

Replica and worker scaling of the HTTP paths is measured by bench/serving.py (--workers) and bench/events.py
(--replicas); docs/scaling.md puts the figures together.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
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


def score_in_process(model, rows, blocks):
    import numpy as np

    from tastemaker.serving.batch import top_with_softmax

    out = []
    empty = np.zeros(0, np.int32)
    for start, end in blocks:
        block = rows[start:end]
        picked, values = top_with_softmax(np.asarray(model.score_users(block, [empty] * len(block))), NUM_RESULTS)
        out.extend(zip(picked, values, strict=True))
    return out


def batch_both_ways(model, folder: Path, n_rows: int, args: argparse.Namespace) -> None:
    """Part 2: the first `n_rows` model rows answered in-process and on Spark, SPARK_CHUNK users at a time
    (as a batch inference job hands its chunks to Spark), the two sides interleaved per chunk and compared
    chunk by chunk (so memory holds one chunk's answers, not the whole output)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from tastemaker.serving.batch import SPARK_CHUNK, score_blocks, score_step, top_with_softmax
    from tastemaker.spark.batch import SparkScorer
    from tastemaker.spark.session import spark_session

    threadpool_limits(1, user_api="blas")  # as a serving process
    rows = np.arange(min(n_rows, model.n_users), dtype=np.int64)
    step = score_step(model.n_items)
    empty = np.zeros(0, np.int32)
    wall = time.perf_counter()
    session = spark_session(args.spark_master)
    start_wall = time.perf_counter() - wall
    print(f"\n2. batch inference of {len(rows):,} users, top {NUM_RESULTS} of {model.n_items:,} items, "
          f"{SPARK_CHUNK:,} users per Spark job; Spark session started in {start_wall:.0f} s (not counted); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    local_wall = local_cpu = spark_wall = spark_cpu = 0.0
    differ = other_items = 0
    worst = 0.0
    cpu, wall = tree_cpu(), time.perf_counter()
    scorer = SparkScorer(session, folder, NUM_RESULTS, top_with_softmax)  # the broadcast counts for Spark
    spark_wall, spark_cpu = time.perf_counter() - wall, tree_cpu() - cpu
    for start in range(0, len(rows), SPARK_CHUNK):
        block = rows[start:start + SPARK_CHUNK]
        blocks = score_blocks(range(len(block)), step)  # a job's blocks when every line of the chunk is plain
        cpu, wall = time.process_time(), time.perf_counter()
        local = score_in_process(model, block, blocks)
        local_wall, local_cpu = local_wall + time.perf_counter() - wall, local_cpu + time.process_time() - cpu
        cpu, wall = tree_cpu(), time.perf_counter()
        spark = scorer.score([(int(r), empty) for r in block], blocks)
        spark_wall, spark_cpu = spark_wall + time.perf_counter() - wall, spark_cpu + tree_cpu() - cpu
        for a, b in zip(local, spark, strict=True):  # the scores' bits, not only the written 7 digits
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
                differ += 1
                other_items += set(a[0].tolist()) != set(b[0].tolist())
                if np.array_equal(a[0], b[0]):
                    worst = max(worst, float(np.abs(a[1] - b[1]).max()))
        print(f"   {start + len(block):>10,} users: in-process {local_wall:7.1f} s wall {local_cpu:7.1f} cpu s; "
              f"Spark {spark_wall:7.1f} s wall {spark_cpu:7.1f} cpu s; load average {os.getloadavg()[0]:.1f}",
              flush=True)
    scorer.close()
    n = len(rows)
    print(f"   in-process        : wall {local_wall:7.1f} s  cpu {local_cpu:7.1f} s  {n / local_wall:9,.0f} users/s  "
          f"({n / local_cpu:,.0f} users per cpu s; this process, one BLAS thread)")
    print(f"   Spark {args.spark_master:<11} : wall {spark_wall:7.1f} s  cpu {spark_cpu:7.1f} s  {n / spark_wall:9,.0f} "
          f"users/s  ({n / spark_cpu:,.0f} users per cpu s over the driver, its JVM and Python workers; "
          f"x{local_wall / spark_wall:.2f} of in-process by wall, x{spark_cpu / local_cpu:.2f} its CPU)")
    print(f"   outputs identical: {differ == 0} ({differ:,} of {n:,} users differ: {other_items:,} in the set of items "
          f"chosen, the others in order or rounded scores; largest score difference with the same items {worst:.2e})")
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
          f"(Spark's JVM and Python workers are separate processes); load average {os.getloadavg()[0]:.1f}")


def training_side(side: str, source: str, args: argparse.Namespace) -> dict:
    """Child process of part 3: one side's evaluation + final fit, its costs and NDCG@10 (one JSON line)."""
    from tastemaker.evaluation import evaluate_solution
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.user_personalization import fit_collaborative

    if source == "generated":
        from train_scale import generate

        data = training_data(*generate(args.users, args.items, args.interactions), args.items)
    else:
        from _acc_data import load_dataset

        data = load_dataset(Path(source))
    recipe = get_recipe("aws-user-personalization")
    params = {"hidden_dimension": str(args.factors)}

    def fit(train, params, seed=0, **_):  # the ALS engine on every catalogue
        typed = recipe.validate_hyperparameters(params)
        return fit_collaborative(recipe, train, typed, seed=seed, progress=None, should_stop=None, engine="als")

    out: dict = {"side": side, "source": source, "interactions": int(data.n_interactions)}
    jvm = None
    if side == "spark":
        from tastemaker.spark.session import spark_session
        from tastemaker.spark.training import use_spark_als

        wall = time.perf_counter()
        session = spark_session(args.spark_master)
        out["session_start_s"] = time.perf_counter() - wall
        backend = use_spark_als(args.spark_master)
        jvm = int(session.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    jvm_cpu = _proc_cpu(jvm) if jvm else 0.0
    cpu, wall, tree = time.process_time(), time.perf_counter(), tree_cpu()
    metrics = evaluate_solution(recipe, data, params, seed=0, fit=fit)
    # Known an hour before the final fit ends on Spark at 20M: shown at once (run_side passes it through).
    print(f"{PROGRESS}{side}: evaluation done after {time.perf_counter() - wall:.0f} s, NDCG@10 "
          f"{metrics['normalized_discounted_cumulative_gain_at_10']:.4f}; the final fit follows", file=sys.stderr,
          flush=True)
    fit(data, params, seed=0)
    out.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu, tree_cpu_s=tree_cpu() - tree,
               peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               ndcg10=metrics["normalized_discounted_cumulative_gain_at_10"], load_end=os.getloadavg()[0])
    if jvm:
        out.update(jvm_cpu_s=_proc_cpu(jvm) - jvm_cpu, jvm_peak_gib=_proc_peak(jvm) / 2**20, als_fits=backend.fits)
    return out


PROGRESS = "progress: "  # the prefix of a training side's stderr lines that its parent shows as they come


def run_side(cmd: list[str]) -> tuple[str, str]:
    """Run one training side; its stdout, and the last 2,000 characters of its stderr, whose progress lines are
    shown while it runs (the side's JSON line comes only at the end, which on Spark at 20M is hours away)."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        tail: list[str] = []

        def forward() -> None:
            assert child.stderr is not None
            for text in child.stderr:
                if text.startswith(PROGRESS):
                    print(f"   {text[len(PROGRESS):].rstrip()}", flush=True)
                tail.append(text)
                del tail[:-200]

        reader = threading.Thread(target=forward, daemon=True)
        reader.start()
        stdout = child.stdout.read() if child.stdout is not None else ""
        child.wait()
        reader.join()
    return stdout, "".join(tail)[-2000:]


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak(pid: int) -> float:
    """Peak resident set (VmHWM) of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return 0.0


def spark_training(args: argparse.Namespace) -> None:
    """Part 3: single-process vs Spark, each side a child process, interleaved; medians printed."""
    import json
    import statistics

    sources = ([args.movielens] if args.movielens else []) + ["generated"]
    sides = [side for side in ("local", "spark") if side in args.sides.split(",")]
    print(f"5. training on Spark {args.spark_master} vs single-process: evaluation fit + final fit, ALS engine, "
          f"{args.factors} factors; {args.training_rounds} interleaved rounds; load average before "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    for source in sources:
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for _ in range(args.training_rounds):
            for side in sides:
                cmd = [sys.executable, __file__, "--training-side", side, "--training-source", source,
                       "--users", str(args.users), "--items", str(args.items), "--interactions",
                       str(args.interactions), "--factors", str(args.factors), "--spark-master", args.spark_master]
                stdout, stderr_tail = run_side(cmd)
                line = [x for x in stdout.splitlines() if x.startswith("{")]
                if not line:
                    raise SystemExit(f"{side} side failed:\n{stderr_tail}")
                runs[side].append(json.loads(line[-1]))
                print(f"   {json.dumps(runs[side][-1])}", flush=True)

        def med(side: str, key: str, runs: dict[str, list[dict]] = runs) -> float:
            return statistics.median(r.get(key, 0.0) for r in runs[side])

        print(f"   {source}: {runs[sides[0]][0]['interactions']:,} interactions")
        if "local" in runs:
            print(f"     single-process : wall {med('local', 'wall_s'):7.1f} s  cpu {med('local', 'cpu_s'):7.1f} s  "
                  f"peak {med('local', 'peak_gib'):.2f} GiB  NDCG@10 {med('local', 'ndcg10'):.4f}")
        if "spark" in runs:
            print(f"     Spark          : wall {med('spark', 'wall_s'):7.1f} s  cpu {med('spark', 'cpu_s'):7.1f} s "
                  f"+ JVM {med('spark', 'jvm_cpu_s'):7.1f} s (process tree {med('spark', 'tree_cpu_s'):7.1f} s)  "
                  f"peak {med('spark', 'peak_gib'):.2f} GiB + JVM {med('spark', 'jvm_peak_gib'):.2f} GiB  "
                  f"NDCG@10 {med('spark', 'ndcg10'):.4f} (session start {med('spark', 'session_start_s'):.0f} s, "
                  "not counted)")
        if len(runs) == 2:
            local_ndcg, spark_ndcg = med("local", "ndcg10"), med("spark", "ndcg10")
            print(f"     Spark/single-process: wall x{med('spark', 'wall_s') / med('local', 'wall_s'):.2f}, "
                  f"CPU (process trees) x{med('spark', 'tree_cpu_s') / med('local', 'tree_cpu_s'):.1f}, "
                  f"NDCG@10 {100 * (spark_ndcg - local_ndcg) / local_ndcg:+.1f}%")
    print(f"   load average after {os.getloadavg()[0]:.1f}")


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


def batch_only(args: argparse.Namespace) -> None:
    """`--only batch`: the generated data fitted once (printed), then part 2 on its first --score-users users."""
    from train_scale import generate

    data = training_data(*generate(args.users, args.items, args.interactions), args.items)
    model, cpu, wall = fit(data, args.factors)
    print(f"{data.n_interactions:,} interactions, {data.n_users:,} users, {data.n_items:,} items, {args.factors} "
          f"factors: fit cpu {cpu:.1f} s, wall {wall:.1f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder))
        del data
        batch_both_ways(model, Path(folder), args.score_users, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=2_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--score-users", type=int, default=200_000)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-training", action="store_true", help="run part 5 (training on Spark) only")
    parser.add_argument("--training-rounds", type=int, default=1)
    parser.add_argument("--sides", default="local,spark",
                        help="--spark-training: the sides to run (local, spark or both); one side alone lets a size "
                             "too long for Spark be measured single-process (its NDCG parity then needs both)")
    parser.add_argument("--movielens", default=None, help="also compare on this Personalize-shaped folder")
    parser.add_argument("--training-side", choices=("local", "spark"), help=argparse.SUPPRESS)
    parser.add_argument("--training-source", default="generated", help=argparse.SUPPRESS)
    parser.add_argument("--import-rows", type=int, default=2_000_000)
    parser.add_argument("--segment-users", type=int, default=500_000)
    parser.add_argument("--segment-queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of parts 3 and 4")
    parser.add_argument("--only", default="",
                        help="comma-separated parts to run alone: batch (one fit, then part 2), imports, segments")
    args = parser.parse_args()
    if args.training_side:
        import json

        print(json.dumps(training_side(args.training_side, args.training_source, args)))
        return
    if args.spark_training:
        spark_training(args)
        return
    if args.only:
        parts = set(args.only.split(","))
        if "batch" in parts:
            batch_only(args)
        if "imports" in parts:
            import_rows(args)
        if "segments" in parts:
            segment_rows(args)
        return
    import numpy as np
    from train_scale import generate

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

        batch_both_ways(model, Path(folder), args.score_users, args)
    import_rows(args)
    segment_rows(args)


if __name__ == "__main__":
    main()
