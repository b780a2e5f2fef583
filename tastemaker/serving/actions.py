"""GetActionRecommendations: the actions a user is most likely to take, with probabilities.

Per request: the campaign's aws-next-best-action model (tastemaker.recipes.next_best_action) scores its actions
from the user's item history (bulk + streamed PutEvents, tastemaker.serving.history) and action history (what
training saw + the user's PutActionInteractions rows, read from the events store). The candidates are the
group's Actions dataset as it is now (PutActions and imports take effect within a second, the data version
is re-checked): actions the model never saw score 0.0. Removed before ranking, as in Personalize: actions
past their EXPIRATION_TIMESTAMP, actions the user TOOK within their REPEAT_FREQUENCY (days), and what the
action filter (filterArn/filterValues, `... ActionID WHERE ...`) excludes. Ranked by score, then VALUE.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tastemaker.control.context import RequestContext
from tastemaker.control.recommendation_ids import tag
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException
from tastemaker.filters.compiler import DEFAULT_ACTION_HISTORY_DEPTH
from tastemaker.recipes.action_data import EVENT_CODES, SECONDS_PER_DAY, TAKEN, ActionCatalog, event_code
from tastemaker.recipes.next_best_action import NextBestActionModel
from tastemaker.services import Services
from tastemaker.serving.candidates import load_filter
from tastemaker.serving.engine import rid
from tastemaker.serving.history import user_history
from tastemaker.serving.models import model_cache
from tastemaker.serving.runtime import _serving
from tastemaker.serving.snapshots import read_table
from tastemaker.store.action_events import user_action_events

DEFAULT_NUM_RESULTS = 5
MAX_NUM_RESULTS = 100
_CODE_NAMES = {code: name for name, code in EVENT_CODES.items()}


@dataclass(frozen=True)
class ActionSnapshot:
    """The group's Actions dataset at one data version, aligned with one model's actions."""

    catalog: ActionCatalog
    table: pa.Table
    model_index: np.ndarray  # int64 per action: its index in the model, -1 = unknown to the model
    version: str


@dataclass(frozen=True)
class ActionHistory:
    """A user's action interactions, newest first: action ids, event codes, epoch seconds."""

    action_ids: list[str]
    codes: list[int]
    timestamps: list[float]


def action_snapshot(services: Services, group_arn: str, prefix: str, model: NextBestActionModel) -> ActionSnapshot:
    info = services.serving.versions.current(services, group_arn, "Actions")
    if info is None:  # the dataset is gone or not ACTIVE: what the model was trained on
        catalog = ActionCatalog(np.asarray(model.action_ids).astype(str), np.asarray(model.arrays["action_values"]),
                                np.full(model.n_actions, -1, np.int64), np.full(model.n_actions, np.nan, np.float32))
        table = pa.table({"ACTION_ID": catalog.action_ids})
        return ActionSnapshot(catalog, table, np.arange(model.n_actions, dtype=np.int64), "model")

    def build() -> ActionSnapshot:
        table = read_table(services, info, "Actions")
        catalog = ActionCatalog.from_table(table)
        return ActionSnapshot(catalog, table, model.action_index(catalog.action_ids), info.version)

    snapshot: ActionSnapshot = services.serving.actions.get(("actions", prefix, group_arn), info.version, build)
    return snapshot


def action_history(services: Services, group_arn: str, model: NextBestActionModel, user_id: str) -> ActionHistory:
    """Streamed rows (newest first) followed by those training saw that are not streamed duplicates."""
    streamed: list[tuple[str, str, float]] = []
    info = services.serving.versions.current(services, group_arn, "Action_Interactions")
    if info is not None:
        streamed = user_action_events(services.engine, info.arn, user_id, DEFAULT_ACTION_HISTORY_DEPTH)
    ids = [a for a, _k, _t in streamed]
    codes = [event_code(k) for _a, k, _t in streamed]
    stamps = [t for _a, _k, t in streamed]
    seen = {(a, c, int(t)) for a, c, t in zip(ids, codes, stamps, strict=True)}
    acts, past_codes, times = model.training_history(user_id)
    for a, c, t in zip(acts[::-1], past_codes[::-1], times[::-1], strict=True):
        key = (str(model.action_ids[a]), int(c), int(t))
        if key not in seen:
            ids.append(key[0])
            codes.append(key[1])
            stamps.append(float(t))
    return ActionHistory(ids, codes, stamps)


def _allowed(snapshot: ActionSnapshot, history: ActionHistory, now: float) -> np.ndarray:
    """Not expired, and not TAKEN within the action's REPEAT_FREQUENCY days."""
    catalog = snapshot.catalog
    allowed = catalog.available(now)
    position = {a: i for i, a in enumerate(catalog.action_ids)}
    for action, code, stamp in zip(history.action_ids, history.codes, history.timestamps, strict=True):
        pos = position.get(action)
        if code != TAKEN or pos is None:
            continue
        days = catalog.repeat_days[pos]
        if not np.isnan(days) and now - stamp < float(days) * SECONDS_PER_DAY:
            allowed[pos] = False
    return allowed


