"""aws-item-affinity and aws-item-attribute-affinity: rank users for items or item attributes (segments)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from tastemaker.errors import InvalidInputException
from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import (
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    register_model_class,
)
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData
from tastemaker.recipes.user_personalization import HIDDEN_DIMENSION, CollaborativeModel, fit_collaborative

AFFINITY_HIDDEN_DIMENSION = HyperParameter(
    HIDDEN_DIMENSION.name, "integer", "149", 32, 256, tunable=False, description=HIDDEN_DIMENSION.description
)


def attribute_key(column: str, value: str) -> str:
    return f"{column.strip().upper()}\t{value.strip().lower()}"


@register_model_class
class AffinityModel(CollaborativeModel):
    """The collaborative engine read column-wise: every known user's affinity for items or attributes."""

    model_kind: ClassVar[str] = "affinity"

    def score_users_for_items(self, item_index: np.ndarray, users: slice = slice(None)) -> np.ndarray:
        item_index = np.asarray(item_index, dtype=np.int64)
        sets = [np.array([i]) if i >= 0 else np.zeros(0, np.int64) for i in item_index.tolist()]
        return self.user_affinity_for_item_sets(sets, users)

    def items_matching(self, query: list[tuple[str, str]]) -> np.ndarray:
        """Items having every (column, value) of the query (multi-valued columns match any of their values)."""
        keys = np.asarray(self.arrays["attr_keys"])
        indptr, items = self.arrays["attr_indptr"], self.arrays["attr_items"]
        matched: np.ndarray | None = None
        for column, value in query:
            found = np.nonzero(keys == attribute_key(column, value))[0]
            these = np.asarray(items[indptr[found[0]]:indptr[found[0] + 1]]) if found.size else np.zeros(0, np.int32)
            matched = these if matched is None else np.intersect1d(matched, these)
        return np.zeros(0, np.int32) if matched is None else matched

    def score_users_for_attributes(self, queries: Sequence[list[tuple[str, str]]],
                                   users: slice = slice(None)) -> np.ndarray:
        if "attr_keys" not in self.arrays:
            raise InvalidInputException(f"Recipe {self.recipe_name} does not produce user segments for attributes.")
        return self.user_affinity_for_item_sets([self.items_matching(q) for q in queries], users)


@register_recipe
class ItemAffinity(Recipe):
    name = "aws-item-affinity"
    recipe_type = "USER_SEGMENTATION"
    description = "Finds the users most likely to interact with each given item (batch segment jobs)."
    feature_transformation = "item-affinity"
    hyperparameters = (AFFINITY_HIDDEN_DIMENSION,)
    supports_hpo = False

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        model = fit_collaborative(self, data, typed, seed=seed, progress=progress, should_stop=should_stop,
                                  model_class=AffinityModel, keep_user_factors=True)
        self.add_attributes(model, data)
        return model

    def add_attributes(self, model: TrainedModel, data: TrainingData) -> None:
        """Nothing for item affinity; attribute affinity indexes items by categorical value."""


@register_recipe
class ItemAttributeAffinity(ItemAffinity):
    name = "aws-item-attribute-affinity"
    description = "Finds the users most likely to interact with items having given attribute values."
    feature_transformation = "item-attribute-affinity"
    needs_items = True

    def add_attributes(self, model: TrainedModel, data: TrainingData) -> None:
        meta = data.item_metadata
        if meta is None or not meta.categorical:
            raise InsufficientDataError(
                "Create failed. aws-item-attribute-affinity needs an Items dataset with at least one categorical "
                "(non-textual, non-reserved) column."
            )
        keys, indptr, members = [], [0], []
        for column, (matrix, values) in meta.categorical.items():
            by_value = matrix.T.tocsr()
            for v, value in enumerate(values.tolist()):
                keys.append(attribute_key(column, value))
                members.append(by_value.indices[by_value.indptr[v]:by_value.indptr[v + 1]].astype(np.int32))
                indptr.append(indptr[-1] + len(members[-1]))
        model.arrays["attr_keys"] = np.asarray(keys, dtype=str)
        model.arrays["attr_indptr"] = np.asarray(indptr, dtype=np.int64)
        model.arrays["attr_items"] = np.concatenate(members) if members else np.zeros(0, np.int32)
