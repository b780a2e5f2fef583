"""The collaborative engine behind user-personalization, ranking and affinity: item-item + sequence signals.

Measured on MovieLens (bench/accuracy.py): a closed-form item-item model (EASE) fed with a recency-weighted
history, blended with a sparse "what comes next" transition matrix, beats ALS/BPR/item-kNN on both the
Personalize held-out-users protocol and leave-last-out. EASE needs a dense n_items^2 solve, so catalogues
above EASE_MAX_ITEMS use implicit's ALS (hidden_dimension factors) with per-query least-squares fold-in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from tastemaker.recipes.base import Progress, ShouldStop, report
from tastemaker.recipes.training_data import TrainingData, distinct

EASE_MAX_ITEMS = 10_000  # dense solve: ~1 s at 4k items, ~25 s at 10k; OpenBLAS crashed near 27k
EASE_MIN_USERS = 3  # items with fewer users stay out of the dense EASE solve
TRANSITION_WINDOW = 3  # an event "follows" the previous 1..3 events of the same user (weights 1, 1/2, 1/3)
TRANSITION_TOP = 100  # neighbours kept per item in the transition matrix
TRANSITION_WEIGHT = 1.0  # blend weight of the sequence signal (measured best of 0.3 / 1 / 3 on ML-1M)
LAST_EVENTS_FOR_TRANSITIONS = 3
ALS_ITERATIONS = 15
ALS_REGULARIZATION = 0.1
ALS_ALPHA = 10.0

# fit_als's signature: (matrix, factors, seed, progress, should_stop, progress_span) -> (user, item factors)
AlsBackend = Callable[[sp.csr_matrix, int, int, "Progress | None", "ShouldStop | None", tuple[float, float]],
                      tuple[np.ndarray, np.ndarray]]
_als_backend: AlsBackend | None = None  # None: implicit in this process; set by the trainer for Spark


def set_als_backend(backend: AlsBackend | None) -> None:
    """Route this process's ALS fits to `backend` (tastemaker.spark.training), or back to implicit with None."""
    global _als_backend
    _als_backend = backend


def ease_lambda(data: TrainingData) -> float:
    """L2 strength for EASE, scaled to the mean item count (dense data wants more shrinkage)."""
    mean_count = data.n_interactions / max(1, len(distinct(data.items)))
    return float(np.clip(2.0 * mean_count, 50.0, 1000.0))


def interaction_matrix(data: TrainingData) -> sp.csr_matrix:
    """(n_users, n_items): 1 per interacted pair, or the largest event weight with eventsConfig."""
    if not data.has_event_weights:
        return data.user_item_matrix(binary=True)
    mat = sp.csr_matrix((data.weights, (data.users, data.items)), shape=(data.n_users, data.n_items))
    mat = mat.tocoo()
    # largest weight per pair: sort so the biggest comes last, then let it overwrite
    order = np.lexsort((mat.data, mat.col, mat.row))
    key = mat.row[order].astype(np.int64) * data.n_items + mat.col[order]
    last = np.append(key[1:] != key[:-1], True)
    return sp.csr_matrix(
        (mat.data[order][last], (mat.row[order][last], mat.col[order][last])), shape=(data.n_users, data.n_items)
    )


