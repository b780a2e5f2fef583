"""Offline evaluation of a recipe the way GetSolutionMetrics reports it, plus leave-last-out for benchmarks.

Choice (documented): Personalize's metrics do not exclude a held-out user's input history from the top-25 —
recommendations are whatever the model returns for a GetRecommendations call without filters. We do the
same, so a recipe that recommends already-seen items pays for it (our collaborative engine learns from the
data's repeat rate whether to rank seen items last). The leave-last-out protocol excludes history, as the
published sequential-recommendation results do.

PERSONALIZED_RANKING recipes are evaluated on what they rank: GetPersonalizedRanking orders a caller's
inputList, never the whole catalogue. Each held-out query gets such a list -- its truth items plus items the
user never touched, drawn at random (seeded) up to RANKING_LIST_SIZE items, shuffled -- the model ranks it
from the query's input events, and the same metric definitions (NDCG, precision, MRR at 5/10/25; coverage of
the catalogue by the ranked top 25) are computed on the ranked list. So a ranking recipe and a
USER_PERSONALIZATION recipe trained on the same data report different metrics, each from its own model and
its own task, and ranking metrics are not comparable with recommendation metrics (a list of 100 is easier
to order than a catalogue is to search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tastemaker.evaluation.metrics import (
    TOP_N,
    hit_rate_at_k,
    ndcg_at_k,
    personalize_metrics,
    segment_metrics,
    top_k,
)
from tastemaker.evaluation.splits import Split, leave_last_out_split, personalize_split, segmentation_split
from tastemaker.recipes.base import Recipe, TrainedModel
from tastemaker.recipes.training_data import TrainingData

QUERY_BATCH = 256
# USER_SEGMENTATION: held-out items scored at most (a seeded sample beyond it: the metrics are means over items),
# and scored in (items, users) float32 blocks of about this many elements, so the memory stays bounded with
# the number of users (1M users x 23k held-out items would be 86 GiB at once).
SEGMENT_EVAL_ITEMS = 2000
SEGMENT_SCORE_ELEMENTS = 32 << 20
RANKING_LIST_SIZE = 100  # items per evaluated inputList (GetPersonalizedRanking takes up to 500)


def recommend_for_split(model: TrainedModel, split: Split, known_users: bool, k: int = TOP_N,
                        exclude_history: bool = False, seed: int = 0) -> np.ndarray:
    """(Q, k) recommendations for each query of the split, in batches; for a PERSONALIZED_RANKING model, the
    top k of its ranking of each query's evaluation list (ranking_lists), padded with -1."""
    if model.recipe_type == "PERSONALIZED_RANKING":
        return _rank_for_split(model, split, known_users, k, ranking_lists(split, model.n_items, seed))
    rows = []
    for start in range(0, len(split.inputs), QUERY_BATCH):
        inputs = split.inputs[start:start + QUERY_BATCH]
        if model.recipe_type == "RELATED_ITEMS":
            # Related items are queried with the user's most recent input item.
            last = np.array([h[-1] if len(h) else -1 for h in inputs], dtype=np.int64)
            scores = model.score_items(last)
        else:
            users = (split.query_users[start:start + QUERY_BATCH] if known_users
                     else np.full(len(inputs), -1, dtype=np.int64))
            scores = model.score_users(users, inputs)
        rows.append(top_k(scores, k, inputs if exclude_history else None))
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def ranking_lists(split: Split, n_items: int, seed: int = 0, size: int = RANKING_LIST_SIZE) -> list[np.ndarray]:
    """Per query, the inputList a ranking recipe is evaluated on: the truth items plus random items the user
    has not interacted with (neither input nor truth), up to `size` items, in random order (seeded)."""
    rng = np.random.default_rng(seed + 7919)
    lists = []
    for inputs, truth in zip(split.inputs, split.truths, strict=True):
        truth = np.asarray(truth, dtype=np.int64)[:size]
        seen = np.union1d(np.asarray(inputs, dtype=np.int64), truth)
        need = min(size - len(truth), n_items - len(seen))
        negatives = np.empty(0, dtype=np.int64)
        for _ in range(16):  # rejection sampling: a handful of rounds even for users who saw most items
            if len(negatives) >= need:
                break
            draw = rng.integers(0, n_items, size=2 * need + 16)
            draw = draw[~np.isin(draw, seen) & ~np.isin(draw, negatives)]
            _, first = np.unique(draw, return_index=True)
            negatives = np.concatenate([negatives, draw[np.sort(first)]])
        candidates = np.concatenate([truth, negatives[:max(need, 0)]])
        lists.append(rng.permutation(candidates))
    return lists


