"""Trending-Now between trainings: at each interval boundary the trend is recomputed with streamed events."""

from __future__ import annotations

import time

import numpy as np

from tastemaker.realtime.inline import slow_step
from tastemaker.recipes.base import RefreshesTrend, TrainedModel
from tastemaker.services import Services
from tastemaker.store import events


def interval_boundary(now: float, interval_seconds: int) -> int:
    """The start of the current interval: the trend only moves when an interval ends (Personalize's rule)."""
    return int(now // interval_seconds) * interval_seconds


def streamed_window(services: Services, group_arn: str, since: float, until: float) -> tuple[list[str], np.ndarray]:
    """Item ids and sentAt of the group's streamed events in [since, until)."""
    rows = events.item_times(services.read_engine, group_arn, since, until)
    return [item for item, _ in rows], np.array([sent_at for _, sent_at in rows], dtype=np.int64)


def trending_now(services: Services, model: TrainedModel, model_key: str, group_arn: str,
                 now: float | None = None) -> np.ndarray | None:
    """Scores of a Trending-Now model as of the last interval boundary, or None for other models.

    The training window and the events streamed since are counted together, once per boundary and model
    (cached), so a request costs a dictionary lookup.
    """
    if not isinstance(model, RefreshesTrend):
        return None
    interval = model.interval_seconds
    boundary = max(interval_boundary(now if now is not None else time.time(), interval),
                   int(model.settings.get("trained_at", 0)))
    cache = services.serving.trending
    key = (model_key, boundary)
    if key not in cache:
        slow_step("trending refresh")
        item_ids, times = streamed_window(services, group_arn, boundary - 2 * interval, boundary + 1)
        index = model.item_index(item_ids) if item_ids else np.zeros(0, np.int64)
        known = index >= 0
        for stale in [k for k in cache if k[0] == model_key]:
            del cache[stale]
        cache[key] = model.refreshed_scores(index[known], times[known], boundary)
    return cache[key]
