"""The request path: score the catalogue, apply masks, pick top-k, exploration, promotions, scores, metadata."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from tastemaker.errors import InvalidInputException
from tastemaker.services import Services
from tastemaker.serving import approx
from tastemaker.serving import candidates as cand
from tastemaker.serving.batcher import item_scorer, user_scorer
from tastemaker.serving.catalog import ServingCatalog, build_catalog, same_items
from tastemaker.serving.deployments import Deployment
from tastemaker.serving.history import UserEvents, streamed_events, user_history
from tastemaker.serving.models import LoadedModel, model_cache
from tastemaker.serving.slots import explore, promote
from tastemaker.serving.snapshots import read_table
from tastemaker.serving.topk import softmax_scores, top_k
from tastemaker.serving.trending import trending_now

DEFAULT_RESULTS, MAX_RESULTS, MAX_RESULTS_WITH_METADATA = 25, 500, 50
SCORED_TYPES = ("USER_PERSONALIZATION", "PERSONALIZED_RANKING")


@dataclass
class Query:
    """One GetRecommendations / GetPersonalizedRanking call, in snake_case."""

    user_id: str | None = None
    item_id: str | None = None
    num_results: int | None = None
    context: dict[str, str] | None = None
    filter_arn: str | None = None
    filter_values: dict[str, str] | None = None
    metadata_columns: dict[str, list[str]] | None = None
    promotions: list[dict[str, Any]] = field(default_factory=list)
    input_list: list[str] | None = None


_local = threading.local()


def _generator() -> np.random.Generator:
    """This thread's random generator (exploration, promotion slots): seeding one per request costs more than
    the draws."""
    found: np.random.Generator | None = getattr(_local, "rng", None)
    if found is None:
        found = _local.rng = np.random.default_rng()
    return found


def rid() -> str:
    """A fresh recommendationId: "RID-" and a random (version 4) UUID, formatted without uuid.UUID's
    Python-level int arithmetic (a few microseconds of every response)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"RID-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def catalog_for(services: Services, dep: Deployment, loaded: LoadedModel) -> ServingCatalog:
    """The model's catalogue extended with the group's Items dataset (rebuilt when Items data changes)."""
    info = services.serving.versions.current(services, dep.group_arn, "Items")
    version = info.version if info is not None else ""

    catalogs = services.serving.catalogs

    def build() -> ServingCatalog:
        like = same_items(loaded.model, catalogs.built_at(version))  # another model's, on the same items and table
        table = read_table(services, info, "Items") if info is not None and like is None else None
        return build_catalog(loaded.model, table, like)

    return catalogs.get(loaded.prefix, version, build)  # type: ignore[no-any-return]


def check_request(dep: Deployment, query: Query, *, ranking: bool) -> int:
    """The id rules of the recipe type or use case and numResults limits; returns numResults."""
    kind = dep.recipe_type
    if ranking:
        if kind != "PERSONALIZED_RANKING":
            raise InvalidInputException(f"{dep.label} {dep.arn} serves a {kind} recipe; GetPersonalizedRanking needs "
                                        "a PERSONALIZED_RANKING campaign (use GetRecommendations).")
    elif kind == "PERSONALIZED_RANKING":
        raise InvalidInputException(f"{dep.label} {dep.arn} serves a PERSONALIZED_RANKING recipe; call "
                                    "GetPersonalizedRanking with an inputList instead.")
    elif kind not in ("USER_PERSONALIZATION", "RELATED_ITEMS", "POPULAR_ITEMS"):
        raise InvalidInputException(f"{dep.label} {dep.arn} serves a {kind or 'unknown'} recipe, which has no "
                                    "real-time recommendations.")
    use_case = dep.use_case
    needs_user = use_case.requires_user_id if use_case else kind == "USER_PERSONALIZATION"
    needs_item = use_case.requires_item_id if use_case else kind == "RELATED_ITEMS"
    if needs_user and not query.user_id:
        what = f"use case {use_case.name}" if use_case else f"{kind} recipes"
        raise InvalidInputException(f"userId is required for {what}.")
    if needs_item and not query.item_id:
        what = f"use case {use_case.name}" if use_case else f"{kind} recipes"
        raise InvalidInputException(f"itemId is required for {what}.")
    if query.item_id and not needs_item and not ranking:
        raise InvalidInputException(f"itemId is not used by {dep.label.lower()} {dep.arn} ({kind}); remove it.")
    columns = (query.metadata_columns or {})
    wants_metadata = any(columns.values())
    limit = MAX_RESULTS_WITH_METADATA if wants_metadata else MAX_RESULTS
    if ranking:
        count = len(query.input_list or [])
        if count == 0 or count > limit:
            raise InvalidInputException(f"inputList must hold 1 to {limit} item ids{' with metadataColumns' * wants_metadata}"
                                        f"; it has {count}.")
        return count
    num = DEFAULT_RESULTS if query.num_results is None else int(query.num_results)
    if num < 1 or num > limit:
        raise InvalidInputException(f"numResults must be between 1 and {limit}"
                                    f"{' when metadataColumns are requested' if wants_metadata else ''}; got {num}.")
    return num


