"""aws-trending-now: items whose interaction rate grows fastest between the latest two intervals."""

from __future__ import annotations

from collections.abc import Sequence
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
from tastemaker.recipes.common import unit_max
from tastemaker.recipes.training_data import TrainingData

TREND_DISCOVERY_FREQUENCIES = {"30 minutes": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "1 day": 86400}
TREND_DISCOVERY_FREQUENCY = HyperParameter(
    "trend_discovery_frequency", "categorical", "2 hours", values=tuple(TREND_DISCOVERY_FREQUENCIES),
    description="Length of the two intervals whose interaction counts are compared.",
)


def trending_scores(item_index: np.ndarray, timestamps: np.ndarray, n_items: int, now: int,
                    interval_seconds: int, popularity: np.ndarray) -> np.ndarray:
    """float32 (n_items,) trending scores from (item, timestamp) events.

    Growth = events in (now - interval, now] minus events in (now - 2*interval, now - interval]; items that
    grew most come first, ties broken by current count then overall popularity. With no events in the last
    two intervals the scores are the (normalised) popularity.
    """
    items = np.asarray(item_index, dtype=np.int64)
    times = np.asarray(timestamps, dtype=np.int64)
    valid = (items >= 0) & (items < n_items) & (times <= now) & (times > now - 2 * interval_seconds)
    items, times = items[valid], times[valid]
    fallback = unit_max(np.asarray(popularity, dtype=np.float32))
    if items.size == 0:
        return fallback.astype(np.float32)
    current_mask = times > now - interval_seconds
    current = np.bincount(items[current_mask], minlength=n_items).astype(np.float32)
    previous = np.bincount(items[~current_mask], minlength=n_items).astype(np.float32)
    growth = current - previous
    # Growth dominates; the tie-breakers stay below one event of growth.
    return (growth + 0.5 * unit_max(current) + 0.01 * fallback).astype(np.float32)


@register_model_class
class TrendingModel(TrainedModel):
    """Trending scores at training time plus the events of the last two intervals (to refresh with new events)."""

    model_kind: ClassVar[str] = "trending"

    @property
    def interval_seconds(self) -> int:
        return int(self.settings["interval_seconds"])

    def score_users(self, user_index: np.ndarray, histories: Sequence[np.ndarray],
                    context: Sequence[dict[str, str]] | None = None) -> np.ndarray:
        scores = np.asarray(self.arrays["scores"], dtype=np.float32)
        return np.broadcast_to(scores, (len(user_index), self.n_items)).astype(np.float32, copy=True)

    def refreshed_scores(self, item_index: np.ndarray, timestamps: np.ndarray, now: int) -> np.ndarray:
        """Trending scores at `now` from the training window plus newly streamed (item, timestamp) events."""
        items = np.concatenate([np.asarray(self.arrays["window_items"], np.int64), np.asarray(item_index, np.int64)])
        times = np.concatenate([np.asarray(self.arrays["window_times"], np.int64), np.asarray(timestamps, np.int64)])
        return trending_scores(items, times, self.n_items, now, self.interval_seconds, self.item_popularity)


@register_recipe
class TrendingNow(Recipe):
    name = "aws-trending-now"
    recipe_type = "POPULAR_ITEMS"
    description = "Recommends the items gaining popularity fastest; recomputed every trend_discovery_frequency."
    feature_transformation = "trending-now"
    feature_transformation_parameters = (TREND_DISCOVERY_FREQUENCY,)
    supports_hpo = False

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        interval = TREND_DISCOVERY_FREQUENCIES[str(typed["trend_discovery_frequency"])]
        now = int(data.timestamps.max()) if data.n_interactions else 0
        in_window = data.timestamps > now - 2 * interval
        popularity = data.unique_user_counts()
        scores = trending_scores(data.items, data.timestamps, data.n_items, now, interval, popularity)
        model = TrendingModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=popularity, item_first_seen=data.item_first_seen(), params=typed,
            arrays={"scores": scores, "window_items": data.items[in_window].astype(np.int32),
                    "window_times": data.timestamps[in_window].astype(np.int64)},
            settings={"interval_seconds": interval, "trained_at": now},
        )
        report(progress, should_stop, 1.0)
        return model
