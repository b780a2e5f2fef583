"""Accuracy benchmark: every Tastemaker recipe vs library baselines on two protocols (one table, ratios).

    .venv/bin/python bench/accuracy.py /work/shared/data/movielens-1m-partial/personalize [--recipes a,b]
    .venv/bin/python bench/accuracy.py DATASET --protocols personalize --split-seeds 5 \
        --recipes aws-user-personalization,aws-user-personalization-v2

Protocols:
  personalize  Personalize's GetSolutionMetrics split: 10% of users held out, their oldest 90% of events are
               the input (unknown users, folded in), the newest 10% the truth. Our recipes are scored as
               Personalize scores (no history exclusion); baselines exclude the input history (as a filter
               would), which can only help them.
  llo          leave-last-out: each user's last event is the truth, full ranking, history excluded.
With --split-seeds N, Personalize's split is drawn N times (seeds 0..N-1: another 10% of users each time) and each
model is trained and scored on every draw; a model's row pools the test queries of all draws (its NDCG@10 is their
mean, its times the mean per draw), so a small dataset's ratios rest on N times the queries. The draws are
independent, so a user can be a test user in more than one of them.
Baselines are tuned with optuna on a validation split carved from the training part of each protocol.
Each model runs in a child process so its training time and peak memory are its own. The neural v2 recipes
(tens of minutes on 2 CPU cores) run only when named in --recipes; bench/sasrec_bench.py covers them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PERSONALIZED_TYPES = ("USER_PERSONALIZATION", "PERSONALIZED_RANKING")
RECIPE_TYPES_BENCHED = ("USER_PERSONALIZATION", "PERSONALIZED_RANKING", "POPULAR_ITEMS", "RELATED_ITEMS")
PER_QUERY = "per_query_ndcg_at_10"
V1 = "aws-user-personalization"


def run_child(dataset: str, model: str, protocol: str, split_seed: int = 0) -> dict:
    """Train and evaluate one model for one protocol in a fresh process; returns its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, dataset, "--child", model, "--protocol", protocol, "--split-seed", str(split_seed)],
        capture_output=True, text=True, check=False,
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def child(dataset: str, model: str, protocol: str, split_seed: int) -> None:
    import numpy
    from _acc_baselines import BASELINES, evaluate_scorer, tune
    from _acc_data import load_dataset

    from tastemaker.evaluation.evaluate import recommend_for_split
    from tastemaker.evaluation.metrics import hit_rate_at_k, ndcg_at_k, ndcg_per_query, personalize_metrics
    from tastemaker.evaluation.splits import leave_last_out_split, personalize_split
    from tastemaker.recipes import get_recipe

    data = load_dataset(Path(dataset))
    known = protocol == "llo"
    split = leave_last_out_split(data) if known else personalize_split(data, seed=split_seed)
    result: dict = {"model": model, "protocol": protocol}
    if model in BASELINES:
        validation = leave_last_out_split(split.train) if known else personalize_split(split.train,
                                                                                         seed=split_seed + 1)
        started = time.perf_counter()
        params = tune(model, validation, known)
        result["tune_s"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        scorer = BASELINES[model][0](split.train, split, known, params)
        result["fit_s"] = round(time.perf_counter() - started, 2)
        recommended = evaluate_scorer(scorer, split, known)
        result["params"] = params
    else:
        recipe = get_recipe(model)
        started, cpu_started = time.perf_counter(), time.process_time()
        fitted = recipe.fit(split.train, {}, seed=0)
        result["fit_s"] = round(time.perf_counter() - started, 2)
        result["fit_cpu_s"] = round(time.process_time() - cpu_started, 1)  # wall time stretches on a shared machine
        if "training" in fitted.settings:  # the v2 epoch loop: epochs run, kept epoch, validation NDCG@10
            result["training"] = fitted.settings["training"]
        recommended = recommend_for_split(fitted, split, known_users=known, exclude_history=known)
    if known:
        result["ndcg_at_10"] = round(ndcg_at_k(recommended, split.truths, 10), 4)
        result["hr_at_10"] = round(hit_rate_at_k(recommended, split.truths, 10), 4)
    else:
        metrics = personalize_metrics(recommended, split.truths, data.n_items)
        result["ndcg_at_10"] = metrics["normalized_discounted_cumulative_gain_at_10"]
        result["precision_at_10"] = metrics["precision_at_10"]
        result["mrr_at_25"] = metrics["mean_reciprocal_rank_at_25"]
        result["coverage"] = metrics["coverage"]
    result[PER_QUERY] = numpy.round(ndcg_per_query(recommended, split.truths, 10), 6).tolist()  # for the intervals
    result["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="folder with interactions.csv[.gz] (+ items.csv, users.csv)")
    parser.add_argument("--recipes", help="comma-separated recipe/baseline names (default: all)")
    parser.add_argument("--protocols", default="personalize,llo")
    parser.add_argument("--split-seeds", type=int, default=1,
                        help="draws of Personalize's split, each model trained on every draw (pooled queries)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for v2 training (0: the recipe's choice); 1 lets two runs share 2 cores")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", help=argparse.SUPPRESS)
    parser.add_argument("--split-seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from _acc_data import limit_v2_threads

    limit_v2_threads(args.threads)  # the children read it from the environment
    if args.child:
        child(args.dataset, args.child, args.protocol, args.split_seed)
        return
    from _acc_baselines import BASELINES

    from tastemaker.recipes import all_recipes

    ours = [n for n, r in sorted(all_recipes().items()) if r.available and r.recipe_type in RECIPE_TYPES_BENCHED]
    models = ours + list(BASELINES)
    if args.recipes:
        wanted = args.recipes.split(",")
        models = [m for m in models if m in wanted]
    else:
        models = [m for m in models if not m.endswith("-v2")]
    rows = []
    for protocol in args.protocols.split(","):
        seeds = range(args.split_seeds if protocol == "personalize" else 1)
        for model in models:
            draws = []
            for seed in seeds:
                result = run_child(args.dataset, model, protocol, seed)
                result.setdefault("model", model)
                result.setdefault("protocol", protocol)
                result["split_seed"] = seed
                draws.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != PER_QUERY}), file=sys.stderr, flush=True)
            rows.append(pooled(draws))
    print_table(rows, {n: r.recipe_type for n, r in all_recipes().items()}, args.dataset)


