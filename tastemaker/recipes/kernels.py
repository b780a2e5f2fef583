"""Compiled kernels for the per-request work of serving's approximate (candidate) path.

One GetRecommendations on a large ALS catalogue folds the user in, walks the transitions from the last
events, merges a few candidate sources and scores a few hundred items. In numpy that is ~100 small array
calls, each costing microseconds of dispatch on this machine: most of a request's CPU. These numba kernels do
the same arithmetic in a handful of calls. Every kernel mirrors a numpy formulation in
tastemaker.recipes.user_personalization (the exact path), and tests compare them.

Compiled once per signature and cached on disk (numba's cache, next to this file or NUMBA_CACHE_DIR);
`warm_up()` compiles or loads them before a model serves its first request, off the event loop.

`top_k_rows` serves the batch inference job's vectorised path instead (tastemaker.serving.batch): the top k
of a whole chunk of score rows in one call, where a per-row argpartition cost a Python call and a full
selection per row; it is compiled (or loaded from the cache) by the job's first chunk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTIONS = {"cache": True, "nogil": True, "fastmath": False}


@njit(**_OPTIONS)
def history_weights(history: np.ndarray, n_items: int, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct item rows, summed decay weights): the newest event weighs 1, the one before `decay`..."""
    count = 0
    for value in history:
        if 0 <= value < n_items:
            count += 1
    valid = np.empty(count, np.int64)
    weight = np.empty(count, np.float64)
    k = 0
    for j in range(history.size):
        value = history[j]
        if 0 <= value < n_items:
            valid[k] = value
            k += 1
    for j in range(count):
        weight[j] = decay ** (count - 1 - j)
    return sum_by_key(valid, weight)


@njit(**_OPTIONS)
def sum_by_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, the sum of the values of each key)."""
    order = np.argsort(keys, kind="mergesort")
    distinct_keys = np.empty(keys.size, np.int64)
    sums = np.empty(keys.size, np.float64)
    distinct = 0
    for j in range(keys.size):
        key = keys[order[j]]
        if distinct == 0 or distinct_keys[distinct - 1] != key:
            distinct_keys[distinct] = key
            sums[distinct] = values[order[j]]
            distinct += 1
        else:
            sums[distinct - 1] += values[order[j]]
    return distinct_keys[:distinct], sums[:distinct]


@njit(**_OPTIONS)
def fold_in(factors: np.ndarray, gram_inverse: np.ndarray, history: np.ndarray, decay: float,
            alpha: float) -> np.ndarray:
    """The user vector x solving (G + Y^T C Y) x = Y^T c for the decayed history (confidence 1 + alpha * w),
    with G^-1 given: by Woodbury, only a k x k system for the k distinct items (a zero vector for no history)."""
    n_items, dim = factors.shape
    items, weights = history_weights(history, n_items, decay)
    out = np.zeros(dim, np.float32)
    k = items.size
    if k == 0:
        return out
    y = np.empty((k, dim), np.float64)
    for r in range(k):
        for c in range(dim):
            y[r, c] = factors[items[r], c]
    lift = alpha * weights
    b = y.T @ (1.0 + lift)
    p = y @ gram_inverse
    small = p @ y.T
    for r in range(k):
        small[r, r] += 1.0 / lift[r]
    x = gram_inverse @ b - p.T @ np.linalg.solve(small, p @ b)
    for c in range(dim):
        out[c] = x[c]
    return out


@njit(**_OPTIONS)
def short_term(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, history: np.ndarray, last: int,
               decay: float, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """(sorted item rows, value) of the short-term part: the decayed last `last` events through the transition
    rows, summed per item, scaled so that the largest magnitude is `weight` (empty when nothing is reached)."""
    start = max(history.size - last, 0)
    n_last = history.size - start
    total = 0
    rows = indptr.size - 1
    for j in range(start, history.size):
        if 0 <= history[j] < rows:
            total += indptr[history[j] + 1] - indptr[history[j]]
    reach = np.empty(total, np.int64)
    mass = np.empty(total, np.float64)
    k = 0
    for j in range(start, history.size):
        if not 0 <= history[j] < rows:
            continue
        factor = decay ** (n_last - 1 - (j - start))
        for e in range(indptr[history[j]], indptr[history[j] + 1]):
            reach[k] = indices[e]
            mass[k] = data[e] * np.float32(factor)
            k += 1
    items, sums = sum_by_key(reach, mass)
    distinct = items.size
    peak = 0.0
    for j in range(distinct):
        peak = max(peak, abs(sums[j]))
    if peak <= 0.0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    values = np.empty(distinct, np.float32)
    for j in range(distinct):
        values[j] = sums[j] * (weight / peak)
    return items, values


@njit(**_OPTIONS)
def merge_sources(found: np.ndarray, head: np.ndarray, history: np.ndarray, reached: np.ndarray,
                  sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct candidates, True where an item is only in the random sample) of the candidate sources.
    One integer sort: each item is coded item * 2 (+1 for a sample copy), so an item's first code after
    sorting says whether any non-sample source has it."""
    n = found.size + head.size + history.size + reached.size + sample.size
    codes = np.empty(n, np.int64)
    k = 0
    for source in (found, head, history, reached):
        for value in source:
            codes[k] = value * 2
            k += 1
    for value in sample:
        codes[k] = value * 2 + 1
        k += 1
    codes.sort()
    items = np.empty(n, np.int64)
    only_sample = np.empty(n, np.bool_)
    distinct = 0
    for j in range(n):
        item = codes[j] >> 1
        if distinct == 0 or items[distinct - 1] != item:
            items[distinct] = item
            only_sample[distinct] = (codes[j] & 1) == 1
            distinct += 1
    return items[:distinct], only_sample[:distinct]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})  # lets the dot products use SIMD lanes
