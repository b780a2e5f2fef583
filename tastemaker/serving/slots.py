"""Slots that do not follow the model's order: exploration of young or cold items, and promotions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tastemaker.serving.catalog import ServingCatalog

DEFAULT_EXPLORATION_WEIGHT = 0.3
DEFAULT_AGE_CUTOFF_DAYS = 30.0
EXPLORATION_SHARE = 0.5  # explorationWeight 1.0 gives half of the slots to exploration
COLD_PERCENTILE = 10.0  # items at or below this popularity percentile count as having little data


def exploration_settings(config: Mapping[str, Any]) -> tuple[float, float]:
    """(weight 0-1, age cut-off in days) from an itemExplorationConfig map of strings."""
    try:
        weight = float(config.get("explorationWeight", DEFAULT_EXPLORATION_WEIGHT))
        cutoff = float(config.get("explorationItemAgeCutOff", DEFAULT_AGE_CUTOFF_DAYS))
    except (TypeError, ValueError):
        return DEFAULT_EXPLORATION_WEIGHT, DEFAULT_AGE_CUTOFF_DAYS
    return min(max(weight, 0.0), 1.0), max(cutoff, 0.0)


def exploration_pool(catalog: ServingCatalog, allowed: np.ndarray,
                     cutoff_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Allowed items that are young (created within the cut-off) and cold (few users), then young or cold."""
    young_and_cold, young_or_cold = catalog.derived(f"explore:{cutoff_days}",
                                                    lambda: _age_masks(catalog, cutoff_days))
    best = np.flatnonzero(allowed & young_and_cold)
    rest = np.flatnonzero(allowed & young_or_cold & ~young_and_cold)
    return best, rest


def _age_masks(catalog: ServingCatalog, cutoff_days: float) -> tuple[np.ndarray, np.ndarray]:
    created = catalog.created_at
    ref = catalog.reference_time()
    young = (created >= 0) & (created >= ref - cutoff_days * 86400.0)
    model_pop = catalog.popularity[: catalog.n_model]
    threshold = max(float(np.percentile(model_pop, COLD_PERCENTILE)) if model_pop.size else 0.0, 1.0)
    cold = catalog.popularity <= threshold
    return young & cold, young | cold


def explore(picked: np.ndarray, scores: np.ndarray, catalog: ServingCatalog, allowed: np.ndarray,
            config: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Replace the tail of the exploit list by randomly chosen young/cold items at random positions."""
    weight, cutoff = exploration_settings(config)
    n_explore = round(len(picked) * weight * EXPLORATION_SHARE)
    if n_explore == 0 or len(picked) == 0:
        return picked
    allowed = allowed.copy()
    allowed[picked] = False
    best, rest = exploration_pool(catalog, allowed, cutoff)
    chosen = rng.choice(best, size=min(n_explore, best.size), replace=False)
    if chosen.size < n_explore and rest.size:
        more = rng.choice(rest, size=min(n_explore - chosen.size, rest.size), replace=False)
        chosen = np.concatenate([chosen, more])
    if chosen.size == 0:
        return picked
    keep = picked[: len(picked) - chosen.size]
    out = list(keep.tolist())
    for item in chosen.tolist():
        out.insert(int(rng.integers(0, len(out) + 1)), item)
    return np.asarray(out, dtype=np.int64)


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
