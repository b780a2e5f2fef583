"""Feedback kinds: the same ratings trained as implicit events, as explicit feedback and as a hybrid.

    .venv/bin/python bench/feedback.py [DATASET_FOLDER ...] [--recipe aws-user-personalization]

Each user's newest 10% of events (at least one) are held out; the truth is the held-out items the user
rated LIKED (EVENT_VALUE >= 4), the same truth for every kind, so the kinds compete on predicting what
people liked. The training events (everything else) go through TrainingData.from_tables, the service's
own path, with the solution configuration of each kind:
  implicit  no configuration: every rating is an interaction (as if it were a view).
  explicit  eventValueThreshold 4: only ratings of 4 and 5 train (what Personalize advises for ratings).
  hybrid    the ratings become two event types, `like` (>= 4) and `view` (< 4), trained with
            eventsConfig [{like, weight 1.0}, {view, weight 0.3}]: low ratings still say the user
            looked, with less weight (per-event-type weights, as Personalize's eventsConfig offers).
Users keep their history as input (known users, history excluded from the top 10). NDCG@10 and HR@10.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastemaker.recipes.training_data import TrainingConfig

DATASETS = ("movielens-1m-partial", "amazon-2018-all-beauty-5core", "movielens-latest-small")
LIKED = 4.0
HELD_OUT_SHARE = 0.1
KINDS = {
    "implicit": TrainingConfig(),
    "explicit": TrainingConfig(event_value_threshold=LIKED),
    "hybrid": TrainingConfig(events_config=[("like", None, 1.0), ("view", None, 0.3)]),
}


def held_out_mask(table: pa.Table) -> np.ndarray:
    """True for each user's newest HELD_OUT_SHARE of events (ties broken by file order)."""
    users = table.column("USER_ID").to_numpy(zero_copy_only=False).astype(str)
    times = table.column("TIMESTAMP").to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(len(users)), times, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    lengths = np.diff(np.r_[starts, len(users)])
    held = np.zeros(len(users), bool)
    for start, length in zip(starts, lengths, strict=True):
        if length >= 2:
            k = max(1, round(HELD_OUT_SHARE * length))
            held[order[start + length - k:start + length]] = True
    return held


def hybrid_table(table: pa.Table) -> pa.Table:
    liked = pc.greater_equal(table.column("EVENT_VALUE"), LIKED).fill_null(False)
    types = pc.if_else(liked, pa.scalar("like"), pa.scalar("view"))
    return table.set_column(table.column_names.index("EVENT_TYPE"), "EVENT_TYPE", types)


def run_kind(kind: str, train_table: pa.Table, truth_table: pa.Table, items, recipe_name: str) -> dict:
    from tastemaker.evaluation.evaluate import recommend_for_split
    from tastemaker.evaluation.metrics import hit_rate_at_k, ndcg_at_k
    from tastemaker.evaluation.splits import Split
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.training_data import TrainingData

    config = KINDS[kind]
    table = hybrid_table(train_table) if kind == "hybrid" else train_table
    data = TrainingData.from_tables(table, items, None, config)
    user_code = {u: i for i, u in enumerate(data.user_ids.tolist())}
    item_code = {t: i for i, t in enumerate(data.item_ids.tolist())}
    truth_users = truth_table.column("USER_ID").to_numpy(zero_copy_only=False).astype(str)
    truth_items = truth_table.column("ITEM_ID").to_numpy(zero_copy_only=False).astype(str)
    per_user: dict[int, list[int]] = {}
    for user, item in zip(truth_users, truth_items, strict=True):
        if user in user_code and item in item_code:
            per_user.setdefault(user_code[user], []).append(item_code[item])
    offsets = data.user_offsets()
    queries = np.array(sorted(per_user), dtype=np.int64)
    inputs = [data.items[offsets[u]:offsets[u + 1]] for u in queries]
    truths = [np.unique(np.array(per_user[int(u)], dtype=np.int32)) for u in queries]
    split = Split(data, queries, inputs, truths, [np.ones(len(t), np.float32) for t in truths])
    started = time.process_time()
    model = get_recipe(recipe_name).fit(data, {}, seed=0)
    fit_cpu = time.process_time() - started
    recommended = recommend_for_split(model, split, known_users=True, k=10, exclude_history=True)
    return {"kind": kind, "training_events": data.n_interactions, "queries": len(queries),
            "ndcg_at_10": round(ndcg_at_k(recommended, truths, 10), 4),
            "hr_at_10": round(hit_rate_at_k(recommended, truths, 10), 4), "fit_cpu_s": round(fit_cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--recipe", default="aws-user-personalization")
    args = parser.parse_args()
    from _acc_data import _find, _read
    from defaults import dataset_folder

    print(f"| dataset | kind | training events | queries | NDCG@10 (liked) | HR@10 | fit CPU s |  ({args.recipe})")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        folder = dataset_folder(dataset)
        interactions_path = _find(folder, "interactions")
        items_path = _find(folder, "items")
        if interactions_path is None:
            raise SystemExit(f"no interactions.csv[.gz] in {folder}")
        table = _read(interactions_path)
        items = _read(items_path) if items_path else None
        held = held_out_mask(table)
        truth = table.filter(pa.array(held)).filter(pc.greater_equal(
            table.filter(pa.array(held)).column("EVENT_VALUE"), LIKED).fill_null(False))
        train = table.filter(pa.array(~held))
        for kind in KINDS:
            row = run_kind(kind, train, truth, items, args.recipe)
            print(f"| {Path(dataset).name} | {kind} | {row['training_events']} | {row['queries']} | "
                  f"{row['ndcg_at_10']} | {row['hr_at_10']} | {row['fit_cpu_s']} |", flush=True)


if __name__ == "__main__":
    main()