def fit_ease(matrix: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE item-item weights B (n_items^2 float32, zero diagonal) via a float32 Cholesky inverse."""
    gram = (matrix.T @ matrix).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(lam)
    # Single-threaded: the multi-threaded OpenBLAS solve crashed on large catalogues.
    with threadpool_limits(1, "blas"):
        chol, info = lapack.spotrf(gram, lower=0, overwrite_a=1)
        if info != 0:
            raise RuntimeError(f"EASE Cholesky failed (info={info})")
        inverse, info = lapack.spotri(chol, lower=0, overwrite_c=1)
        if info != 0:
            raise RuntimeError(f"EASE inverse failed (info={info})")
    inverse = np.triu(inverse) + np.triu(inverse, 1).T
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def fit_als(matrix: sp.csr_matrix, factors: int, seed: int, progress: Progress | None,
            should_stop: ShouldStop | None, progress_span: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """implicit's CPU ALS (conjugate gradient), or the process's backend when one is set (set_als_backend);
    returns (user_factors, item_factors) float32."""
    if _als_backend is not None:
        return _als_backend(matrix, factors, seed, progress, should_stop, progress_span)
    from implicit.cpu.als import AlternatingLeastSquares

    start, end = progress_span

    def on_iteration(iteration: int, _elapsed: float, _loss: float | None) -> None:
        report(progress, should_stop, start + (end - start) * (iteration + 1) / ALS_ITERATIONS)

    with threadpool_limits(1, "blas"):  # implicit runs its own threads (and warns if BLAS would too)
        model = AlternatingLeastSquares(
            factors=factors, regularization=ALS_REGULARIZATION, alpha=ALS_ALPHA, iterations=ALS_ITERATIONS,
            random_state=seed, num_threads=0,
        )
        model.fit(matrix.astype(np.float32), show_progress=False, callback=on_iteration)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


def regularized_gram(item_factors: np.ndarray, regularization: float = ALS_REGULARIZATION) -> np.ndarray:
    """Y^T Y + lambda I: the same for every user of a model, so callers compute it once and keep it."""
    factors = np.asarray(item_factors, np.float32)
    return factors.T @ factors + regularization * np.eye(factors.shape[1], dtype=np.float32)


def fold_in(item_factors: np.ndarray, histories: sp.csr_matrix, regularization: float = ALS_REGULARIZATION,
            alpha: float = ALS_ALPHA, gram: np.ndarray | None = None) -> np.ndarray:
    """User factors for history rows by implicit-feedback least squares (confidence 1 + alpha * weight)."""
    n_factors = item_factors.shape[1]
    yty = gram if gram is not None else regularized_gram(item_factors, regularization)
    out = np.zeros((histories.shape[0], n_factors), np.float32)
    for row in range(histories.shape[0]):
        start, end = histories.indptr[row], histories.indptr[row + 1]
        if start == end:
            continue
        y = item_factors[histories.indices[start:end]]
        confidence = 1.0 + alpha * histories.data[start:end]
        a = yty + (y.T * (confidence - 1.0)) @ y
        out[row] = np.linalg.solve(a, y.T @ confidence)
    return out


def fit_transitions(data: TrainingData) -> sp.csr_matrix:
    """Row-normalised item -> following-item matrix over each user's time-ordered events (top neighbours)."""
    return transition_matrix(data.users, data.items, data.n_items)


def transition_matrix(users: np.ndarray, items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """fit_transitions over events given as arrays, sorted by (user, time)."""
    rows, cols, vals = [], [], []
    for gap in range(1, TRANSITION_WINDOW + 1):
        if len(items) <= gap:
            break
        same_user = users[:-gap] == users[gap:]
        different = items[:-gap] != items[gap:]
        mask = same_user & different
        rows.append(items[:-gap][mask])
        cols.append(items[gap:][mask])
        vals.append(np.full(int(mask.sum()), 1.0 / gap, np.float32))
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    )
    mat.sum_duplicates()
    mat = keep_top_per_row(mat, TRANSITION_TOP)
    totals = np.asarray(mat.sum(axis=1)).ravel()
    return (sp.diags(1.0 / np.maximum(totals, 1e-9)) @ mat).astype(np.float32).tocsr()


def keep_top_per_row(mat: sp.csr_matrix, top: int) -> sp.csr_matrix:
    """Keep the `top` largest entries of each CSR row (vectorised: one global sort by (row, -value))."""
    mat = mat.tocsr()
    counts = np.diff(mat.indptr)
    if counts.size == 0 or counts.max(initial=0) <= top:
        return mat
    rows = np.repeat(np.arange(mat.shape[0]), counts)
    order = np.lexsort((-mat.data, rows))
    rank = np.arange(len(order)) - np.repeat(mat.indptr[:-1], counts)
    keep = order[rank < top]
    return sp.csr_matrix((mat.data[keep], (rows[keep], mat.indices[keep])), shape=mat.shape)


def repeat_ratio(data: TrainingData) -> float:
    """Share of events that repeat an item the user already had (re-consumption in this domain)."""
    if not data.n_interactions:
        return 0.0
    pairs = distinct(data.users.astype(np.int64) * data.n_items + data.items).size
    return float(1.0 - pairs / data.n_interactions)
