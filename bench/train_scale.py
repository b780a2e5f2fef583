"""Training at scale: a whole aws-user-personalization solution version beside one raw implicit ALS fit.

    .venv/bin/python bench/train_scale.py [--users 1000000 --items 100000 --interactions 6000000]
                                          [--factors 64] [--repeat 1]

The data is generated with the serving benchmark's shape (power-law user activity, Zipf-like item
popularity), written once as the Parquet part an import writes. Then, each in its own process so that the
printed peak RSS (ru_maxrss) is its own, and interleaved when --repeat > 1:

- raw: the interaction matrix built from integer codes and one `implicit` CPU ALS fit (--factors, 15
  iterations, implicit's own threads) -- the work a trainer cannot avoid;
- version: `tastemaker.jobs.train_process.run` on that part, exactly as a CreateSolutionVersion job runs
  it (read, vocabularies, the offline evaluation with its own fit, the final fit, model save), then the
  model directory put into a local blob store (upload) and the serving index built for its item factors
  (index; done by serving when a campaign deploys it, printed apart from the version's total).

The recipe is given hidden_dimension=--factors so both sides factor the same matrix at the same rank. The
phases are timed by wrapping the functions the job calls (no change to the job), and printed as wall
seconds; the process CPU seconds (all threads) are printed too, since on a shared machine wall time moves
with the other tenants. Target (#22): version total <= 2.5x the raw fit, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = 1_600_000_000
ITERATIONS = 15
SCHEMA = json.dumps({
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
               {"name": "TIMESTAMP", "type": "long"}], "version": "1.0"})


def generate(n_users: int, n_items: int, n_interactions: int, seed: int = 0):
    """(user codes int32, item codes int32, timestamps int64) with power-law activity and popularity."""
    import numpy as np

    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * n_interactions)).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int32), per_user)[:n_interactions]
    popularity = 1.0 / np.power(np.arange(n_items) + 10.0, 0.9)
    items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum()).astype(np.int32)
    times = START + rng.integers(0, 365 * 86_400, size=len(users), dtype=np.int64)
    return users, items, times


def write_part(path: Path, users, items, times) -> None:
    """The generated interactions as one Parquet part with string ids (as an import stores them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    user_names = pa.array([f"user-{u}" for u in range(int(users.max()) + 1)])
    item_names = pa.array([f"item-{i}" for i in range(int(items.max()) + 1)])
    table = pa.table({
        "USER_ID": pa.DictionaryArray.from_arrays(pa.array(users), user_names).cast(pa.string()),
        "ITEM_ID": pa.DictionaryArray.from_arrays(pa.array(items), item_names).cast(pa.string()),
        "TIMESTAMP": pa.array(times),
    })
    pq.write_table(table, path)


class Phases:
    """Wall and process CPU seconds per phase path ("evaluation/als"), from wrapped functions; nested calls
    nest (a parent's time includes its children's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.timed(name, lambda: original(*args, **kwargs))

        setattr(owner, attribute, timed)

    def timed(self, name: str, call: Callable[[], Any]) -> Any:
        self.stack.append(name)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return call()
        finally:
            path = "/".join(self.stack)
            self.seconds[path] += time.perf_counter() - started
            self.cpu[path] += time.process_time() - cpu
            self.stack.pop()


def run_version(part: Path, work: Path, factors: int) -> dict[str, Any]:
    import tastemaker.recipes.user_personalization as up
    from tastemaker import evaluation
    from tastemaker.evaluation import evaluate
    from tastemaker.jobs import train_process
    from tastemaker.jobs.spec import DatasetInput, TrainingSpec
    from tastemaker.recipes.training_data import TrainingData
    from tastemaker.store.blobs import LocalBlobStore

    phases = Phases()
    phases.wrap(train_process, "load_tables", "read")
    from_tables = TrainingData.from_tables
    TrainingData.from_tables = staticmethod(  # type: ignore[method-assign]
        lambda *a, **k: phases.timed("vocabularies", lambda: from_tables(*a, **k)))
    phases.wrap(evaluation, "evaluate_solution", "evaluation")
    phases.wrap(evaluate, "personalize_split", "split")
    phases.wrap(evaluate, "recommend_for_split", "scoring")
    phases.wrap(up, "fit_als", "als")
    phases.wrap(up, "fit_transitions", "transitions")
    phases.wrap(up, "stored_histories", "histories")
    phases.wrap(up, "cold_start_scores", "cold start")
    from tastemaker.recipes import base

    phases.wrap(base.TrainedModel, "save", "save")
    spec = TrainingSpec(recipe="aws-user-personalization", out=work / "out",
                        datasets={"Interactions": DatasetInput(SCHEMA, None, (str(part),))},
                        params={"hidden_dimension": str(factors)}, seed=0)
    spec.out.mkdir(parents=True, exist_ok=True)  # the job runner makes it before the training process starts
    cpu0, started = time.process_time(), time.perf_counter()
    result = phases.timed("version", lambda: train_process.run(spec, work / "STOP"))
    blobs = LocalBlobStore(work / "blobs")
    phases.timed("upload", lambda: blobs.put_dir("models/v1", spec.out / "model"))
    total_wall, total_cpu = time.perf_counter() - started, time.process_time() - cpu0
    model_bytes = sum(p.stat().st_size for p in (spec.out / "model").iterdir())
    from tastemaker.recipes.base import load_model

    model = load_model(spec.out / "model", mmap=True)
    if "item_factors" in model.arrays:
        from tastemaker.serving.ann import FactorIndex, ann_available

        if ann_available():
            phases.timed("index (at deploy)", lambda: FactorIndex(model.arrays["item_factors"]))
    return {"wall_s": round(total_wall, 2), "cpu_s": round(total_cpu, 2), "metrics": result.get("metrics"),
            "engine": model.settings.get("engine"), "users": result.get("n_users"),
            "model_mib": round(model_bytes / 2**20, 1),
            "phases": {k: [round(v, 2), round(phases.cpu[k], 2)] for k, v in phases.seconds.items()}}


def run_raw(users, items, n_items: int, factors: int) -> dict[str, Any]:
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    cpu0, started = time.process_time(), time.perf_counter()
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)),
                           shape=(int(users.max()) + 1, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    prepared = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=factors, regularization=0.1, alpha=10.0, iterations=ITERATIONS,
                                        random_state=0, num_threads=0)
        model.fit(matrix, show_progress=False)
    # wall and CPU over the same span, the matrix included (the docstring's raw side; CPU always included it)
    return {"wall_s": round(time.perf_counter() - started, 2), "cpu_s": round(time.process_time() - cpu0, 2),
            "matrix_s": round(prepared - started, 2), "fit_s": round(time.perf_counter() - prepared, 2)}


def child(side: str, args: argparse.Namespace) -> None:
    work = Path(args.work)
    if side == "raw":
        import numpy as np

        codes = np.load(work / "codes.npz")
        result = run_raw(codes["users"], codes["items"], args.items, args.factors)
    else:
        run_dir = Path(tempfile.mkdtemp(dir=work))
        try:
            result = run_version(work / "interactions.parquet", run_dir, args.factors)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=6_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds (medians are printed)")
    parser.add_argument("--work", help="folder for the generated part (default: a temporary folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    import numpy as np

    work = Path(args.work or tempfile.mkdtemp(prefix="train-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    users, items, times = generate(args.users, args.items, args.interactions)
    np.savez(work / "codes.npz", users=users, items=items)
    write_part(work / "interactions.parquet", users, items, times)
    print(f"generated {len(users):,} interactions, {len(np.unique(users)):,} users, {args.items:,} items "
          f"in {time.perf_counter() - started:.0f} s ({work})", flush=True)
    del users, items, times
    rounds: dict[str, list[dict[str, Any]]] = {"raw": [], "version": []}
    try:
        for _ in range(args.repeat):
            for side in ("raw", "version"):
                out = subprocess.run([sys.executable, __file__, "--child", side, "--work", str(work),
                                      "--items", str(args.items), "--factors", str(args.factors)],
                                     capture_output=True, text=True, check=False)
                lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                if not lines:
                    sys.exit(f"{side} failed:\n{out.stderr[-3000:]}")
                rounds[side].append(json.loads(lines[-1]))
                print(side, lines[-1], flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    report(rounds, args)


def report(rounds: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[side])

    raw_wall, raw_cpu = median("raw", "wall_s"), median("raw", "cpu_s")
    wall, cpu = median("version", "wall_s"), median("version", "cpu_s")
    last = rounds["version"][-1]
    print(f"\n{args.interactions:,} interactions, {args.users:,} users, {args.items:,} items, "
          f"{args.factors} factors, {ITERATIONS} iterations; medians of {args.repeat} interleaved round(s)")
    print(f"raw implicit ALS fit : wall {raw_wall:7.1f} s  cpu {raw_cpu:7.1f} s  "
          f"peak {median('raw', 'peak_rss_gib'):.2f} GiB  (matrix {median('raw', 'matrix_s'):.1f} s + "
          f"fit {median('raw', 'fit_s'):.1f} s wall)")
    print(f"solution version     : wall {wall:7.1f} s  cpu {cpu:7.1f} s  "
          f"peak {median('version', 'peak_rss_gib'):.2f} GiB  (engine {last['engine']}, "
          f"model {last['model_mib']} MiB)")
    print(f"ratio version / raw fit: wall {wall / raw_wall:.2f}x, cpu {cpu / raw_cpu:.2f}x (target <= 2.5x)")
    print("split of the version (last round; nested phases are part of their parent):")
    print(f"  {'phase':<40} {'wall s':>8} {'cpu s':>8}")
    for name, (seconds, cpu_seconds) in last["phases"].items():
        print(f"  {name:<40} {seconds:8.2f} {cpu_seconds:8.2f}")
    print(f"metrics: {json.dumps(last['metrics'])}")


if __name__ == "__main__":
    main()
