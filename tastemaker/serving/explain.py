"""Why an item was recommended: the evidence the deployed model itself gives, read-only.

For each recommended item of a GetRecommendations answer, `explain` reports what placed it there:
- the slot: a promotion (the answer names its promotion), exploration (an item the model never saw: only
  itemExplorationConfig's exploration slots place those), or the model's ranking;
- for a user's recommendations, the user's own events that carried the item most: each of the user's newest
  distinct history items (up to HISTORY) is scored alone through the model as the history of an unknown user,
  and its contribution to the item is that score minus the score of an empty history (so popularity, which
  every item gets anyway, does not count). For item-to-item recipes this is the similarity, for sequence
  models the transition weight, for factor models the fold-in of that one event. The user's trained profile
  (a known user with no extra history) is reported the same way;
- for related items (an itemId query), the model's related-item score of the item for the queried item;
- the item attributes it shares with the history items that carried it (the Items dataset's categorical
  values, e.g. a genre), and the filter the request applied, if any.

It runs on the model cache serving already holds (no second copy) and changes nothing. The caller checks
that the key may call GetRecommendations first (the console and `tastemaker explain` both do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tastemaker.errors import InvalidInputException
from tastemaker.services import Services
from tastemaker.serving.deployments import deployment_cache
from tastemaker.serving.engine import catalog_for
from tastemaker.serving.history import user_history
from tastemaker.serving.models import model_cache

HISTORY = 20  # distinct history items scored per explanation (one model row each)
TOP = 3  # contributing history items reported per recommended item
ATTRIBUTE_LIMIT = 6  # Items columns compared for shared values


@dataclass
class Reason:
    """Why one recommended item is where it is."""

    item_id: str
    slot: str  # "model", "promotion <name>", "exploration" or "popularity (N users)"
    score: float | None  # the model's raw score for the item (None outside the model's catalogue)
    events: list[tuple[str, float]] = field(default_factory=list)  # (history item, contribution), largest first
    profile: float | None = None  # the trained user profile's contribution (known users only)
    related_to: tuple[str, float] | None = None  # (queried item, related-item score)
    shared: dict[str, str] = field(default_factory=dict)  # attribute -> value shared with carrying history

    def as_dict(self) -> dict[str, Any]:
        return {"itemId": self.item_id, "slot": self.slot, "modelScore": self.score,
                "events": [{"itemId": item, "contribution": round(value, 6)} for item, value in self.events],
                "profile": None if self.profile is None else round(self.profile, 6),
                "relatedTo": None if self.related_to is None else {"itemId": self.related_to[0],
                                                                    "score": round(self.related_to[1], 6)},
                "sharedAttributes": self.shared}


def _kind(arn: str) -> str:
    return "recommender" if ":recommender/" in arn else "campaign"


def explain(services: Services, arn: str, items: Sequence[dict[str, Any]], *, user_id: str | None = None,
            item_id: str | None = None) -> list[Reason]:
    """One Reason per item of a GetRecommendations itemList (wire dicts: itemId, promotionName)."""
    dep = deployment_cache(services).resolve(services, arn, _kind(arn))
    if not dep.model_prefix:
        raise InvalidInputException(f"{dep.label} {arn} has no trained model to explain.")
    loaded = model_cache(services).get(services, dep.model_prefix)
    model, catalog = loaded.model, catalog_for(services, dep, loaded)
    n_model = catalog.n_model
    positions = [catalog.index_of(str(item.get("itemId"))) for item in items]
    known = [p for p in positions if 0 <= p < n_model]
    reasons = [Reason(str(item.get("itemId")), _slot(item, pos, n_model), None) for item, pos in zip(
        items, positions, strict=True)]
    if not known:
        return reasons
    if dep.recipe_type == "POPULAR_ITEMS":
        for reason, pos in zip(reasons, positions, strict=True):
            if reason.slot == "model":
                reason.slot = f"popularity ({catalog.popularity[pos]:.0f} users)"
        return reasons
    if dep.recipe_type == "RELATED_ITEMS" or (item_id and not user_id):
        anchor = catalog.index_of(item_id or "")
        if 0 <= anchor < n_model:
            related = model.score_items(np.array([anchor], dtype=np.int64))[0]
            for reason, pos in zip(reasons, positions, strict=True):
                if 0 <= pos < n_model:
                    reason.score = float(related[pos])
                    reason.related_to = (item_id or "", float(related[pos]))
        return reasons
    history = _history_positions(services, dep.group_arn, user_id, catalog) if user_id else []
    user = loaded.user_position(user_id) if user_id else -1
    empty = np.zeros(0, dtype=np.int32)
    rows = [(-1, empty), (user, empty)] + [(-1, np.array([h], dtype=np.int32)) for h in history]
    scores = model.score_users(np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows])
    baseline, profile, singles = scores[0], scores[1], scores[2:]
    full = model.score_users(np.array([user], dtype=np.int64),
                             [np.array(history[::-1], dtype=np.int32)])[0]  # oldest first, as serving folds in
    columns = _categorical_columns(catalog)
    for reason, pos in zip(reasons, positions, strict=True):
        if not 0 <= pos < n_model:
            continue
        reason.score = float(full[pos])
        if user >= 0:
            reason.profile = float(profile[pos] - baseline[pos])
        lifts = [(h, float(singles[k, pos] - baseline[pos])) for k, h in enumerate(history)]
        lifts = sorted((x for x in lifts if x[1] > 0), key=lambda x: -x[1])[:TOP]
        reason.events = [(str(catalog.item_ids[h]), lift) for h, lift in lifts]
        if columns and lifts:
            reason.shared = _shared(catalog, pos, [h for h, _ in lifts], columns)
    return reasons


def _slot(item: dict[str, Any], pos: int, n_model: int) -> str:
    if item.get("promotionName"):
        return f"promotion {item['promotionName']}"
    if not 0 <= pos < n_model:
        return "exploration"  # the model never saw it: only an exploration slot places it
    return "model"


def _history_positions(services: Services, group_arn: str, user_id: str | None, catalog: Any) -> list[int]:
    """The user's newest distinct history items inside the model's catalogue (newest first)."""
    seen: list[int] = []
    for item in user_history(services, group_arn, user_id or "").item_ids:
        pos = catalog.index_of(item)
        if 0 <= pos < catalog.n_model and pos not in seen:
            seen.append(pos)
            if len(seen) == HISTORY:
                break
    return seen


def _categorical_columns(catalog: Any) -> list[str]:
    if catalog.metadata is None:
        return []
    return [name for name in catalog.metadata.column_names
            if name.upper() not in ("ITEM_ID", "CREATION_TIMESTAMP", "DESCRIPTION")
            and str(catalog.metadata.schema.field(name).type) == "string"][:ATTRIBUTE_LIMIT]


def _shared(catalog: Any, pos: int, carriers: list[int], columns: list[str]) -> dict[str, str]:
    """Attribute values (multi-values split on |) the item shares with the history items that carried it."""
    rows = catalog.metadata_for([pos, *carriers], columns)
    mine, theirs = rows[0], rows[1:]
    shared: dict[str, str] = {}
    for column, value in mine.items():
        values = set(value.split("|"))
        common = sorted(values & {v for row in theirs for v in row.get(column, "").split("|") if v})
        if common:
            shared[column] = "|".join(common)
    return shared
