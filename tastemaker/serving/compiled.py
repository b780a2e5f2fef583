"""Compiled (numba) pieces of the request path outside the model: top-k of a few hundred candidates and the
exploration slots. In numpy / Python each cost tens of microseconds of small calls per GetRecommendations.

Randomness comes in as an array of uniform draws made by the caller's generator, so a kernel is deterministic
for given draws (tests compare it with the rules it implements).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def top_k_small(scores: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    """Indices of the k best allowed scores, best first, ties by lower index (`allowed` empty: all allowed).
    One pass keeping the best k in order (insertion): for a few hundred candidates and k of 25 far cheaper
    than sorting them all or numpy's argpartition + lexsort dispatch."""
    if k <= 0:
        return np.zeros(0, np.int64)
    everything = allowed.size == 0
    best = np.empty(k, np.int64)
    size = 0
    for j in range(scores.size):
        if not (everything or allowed[j]):
            continue
        value = scores[j]
        if size == k and not value > scores[best[size - 1]]:
            continue  # not better than the current k-th (an equal score keeps the lower index)
        at = size if size < k else k - 1
        while at > 0 and value > scores[best[at - 1]]:  # shift worse ones down (the k-th falls off)
            best[at] = best[at - 1]
            at -= 1
        best[at] = j
        if size < k:
            size += 1
    return best[:size].copy()


@njit(cache=True, nogil=True)
def _is_taken(item: int, taken_sorted: np.ndarray, chosen: np.ndarray, n_chosen: int) -> bool:
    at = np.searchsorted(taken_sorted, item)
    if at < taken_sorted.size and taken_sorted[at] == item:
        return True
    for j in range(n_chosen):
        if chosen[j] == item:
            return True
    return False


@njit(cache=True, nogil=True)
def _draw_from(pool: np.ndarray, need: int, allowed: np.ndarray, taken_sorted: np.ndarray, chosen: np.ndarray,
               n_chosen: int, draws: np.ndarray, used: int) -> tuple[int, int]:
    """Adds up to `need` random usable pool members to `chosen`; returns (chosen count, draws used).
    A small pool is shuffled among its usable members; a large one is rejection-sampled (16 tries per slot)."""
    everything = allowed.size == 0
    if need <= 0 or pool.size == 0:
        return n_chosen, used
    if pool.size <= 8 * need:
        usable = np.empty(pool.size, np.int64)
        m = 0
        for p in pool:
            if (everything or allowed[p]) and not _is_taken(p, taken_sorted, chosen, n_chosen):
                usable[m] = p
                m += 1
        for j in range(min(need, m)):  # partial Fisher-Yates
            swap = j + min(int(draws[used] * (m - j)), m - j - 1)
            used += 1
            usable[j], usable[swap] = usable[swap], usable[j]
            chosen[n_chosen] = usable[j]
            n_chosen += 1
        return n_chosen, used
    goal = n_chosen + need
    for _try in range(16 * need):
        p = pool[min(int(draws[used] * pool.size), pool.size - 1)]
        used += 1
        if (everything or allowed[p]) and not _is_taken(p, taken_sorted, chosen, n_chosen):
            chosen[n_chosen] = p
            n_chosen += 1
            if n_chosen == goal:
                break
    return n_chosen, used


def draws_needed(n_explore: int) -> int:
    """Uniform draws explore_slots may use: 16 per slot and pool, one placement per slot."""
    return 33 * n_explore


@njit(cache=True, nogil=True)
def explore_slots(picked: np.ndarray, best: np.ndarray, rest: np.ndarray, allowed: np.ndarray,
                  blocked: np.ndarray, n_explore: int, draws: np.ndarray) -> np.ndarray:
    """The exploit list `picked` with its last slots replaced by up to `n_explore` random items from `best`
    (young and cold), then `rest` (young or cold), each allowed (`allowed` empty: all) and neither picked nor
    blocked, inserted at random positions; the kept picked items stay in their order."""
    taken_sorted = np.sort(np.concatenate((picked, blocked)))
    chosen = np.empty(n_explore, np.int64)
    n_chosen, used = _draw_from(best, n_explore, allowed, taken_sorted, chosen, 0, draws, 0)
    n_chosen, used = _draw_from(rest, n_explore - n_chosen, allowed, taken_sorted, chosen, n_chosen, draws, used)
    keep = picked.size - n_chosen
    out = np.empty(picked.size, np.int64)
    length = keep
    for j in range(keep):
        out[j] = picked[j]
    for j in range(n_chosen):
        spot = min(int(draws[used] * (length + 1)), length)
        used += 1
        for m in range(length, spot, -1):
            out[m] = out[m - 1]
        out[spot] = chosen[j]
        length += 1
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for every array type requests pass, read-only masks
    (cached filter masks) included, so that no request on the event loop waits for a compilation."""
    scores = np.array([0.5, 0.2, 0.9], np.float32)
    frozen = np.ones(40, np.bool_)
    frozen.setflags(write=False)
    items = np.arange(3, dtype=np.int64)
    for allowed in (np.zeros(0, np.bool_), np.ones(40, np.bool_), frozen):
        top_k_small(scores, 2, allowed[:3] if allowed.size else allowed)
        explore_slots(items, np.arange(3, 20, dtype=np.int64), np.arange(20, 40, dtype=np.int64), allowed,
                      np.zeros(0, np.int64), 1, np.full(draws_needed(1), 0.5))