def score_items(factors: np.ndarray, vector: np.ndarray, items: np.ndarray, scale: float,
                reached: np.ndarray, reached_values: np.ndarray, trend_weight: float,
                recent_popularity: np.ndarray, history: np.ndarray, demote: bool) -> tuple[np.ndarray, float]:
    """Scores of sorted `items` for one user, and the long-term scale used (the items' own largest long-term
    magnitude when `scale` < 0): long-term dot / scale + short-term + trend, history items pushed below all."""
    dim = factors.shape[1]
    scores = np.empty(items.size, np.float32)
    top = 0.0
    for r in range(items.size):
        total = np.float32(0.0)
        row = items[r]
        for c in range(dim):
            total += factors[row, c] * vector[c]
        scores[r] = total
        top = max(top, float(abs(total)))
    if scale >= 0:
        top = scale
    if top > 0:
        inverse = np.float32(1.0 / top)
        for r in range(items.size):
            scores[r] *= inverse
    _add_at_sorted(scores, items, reached, reached_values)
    if trend_weight != 0.0:
        for r in range(items.size):
            scores[r] += np.float32(trend_weight) * recent_popularity[items[r]]
    if demote:
        seen = np.unique(history)
        _add_at_sorted(scores, items, seen, np.full(seen.size, np.float32(-8.0)))
    return scores, top


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def scores_at(items: np.ndarray, scores: np.ndarray, positions: np.ndarray, factors: np.ndarray,
              vector: np.ndarray, scale: float, reached: np.ndarray, reached_values: np.ndarray, trend_weight: float,
              recent_popularity: np.ndarray, history: np.ndarray, demote: bool) -> np.ndarray:
    """The user's scores at these item rows: looked up among the scored candidates (sorted `items`), or scored
    like score_items on the same `scale` (exploration picks outside the candidates)."""
    out = np.empty(positions.size, np.float32)
    dim = factors.shape[1]
    for j in range(positions.size):
        row = positions[j]
        at = np.searchsorted(items, row)
        if at < items.size and items[at] == row:
            out[j] = scores[at]
            continue
        total = np.float32(0.0)
        for c in range(dim):
            total += factors[row, c] * vector[c]
        value = total * np.float32(1.0 / scale) if scale > 0 else total  # as score_items scales
        at = np.searchsorted(reached, row)
        if at < reached.size and reached[at] == row:
            value += reached_values[at]
        if trend_weight != 0.0:
            value += np.float32(trend_weight) * recent_popularity[row]
        if demote:
            for seen in history:
                if seen == row:
                    value -= np.float32(8.0)
                    break
        out[j] = value
    return out


