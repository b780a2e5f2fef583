"""aws-sims: item-to-item similarity from co-occurrence in user histories, discounted by popularity.

sim(i, j) = w_i w_j co(i, j) / (w_i n_i * w_j n_j) ^ popularity_discount_factor (similarity_from_cooccurrence).
How much popularity to weigh down depends on the data (MovieLens-1M wants a discount of 0.4, the 85-item Amazon
beauty catalogue a tighter item-count cap), so when a solution leaves max_item_interaction_count_percentile or
popularity_discount_factor unset, each is chosen in turn (the cap first, at the default discount) on a validation
split of the training data (choose_unset): held-out users are queried with their newest item, as
GetSolutionMetrics scores related items, and the candidate whose similarities best predict what they took next
wins. Co-occurrence is counted once; each candidate only re-weights it. Values a solution sets keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from tastemaker.evaluation.metrics import ndcg_at_k, top_k
from tastemaker.evaluation.splits import personalize_split
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
# Values tried on a validation split for each of these hyperparameters the solution does not set (choose_unset).
ITEM_CAP_CANDIDATES = (0.9, 0.95, 0.99)
DISCOUNT_CANDIDATES = (0.4, 0.5, 0.6)  # Personalize's default 0.5 and its neighbours
MIN_VALIDATION_QUERIES = 20  # fewer held-out queries than this: too noisy to choose by, keep the default


def csr_arrays(prefix: str, mat: sp.csr_matrix) -> dict[str, np.ndarray]:
    mat = mat.tocsr()
    return {f"{prefix}_indptr": mat.indptr.astype(np.int64), f"{prefix}_indices": mat.indices.astype(np.int32),
            f"{prefix}_data": mat.data.astype(np.float32)}


def csr_from_arrays(arrays: dict[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )


def trim_items(data: TrainingData, low: float, high: float) -> tuple[TrainingData, np.ndarray]:
    """(events of items at or above the `low` percentile of interaction counts, per-item weights).

    Items above the `high` percentile count as if they had only that many events: each of their events
    weighs cap / count. That is the expected value of keeping `cap` of their events at random, without the
    noise: an item's co-occurrence row keeps every user's evidence (a popular query item's neighbours are
    estimated from all its users) while the item weighs no more than a capped one as someone's neighbour."""
    counts = np.bincount(data.items, minlength=data.n_items)
    weights = np.ones(data.n_items, np.float32)
    active = counts[counts > 0]
    if active.size == 0:
        return data, weights
    lo = np.quantile(active, low) if low > 0 else 0
    if high < 1:
        cap = max(float(np.quantile(active, high)), 1.0)
        weights = np.minimum(1.0, cap / np.maximum(counts, 1)).astype(np.float32)
    keep = counts[data.items] >= lo
    return (data.subset_events(keep) if keep.sum() >= 0.2 * data.n_interactions else data), weights


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
                                 neighbours: int = NEIGHBOURS, item_weights: np.ndarray | None = None) -> sp.csr_matrix:
    """sim(i, j) = w_i w_j co(i, j) / (w_i n_i * w_j n_j) ** discount, for pairs seen together >= min_count
    times (w: trim_items' weights, 1 when not given)."""
    co = co.tocoo()
    keep = co.data >= max(min_count, 1)
    rows, cols, values = co.row[keep], co.col[keep], co.data[keep]
    if item_weights is not None:
        weights = np.asarray(item_weights, np.float32)
        values = values * weights[rows] * weights[cols]
        counts = counts * weights
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
                   description="0 ranks by raw co-occurrence (popular items), 1 by lift (unset: chosen from "
                               "0.4, 0.5, 0.6 on a validation split)."),
    HyperParameter("min_cointeraction_count", "integer", "3", 0, 10, tunable=True,
                   description="Pairs seen together fewer times are not similar."),
    HyperParameter("min_user_history_length_percentile", "continuous", "0.005", 0.0, 1.0),
    HyperParameter("max_user_history_length_percentile", "continuous", "0.995", 0.0, 1.0),
    HyperParameter("min_item_interaction_count_percentile", "continuous", "0.01", 0.0, 1.0),
    # Personalize's default is 0.9. Unless the solution sets it, choose_unset picks it per dataset: MovieLens
    # wants 0.99 (0.9 is 5-14% worse), Amazon beauty (85 items, one in a third of the events) 0.9-0.95 (0.99 is
    # 26% worse); docs/recipes.md, bench/defaults.py.
    HyperParameter("max_item_interaction_count_percentile", "continuous", "0.99", 0.0, 1.0,
                   description="Items with more interactions than this percentile weigh as if they had that many "
                               "(unset: chosen from 0.9, 0.95, 0.99 on a validation split)."),
)


