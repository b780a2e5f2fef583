"""GetRecommendations' common shape on the approximate path in a few calls: the same answer, less glue.

The common request names a campaign of aws-user-personalization, a userId, maybe numResults and a filter, and
nothing else (no itemId, context, promotions or metadataColumns). When its model is served through the
candidate index (tastemaker.serving.approx) and has no rankingInfluence, `recommend` answers it with the
engine's own lookups (check_request, resolve, candidate_mask) and then tastemaker.serving.fused's three
compiled calls around the index query, instead of the engine's step-by-step score_and_rank and respond
(candidate objects, closures, a dozen kernel dispatches and numpy calls). Everything else, and a request whose
filter leaves the candidates too few allowed items (the engine then scores the whole catalogue), returns None
before anything random was drawn, and the caller runs tastemaker.serving.engine.recommend.

The answer is the engine's byte for byte: the same kernels on the same values in the same order, the same
random draws from the same generator (exploration), the same rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tastemaker.recipes.collaborative import ALS_ALPHA, LAST_EVENTS_FOR_TRANSITIONS, TRANSITION_WEIGHT
from tastemaker.services import Services
from tastemaker.serving import compiled, fused
from tastemaker.serving.approx import CandidateScorer
from tastemaker.serving.deployments import Deployment
from tastemaker.serving.engine import (
    Query,
    Request,
    _generator,
    candidate_mask,
    check_request,
    explores_new_items,
    resolve,
)
from tastemaker.serving.models import LoadedModel, model_cache
from tastemaker.serving.slots import EXPLORATION_SHARE, exploration_pool, exploration_settings

_NO_MASK = np.zeros(0, np.bool_)
_NO_EVENTS = np.zeros(0, np.int32)
_NOTHING = np.zeros(0, np.int64)
_NO_DRAWS = np.zeros(0, np.float64)
_NO_HISTORY = np.zeros(0, np.int64)


class Plan:
    """One served model's arrays and settings as the fused calls take them, looked up once."""

    def __init__(self, scorer: CandidateScorer) -> None:
        model = scorer.model
        a = model.arrays
        self.scorer = scorer
        self.index = scorer.index
        self.n_candidates = scorer.n_candidates
        self.head, self.sample = scorer.head, scorer.sample
        self.hist_indptr = a.get("hist_indptr", _NO_HISTORY)
        self.hist_items = a.get("hist_items", _NO_EVENTS)
        self.factors = a["item_factors"]
        self.gram_inverse = model.gram_inverse
        self.trans = (a["trans_indptr"], a["trans_indices"], a["trans_data"])
        self.decay = float(model.settings["decay"])
        self.trend_weight = float(model.settings.get("trend_weight", 0.0) or 0.0)
        self.recent_popularity = a["recent_popularity"]
        self.cold_scores = a["cold_scores"]
        self.demote = bool(model.settings.get("demote_history"))


def plan_for(services: Services, loaded: LoadedModel) -> Plan | None:
    """The model's Plan once its candidate index is ready; None while the engine serves it exactly. The Plan is
    kept on its scorer, so it goes when the scorer does (a model switched away from holds no index here)."""
    scorer = services.serving.scorers.get(loaded.prefix, loaded.model, services)
    if scorer is None or not scorer.ready():
        return None
    plan: Plan | None = scorer.fused_plan
    if plan is None or plan.index is not scorer.index:
        plan = scorer.fused_plan = Plan(scorer)
    return plan


def common_shape(dep: Deployment, query: Query) -> bool:
    """Whether the request is the shape this path answers (the rest is the engine's)."""
    return bool(query.user_id) and not (query.item_id or query.context or query.promotions or query.metadata_columns
                                        or query.input_list) \
        and dep.kind == "campaign" and dep.recipe_type == "USER_PERSONALIZATION" and dep.use_case is None \
        and not dep.config.get("ranking_influence")


def recommend(services: Services, dep: Deployment, query: Query) -> list[dict[str, Any]] | None:
    """The answer's itemList in wire form (itemId, score), or None: the caller runs the engine."""
    if not common_shape(dep, query):
        return None
    num = check_request(dep, query, ranking=False)
    plan = plan_for(services, model_cache(services).get(services, dep.model_prefix or ""))
    if plan is None:  # served exactly (small catalogue, no index yet): before any other lookup
        return None
    req = resolve(services, dep, query)
    eligible, _excluded = candidate_mask(services, dep, query, req)  # a campaign excludes nothing outright
    return rank_and_respond(plan, dep, req, query.user_id or "", num, eligible)


def rank_and_respond(plan: Plan, dep: Deployment, req: Request, user_id: str, num: int,
                     eligible: np.ndarray | None) -> list[dict[str, Any]] | None:
    """engine.score_and_rank + respond for the common shape; None (nothing drawn) where the engine must score
    the whole catalogue because the filter left too few allowed candidates."""
    catalog = req.catalog
    n_model = catalog.n_model
    user = req.loaded.user_position(user_id)
    recent = req.events.item_ids
    if recent:  # the streamed events, oldest first, that the model knows
        position = catalog.position
        given = np.asarray([p for p in (position.get(i, -1) for i in reversed(recent)) if 0 <= p < n_model],
                           dtype=np.int32)
    else:
        given = _NO_EVENTS
    indptr, indices, data = plan.trans
    history, vector, reached, values = fused.user_state(
        plan.hist_indptr, plan.hist_items, user, given, plan.factors, plan.gram_inverse, indptr, indices, data,
        LAST_EVENTS_FOR_TRANSITIONS, plan.decay, ALS_ALPHA, TRANSITION_WEIGHT)
    found = plan.index.query(vector[None, :], plan.n_candidates)[0]
    mask = _NO_MASK if eligible is None else eligible[:n_model]
    items, only_sample, scores, scale, allowed, picked = fused.pick(
        found, plan.head, history, reached, values, plan.sample, plan.factors, vector, plan.trend_weight,
        plan.recent_popularity, plan.demote, plan.cold_scores, mask, num)
    allowed_total = n_model if eligible is None else int(np.count_nonzero(mask))
    if picked.size < min(num, allowed_total):
        return None
    n_explore, draws, best, rest = 0, _NO_DRAWS, _NOTHING, _NOTHING
    exploration = dep.config.get("item_exploration_config")
    if exploration and picked.size and explores_new_items(dep.recipe_name):
        weight, cutoff = exploration_settings(exploration)
        n_explore = round(len(picked) * weight * EXPLORATION_SHARE)
        if n_explore:
            best, rest = exploration_pool(catalog, cutoff)
            draws = _generator().random(compiled.draws_needed(n_explore))
    order, softmax = fused.finish(
        picked, best, rest, _NO_MASK if eligible is None else eligible, n_explore, draws, n_model, items, scores,
        only_sample, allowed, allowed_total, plan.factors, vector, scale, reached, values, plan.trend_weight,
        plan.recent_popularity, history, plan.demote, plan.cold_scores)
    ids = catalog.item_ids[order].tolist()
    return [{"itemId": i, "score": s} for i, s in zip(ids, softmax.round(7).tolist(), strict=True)]
