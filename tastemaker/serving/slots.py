"""Slots that do not follow the model's order: exploration of young or cold items, and promotions."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from tastemaker.serving import compiled
from tastemaker.serving.catalog import ServingCatalog

DEFAULT_EXPLORATION_WEIGHT = 0.3
DEFAULT_AGE_CUTOFF_DAYS = 30.0
EXPLORATION_SHARE = 0.5  # explorationWeight 1.0 gives half of the slots to exploration
COLD_PERCENTILE = 10.0  # items at or below this popularity percentile count as having little data


def exploration_settings(config: Mapping[str, Any]) -> tuple[float, float]:
    """(weight 0-1, age cut-off in days) from an itemExplorationConfig map of strings."""
    return _settings(config.get("explorationWeight", DEFAULT_EXPLORATION_WEIGHT),
                     config.get("explorationItemAgeCutOff", DEFAULT_AGE_CUTOFF_DAYS))


@lru_cache(maxsize=256)
def _settings(weight_text: Any, cutoff_text: Any) -> tuple[float, float]:
    try:
        weight, cutoff = float(weight_text), float(cutoff_text)
    except (TypeError, ValueError):
        return DEFAULT_EXPLORATION_WEIGHT, DEFAULT_AGE_CUTOFF_DAYS
    return min(max(weight, 0.0), 1.0), max(cutoff, 0.0)


def exploration_pool(catalog: ServingCatalog, cutoff_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue positions of young-and-cold items, then of items that are young or cold (cached)."""
    return catalog.derived(f"explore:{cutoff_days}", lambda: _pools(catalog, cutoff_days))  # type: ignore[no-any-return]


def _pools(catalog: ServingCatalog, cutoff_days: float) -> tuple[np.ndarray, np.ndarray]:
    created = catalog.created_at
    ref = catalog.reference_time()
    young = (created >= 0) & (created >= ref - cutoff_days * 86400.0)
    model_pop = catalog.popularity[: catalog.n_model]
    threshold = max(float(np.percentile(model_pop, COLD_PERCENTILE)) if model_pop.size else 0.0, 1.0)
    cold = catalog.popularity <= threshold
    return np.flatnonzero(young & cold), np.flatnonzero((young | cold) & ~(young & cold))


def explore(picked: np.ndarray, catalog: ServingCatalog, allowed: np.ndarray | None, blocked: set[int],
            config: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Replace the tail of the exploit list by random young/cold items (allowed, not blocked) at random spots."""
    weight, cutoff = exploration_settings(config)
    n_explore = round(len(picked) * weight * EXPLORATION_SHARE)
    if n_explore == 0 or len(picked) == 0:
        return picked
    best, rest = exploration_pool(catalog, cutoff)
    return compiled.explore_slots(np.asarray(picked, dtype=np.int64), best, rest,  # type: ignore[no-any-return]
                                  _NO_MASK if allowed is None else allowed,
                                  np.fromiter(blocked, np.int64, len(blocked)) if blocked else _NOTHING,
                                  n_explore, rng.random(compiled.draws_needed(n_explore)))


_NO_MASK, _NOTHING = np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)


def promote(scores: np.ndarray, catalog: ServingCatalog, promo_mask: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` items passing the promotion filter: by model score, then newer items by creation time."""
    candidates = np.flatnonzero(promo_mask)
    if candidates.size == 0:
        return candidates.astype(np.int64)
    n_model = catalog.n_model
    known = candidates[candidates < n_model]
    newer = candidates[candidates >= n_model]
    known = known[np.lexsort((known, -scores[known]))][:count]
    if known.size < count and newer.size:
        newer = newer[np.lexsort((newer, -catalog.created_at[newer]))][: count - known.size]
        return np.concatenate([known, newer]).astype(np.int64)
    return known.astype(np.int64)
