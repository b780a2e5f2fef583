"""Ranking metrics with Amazon Personalize's definitions (GetSolutionMetrics keys)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tastemaker.recipes.training_data import distinct

METRIC_K = (5, 10, 25)
TOP_N = 25


def top_k(scores: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """(B, k) indices of the highest scores, best first; `exclude` rows' items are never returned."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None:
        for row, items in enumerate(exclude):
            if len(items):
                scores[row, items] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def hit_matrix(recommended: np.ndarray, truths: Sequence[np.ndarray]) -> np.ndarray:
    """(B, k) bool: whether each recommended item is relevant for its query."""
    return np.array([np.isin(row, truth) for row, truth in zip(recommended, truths, strict=True)], dtype=bool).reshape(
        recommended.shape
    )


def _discounts(k: int) -> np.ndarray:
    # 1 / log(1 + position), position 1-based; the log base cancels in the ratio.
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(recommended: np.ndarray, truths: Sequence[np.ndarray], k: int,
              truth_weights: Sequence[np.ndarray] | None = None) -> float:
    """Mean NDCG@k; gain 1 per relevant item, or the item's event weight when truth_weights are given."""
    if len(truths) == 0:
        return 0.0
    return sum(ndcg_per_query(recommended, truths, k, truth_weights).tolist()) / len(truths)  # in query order


def ndcg_per_query(recommended: np.ndarray, truths: Sequence[np.ndarray], k: int,
                   truth_weights: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """NDCG@k of each query (float64, one per truth): what ndcg_at_k averages, for paired comparisons."""
    disc = _discounts(k)
    out = np.zeros(len(truths), dtype=np.float64)
    for q, (row, truth) in enumerate(zip(recommended, truths, strict=True)):
        weights = np.ones(len(truth)) if truth_weights is None else np.asarray(truth_weights[q], np.float64)
        gain_of = dict(zip(np.asarray(truth).tolist(), weights.tolist(), strict=True))
        gains = np.array([gain_of.get(int(i), 0.0) for i in row[:k]])
        dcg = float((gains * disc[: len(gains)]).sum())
        ideal = np.sort(weights)[::-1][:k]
        idcg = float((ideal * disc[: len(ideal)]).sum())
        out[q] = dcg / idcg if idcg > 0 else 0.0
    return out


def precision_at_k(recommended: np.ndarray, truths: Sequence[np.ndarray], k: int) -> float:
    if len(truths) == 0:
        return 0.0
    return float(hit_matrix(recommended[:, :k], truths).sum(axis=1).mean() / k)


def mean_reciprocal_rank(recommended: np.ndarray, truths: Sequence[np.ndarray], k: int = TOP_N) -> float:
    if len(truths) == 0:
        return 0.0
    hits = hit_matrix(recommended[:, :k], truths)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    return float(np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0).mean())


def hit_rate_at_k(recommended: np.ndarray, truths: Sequence[np.ndarray], k: int) -> float:
    """Fraction of queries with at least one relevant item in the top k (leave-last-out HR@k)."""
    if len(truths) == 0:
        return 0.0
    return float(hit_matrix(recommended[:, :k], truths).any(axis=1).mean())


def coverage(recommended: np.ndarray, catalogue_size: int) -> float:
    """Unique items recommended across all queries / items in Interactions + Items (-1 pads short lists)."""
    if catalogue_size == 0:
        return 0.0
    return float(len(distinct(recommended[recommended >= 0])) / catalogue_size)


def personalize_metrics(recommended: np.ndarray, truths: Sequence[np.ndarray], catalogue_size: int,
                        truth_weights: Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """The GetSolutionMetrics map for top-25 lists; event-weighted NDCG keys only when weights are given."""
    metrics = {
        "coverage": coverage(recommended, catalogue_size),
        "mean_reciprocal_rank_at_25": mean_reciprocal_rank(recommended, truths, TOP_N),
    }
    for k in METRIC_K:
        metrics[f"normalized_discounted_cumulative_gain_at_{k}"] = ndcg_at_k(recommended, truths, k)
    for k in METRIC_K:
        metrics[f"precision_at_{k}"] = precision_at_k(recommended, truths, k)
    if truth_weights is not None:
        for k in METRIC_K:
            metrics[f"normalized_discounted_cumulative_gain_with_event_weights_at_{k}"] = ndcg_at_k(
                recommended, truths, k, truth_weights
            )
    return {key: round(value, 4) for key, value in metrics.items()}


def segment_metrics(ranked_users: np.ndarray, actual_users: Sequence[np.ndarray], n_users: int) -> dict[str, float]:
    """USER_SEGMENTATION: K = top 1% of users; hit = mean predicted-and-actual users in the top K; recall = the
    mean fraction of actual users found in the top K."""
    k = max(1, int(np.ceil(0.01 * n_users)))
    if len(actual_users) == 0:
        return {"hit": 0.0, "recall": 0.0}
    hits = hit_matrix(ranked_users[:, :k], actual_users).sum(axis=1)
    sizes = np.array([max(1, len(a)) for a in actual_users], dtype=np.float64)
    return {"hit": round(float(hits.mean()), 4), "recall": round(float((hits / sizes).mean()), 4)}


def paired_ratio_interval(ours: np.ndarray, reference: np.ndarray, *, resamples: int = 2000, level: float = 0.95,
                          seed: int = 0) -> tuple[float, float, float]:
    """mean(ours) / mean(reference) and its percentile bootstrap interval over queries resampled in pairs (the
    same queries for both, so what the two models share cancels): (ratio, low, high). On a small test set (a
    10% split of 610 users is 61 queries) the interval says whether one model's lead is more than the draw."""
    a, b = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"need the same non-empty queries for both models, got {len(a)} and {len(b)}")
    ratio = float(a.mean() / b.mean()) if b.mean() > 0 else math.inf
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    sums_a, sums_b = a[picks].sum(axis=1), b[picks].sum(axis=1)
    ratios = np.divide(sums_a, sums_b, out=np.full(resamples, np.inf), where=sums_b > 0)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return ratio, float(low), float(high)
