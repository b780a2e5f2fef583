"""The approximate path's per-request model work as three compiled calls around the one index query.

A GetRecommendations on a large ALS catalogue (tastemaker.serving.approx) merges the user's stored and streamed
history, folds the user in, walks the transitions, queries the index, merges the candidate sources, scores
them, picks the top k, places the exploration slots and turns the answer's scores into softmax values. Done
step by step that is ~40 Python-level calls (kernel dispatches, small numpy operations, dataclass and closure
glue), which cost more CPU than the arithmetic. Here the steps before the index query are one call
(`user_state`), those after it two (`pick`, which also says whether the candidates hold enough allowed items;
and `finish`, after the caller has drawn the exploration randoms, so a request that falls back to exact
scoring has drawn nothing). hnswlib's query stays a Python call between them.

Each call runs the very kernels the step-by-step path runs (tastemaker.recipes.kernels, .compiled) in the same
order on the same values, so the answers are bit for bit the same (tests/serving/test_fastpath.py compares
them on random requests).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tastemaker.recipes import kernels
from tastemaker.serving import compiled


@njit(cache=True, nogil=True)
def merged_history(indptr: np.ndarray, stored: np.ndarray, user: int, given: np.ndarray) -> np.ndarray:
    """recipes.common.merge_histories for one user, as int64 rows: the stored training history of a known user,
    then the given recent events without the longest prefix that repeats the stored history's tail."""
    if user < 0 or user + 1 >= indptr.size:
        out = np.empty(given.size, np.int64)
        for j in range(given.size):
            out[j] = given[j]
        return out
    lo, hi = indptr[user], indptr[user + 1]
    n_past = hi - lo
    overlap = 0
    if n_past > 0 and given.size > 0:
        last = stored[hi - 1]
        for end in range(given.size - 1, -1, -1):  # longest candidate first, as _overlap tries them
            if given[end] != last:
                continue
            k = end + 1
            if k > n_past:
                continue
            same = True
            for j in range(k):
                if stored[hi - k + j] != given[j]:
                    same = False
                    break
            if same:
                overlap = k
                break
    out = np.empty(n_past + given.size - overlap, np.int64)
    for j in range(n_past):
        out[j] = stored[lo + j]
    for j in range(overlap, given.size):
        out[n_past + j - overlap] = given[j]
    return out


@njit(cache=True, nogil=True)
def user_state(indptr: np.ndarray, stored: np.ndarray, user: int, given: np.ndarray, factors: np.ndarray,
               gram_inverse: np.ndarray, trans_indptr: np.ndarray, trans_indices: np.ndarray, trans_data: np.ndarray,
               last: int, decay: float, alpha: float,
               weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(merged history, user vector, rows the transitions reach, their short-term values)."""
    history = merged_history(indptr, stored, user, given)
    vector, reached, values = kernels.user_state(factors, gram_inverse, trans_indptr, trans_indices, trans_data,
                                                 history, last, decay, alpha, weight)
    return history, vector, reached, values


@njit(cache=True, nogil=True)
def pick(found: np.ndarray, head: np.ndarray, history: np.ndarray, reached: np.ndarray, reached_values: np.ndarray,
         sample: np.ndarray, factors: np.ndarray, vector: np.ndarray, trend_weight: float,
         recent_popularity: np.ndarray, demote: bool, cold_scores: np.ndarray, mask: np.ndarray,
         k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """The user's candidates and the k best allowed among them: (candidates, only-in-sample flags, scores,
    long-term scale, allowed flags of the candidates (empty: all), picked catalogue positions best first).
    `mask` is the filter over the model's items (empty: no filter); no history gives the cold-start scores."""
    items, only_sample, scores, top = kernels.merge_and_score(found, head, history, reached, reached_values, sample,
                                                              factors, vector, trend_weight, recent_popularity,
                                                              demote)
    if history.size == 0:
        scores = np.empty(items.size, np.float32)
        for j in range(items.size):
            scores[j] = cold_scores[items[j]]
        top = 0.0
    if mask.size:
        allowed = np.empty(items.size, np.bool_)
        for j in range(items.size):
            allowed[j] = mask[items[j]]
    else:
        allowed = np.zeros(0, np.bool_)
    best = compiled.top_k_small(scores, k, allowed)
    return items, only_sample, scores, top, allowed, items[best]


@njit(cache=True, nogil=True)
def finish(picked: np.ndarray, best: np.ndarray, rest: np.ndarray, eligible: np.ndarray, n_explore: int,
           draws: np.ndarray, n_model: int, items: np.ndarray, scores: np.ndarray, only_sample: np.ndarray,
           allowed: np.ndarray, n_allowed_total: int, factors: np.ndarray, vector: np.ndarray, scale: float,
           reached: np.ndarray, reached_values: np.ndarray, trend_weight: float, recent_popularity: np.ndarray,
           history: np.ndarray, demote: bool, cold_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the answer's catalogue positions, their softmax scores): the exploration slots placed (n_explore > 0),
    then each position inside the model scored on the user's scale and normalised over the allowed candidates
    plus the estimated tail (a position beyond the model, an item newer than the training, scores 0)."""
    if n_explore > 0 and picked.size > 0:
        order = compiled.explore_slots(picked, best, rest, eligible, np.zeros(0, np.int64), n_explore, draws)
    else:
        order = picked
    known = 0
    for j in range(order.size):
        if order[j] < n_model:
            known += 1
    positions = np.empty(known, np.int64)
    at = 0
    for j in range(order.size):
        if order[j] < n_model:
            positions[at] = order[j]
            at += 1
    if history.size == 0:
        picked_scores = np.empty(known, np.float32)
        for j in range(known):
            picked_scores[j] = cold_scores[positions[j]]
    else:
        picked_scores = kernels.scores_at(items, scores, positions, factors, vector, scale, reached, reached_values,
                                          trend_weight, recent_popularity, history, demote)
    soft = kernels.softmax_with_tail(scores, only_sample, allowed, n_allowed_total, picked_scores)
    values = np.zeros(order.size)
    at = 0
    for j in range(order.size):
        if order[j] < n_model:
            values[j] = soft[at]
            at += 1
    return order, values


def warm_up(arrays: dict[str, np.ndarray], gram_inverse: np.ndarray) -> None:
    """Compile (or load from numba's cache) the three calls for this model's array types, with every mask a
    request may pass: none, a writable one, a cached read-only one (and a slice of each)."""
    factors = arrays["item_factors"]
    n = factors.shape[0]
    index = np.arange(min(n, 2), dtype=np.int64)
    for given in (np.zeros(0, np.int32), np.array([0], np.int32)):
        history, vector, reached, values = user_state(
            arrays.get("hist_indptr", np.zeros(0, np.int64)), arrays.get("hist_items", np.zeros(0, np.int32)), 0, given, factors, gram_inverse, arrays["trans_indptr"],
            arrays["trans_indices"], arrays["trans_data"], 3, 0.9, 1.0, 0.5)
    writable = np.ones(n, np.bool_)
    frozen = np.ones(n, np.bool_)
    frozen.setflags(write=False)
    for eligible in (np.zeros(0, np.bool_), writable, frozen):
        mask = eligible[:n]
        items, only_sample, scores, top, allowed, picked = pick(
            index, index, history, reached, values, index, factors, vector, 0.1, arrays["recent_popularity"], True,
            arrays["cold_scores"], mask, 1)
        finish(picked, index, index, eligible, 1, np.full(compiled.draws_needed(1), 0.5), n, items, scores,
               only_sample, allowed, n, factors, vector, top, reached, values, 0.1, arrays["recent_popularity"],
               history, True, arrays["cold_scores"])
