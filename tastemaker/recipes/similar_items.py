"""aws-similar-items: co-occurrence blended with item metadata similarity (cold items get metadata neighbours)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

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
from tastemaker.recipes.common import unit_max
from tastemaker.recipes.features import content_features, content_scores
from tastemaker.recipes.sims import (
    POPULARITY_TIE_BREAK,
    ItemSimilarityModel,
    csr_arrays,
    fit_item_similarity,
)
from tastemaker.recipes.training_data import TrainingData

SIMS_DEFAULTS = {
    "popularity_discount_factor": 0.5, "min_cointeraction_count": 2,
    "min_user_history_length_percentile": 0.0, "max_user_history_length_percentile": 0.995,
    "min_item_interaction_count_percentile": 0.0, "max_item_interaction_count_percentile": 0.99,
}


@register_model_class
class SimilarItemsModel(ItemSimilarityModel):
    """Co-occurrence neighbours + content cosine; the content share is k / (k + interactions of the query)."""

    model_kind: ClassVar[str] = "similar_items"

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        behaviour = self.neighbour_scores(item_index)
        n_features = int(self.settings["n_features"])
        features = self.matrix("feat", n_features)
        content = unit_max(content_scores(features, item_index))
        counts = np.asarray(self.arrays["interaction_counts"], np.float32)
        k = float(self.settings["metadata_strength"])
        share = np.where(item_index >= 0, k / (k + counts[np.maximum(item_index, 0)]), 0.0).astype(np.float32)
        if n_features == 0:
            share[:] = 0.0
        scores = (1.0 - share)[:, None] * behaviour + share[:, None] * content
        scores += np.float32(POPULARITY_TIE_BREAK) * unit_max(self.item_popularity)
        known = np.nonzero(item_index >= 0)[0]
        scores[known, item_index[known]] = -1.0
        return scores.astype(np.float32)


@register_recipe
class SimilarItems(Recipe):
    name = "aws-similar-items"
    recipe_type = "RELATED_ITEMS"
    description = (
        "Recommends items similar to a given item from co-occurrence and item metadata; items with few or no "
        "interactions get neighbours from their metadata."
    )
    feature_transformation = "similar-items"
    hyperparameters = (
        HyperParameter("item_id_hidden_dim", "integer", "100", 30, 200, tunable=True,
                       description="Co-occurrence neighbours kept per item."),
        HyperParameter("item_metadata_hidden_dim", "integer", "100", 30, 200, tunable=True,
                       description="Metadata strength: an item's metadata weighs as much as dim/20 interactions."),
    )

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        sim = fit_item_similarity(data, SIMS_DEFAULTS)
        sim = keep_top_per_row(sim, int(typed["item_id_hidden_dim"]))
        report(progress, should_stop, 0.6)
        features = content_features(data.item_metadata, data.n_items)
        report(progress, should_stop, 0.9)
        arrays = {**csr_arrays("sim", sim), **csr_arrays("feat", features),
                  "interaction_counts": np.bincount(data.items, minlength=data.n_items).astype(np.float32)}
        model = SimilarItemsModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays=arrays,
            settings={"n_features": int(features.shape[1]),
                      "metadata_strength": float(typed["item_metadata_hidden_dim"]) / 20.0},
        )
        report(progress, should_stop, 1.0)
        return model