@njit(**_OPTIONS)
def user_state(factors: np.ndarray, gram_inverse: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
               data: np.ndarray, history: np.ndarray, last: int, decay: float, alpha: float,
               weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fold_in and short_term of one history in one call (each call from Python costs microseconds of
    dispatch): (user vector, rows the transitions reach, their short-term values)."""
    vector = fold_in(factors, gram_inverse, history, decay, alpha)
    reached, values = short_term(indptr, indices, data, history, last, decay, weight)
    return vector, reached, values


@njit(**_OPTIONS)
def merge_and_score(found: np.ndarray, head: np.ndarray, history: np.ndarray, reached: np.ndarray,
                    reached_values: np.ndarray, sample: np.ndarray, factors: np.ndarray, vector: np.ndarray,
                    trend_weight: float, recent_popularity: np.ndarray,
                    demote: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """merge_sources then score_items on the user's own scale, in one call:
    (candidates, only-in-sample flags, their scores, the long-term scale)."""
    items, only_sample = merge_sources(found, head, history, reached, sample)
    scores, top = score_items(factors, vector, items, -1.0, reached, reached_values, trend_weight,
                              recent_popularity, history, demote)
    return items, only_sample, scores, top


@njit(**_OPTIONS)
def softmax_with_tail(scores: np.ndarray, in_sample: np.ndarray, allowed: np.ndarray, n_allowed_total: int,
                      picked_scores: np.ndarray) -> np.ndarray:
    """exp(picked - top) / (mass of the allowed core candidates + estimated mass of the allowed items never
    scored): their count times the mean exp of the allowed random-sample items. `allowed` empty = all allowed."""
    everything = allowed.size == 0
    top = -np.inf
    for j in range(scores.size):
        if everything or allowed[j]:
            top = max(top, float(scores[j]))
    out = np.zeros(picked_scores.size)
    if top == -np.inf:
        return out
    core_mass, core_count, sample_mass, sample_count = 0.0, 0, 0.0, 0
    for j in range(scores.size):
        if everything or allowed[j]:
            value = np.exp(float(scores[j]) - top)
            if in_sample[j]:
                sample_mass += value
                sample_count += 1
            else:
                core_mass += value
                core_count += 1
    unscored = max(n_allowed_total - core_count, 0)
    tail = unscored * sample_mass / sample_count if sample_count else 0.0
    total = core_mass + tail
    if total <= 0:
        total = 1.0
    for j in range(picked_scores.size):
        out[j] = np.exp(float(picked_scores[j]) - top) / total
    return out


@njit(**_OPTIONS)
def _add_at_sorted(scores: np.ndarray, items: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    """scores[items == key] += value for each (key, value); items and keys sorted, distinct."""
    if items.size == 0:
        return
    where = np.searchsorted(items, keys)
    for j in range(keys.size):
        at = where[j]
        if at < items.size and items[at] == keys[j]:
            scores[at] += values[j]


@njit(**_OPTIONS)
def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a (B, n) array with n > k >= 1: the k best columns, best first, equal scores lower column
    first (tastemaker.serving.topk.top_k's order), found in one pass that keeps the k + 1 best in a sorted
    buffer (an element below the buffer's last costs one comparison); and whether the k-th and (k+1)-th best
    scores are equal. On such a tie the answer is not unique and which tied column top_k keeps depends on its
    argpartition, so callers ask top_k for those rows; every other row's answer is the unique one top_k gives."""
    rows, n = scores.shape
    picked = np.empty((rows, k), np.int64)
    tied = np.zeros(rows, np.bool_)
    keep = k + 1
    values = np.empty(keep, scores.dtype)
    columns = np.empty(keep, np.int64)
    for r in range(rows):
        count = 0
        for c in range(n):
            v = scores[r, c]
            if count == keep:
                if not v > values[keep - 1]:
                    continue
                at = keep - 1
            else:
                at = count
                count += 1
            while at > 0 and values[at - 1] < v:  # past strictly smaller ones only: equal ones keep column order
                values[at] = values[at - 1]
                columns[at] = columns[at - 1]
                at -= 1
            values[at] = v
            columns[at] = c
        picked[r] = columns[:k]
        tied[r] = values[k - 1] == values[k]
    return picked, tied


def warm_up(factors: np.ndarray, gram_inverse: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
            data: np.ndarray, recent_popularity: np.ndarray) -> None:
    """Compile (or load from numba's cache) every kernel for these very arrays' types (memory-mapped arrays
    are read-only, a type of their own), so that no request pays for a compilation."""
    history = np.array([0, 0], np.int64)
    vector = fold_in(factors, gram_inverse, history, 0.9, 1.0)
    state = user_state(factors, gram_inverse, indptr, indices, data, history, 3, 0.9, 1.0, 0.5)
    merge_and_score(history, history, history, state[1], state[2], history, factors, state[0], 0.1,
                    recent_popularity, True)
    reached, values = short_term(indptr, indices, data, history, 3, 0.9, 0.5)
    items, _only = merge_sources(history, history, history, reached, history)
    scores, _top = score_items(factors, vector, items, -1.0, reached, values, 0.1, recent_popularity, history, True)
    softmax_with_tail(scores, _only, np.zeros(0, np.bool_), 10, scores[:1])
    scores_at(items, scores, np.array([0, 2], np.int64), factors, vector, 1.0, reached, values, 0.1,
              recent_popularity, history, True)
    softmax_with_tail(scores, _only, np.ones(scores.size, np.bool_), 10, scores[:1])
