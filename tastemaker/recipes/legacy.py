"""Legacy HRNN recipes: listed in the catalogue, refused for new solutions (no longer available in Personalize)."""

from __future__ import annotations

from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import HyperParameter, Progress, Recipe, ShouldStop, TrainedModel
from tastemaker.recipes.training_data import TrainingData

_COMMON = (
    HyperParameter("bptt", "integer", "32", 2, 32, tunable=True),
    HyperParameter("recency_mask", "categorical", "true", values=("true", "false"), tunable=True),
    HyperParameter("min_user_history_length_percentile", "continuous", "0.0", 0.0, 1.0),
    HyperParameter("max_user_history_length_percentile", "continuous", "0.99", 0.0, 1.0),
)


class _Legacy(Recipe):
    recipe_type = "USER_PERSONALIZATION"
    available = False

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        self.check_available()
        raise AssertionError("unreachable")


@register_recipe
class Hrnn(_Legacy):
    name = "aws-hrnn"
    description = "Legacy hierarchical RNN recipe (no longer available; use aws-user-personalization)."
    feature_transformation = "JSON-percentile-filtering"
    hyperparameters = (HyperParameter("hidden_dimension", "integer", "43", 32, 256, tunable=True), *_COMMON)


@register_recipe
class HrnnMetadata(_Legacy):
    name = "aws-hrnn-metadata"
    description = "Legacy HRNN with metadata (no longer available; use aws-user-personalization)."
    feature_transformation = "featurize_metadata"
    hyperparameters = (HyperParameter("hidden_dimension", "integer", "43", 32, 256, tunable=True), *_COMMON)


@register_recipe
class HrnnColdstart(_Legacy):
    name = "aws-hrnn-coldstart"
    description = "Legacy HRNN for cold items (no longer available; use aws-user-personalization)."
    feature_transformation = "featurize_coldstart"
    hyperparameters = (HyperParameter("hidden_dimension", "integer", "149", 32, 256, tunable=True), *_COMMON)
    feature_transformation_parameters = (
        HyperParameter("cold_start_max_interactions", "integer", "15", 0, 1000),
        HyperParameter("cold_start_max_duration", "continuous", "5.0", 0.0, 10000.0),
        HyperParameter("cold_start_relative_from", "categorical", "latestItem", values=("latestItem", "currentTime")),
    )