def check_metadata(dep: Deployment, catalog: ServingCatalog, columns: dict[str, list[str]] | None) -> list[str]:
    if not columns:
        return []
    unknown_keys = [k for k in columns if k != "ITEMS"]
    if unknown_keys:
        raise InvalidInputException(f"metadataColumns only accepts the key ITEMS, got {unknown_keys[0]}.")
    names = list(columns.get("ITEMS") or [])
    if not names:
        return []
    if len(names) > 10:
        raise InvalidInputException(f"metadataColumns ITEMS may name at most 10 columns; got {len(names)}.")
    enabled = dep.config.get("enable_metadata_with_recommendations") or returns_metadata(dep.recipe_name)
    if not enabled:
        raise InvalidInputException(f"{dep.label} {dep.arn} was not created with enableMetadataWithRecommendations; "
                                    "update it to return item metadata.")
    if catalog.metadata is None:
        raise InvalidInputException("metadataColumns needs an Items dataset in the dataset group.")
    known = {c.upper() for c in catalog.metadata.column_names}
    missing = [c for c in names if c.upper() not in known]
    if missing:
        raise InvalidInputException(f"metadataColumns names {missing[0]}, which is not a column of the Items dataset.")
    return names


def _needs_bulk_history(dep: Deployment, filters: list[cand.FilterSpec | None]) -> bool:
    if dep.use_case is not None and dep.use_case.excluded_event_types:
        return True
    return any(f is not None and f.uses_interactions for f in filters)


def _model_scores(services: Services, loaded: LoadedModel, dep: Deployment, query: Query, catalog: ServingCatalog,
                  recent: UserEvents) -> np.ndarray:
    """(n_model,) float32 scores from the model for this request."""
    model = loaded.model
    kind = dep.recipe_type
    batchers = services.serving.batchers
    if kind == "RELATED_ITEMS":
        pos = catalog.index_of(query.item_id or "")
        index = pos if 0 <= pos < catalog.n_model else -1
        return batchers.get(loaded.prefix, "items", item_scorer(model)).score(index)
    user = loaded.user_position(query.user_id) if query.user_id else -1
    if kind == "POPULAR_ITEMS":
        refreshed = trending_now(services, model, loaded.prefix, dep.group_arn)  # Trending-Now only
        if refreshed is not None:
            return refreshed
        return model.score_users(np.array([user], dtype=np.int64), [np.zeros(0, np.int32)])[0]
    # Real-time fold-in: the user's streamed events (oldest first) on top of the trained history.
    positions = [catalog.index_of(i) for i in reversed(recent.item_ids)]
    history = np.asarray([p for p in positions if 0 <= p < catalog.n_model], dtype=np.int32)
    return batchers.get(loaded.prefix, "users", user_scorer(model)).score((user, history, query.context))


def _candidate_scores(services: Services, loaded: LoadedModel, dep: Deployment, query: Query,
                      catalog: ServingCatalog, recent: UserEvents) -> approx.Candidates | None:
    """The approximate path (large ALS catalogues, index built): the model's score on the user's candidates.
    None where the exact path applies (small catalogue, no index yet, promotions or rankingInfluence)."""
    if (dep.recipe_type != "USER_PERSONALIZATION" or query.promotions or not query.user_id
            or dep.config.get("ranking_influence")):
        return None
    scorer = services.serving.scorers.get(loaded.prefix, loaded.model, services)
    if scorer is None or not scorer.ready():
        return None
    user = loaded.user_position(query.user_id)
    positions = [catalog.index_of(i) for i in reversed(recent.item_ids)]
    history = np.asarray([p for p in positions if 0 <= p < catalog.n_model], dtype=np.int32)
    return services.serving.batchers.get(loaded.prefix, "candidates", scorer.compute).score(  # type: ignore[no-any-return]
        (user, history, query.context))


