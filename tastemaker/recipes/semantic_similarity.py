"""aws-semantic-similarity: content-based related items from TF-IDF over the item name and textual fields."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import Progress, Recipe, ShouldStop, TrainedModel, register_model_class, report
from tastemaker.recipes.common import unit_max
from tastemaker.recipes.features import content_scores, item_text, tfidf
from tastemaker.recipes.sims import POPULARITY_TIE_BREAK, csr_arrays, csr_from_arrays
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData


@register_model_class
class SemanticModel(TrainedModel):
    """TF-IDF rows per item; related items by cosine similarity (unknown item -> popularity)."""

    model_kind: ClassVar[str] = "semantic"

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        features = csr_from_arrays(self.arrays, "feat", (self.n_items, int(self.settings["n_features"])))
        scores = unit_max(content_scores(features, item_index))
        scores += np.float32(POPULARITY_TIE_BREAK) * unit_max(self.item_popularity)
        known = np.nonzero(item_index >= 0)[0]
        scores[known, item_index[known]] = -1.0
        return scores.astype(np.float32)


@register_recipe
class SemanticSimilarity(Recipe):
    name = "aws-semantic-similarity"
    returns_metadata = True
    recipe_type = "RELATED_ITEMS"
    description = "Recommends items whose name and descriptions are closest in meaning to a given item's."
    feature_transformation = "aws-semantic-similarity"
    supports_hpo = False
    needs_interactions = False
    needs_items = True

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        meta = data.item_metadata
        if meta is None or not meta.textual:
            raise InsufficientDataError(
                "Create failed. aws-semantic-similarity needs an Items dataset with an item name field "
                "(\"itemName\": true) and at least one textual field (\"textual\": true)."
            )
        features = tfidf(item_text(meta, data.n_items))
        report(progress, should_stop, 0.9)
        model = SemanticModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays=csr_arrays("feat", features), settings={"n_features": int(features.shape[1])},
        )
        report(progress, should_stop, 1.0)
        return model
