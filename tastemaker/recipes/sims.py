"""aws-sims: item-to-item similarity from co-occurrence in user histories, discounted by popularity."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import (
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    register_model_class,
    report,
)
from tastemaker.recipes.collaborative import keep_top_per_row
from tastemaker.recipes.common import MAX_STORED_HISTORY, trim_users_by_history_percentiles, unit_max
from tastemaker.recipes.training_data import TrainingData

NEIGHBOURS = 100  # similar items kept per item
POPULARITY_TIE_BREAK = 1e-3  # items without co-occurrence follow the neighbours in popularity order


def csr_arrays(prefix: str, mat: sp.csr_matrix) -> dict[str, np.ndarray]:
    mat = mat.tocsr()
    return {f"{prefix}_indptr": mat.indptr.astype(np.int64), f"{prefix}_indices": mat.indices.astype(np.int32),
            f"{prefix}_data": mat.data.astype(np.float32)}


def csr_from_arrays(arrays: dict[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )


def trim_items(data: TrainingData, low: float, high: float, seed: int) -> TrainingData:
    """Drop items below the `low` percentile of interaction counts; cap items above the `high` percentile
    at that many (randomly kept) events, so a few hugely popular items do not dominate co-occurrence."""
    counts = np.bincount(data.items, minlength=data.n_items)
    active = counts[counts > 0]
    if active.size == 0:
        return data
    lo = np.quantile(active, low) if low > 0 else 0
    hi = max(np.quantile(active, high), 1) if high < 1 else np.inf
    keep = counts[data.items] >= lo
    if np.isfinite(hi):
        rank = np.random.default_rng(seed).random(data.n_interactions)
        capped = counts[data.items] > hi
        keep &= ~capped | (rank < hi / np.maximum(counts[data.items], 1))
    return data.subset_events(keep) if keep.sum() >= 0.2 * data.n_interactions else data


def cooccurrence(data: TrainingData, recent: int = MAX_STORED_HISTORY) -> tuple[sp.csr_matrix, np.ndarray]:
    """(item x item co-occurrence counts over users' most recent `recent` distinct items, item user counts)."""
    offsets = data.user_offsets()
    position_from_end = np.repeat(offsets[1:], np.diff(offsets)) - np.arange(data.n_interactions) - 1
    recent_events = data.subset_events(position_from_end < recent)
    users_items = recent_events.user_item_matrix(binary=True)
    counts = np.asarray(users_items.sum(axis=0)).ravel().astype(np.float32)
    co = (users_items.T @ users_items).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    return co.astype(np.float32), counts


def similarity_from_cooccurrence(co: sp.csr_matrix, counts: np.ndarray, discount: float, min_count: float,
                                 neighbours: int = NEIGHBOURS) -> sp.csr_matrix:
    """sim(i, j) = co(i, j) / (n_i * n_j) ** discount, for pairs seen together >= min_count times."""
    co = co.tocoo()
    keep = co.data >= max(min_count, 1)
    rows, cols, values = co.row[keep], co.col[keep], co.data[keep]
    denominator = np.power(np.maximum(counts[rows] * counts[cols], 1.0), discount)
    sim = sp.csr_matrix((values / denominator, (rows, cols)), shape=co.shape)
    return keep_top_per_row(sim, neighbours)


@register_model_class
class ItemSimilarityModel(TrainedModel):
    """Sparse item-item neighbours (`sim_*` arrays) plus popularity for unknown or unconnected items."""

    model_kind: ClassVar[str] = "item_similarity"

    def after_load(self) -> None:
        self.__dict__.pop("_csr_cache", None)

    def matrix(self, prefix: str, n_columns: int) -> sp.csr_matrix:
        """The CSR stored under `prefix` (built once per model object)."""
        cache = self.__dict__.setdefault("_csr_cache", {})
        if prefix not in cache:
            cache[prefix] = csr_from_arrays(self.arrays, prefix, (self.n_items, n_columns))
        return cache[prefix]

    def neighbour_scores(self, item_index: np.ndarray) -> np.ndarray:
        sim = self.matrix("sim", self.n_items)
        safe = np.where(item_index >= 0, item_index, 0)
        scores = unit_max(sim[safe].toarray())
        scores[np.asarray(item_index) < 0] = 0.0
        return scores

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        scores = self.neighbour_scores(item_index)
        scores += np.float32(POPULARITY_TIE_BREAK) * unit_max(self.item_popularity)
        known = np.nonzero(item_index >= 0)[0]
        scores[known, item_index[known]] = -1.0  # never recommend the query item itself
        return scores.astype(np.float32)


SIMS_HYPERPARAMETERS = (
    HyperParameter("popularity_discount_factor", "continuous", "0.5", 0.0, 1.0, tunable=True,
                   description="0 ranks by raw co-occurrence (popular items), 1 by lift."),
    HyperParameter("min_cointeraction_count", "integer", "3", 0, 10, tunable=True,
                   description="Pairs seen together fewer times are not similar."),
    HyperParameter("min_user_history_length_percentile", "continuous", "0.005", 0.0, 1.0),
    HyperParameter("max_user_history_length_percentile", "continuous", "0.995", 0.0, 1.0),
    HyperParameter("min_item_interaction_count_percentile", "continuous", "0.01", 0.0, 1.0),
    HyperParameter("max_item_interaction_count_percentile", "continuous", "0.9", 0.0, 1.0),
)


def fit_item_similarity(data: TrainingData, typed: dict[str, Any], seed: int) -> sp.csr_matrix:
    trimmed = trim_users_by_history_percentiles(
        data, float(typed["min_user_history_length_percentile"]), float(typed["max_user_history_length_percentile"])
    )
    trimmed = trim_items(trimmed, float(typed["min_item_interaction_count_percentile"]),
                         float(typed["max_item_interaction_count_percentile"]), seed)
    co, counts = cooccurrence(trimmed)
    return similarity_from_cooccurrence(co, counts, float(typed["popularity_discount_factor"]),
                                        float(typed["min_cointeraction_count"]))


@register_recipe
class Sims(Recipe):
    name = "aws-sims"
    recipe_type = "RELATED_ITEMS"
    description = "Recommends items that users interacted with together with the given item."
    feature_transformation = "sims"
    hyperparameters = SIMS_HYPERPARAMETERS

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        sim = fit_item_similarity(data, typed, seed)
        report(progress, should_stop, 0.9)
        model = ItemSimilarityModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays=csr_arrays("sim", sim),
        )
        report(progress, should_stop, 1.0)
        return model
