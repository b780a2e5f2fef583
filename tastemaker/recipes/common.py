"""Helpers shared by recipes: history trims, popularity views, recency-weighted history matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from tastemaker.recipes.training_data import TrainingData

# Users' stored histories keep at most this many of their most recent events (older ones weigh ~0 anyway).
MAX_STORED_HISTORY = 200
RECENT_FRACTION = 0.1  # "recent" popularity = the newest 10% of the data's time span
EARLY_EVENTS = 5  # "early in their histories" for new-user recommendations


def trim_users_by_history_percentiles(data: TrainingData, low: float, high: float) -> TrainingData:
    """Drop users whose event count is below the `low` or above the `high` percentile (0..1) of users."""
    counts = np.bincount(data.users, minlength=data.n_users)
    active = counts[counts > 0]
    if active.size == 0 or (low <= 0.0 and high >= 1.0):
        return data
    lo = np.quantile(active, low) if low > 0 else -np.inf
    hi = np.quantile(active, high) if high < 1 else np.inf
    keep_user = (counts >= lo) & (counts <= hi)
    if keep_user[data.users].sum() < 0.5 * data.n_interactions:  # never throw away most of the data
        return data
    return data.subset_users(keep_user)


def recent_popularity(data: TrainingData, fraction: float = RECENT_FRACTION) -> np.ndarray:
    """float32 unique-user counts within the newest `fraction` of the time span."""
    if not data.n_interactions:
        return np.zeros(data.n_items, np.float32)
    t_min, t_max = int(data.timestamps.min()), int(data.timestamps.max())
    since = t_max - fraction * max(t_max - t_min, 1)
    return data.subset_events(data.timestamps >= since).unique_user_counts()


def early_popularity(data: TrainingData, first_n: int = EARLY_EVENTS) -> np.ndarray:
    """float32 counts of items among users' first `first_n` events (what new users tend to start with)."""
    offsets = data.user_offsets()
    position = np.arange(data.n_interactions) - np.repeat(offsets[:-1], np.diff(offsets))
    return np.bincount(data.items[position < first_n], minlength=data.n_items).astype(np.float32)


def unit_max(values: np.ndarray) -> np.ndarray:
    """Scale rows (or a vector) so the largest absolute value is 1."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        top = float(np.abs(values).max()) if values.size else 0.0
        return values / top if top > 0 else values
    if not values.shape[1]:
        return values
    row_top = np.abs(values).max(axis=1, keepdims=True)
    return values / np.where(row_top > 0, row_top, 1.0).astype(np.float32)


def cold_start_scores(data: TrainingData, recency: bool) -> np.ndarray:
    """Scores for a user with no history: early-history popularity, plus recent popularity when `recency`."""
    score = unit_max(early_popularity(data)) + unit_max(data.unique_user_counts())
    if recency:
        score = score + unit_max(recent_popularity(data))
    return unit_max(score)


def stored_histories(data: TrainingData, max_len: int = MAX_STORED_HISTORY) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, items int32) of each user's most recent `max_len` events, oldest first."""
    offsets = data.user_offsets()
    counts = np.diff(offsets)
    position_from_end = np.repeat(offsets[1:], counts) - np.arange(data.n_interactions) - 1
    keep = position_from_end < max_len
    kept_counts = np.minimum(counts, max_len)
    indptr = np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int64)
    return indptr, data.items[keep].astype(np.int32)


def merge_histories(
    user_index: np.ndarray, histories: Sequence[np.ndarray], indptr: np.ndarray | None, stored: np.ndarray | None
) -> list[np.ndarray]:
    """Per query: the stored training history of a known user followed by the given recent events.

    The given history may repeat the tail of the stored one (callers may pass all recent events, including
    those seen in training); the longest such overlap is removed so nothing counts twice.
    """
    merged = []
    for row, user in enumerate(np.asarray(user_index, dtype=np.int64).tolist()):
        given = np.asarray(histories[row] if row < len(histories) else [], dtype=np.int32)
        if user < 0 or indptr is None or stored is None or user + 1 >= len(indptr):
            merged.append(given)
            continue
        past = np.asarray(stored[indptr[user]:indptr[user + 1]], dtype=np.int32)
        merged.append(np.concatenate([past, given[_overlap(past, given):]]))
    return merged


def _overlap(past: np.ndarray, given: np.ndarray) -> int:
    """Length of the longest prefix of `given` equal to a suffix of `past`."""
    if not len(past) or not len(given):
        return 0
    # Anchor on the last stored event: candidate prefixes of `given` end where that item occurs.
    for end in np.nonzero(given == past[-1])[0][::-1].tolist():
        k = end + 1
        if k <= len(past) and np.array_equal(past[-k:], given[:k]):
            return k
    return 0


def demote_history(scores: np.ndarray, histories: Sequence[np.ndarray], drop: np.ndarray | np.float32) -> np.ndarray:
    """`scores` (B, n_items) with each row's history items lowered by `drop` (a scalar, or one per row), in place:
    with `drop` larger than a row's spread of scores they go below all its other items, their order among
    themselves kept; an item repeated in a history is lowered once. What the personalization recipes do where
    the domain does not re-consume, so a list without filters is not spent on items the user already has."""
    lengths = [len(h) for h in histories]
    if not sum(lengths):
        return scores
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    scores[rows, cols] -= drop[rows] if isinstance(drop, np.ndarray) else drop
    return scores


def history_matrix(histories: Sequence[np.ndarray], n_items: int, decay: float) -> sp.csr_matrix:
    """(B, n_items) CSR: each event weighs decay**(events after it); repeats add up."""
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    if lengths.sum() == 0:
        return sp.csr_matrix((len(histories), n_items), dtype=np.float32)
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    rows = np.repeat(np.arange(len(histories)), lengths)
    ends = np.repeat(np.cumsum(lengths), lengths)
    age = ends - np.arange(int(lengths.sum())) - 1
    valid = (cols >= 0) & (cols < n_items)
    weights = np.power(np.float32(decay), age).astype(np.float32)
    mat = sp.csr_matrix((weights[valid], (rows[valid], cols[valid])), shape=(len(histories), n_items))
    mat.sum_duplicates()
    return mat


def decay_from_bptt(bptt: int) -> float:
    """History decay per event: half of the weight is gone after bptt/5 events (bptt 32 -> 0.897)."""
    half_life = max(float(bptt) / 5.0, 0.3)
    return float(0.5 ** (1.0 / half_life))