@dataclass
class RelatedValidation:
    """Held-out users of Personalize's split of the training data, each queried with their newest input item
    (as GetSolutionMetrics scores related items), and the items they took next."""

    train: TrainingData
    queries: np.ndarray
    truths: list[np.ndarray]

    def ndcg(self, model: TrainedModel) -> float:
        return ndcg_at_k(top_k(model.score_items(self.queries), 10), self.truths, 10)


def related_validation(data: TrainingData, seed: int) -> RelatedValidation | None:
    """The validation queries of `data`, or None when there are too few to choose anything by."""
    if data.n_interactions == 0:
        return None
    split = personalize_split(data, seed=seed + 1)
    queries = np.array([h[-1] if len(h) else -1 for h in split.inputs], dtype=np.int64)
    asked = queries >= 0
    if int(asked.sum()) < MIN_VALIDATION_QUERIES:
        return None
    return RelatedValidation(split.train, queries[asked], [t for t, a in zip(split.truths, asked, strict=True) if a])


CHOSEN = {"max_item_interaction_count_percentile": ITEM_CAP_CANDIDATES,
          "popularity_discount_factor": DISCOUNT_CANDIDATES}


def choose_unset(data: TrainingData, typed: dict[str, Any], unset: list[str], seed: int) -> dict[str, float]:
    """Values for the `unset` hyperparameters (keys of CHOSEN), one after the other in CHOSEN's order: the
    candidate whose similarities best predict held-out users' next items (NDCG@10 on related_validation), the
    others at their chosen or given values. Ties go to the value nearest the default, then the larger. Too few
    validation queries: the defaults. Co-occurrence is counted once; only the weights differ."""
    defaults = {name: float(typed[name]) for name in unset}
    validation = related_validation(data, seed)
    if validation is None or not unset:
        return defaults
    train = trim_users_by_history_percentiles(validation.train, float(typed["min_user_history_length_percentile"]),
                                              float(typed["max_user_history_length_percentile"]))
    low = float(typed["min_item_interaction_count_percentile"])
    trimmed, _ = trim_items(train, low, 1.0)
    co, counts = cooccurrence(trimmed)
    chosen = {name: float(typed[name]) for name in CHOSEN}

    def ndcg(values: dict[str, float]) -> float:
        weights = trim_items(train, low, values["max_item_interaction_count_percentile"])[1]
        sim = similarity_from_cooccurrence(co, counts, values["popularity_discount_factor"],
                                           float(typed["min_cointeraction_count"]), item_weights=weights)
        return validation.ndcg(ItemSimilarityModel(
            recipe_name="aws-sims", recipe_type="RELATED_ITEMS", item_ids=train.item_ids, user_ids=train.user_ids,
            item_popularity=train.unique_user_counts(), item_first_seen=train.item_first_seen(),
            arrays=csr_arrays("sim", sim),
        ))

    for name, candidates in CHOSEN.items():  # one at a time, the cap first: fewer candidates, less noise
        if name in unset:
            scored = [(ndcg({**chosen, name: value}), -abs(value - float(typed[name])), value)
                      for value in candidates]
            chosen[name] = max(scored)[2]
    return {name: chosen[name] for name in unset}


def fit_item_similarity(data: TrainingData, typed: dict[str, Any]) -> sp.csr_matrix:
    trimmed = trim_users_by_history_percentiles(
        data, float(typed["min_user_history_length_percentile"]), float(typed["max_user_history_length_percentile"])
    )
    trimmed, weights = trim_items(trimmed, float(typed["min_item_interaction_count_percentile"]),
                                  float(typed["max_item_interaction_count_percentile"]))
    co, counts = cooccurrence(trimmed)
    return similarity_from_cooccurrence(co, counts, float(typed["popularity_discount_factor"]),
                                        float(typed["min_cointeraction_count"]), item_weights=weights)


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
        unset = [name for name in CHOSEN if name not in params]
        if unset:
            typed.update(choose_unset(data, typed, unset, seed))
            report(progress, should_stop, 0.5)
        sim = fit_item_similarity(data, typed)
        report(progress, should_stop, 0.9)
        model = ItemSimilarityModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays=csr_arrays("sim", sim),
        )
        report(progress, should_stop, 1.0)
        return model
