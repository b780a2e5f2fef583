"""Reference baselines for bench/accuracy.py, built directly on libraries and tuned on a validation split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import CosineRecommender
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from tastemaker.evaluation.metrics import ndcg_at_k, top_k
from tastemaker.evaluation.splits import Split
from tastemaker.recipes.training_data import TrainingData

Scorer = Callable[[list[np.ndarray], np.ndarray], np.ndarray]  # (histories, query user codes) -> scores


def binary_rows(histories: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    lengths = [len(h) for h in histories]
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if histories else np.zeros(0, np.int64)
    mat = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(histories), n_items))
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat


def training_matrix(train: TrainingData, split: Split, known_users: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    """User-item matrix of the training events; held-out users' inputs are appended as extra rows
    (row index returned per query) so models without fold-in can score them."""
    base = train.user_item_matrix(binary=True)
    if known_users:
        return base, split.query_users
    extra = binary_rows(split.inputs, train.n_items)
    return sp.vstack([base, extra]).tocsr(), train.n_users + np.arange(len(split.inputs))


def fit_popularity(train: TrainingData, split: Split, known_users: bool, params: dict[str, Any]) -> Scorer:
    pop = train.unique_user_counts()
    return lambda histories, _rows: np.tile(pop, (len(histories), 1))


def fit_ease(train: TrainingData, split: Split, known_users: bool, params: dict[str, Any]) -> Scorer:
    x = train.user_item_matrix(binary=True)
    gram = (x.T @ x).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(params["lambda"])
    with threadpool_limits(1, "blas"):
        chol, _ = lapack.spotrf(gram, lower=0, overwrite_a=1)
        inv, _ = lapack.spotri(chol, lower=0, overwrite_c=1)
    inv = np.triu(inv) + np.triu(inv, 1).T
    weights = (-inv / np.diag(inv)[None, :]).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return lambda histories, _rows: np.asarray(binary_rows(histories, train.n_items) @ weights)


def fit_item_knn(train: TrainingData, split: Split, known_users: bool, params: dict[str, Any]) -> Scorer:
    model = CosineRecommender(K=int(params["K"]))
    model.fit(train.user_item_matrix(binary=True), show_progress=False)
    sim = model.similarity.tocsr()
    return lambda histories, _rows: (binary_rows(histories, train.n_items) @ sim).toarray()


def fit_als(train: TrainingData, split: Split, known_users: bool, params: dict[str, Any]) -> Scorer:
    model = AlternatingLeastSquares(factors=int(params["factors"]), regularization=float(params["regularization"]),
                                    alpha=float(params["alpha"]), iterations=15, random_state=0)
    with threadpool_limits(1, "blas"):
        model.fit(train.user_item_matrix(binary=True), show_progress=False)

    def score(histories: list[np.ndarray], _rows: np.ndarray) -> np.ndarray:
        rows = binary_rows(histories, train.n_items)  # implicit's own least-squares fold-in
        users = model.recalculate_user(np.arange(rows.shape[0]), rows)
        return users @ model.item_factors.T

    return score


def fit_bpr(train: TrainingData, split: Split, known_users: bool, params: dict[str, Any]) -> Scorer:
    matrix, rows_of_queries = training_matrix(train, split, known_users)
    model = BayesianPersonalizedRanking(factors=int(params["factors"]), learning_rate=float(params["learning_rate"]),
                                        regularization=float(params["regularization"]),
                                        iterations=int(params["iterations"]), random_state=0)
    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)
    row_of_query = dict(zip(split.query_users.tolist() if known_users else range(len(split.inputs)),
                            rows_of_queries.tolist(), strict=True))

    def score(histories: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        index = np.array([row_of_query[int(r)] for r in rows])
        return model.user_factors[index] @ model.item_factors.T

    return score


BASELINES: dict[str, tuple[Callable[..., Scorer], Callable[[optuna.Trial], dict[str, Any]] | None, int]] = {
    "baseline-popularity": (fit_popularity, None, 0),
    "baseline-item-knn": (fit_item_knn, lambda t: {"K": t.suggest_categorical("K", [50, 100, 200, 400])}, 4),
    "baseline-ease": (fit_ease, lambda t: {"lambda": t.suggest_categorical("lambda", [50, 100, 200, 500, 1000])}, 5),
    "baseline-implicit-als": (fit_als, lambda t: {
        "factors": t.suggest_categorical("factors", [32, 64, 128, 256]),
        "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
        "alpha": t.suggest_float("alpha", 1.0, 100.0, log=True)}, 10),
    "baseline-implicit-bpr": (fit_bpr, lambda t: {
        "factors": t.suggest_categorical("factors", [32, 64, 128]),
        "learning_rate": t.suggest_float("learning_rate", 0.003, 0.1, log=True),
        "regularization": t.suggest_float("regularization", 1e-4, 0.1, log=True),
        "iterations": t.suggest_categorical("iterations", [50, 100])}, 6),
}


def evaluate_scorer(scorer: Scorer, split: Split, known_users: bool, k: int = 25) -> np.ndarray:
    """(Q, k) top items per query; baselines always exclude the query's history (as a filter would)."""
    rows = []
    for start in range(0, len(split.inputs), 256):
        histories = split.inputs[start:start + 256]
        ids = (split.query_users[start:start + 256] if known_users
               else np.arange(start, start + len(histories)))
        rows.append(top_k(scorer(histories, ids), k, histories))
    return np.concatenate(rows)


def tune(name: str, validation: Split, known_users: bool, seed: int = 0) -> dict[str, Any]:
    """Best parameters on the validation split by NDCG@10 (optuna TPE, seeded)."""
    fit, space, trials = BASELINES[name]
    if space is None:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        scorer = fit(validation.train, validation, known_users, params)
        return ndcg_at_k(evaluate_scorer(scorer, validation, known_users, 10), validation.truths, 10)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params)
