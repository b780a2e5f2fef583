"""Exact vectorised top-k over float32 scores with an allowed-items mask, and softmax scores."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best allowed scores, best first (ties: lower index first). Fewer if fewer allowed."""
    if allowed is not None:
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64)
        sub = scores[candidates]
        picked = _top(sub, k)
        return candidates[picked]
    return _top(scores, k)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    negated = -scores
    if k < n:
        part = np.argpartition(negated, k - 1)[:k]
    else:
        part = np.arange(n)
    order = np.lexsort((part, negated[part]))
    return part[order].astype(np.int64)


def softmax_scores(scores: np.ndarray, allowed: np.ndarray | None, picked: np.ndarray) -> np.ndarray:
    """exp(score) normalised over the allowed candidates, for the picked indices (float64)."""
    pool = scores[allowed] if allowed is not None else scores
    if pool.size == 0:
        return np.zeros(len(picked))
    top = np.float32(pool.max())
    total = float(np.exp(pool - top).sum(dtype=np.float64))
    return np.exp(scores[picked].astype(np.float64) - float(top)) / total