def _influenced(scores: np.ndarray, dep: Deployment, catalog: ServingCatalog) -> np.ndarray:
    """rankingInfluence: add popularity / freshness (each 0-1) to the model's unit-scaled scores."""
    influence = dep.config.get("ranking_influence") or {}
    popularity, freshness = float(influence.get("POPULARITY", 0) or 0), float(influence.get("FRESHNESS", 0) or 0)
    if not popularity and not freshness:
        return scores
    n = catalog.n_model
    low, high = float(scores.min()), float(scores.max())
    out = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    if popularity:
        pop = catalog.popularity[:n]
        out = out + np.float32(popularity) * (pop / max(float(pop.max()), 1.0))
    if freshness:
        created = catalog.created_at[:n].astype(np.float64)
        ref = catalog.reference_time()
        age_days = np.where(created >= 0, (ref - created) / 86400.0, np.inf)
        out = out + np.float32(freshness) * np.exp(-np.maximum(age_days, 0.0) / 30.0).astype(np.float32)
    return out.astype(np.float32)


@dataclass
class Request:
    """What one GetRecommendations needs, looked up once: the model, the catalogue, filters, history."""

    loaded: LoadedModel
    catalog: ServingCatalog
    columns: list[str]  # metadataColumns asked for
    item_pos: int | None  # the queried item's catalogue position (RELATED_ITEMS)
    events: UserEvents
    request_filter: cand.FilterSpec | None
    promotion: dict[str, Any] | None
    promo_filter: cand.FilterSpec | None


@dataclass
class Ranked:
    """The answer's catalogue positions in order, and how to score them: the exact and the approximate path
    differ only in where the scores come from, so both end in `respond`."""

    order: np.ndarray
    score_known: Callable[[np.ndarray], np.ndarray]  # softmax scores of positions inside the model's catalogue
    promoted: frozenset[int] = frozenset()


class WireAnswer(dict[str, Any]):
    """An answer already in its output shape's wire form (camelCase members, no None values): the API layer
    serialises it as it is instead of converting it member by member (a GetRecommendations answer is 25-500
    items; converting them was a visible share of the request)."""


# The PredictedItem members as the engine names them (snake_case, what batch inference and the CLI read) and
# on the wire (personalize-runtime's model).
ITEM_KEYS = {"item_id": "item_id", "score": "score", "promotion_name": "promotion_name", "metadata": "metadata"}
WIRE_ITEM_KEYS = {"item_id": "itemId", "score": "score", "promotion_name": "promotionName", "metadata": "metadata"}


def recommend(services: Services, dep: Deployment, query: Query, *, wire: bool = False) -> dict[str, Any]:
    """GetRecommendations for a campaign or recommender: resolve -> candidate mask -> score and rank -> respond.
    With `wire` the items carry their wire names (itemId, promotionName) for the API's WireAnswer."""
    num = check_request(dep, query, ranking=False)
    req = resolve(services, dep, query)
    eligible, excluded = candidate_mask(services, dep, query, req)
    ranked = score_and_rank(services, dep, query, req, num, eligible, excluded)
    return respond(dep, req, ranked, WIRE_ITEM_KEYS if wire else ITEM_KEYS)


def resolve(services: Services, dep: Deployment, query: Query) -> Request:
    loaded = model_cache(services).get(services, dep.model_prefix or "")
    catalog = catalog_for(services, dep, loaded)
    columns = check_metadata(dep, catalog, query.metadata_columns)
    request_filter = cand.load_filter(services, dep.group_arn, query.filter_arn, query.filter_values)
    promotion = query.promotions[0] if query.promotions else None
    promo_filter = None
    if promotion is not None:
        if not promotion.get("filter_arn"):
            raise InvalidInputException("A promotion needs a filterArn that selects the promoted items.")
        promo_filter = cand.load_filter(services, dep.group_arn, promotion["filter_arn"],
                                        promotion.get("filter_values"))
    events = (user_history(services, dep.group_arn, query.user_id,
                           bulk=_needs_bulk_history(dep, [request_filter, promo_filter]))
              if query.user_id else UserEvents([], [], []))
    item_pos = catalog.index_of(query.item_id) if query.item_id else None
    return Request(loaded, catalog, columns, item_pos, events, request_filter, promotion, promo_filter)


def candidate_mask(services: Services, dep: Deployment, query: Query,
                   req: Request) -> tuple[np.ndarray | None, np.ndarray]:
    """(eligible items over the whole catalogue, None for all of them; positions excluded outright): the
    filter, the use case's automatic exclusions and the queried item itself."""
    catalog = req.catalog
    excluded = np.zeros(0, dtype=np.int64)
    if dep.use_case is not None and dep.use_case.excluded_event_types and query.user_id:
        excluded = cand.excluded_by_events(catalog, req.events, dep.use_case.excluded_event_types)
    if req.item_pos is not None and req.item_pos >= 0:
        excluded = np.append(excluded, req.item_pos)
    eligible: np.ndarray | None = None  # None: every item (a cached mask may be read-only)
    if req.request_filter is not None:
        eligible = cand.filter_mask(services, dep.group_arn, catalog, req.request_filter, user_id=query.user_id,
                                    item_position=req.item_pos, events=req.events)
    if excluded.size:
        eligible = np.ones(catalog.size, dtype=bool) if eligible is None else eligible.copy()
        eligible[excluded] = False
    return eligible, excluded


