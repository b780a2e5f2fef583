"""Related-items recipes judged item to item: does "similar to X" predict what people take after X?

    .venv/bin/python bench/related_items.py [DATASET_FOLDER ...] [--json OUT]

Protocol (next-item co-occurrence held out by time): each user's newest 10% of events (at least one) are
held out and every model trains on the rest. Each user is one query: the item of their last training event
is the query item, and the first 10 distinct items they interacted with after it (that were not already in
their history) are the truth. Each model's related items for the query item, with the
user's history removed (as a filter would), are scored by NDCG@10 and HR@10, over all queries and over the
"cold" queries whose item had fewer than COLD_EVENTS training events (where metadata and text matter).
Models: aws-sims (defaults, and Personalize's 0.9 item-count cap), aws-similar-items, aws-semantic-similarity,
TF-IDF cosine over the text alone (what aws-semantic-similarity was before), item-kNN (implicit's cosine, K=100,
not tuned) and popularity.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np

from tastemaker.errors import InvalidInputException
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData

DATA = Path("/work/shared/data")
DATASETS = ("movielens-latest-small", "movielens-1m-partial", "amazon-2018-all-beauty-5core")
HELD_OUT_SHARE = 0.1
TRUTH_ITEMS = 10
COLD_EVENTS = 10


def time_split(data: TrainingData) -> tuple[TrainingData, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """(training events, query items, users' training histories, truths) for the protocol above."""
    offsets = data.user_offsets()
    held_out = np.zeros(data.n_interactions, bool)
    queries, histories, truths = [], [], []
    for user in range(data.n_users):
        lo, hi = int(offsets[user]), int(offsets[user + 1])
        if hi - lo < 2:
            continue
        cut = hi - max(1, round(HELD_OUT_SHARE * (hi - lo)))
        history = data.items[lo:cut]
        seen = set(history.tolist())
        after = [int(i) for i in dict.fromkeys(data.items[cut:hi].tolist()) if i not in seen]
        held_out[cut:hi] = True
        if after:
            queries.append(int(history[-1]))
            histories.append(np.unique(history))
            truths.append(np.array(after[:TRUTH_ITEMS], dtype=np.int64))
    return data.subset_events(~held_out), np.array(queries, dtype=np.int64), histories, truths


def recipe_scorer(name: str, params: dict[str, str]):
    def fit(train: TrainingData):
        from tastemaker.recipes import get_recipe

        return get_recipe(name).fit(train, params, seed=0).score_items
    return fit


def item_knn(train: TrainingData):
    from implicit.nearest_neighbours import CosineRecommender

    model = CosineRecommender(K=100)
    model.fit(train.user_item_matrix(binary=True), show_progress=False)
    sim = model.similarity.tocsr()

    def score(items: np.ndarray) -> np.ndarray:
        out = sim[items].toarray().astype(np.float32)
        out[np.arange(len(items)), items] = -1.0
        return out
    return score


def tfidf_text(train: TrainingData):
    """Cosine of TF-IDF over the item name and textual fields only: aws-semantic-similarity before issue #18."""
    from tastemaker.recipes.features import content_scores, item_text, tfidf

    if train.item_metadata is None or not train.item_metadata.textual:
        raise InsufficientDataError("no textual field")
    features = tfidf(item_text(train.item_metadata, train.n_items))

    def score(items: np.ndarray) -> np.ndarray:
        out = content_scores(features, items)
        out[np.arange(len(items)), items] = -1.0
        return out
    return score


def popularity(train: TrainingData):
    pop = train.unique_user_counts().astype(np.float32)
    return lambda items: np.tile(pop, (len(items), 1))


MODELS = {
    "aws-sims": recipe_scorer("aws-sims", {}),
    "aws-sims (max_item_interaction_count_percentile=0.9)": recipe_scorer(
        "aws-sims", {"max_item_interaction_count_percentile": "0.9"}),
    "aws-similar-items": recipe_scorer("aws-similar-items", {}),
    "aws-semantic-similarity": recipe_scorer("aws-semantic-similarity", {}),
    "baseline TF-IDF of the text (semantic similarity before)": tfidf_text,
    "baseline item-kNN (cosine, K=100)": item_knn,
    "baseline popularity": popularity,
}


def evaluate(score, queries: np.ndarray, histories: list[np.ndarray], truths: list[np.ndarray],
             mask: np.ndarray) -> dict[str, float]:
    from tastemaker.evaluation.metrics import hit_rate_at_k, ndcg_at_k, top_k

    rows = []
    for start in range(0, len(queries), 256):
        scores = score(queries[start:start + 256])
        rows.append(top_k(scores, 10, histories[start:start + 256]))
    recommended = np.concatenate(rows)
    picked = [t for t, m in zip(truths, mask, strict=True) if m]
    return {"ndcg_at_10": round(ndcg_at_k(recommended[mask], picked, 10), 4),
            "hr_at_10": round(hit_rate_at_k(recommended[mask], picked, 10), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    from _acc_data import load_dataset
    from defaults import dataset_folder

    rows = []
    for dataset in args.datasets:
        data = load_dataset(dataset_folder(dataset))
        train, queries, histories, truths = time_split(data)
        counts = np.bincount(train.items, minlength=train.n_items)
        cold = counts[queries] < COLD_EVENTS
        for name, fit in MODELS.items():
            started = time.process_time()
            try:
                score = fit(train)
            except (InsufficientDataError, InvalidInputException) as exc:  # e.g. no text for semantic similarity
                rows.append({"dataset": Path(dataset).name, "model": name, "error": str(exc)[:120]})
                continue
            row = {"dataset": Path(dataset).name, "model": name, "queries": len(queries),
                   "cold_queries": int(cold.sum()), **evaluate(score, queries, histories, truths,
                                                               np.ones(len(queries), bool))}
            if cold.any():
                cold_metrics = evaluate(score, queries, histories, truths, cold)
                row["cold_ndcg_at_10"], row["cold_hr_at_10"] = cold_metrics["ndcg_at_10"], cold_metrics["hr_at_10"]
            row["cpu_s"] = round(time.process_time() - started, 1)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("| dataset | model | NDCG@10 | HR@10 | cold NDCG@10 / HR@10 (queries) | CPU s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['dataset']} | {r['model']} | {r['error']} | | | |")
            continue
        cold_text = (f"{r['cold_ndcg_at_10']} / {r['cold_hr_at_10']} ({r['cold_queries']})"
                     if "cold_ndcg_at_10" in r else "-")
        print(f"| {r['dataset']} | {r['model']} | {r['ndcg_at_10']} | {r['hr_at_10']} | {cold_text} | {r['cpu_s']} |")


if __name__ == "__main__":
    main()