def _rank_for_split(model: TrainedModel, split: Split, known_users: bool, k: int,
                    lists: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(lists), k), -1, dtype=np.int64)
    for start in range(0, len(split.inputs), QUERY_BATCH):
        inputs = split.inputs[start:start + QUERY_BATCH]
        users = (split.query_users[start:start + QUERY_BATCH] if known_users
                 else np.full(len(inputs), -1, dtype=np.int64))
        scores = model.score_users(users, inputs)
        for row in range(len(inputs)):
            candidates = lists[start + row]
            ranked = candidates[np.argsort(-np.asarray(scores[row, candidates], dtype=np.float64), kind="stable")]
            out[start + row, :min(k, len(ranked))] = ranked[:k]
    return out


def evaluate_solution(recipe: Recipe, data: TrainingData, params: dict[str, str], seed: int = 0,
                      fit: Callable[..., TrainedModel] | None = None,
                      report: dict[str, Any] | None = None) -> dict[str, float]:
    """GetSolutionMetrics for `recipe` on `data`: fit on the training part, score held-out queries.

    With `report`, the per-query evidence is added to it (held-out user ids, input and truth item ids, the
    top-25 recommended ids) so anyone can recompute the metrics independently.
    """
    fit = fit or recipe.fit
    if recipe.recipe_type == "PERSONALIZED_ACTIONS":
        from tastemaker.recipes.next_best_action import evaluate_actions

        return evaluate_actions(recipe, data, params, seed, report)
    if recipe.recipe_type == "USER_SEGMENTATION":
        seg = segmentation_split(data, seed)
        model = fit(seg.train, params, seed=seed)
        metrics: dict[str, float] = {}
        if len(seg.test_items):
            items, users = seg.test_items.astype(np.int64), seg.test_users
            if len(items) > SEGMENT_EVAL_ITEMS:
                pick = np.sort(np.random.default_rng(seed).choice(len(items), SEGMENT_EVAL_ITEMS, replace=False))
                items, users = items[pick], [users[i] for i in pick.tolist()]
            k = max(1, int(np.ceil(0.01 * data.n_users)))
            step = max(1, SEGMENT_SCORE_ELEMENTS // max(1, data.n_users))
            ranked = np.concatenate([top_k(model.score_users_for_items(items[start:start + step]), k)
                                     for start in range(0, len(items), step)])
            metrics = segment_metrics(ranked, users, data.n_users)
        return metrics or {"hit": 0.0, "recall": 0.0}
    split = personalize_split(data, seed)
    model = fit(split.train, params, seed=seed)
    recommended = recommend_for_split(model, split, known_users=False, seed=seed)
    weights = split.truth_weights if data.has_event_weights else None
    if report is not None:
        ids = data.item_ids
        protocol = "personalize: 10% of users held out; oldest 90% of their events in, newest 10% truth"
        if recipe.recipe_type == "PERSONALIZED_RANKING":
            protocol += (f"; ranking: each query ranks an inputList of its truth items plus random unseen items "
                         f"({RANKING_LIST_SIZE} items in all); -1 pads lists shorter than 25")
        report.update({
            "protocol": protocol,
            "catalogue_size": int(data.n_items), "seed": seed,
            "queries": [{"user_id": str(data.user_ids[user]), "input": ids[inputs].tolist(),
                         "truth": ids[truth].tolist(), "truth_weights": [float(w) for w in tw],
                         "recommended": ids[rec[rec >= 0]].tolist()}
                        for user, inputs, truth, tw, rec in zip(split.query_users, split.inputs, split.truths,
                                                                split.truth_weights, recommended, strict=True)],
        })
    return personalize_metrics(recommended, split.truths, data.n_items, weights)


def evaluate_leave_last_out(recipe: Recipe, data: TrainingData, params: dict[str, str], seed: int = 0,
                            k: int = 10) -> dict[str, Any]:
    """Leave-last-out, full ranking over the catalogue, history excluded: HR@k and NDCG@k."""
    split = leave_last_out_split(data)
    model = recipe.fit(split.train, params, seed=seed)
    recommended = recommend_for_split(model, split, known_users=True, k=k, exclude_history=True)
    return {f"hr_at_{k}": round(hit_rate_at_k(recommended, split.truths, k), 4),
            f"ndcg_at_{k}": round(ndcg_at_k(recommended, split.truths, k), 4)}