def score_and_rank(services: Services, dep: Deployment, query: Query, req: Request, num: int,
                   eligible: np.ndarray | None, excluded: np.ndarray) -> Ranked:
    """The top `num` positions: from an index's candidates when the model and request allow it (large ALS
    catalogues), else from the whole catalogue's scores with promotions; then exploration slots."""
    catalog, loaded = req.catalog, req.loaded
    n_model = catalog.n_model
    # Items the model never saw (newer than the training) come only through exploration and promotions.
    mask = None if eligible is None else eligible[:n_model]
    rng = _generator()
    found = _candidate_scores(services, loaded, dep, query, catalog, req.events)
    ranked: Ranked | None = None
    if found is not None:
        picked = approx.top_from_candidates(found, num, None if mask is None else mask[found.items])
        allowed_total = n_model if mask is None else int(np.count_nonzero(mask))
        if picked.size >= min(num, allowed_total):
            allowed = None if mask is None else mask[found.items]
            ranked = Ranked(picked, lambda known: approx.softmax_with_tail(
                found, allowed, allowed_total, found.scores_at(loaded.model, known)))
        # else a strict filter left too few candidates: score the whole (masked) catalogue exactly instead
    if ranked is None:
        ranked = _rank_exactly(services, dep, query, req, num, mask, excluded, rng)
    exploration = dep.config.get("item_exploration_config") or {}
    if exploration and dep.recipe_type == "USER_PERSONALIZATION" and explores_new_items(dep.recipe_name):
        picked = explore(ranked.order, catalog, eligible, set(ranked.promoted), exploration, rng)
        ranked = Ranked(picked, ranked.score_known, ranked.promoted)
    if ranked.promoted:
        ranked.order = _place(ranked.order, np.array(sorted(ranked.promoted), dtype=np.int64), rng)
    return ranked


def _rank_exactly(services: Services, dep: Deployment, query: Query, req: Request, num: int,
                  mask: np.ndarray | None, excluded: np.ndarray, rng: np.random.Generator) -> Ranked:
    catalog = req.catalog
    scores = _influenced(_model_scores(services, req.loaded, dep, query, catalog, req.events), dep, catalog)
    score_pool = mask  # the candidates the scores are normalised over (promoted items included)
    promoted = np.zeros(0, dtype=np.int64)
    if req.promotion is not None and req.promo_filter is not None:
        promo_mask = cand.filter_mask(services, dep.group_arn, catalog, req.promo_filter, user_id=query.user_id,
                                      item_position=req.item_pos, events=req.events).copy()
        promo_mask[excluded] = False
        n_promoted = max(1, int(num * int(req.promotion["percent_promoted_items"]) / 100))
        promoted = promote(scores, catalog, promo_mask, n_promoted)
        if promoted.size:
            mask = np.ones(catalog.n_model, dtype=bool) if mask is None else mask.copy()
            mask[promoted[promoted < catalog.n_model]] = False
    picked = top_k(scores, num - promoted.size, mask)
    return Ranked(picked, lambda known: softmax_scores(scores, score_pool, known), frozenset(promoted.tolist()))


def respond(dep: Deployment, req: Request, ranked: Ranked, keys: dict[str, str] = ITEM_KEYS) -> dict[str, Any]:
    """itemList with scores (campaigns of scored recipe types), promotion names and metadata; each item's
    members named by `keys` (snake_case or wire names)."""
    catalog, order = req.catalog, ranked.order
    values = None
    if dep.kind == "campaign" and dep.recipe_type in SCORED_TYPES:
        known = order < catalog.n_model
        values = np.zeros(order.size)
        values[known] = ranked.score_known(order[known])
    promotion_name = req.promotion.get("name") if req.promotion else None
    metadata = catalog.metadata_for(order.tolist(), req.columns) if req.columns else None
    items = _items(catalog, order, values, metadata, ranked.promoted, promotion_name, keys)
    return {"item_list": items, "recommendation_id": rid()}


@lru_cache(maxsize=64)
def explores_new_items(recipe_name: str) -> bool:
    """Whether the recipe mixes in new and less-known items (itemExplorationConfig), by its contract."""
    return _capability(recipe_name, "explores_new_items")