def pooled(draws: list[dict]) -> dict:
    """One model's results over several draws of a split as one row: NDCG@10 the mean over every draw's test
    queries, the other metrics and the times the mean per draw, peak memory the largest; an error in any draw
    makes the row an error."""
    if len(draws) == 1 or any("error" in d for d in draws):
        return next((d for d in draws if "error" in d), draws[0])
    import numpy as np

    row = {"model": draws[0]["model"], "protocol": draws[0]["protocol"], "split_seeds": len(draws)}
    queries = [q for d in draws for q in d[PER_QUERY]]
    row[PER_QUERY] = queries
    row["ndcg_at_10"] = round(float(np.mean(queries)), 4)
    for key in ("hr_at_10", "precision_at_10", "mrr_at_25", "coverage", "fit_s", "fit_cpu_s", "tune_s"):
        if all(key in d for d in draws):
            row[key] = round(float(np.mean([d[key] for d in draws])), 4)
    row["peak_mib"] = max(d["peak_mib"] for d in draws)
    row["ndcg_at_10_per_draw"] = [d["ndcg_at_10"] for d in draws]
    return row


def print_table(rows: list[dict], recipe_types: dict[str, str], dataset: str) -> None:
    print(f"\nAccuracy on {dataset}")
    draws = max((r.get("split_seeds", 1) for r in rows), default=1)
    if draws > 1:
        print(f"(Personalize's split drawn {draws} times: NDCG@10 over the pooled test queries; times per draw)")
    header = f"{'protocol':11s} {'model':32s} {'NDCG@10':>8s} {'HR@10':>6s} {'P@10':>6s} {'MRR@25':>7s} " \
             f"{'cover':>6s} {'fit s':>7s} {'tune s':>7s} {'peak MiB':>8s}"
    print(header)
    print("-" * len(header))

    def fmt(row: dict, key: str, width: int) -> str:
        value = row.get(key)
        return f"{value:>{width}}" if value is not None else " " * (width - 1) + "-"

    for row in rows:
        if "error" in row:
            print(f"{row['protocol']:11s} {row['model']:32s} ERROR {row['error']}")
            continue
        print(f"{row['protocol']:11s} {row['model']:32s} {fmt(row, 'ndcg_at_10', 8)} {fmt(row, 'hr_at_10', 6)} "
              f"{fmt(row, 'precision_at_10', 6)} {fmt(row, 'mrr_at_25', 7)} {fmt(row, 'coverage', 6)} "
              f"{fmt(row, 'fit_s', 7)} {fmt(row, 'tune_s', 7)} {fmt(row, 'peak_mib', 8)}"
              + (f"  per draw {row['ndcg_at_10_per_draw']}" if "ndcg_at_10_per_draw" in row else ""))
    print()
    for protocol in sorted({r["protocol"] for r in rows}):
        ok = [r for r in rows if r["protocol"] == protocol and "error" not in r]
        ours = [r for r in ok if recipe_types.get(r["model"]) in PERSONALIZED_TYPES]
        base = [r for r in ok if r["model"].startswith("baseline-")]
        if ours and base:
            best_ours = max(ours, key=lambda r: r["ndcg_at_10"])
            best_base = max(base, key=lambda r: r["ndcg_at_10"])
            ratio = best_ours["ndcg_at_10"] / best_base["ndcg_at_10"] if best_base["ndcg_at_10"] else float("inf")
            print(f"{protocol}: best ours {best_ours['model']} NDCG@10 {best_ours['ndcg_at_10']} / best baseline "
                  f"{best_base['model']} {best_base['ndcg_at_10']} = {ratio:.2f}x")
        print_intervals(protocol, ours, base)


def print_intervals(protocol: str, ours: list[dict], base: list[dict]) -> None:
    """Each of our personalized recipes against v1 and against the best baseline: the NDCG@10 ratio with its 95%
    paired bootstrap interval over the test queries (how far the split's draw alone could move it)."""
    import numpy as np

    from tastemaker.evaluation.metrics import paired_ratio_interval

    references = [r for r in ours if r["model"] == V1]
    if base:
        references.append(max(base, key=lambda r: r["ndcg_at_10"]))
    for row in ours:
        for ref in references:
            if ref is row or PER_QUERY not in row or PER_QUERY not in ref:
                continue
            ratio, low, high = paired_ratio_interval(np.array(row[PER_QUERY]), np.array(ref[PER_QUERY]))
            print(f"{protocol}: {row['model']} / {ref['model']} = {ratio:.3f}x (95% interval {low:.3f} - "
                  f"{high:.3f}, {len(row[PER_QUERY])} queries)")


if __name__ == "__main__":
    main()