def _filter_mask(services: Services, group_arn: str, snapshot: ActionSnapshot, filter_arn: str | None,
                 filter_values: Mapping[str, str] | None, user_id: str, history: ActionHistory) -> np.ndarray | None:
    from tastemaker.filters import FilterCatalog, FilterRequest, compile_filter
    from tastemaker.filters.ast import Target

    spec = load_filter(services, group_arn, filter_arn, filter_values)
    if spec is None:
        return None
    if spec.checked.target is not Target.ACTION:
        raise InvalidInputException(f"Filter {filter_arn} selects {spec.checked.target.value} values; "
                                    "GetActionRecommendations takes a filter on ActionID.")
    users = services.serving.versions.current(services, group_arn, "Users") if spec.checked.uses_current_user \
        else None
    user_table = read_table(services, users, "Users") if users is not None else None

    def build() -> Any:
        fcat = FilterCatalog([], action_ids=snapshot.catalog.action_ids, actions=snapshot.table,
                             user_ids=user_table.column("USER_ID").to_pylist() if user_table is not None else None,
                             users=user_table)
        return fcat, compile_filter(spec.checked, fcat)

    key = ("action-filter", filter_arn, snapshot.version)
    fcat, compiled = services.serving.actions.get(key, users.version if users is not None else "", build)
    position = {a: i for i, a in enumerate(snapshot.catalog.action_ids)}
    by_type: dict[str, tuple[list[int], list[int]]] = {}
    for action, code, stamp in zip(history.action_ids, history.codes, history.timestamps, strict=True):
        pos = position.get(action)
        if pos is not None and code in _CODE_NAMES:
            entry = by_type.setdefault(_CODE_NAMES[code], ([], []))
            entry[0].append(pos)
            entry[1].append(int(stamp))
    request = FilterRequest(
        values=spec.values,
        action_history={k: (np.asarray(p, np.int64), np.asarray(t, np.int64)) for k, (p, t) in by_type.items()},
        user=fcat.user_row(user_id) if user_table is not None else None)
    mask: np.ndarray = compiled.action_mask(request)
    return mask


@operation("GetActionRecommendations")
def get_action_recommendations(ctx: RequestContext, *, campaign_arn: str | None = None, user_id: str | None = None,
                               num_results: int | None = None, filter_arn: str | None = None,
                               filter_values: dict[str, str] | None = None) -> dict[str, Any]:
    if not campaign_arn:
        raise InvalidInputException("campaignArn is required: the ARN of a campaign of an aws-next-best-action "
                                    "solution version.")
    if not user_id:
        raise InvalidInputException("userId is required: action recommendations are for one user.")
    count = DEFAULT_NUM_RESULTS if num_results is None else int(num_results)
    if not 1 <= count <= MAX_NUM_RESULTS:
        raise InvalidInputException(f"numResults must be between 1 and {MAX_NUM_RESULTS}, got {count}.")
    services = ctx.services
    dep = _serving(ctx, campaign_arn, "campaign")
    if dep.recipe_type != "PERSONALIZED_ACTIONS":
        raise InvalidInputException(f"Campaign {campaign_arn} serves a {dep.recipe_type or 'non-action'} recipe; "
                                    "GetActionRecommendations needs a campaign of an aws-next-best-action solution "
                                    "version (use GetRecommendations for this one).")
    assert dep.model_prefix is not None
    model = model_cache(services).get(services, dep.model_prefix).model
    if not isinstance(model, NextBestActionModel):
        raise InvalidInputException(f"Campaign {campaign_arn} does not serve an aws-next-best-action model.")
    now = time.time()
    snapshot = action_snapshot(services, dep.group_arn, dep.model_prefix, model)
    history = action_history(services, dep.group_arn, model, user_id)
    items = model.item_index(user_history(services, dep.group_arn, user_id).item_ids)
    taken = model.action_index([a for a, c in zip(history.action_ids, history.codes, strict=True) if c == TAKEN])
    model_scores = model.score_actions([items], [taken])[0]
    known = snapshot.model_index >= 0
    scores = np.zeros(snapshot.catalog.n_actions, np.float32)
    scores[known] = model_scores[snapshot.model_index[known]]
    allowed = _allowed(snapshot, history, now)
    mask = _filter_mask(services, dep.group_arn, snapshot, filter_arn, filter_values, user_id, history)
    if mask is not None:
        allowed &= mask
    candidates = np.nonzero(allowed)[0]
    values = np.nan_to_num(snapshot.catalog.value[candidates], nan=0.0)
    order = candidates[np.lexsort((-values, -scores[candidates]))][:count]
    return {"action_list": [{"action_id": str(snapshot.catalog.action_ids[i]), "score": round(float(scores[i]), 7)}
                            for i in order],
            "recommendation_id": tag(rid(), campaign_arn)}