@lru_cache(maxsize=64)
def returns_metadata(recipe_name: str) -> bool:
    """Whether the recipe returns item metadata without enableMetadataWithRecommendations."""
    return _capability(recipe_name, "returns_metadata")


def _capability(recipe_name: str, name: str) -> bool:
    from tastemaker.recipes import get_recipe

    try:
        return bool(getattr(get_recipe(recipe_name), name))
    except InvalidInputException:  # a recipe this build no longer has
        return False


def _items(catalog: ServingCatalog, positions: np.ndarray, scores: np.ndarray | None,
           metadata: list[dict[str, Any]] | None, promoted: set[int] | frozenset[int] = frozenset(),
           promotion_name: str | None = None, keys: dict[str, str] = ITEM_KEYS) -> list[dict[str, Any]]:
    """The itemList entries: id, score (7 decimals, as Personalize), promotion name, metadata."""
    ids = catalog.item_ids[positions].tolist()
    item_id, score = keys["item_id"], keys["score"]
    if scores is None and metadata is None and not promoted:
        return [{item_id: i} for i in ids]
    rounded = np.round(scores, 7).tolist() if scores is not None else None
    if rounded is not None and metadata is None and not promoted:  # the usual scored answer
        return [{item_id: i, score: s} for i, s in zip(ids, rounded, strict=True)]
    items = []
    for row, pos in enumerate(positions.tolist()):
        item: dict[str, Any] = {item_id: ids[row]}
        if rounded is not None:
            item[score] = rounded[row]
        if promotion_name and pos in promoted:
            item[keys["promotion_name"]] = promotion_name
        if metadata is not None:
            item[keys["metadata"]] = metadata[row]
        items.append(item)
    return items


def _place(picked: np.ndarray, promoted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Promoted items at random positions among the rest, keeping each group's own order."""
    if promoted.size == 0:
        return picked
    total = picked.size + promoted.size
    slots = np.sort(rng.choice(total, size=promoted.size, replace=False))
    out = np.empty(total, dtype=np.int64)
    is_promoted = np.zeros(total, dtype=bool)
    is_promoted[slots] = True
    out[is_promoted] = promoted
    out[~is_promoted] = picked
    return out


def rank(services: Services, dep: Deployment, query: Query) -> dict[str, Any]:
    """GetPersonalizedRanking: the inputList ordered for the user; items unseen in training go last."""
    check_request(dep, query, ranking=True)
    loaded = model_cache(services).get(services, dep.model_prefix or "")
    catalog = catalog_for(services, dep, loaded)
    columns = check_metadata(dep, catalog, query.metadata_columns)
    request_filter = cand.load_filter(services, dep.group_arn, query.filter_arn, query.filter_values)
    seen: dict[str, None] = {}
    for item in query.input_list or []:
        seen.setdefault(item, None)
    ids = list(seen)
    events = user_history(services, dep.group_arn, query.user_id or "",
                          bulk=_needs_bulk_history(dep, [request_filter])) if query.user_id else UserEvents([], [], [])
    positions = catalog.indices_of(ids)
    if request_filter is not None:
        allowed = cand.filter_mask(services, dep.group_arn, catalog, request_filter, user_id=query.user_id,
                                   item_position=None, events=events)
        keep = [k for k, p in enumerate(positions.tolist()) if p < 0 or allowed[p]]
        ids, positions = [ids[k] for k in keep], positions[keep]
    is_known = (positions >= 0) & (positions < catalog.n_model)
    known = np.flatnonzero(is_known)
    unknown = np.flatnonzero(~is_known).tolist()
    scores = _model_scores(services, loaded, dep, query, catalog, events)
    known_pos = positions[known]
    sub = scores[known_pos]
    order = known[np.lexsort((known, -sub))]
    values: Any = softmax_scores(scores, _mask_of(known_pos, catalog.n_model), positions[order]) if known.size else []
    out_positions = [int(positions[k]) for k in order.tolist()] + [int(positions[k]) for k in unknown]
    metadata = catalog.metadata_for([max(p, 0) for p in out_positions], columns) if columns else None
    result = []
    for row, k in enumerate(order.tolist() + unknown):
        ranked: dict[str, Any] = {"item_id": ids[k]}
        if row < len(order):
            ranked["score"] = round(float(values[row]), 7)
        if metadata is not None and out_positions[row] >= 0:
            ranked["metadata"] = metadata[row]
        result.append(ranked)
    return {"personalized_ranking": result, "recommendation_id": rid()}


def _mask_of(positions: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


__all__ = ["Query", "WireAnswer", "catalog_for", "rank", "recommend", "streamed_events"]
