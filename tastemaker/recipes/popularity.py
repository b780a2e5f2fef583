"""aws-popularity-count: every user gets the items with the most unique users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import Progress, Recipe, ShouldStop, TrainedModel, register_model_class, report
from tastemaker.recipes.training_data import TrainingData


@register_model_class
class PopularityModel(TrainedModel):
    """The same list for everyone: `arrays['scores']` over the catalogue (popularity when absent)."""

    model_kind: ClassVar[str] = "popularity"

    def score_users(self, user_index: np.ndarray, histories: Sequence[np.ndarray],
                    context: Sequence[dict[str, str]] | None = None) -> np.ndarray:
        scores = np.asarray(self.arrays.get("scores", self.item_popularity), dtype=np.float32)
        return np.broadcast_to(scores, (len(user_index), self.n_items)).astype(np.float32, copy=True)


@register_recipe
class PopularityCount(Recipe):
    name = "aws-popularity-count"
    recipe_type = "POPULAR_ITEMS"
    description = "Recommends the items the most unique users interacted with; the same list for every user."
    feature_transformation = "sims"
    supports_hpo = False

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        popularity = data.unique_user_counts()
        model = PopularityModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=popularity, item_first_seen=data.item_first_seen(), params=typed,
            arrays={"scores": popularity.astype(np.float32)},
        )
        report(progress, should_stop, 1.0)
        return model
