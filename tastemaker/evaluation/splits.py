"""Offline-evaluation splits: Personalize's held-out users, per-user 80/20 for segments, leave-last-out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tastemaker.recipes.training_data import TrainingData, distinct

HELD_OUT_USER_FRACTION = 0.1
TRUTH_FRACTION = 0.1
# Held-out users scored by the offline evaluation. Each query ranks the whole catalogue, so scoring every
# held-out user costs users x items and outgrows training (linear in interactions) as a shop grows: at 1M
# users x 100k items it took longer than the fit itself. A seeded sample of this many of them gives the
# metrics to about +-0.002 (the standard error of a mean of per-query values in [0, 1] over 10,000 queries is
# at most 0.005, and 0.001-0.002 for NDCG at the values seen). The users held out of training stay the full
# 10%, so the model evaluated is the same.
MAX_EVALUATION_QUERIES = 10_000
SEGMENT_TEST_FRACTION = 0.2


@dataclass
class Split:
    """Training data plus per-query inputs and ground truth (item indices in the data's catalogue)."""

    train: TrainingData
    query_users: np.ndarray  # int64 user codes of the queries in the full data
    inputs: list[np.ndarray]  # int32 item indices fed to the model, oldest first
    truths: list[np.ndarray]  # int32 unique relevant item indices
    truth_weights: list[np.ndarray]  # float32 gain per truth item (event weight; 1.0 without eventsConfig)


@dataclass
class SegmentSplit:
    """Per-user 80/20 split for USER_SEGMENTATION: test holds, per item, the users who interacted with it."""

    train: TrainingData
    test_items: np.ndarray  # int32 items with test interactions
    test_users: list[np.ndarray]  # int32 unique user codes that interacted with each test item


def _stable_user_order(data: TrainingData, seed: int) -> np.ndarray:
    """Users ordered by a seeded hash of their ids: deterministic for the dataset and seed, any row order."""
    salt = hashlib.sha256(f"tastemaker-split-{seed}".encode()).digest()[:8]
    keys = np.array(
        [int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=8, key=salt).digest(), "little")
         for uid in data.user_ids.tolist()],
        dtype=np.uint64,
    )
    return np.argsort(keys, kind="stable")


def personalize_split(data: TrainingData, seed: int = 0, max_queries: int = MAX_EVALUATION_QUERIES) -> Split:
    """10% of users held out of training; each held-out user's oldest 90% events are input, the newest 10%
    (>= 1) truth. At most `max_queries` of them (the first in the seeded user order) become queries."""
    offsets = data.user_offsets()
    counts = np.diff(offsets)
    eligible = _stable_user_order(data, seed)
    eligible = eligible[counts[eligible] >= 2]
    n_held = max(1, round(HELD_OUT_USER_FRACTION * data.n_users))
    held = np.sort(eligible[:n_held])
    held_mask = np.zeros(data.n_users, dtype=bool)
    held_mask[held] = True
    queried = np.sort(eligible[:min(n_held, max_queries)])
    inputs, truths, weights = [], [], []
    for user in queried.tolist():
        start, end = int(offsets[user]), int(offsets[user + 1])
        n_truth = max(1, int(TRUTH_FRACTION * (end - start)))
        cut = end - n_truth
        inputs.append(data.items[start:cut].astype(np.int32))
        truth_items, truth_w = _unique_max(data.items[cut:end], data.weights[cut:end])
        truths.append(truth_items)
        weights.append(truth_w)
    return Split(data.subset_users(~held_mask), queried.astype(np.int64), inputs, truths, weights)


def leave_last_out_split(data: TrainingData, min_events: int = 3) -> Split:
    """Every user with >= min_events events: the last event is the truth, the rest trains and is the input."""
    offsets = data.user_offsets()
    counts = np.diff(offsets)
    users = np.nonzero(counts >= min_events)[0]
    last = offsets[users + 1] - 1
    keep = np.ones(data.n_interactions, dtype=bool)
    keep[last] = False
    inputs = [data.items[offsets[u]:offsets[u + 1] - 1].astype(np.int32) for u in users.tolist()]
    truths = [data.items[i:i + 1].astype(np.int32) for i in last.tolist()]
    weights = [data.weights[i:i + 1].astype(np.float32) for i in last.tolist()]
    return Split(data.subset_events(keep), users.astype(np.int64), inputs, truths, weights)


def segmentation_split(data: TrainingData, seed: int = 0) -> SegmentSplit:
    """Per user, the oldest 80% of events train and the newest 20% test (users with >= 2 events)."""
    offsets = data.user_offsets()
    counts = np.diff(offsets)
    n_test = np.where(counts >= 2, np.maximum(1, (SEGMENT_TEST_FRACTION * counts).astype(np.int64)), 0)
    # Position of each event within its user's (time-sorted) events.
    position = np.arange(data.n_interactions) - np.repeat(offsets[:-1], counts)
    is_test = position >= np.repeat(counts - n_test, counts)
    test_pairs = distinct(data.items[is_test].astype(np.int64) * data.n_users + data.users[is_test])
    test_item_of_pair = (test_pairs // data.n_users).astype(np.int32)
    test_user_of_pair = (test_pairs % data.n_users).astype(np.int32)
    items, starts = np.unique(test_item_of_pair, return_index=True)
    bounds = np.append(starts, len(test_pairs))
    users = [test_user_of_pair[bounds[i]:bounds[i + 1]] for i in range(len(items))]
    return SegmentSplit(data.subset_events(~is_test), items, users)


def _unique_max(items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique items with the largest weight among their events."""
    order = np.lexsort((-weights, items))
    items_sorted = items[order]
    first = np.ones(len(items_sorted), dtype=bool)
    first[1:] = items_sorted[1:] != items_sorted[:-1]
    return items_sorted[first].astype(np.int32), weights[order][first].astype(np.float32)
