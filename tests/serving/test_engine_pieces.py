"""Unit tests of the serving engine's pieces on small in-memory data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.recipes.popularity import PopularityModel
from tastemaker.serving.catalog import build_catalog, same_items
from tastemaker.serving.deployments import Deployment
from tastemaker.serving.engine import Query, _place, check_request
from tastemaker.serving.history import HistoryIndex, build_arrays
from tastemaker.serving.slots import explore, promote
from tastemaker.serving.topk import softmax_scores, top_k


def small_model(n: int = 6) -> PopularityModel:
    pop = np.arange(n, 0, -1).astype(np.float32)
    return PopularityModel(recipe_name="aws-popularity-count", recipe_type="POPULAR_ITEMS",
                           item_ids=np.array([f"i{k}" for k in range(n)]), user_ids=np.array(["u0"]),
                           item_popularity=pop, item_first_seen=np.arange(n, dtype=np.int64) * 100,
                           arrays={"scores": pop})


def test_top_k_matches_a_full_sort_and_respects_the_mask() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal(1000).astype(np.float32)
    assert top_k(scores, 10).tolist() == np.argsort(-scores, kind="stable")[:10].tolist()
    mask = rng.random(1000) < 0.3
    expected = [i for i in np.argsort(-scores, kind="stable").tolist() if mask[i]][:10]
    assert top_k(scores, 10, mask).tolist() == expected
    assert top_k(scores, 5000, mask).size == int(mask.sum())
    assert top_k(np.ones(4, np.float32), 3).tolist() == [0, 1, 2]  # ties: lower index first


def test_softmax_scores_sum_to_one_over_the_candidates() -> None:
    scores = np.array([2.0, 1.0, 0.5, -1.0], dtype=np.float32)
    allowed = np.array([True, True, False, True])
    probs = softmax_scores(scores, allowed, np.array([0, 1, 3]))
    assert probs.sum() == pytest.approx(1.0)
    assert probs[0] == pytest.approx(np.exp(2) / (np.exp(2) + np.exp(1) + np.exp(-1)))


def test_catalog_extends_the_model_with_items_only_the_dataset_knows() -> None:
    items = pa.table({"ITEM_ID": ["i1", "new", "i0"], "GENRES": ["a|b", "c", None],
                      "CREATION_TIMESTAMP": pa.array([None, 5000, 7], type=pa.int64())})
    catalog = build_catalog(small_model(3), items)
    assert catalog.item_ids.tolist() == ["i0", "i1", "i2", "new"]
    assert catalog.n_model == 3 and catalog.index_of("new") == 3 and catalog.index_of("zzz") == -1
    assert catalog.created_at.tolist() == [7, 100, 200, 5000]
    assert catalog.popularity.tolist() == [3.0, 2.0, 1.0, 0.0]
    assert catalog.metadata_for([3, 1, 2], ["GENRES"]) == [{"GENRES": "c"}, {"GENRES": "a|b"}, {}]
    assert catalog.reference_time() == 5000


def test_a_retrained_model_on_the_same_items_shares_the_catalogue_and_keeps_its_own_numbers() -> None:
    """A switch to a version retrained on the same items reuses the serving catalogue's ids, positions and
    metadata (built once per process), and gets the same catalogue as a build from scratch."""
    items = pa.table({"ITEM_ID": ["i1", "new", "i0"], "GENRES": ["a|b", "c", None],
                      "CREATION_TIMESTAMP": pa.array([None, 5000, 7], type=pa.int64())})
    first = build_catalog(small_model(3), items)
    retrained = small_model(3)
    retrained.item_popularity = np.array([9, 8, 7], np.float32)
    retrained.item_first_seen = np.array([1, 2, 3], np.int64)
    other = small_model(4)
    assert same_items(retrained, [build_catalog(other, items), first]) is first
    assert same_items(other, [first]) is None
    assert same_items(PopularityModel(recipe_name="aws-popularity-count", recipe_type="POPULAR_ITEMS",
                                      item_ids=np.array(["i0", "i2", "i1"]), user_ids=np.array(["u0"]),
                                      item_popularity=np.ones(3, np.float32), item_first_seen=np.zeros(3, np.int64),
                                      arrays={"scores": np.ones(3, np.float32)}), [first]) is None  # another order
    shared, fresh = build_catalog(retrained, None, like=first), build_catalog(retrained, items)
    assert shared.position is first.position and shared.metadata is first.metadata
    assert shared.item_ids.tolist() == fresh.item_ids.tolist() == ["i0", "i1", "i2", "new"]
    assert shared.position == fresh.position and shared.metadata.equals(fresh.metadata)
    assert shared.created_at.tolist() == fresh.created_at.tolist() == [7, 2, 3, 5000]
    assert shared.popularity.tolist() == fresh.popularity.tolist() == [9.0, 8.0, 7.0, 0.0]
    assert first.popularity.tolist() == [3.0, 2.0, 1.0, 0.0]  # the first model's own numbers are untouched


def test_history_index_is_per_user_newest_first() -> None:
    table = pa.table({"USER_ID": ["b", "a", "b", "a"], "ITEM_ID": ["x", "y", "z", "x"],
                      "TIMESTAMP": [1, 2, 3, 4], "EVENT_TYPE": ["Click", "watch", "click", "Watch"]})
    index = HistoryIndex(build_arrays(table))
    a = index.events("a")
    assert a.item_ids == ["x", "y"] and a.event_types == ["watch", "watch"] and a.timestamps == [4, 2]
    assert index.events("b").item_ids == ["z", "x"]
    assert len(index.events("nobody")) == 0
    assert len(HistoryIndex(build_arrays(None)).events("a")) == 0


def test_history_keeps_the_newest_events_of_each_type_and_exclusions_use_the_latest_100() -> None:
    from tastemaker.serving.candidates import excluded_by_events
    from tastemaker.serving.history import MAX_PER_TYPE

    # 400 old watches, then MAX_PER_TYPE + 50 newer clicks: a per-user cap would have dropped every watch
    watches, clicks = 400, MAX_PER_TYPE + 50
    table = pa.table({"USER_ID": ["u"] * (watches + clicks),
                      "ITEM_ID": [f"w{k}" for k in range(watches)] + [f"c{k}" for k in range(clicks)],
                      "TIMESTAMP": list(range(watches + clicks)),
                      "EVENT_TYPE": ["Watch"] * watches + ["Click"] * clicks})
    events = HistoryIndex(build_arrays(table)).events("u")
    assert events.event_types.count("watch") == MAX_PER_TYPE and events.event_types.count("click") == MAX_PER_TYPE
    assert events.timestamps == sorted(events.timestamps, reverse=True)
    assert events.item_ids[events.event_types.index("watch")] == f"w{watches - 1}"
    items = pa.table({"ITEM_ID": [f"w{k}" for k in range(watches)]})
    catalog = build_catalog(small_model(0), items)
    excluded = {str(catalog.item_ids[p]) for p in excluded_by_events(catalog, events, ("Watch",)).tolist()}
    assert excluded == {f"w{k}" for k in range(watches - 100, watches)}


def test_promote_prefers_model_scores_then_newer_items() -> None:
    items = pa.table({"ITEM_ID": ["n1", "n2"], "CREATION_TIMESTAMP": [10, 20]})
    catalog = build_catalog(small_model(4), items)
    scores = np.array([0.1, 0.9, 0.5, 0.2], dtype=np.float32)
    mask = np.array([True, False, True, False, True, True])
    assert promote(scores, catalog, mask, 2).tolist() == [2, 0]
    assert promote(scores, catalog, mask, 4).tolist() == [2, 0, 5, 4]


def test_exploration_share_follows_the_weight() -> None:
    items = pa.table({"ITEM_ID": [f"n{k}" for k in range(10)], "CREATION_TIMESTAMP": list(range(1000, 1010))})
    catalog = build_catalog(small_model(6), items)
    picked = np.arange(6, dtype=np.int64)[:4]
    allowed = np.ones(catalog.size, dtype=bool)
    rng = np.random.default_rng(1)
    none = explore(picked, catalog, allowed, set(), {"explorationWeight": "0"}, rng)
    assert none.tolist() == picked.tolist()
    out = explore(picked, catalog, allowed, set(), {"explorationWeight": "1", "explorationItemAgeCutOff": "1"}, rng)
    assert len(out) == 4 and sum(int(p) >= 6 for p in out) == 2
    assert [p for p in out.tolist() if p < 6] == [0, 1]
    blocked = set(range(6, 15))
    only = explore(picked, catalog, None, blocked, {"explorationWeight": "1", "explorationItemAgeCutOff": "1"}, rng)
    assert sorted(p for p in only.tolist() if p >= 6) == [15]  # the one young, cold item left


def test_place_keeps_each_group_in_order() -> None:
    out = _place(np.array([1, 2, 3]), np.array([9, 8]), np.random.default_rng(3))
    assert sorted(out.tolist()) == [1, 2, 3, 8, 9]
    assert [p for p in out.tolist() if p < 5] == [1, 2, 3] and [p for p in out.tolist() if p > 5] == [9, 8]


def deployment(recipe_type: str, use_case: object = None) -> Deployment:
    return Deployment("arn:aws:personalize:us-east-1:1:campaign/c", "campaign", "ACTIVE", "g", "p", "r",
                      recipe_type, {}, use_case)


@pytest.mark.parametrize("kind, query, words", [
    ("USER_PERSONALIZATION", Query(), "userId is required"),
    ("RELATED_ITEMS", Query(user_id="u"), "itemId is required"),
    ("USER_PERSONALIZATION", Query(user_id="u", item_id="i"), "itemId is not used"),
    ("USER_PERSONALIZATION", Query(user_id="u", num_results=501), "between 1 and 500"),
    ("USER_PERSONALIZATION", Query(user_id="u", num_results=0), "between 1 and 500"),
    ("USER_PERSONALIZATION", Query(user_id="u", num_results=60, metadata_columns={"ITEMS": ["A"]}), "1 and 50"),
    ("PERSONALIZED_RANKING", Query(user_id="u"), "GetPersonalizedRanking"),
])
def test_request_rules_per_recipe_type(kind: str, query: Query, words: str) -> None:
    with pytest.raises(InvalidInputException, match=words):
        check_request(deployment(kind), query, ranking=False)


def test_request_defaults_and_popular_items_need_no_ids() -> None:
    assert check_request(deployment("USER_PERSONALIZATION"), Query(user_id="u"), ranking=False) == 25
    assert check_request(deployment("POPULAR_ITEMS"), Query(), ranking=False) == 25
    with pytest.raises(InvalidInputException, match="inputList"):
        check_request(deployment("PERSONALIZED_RANKING"), Query(user_id="u", input_list=["a"] * 501), ranking=True)


def test_ann_recall_is_measured_against_exact() -> None:
    pytest.importorskip("hnswlib")
    from tastemaker.serving.ann import measure

    rng = np.random.default_rng(4)
    centres = rng.standard_normal((20, 16)).astype(np.float32)
    items = centres[rng.integers(0, 20, 3000)] + 0.1 * rng.standard_normal((3000, 16)).astype(np.float32)
    users = centres[rng.integers(0, 20, 50)]
    report = measure(items, users, k=10)
    assert report.items == 3000 and report.queries == 50
    assert 0.9 <= report.recall <= 1.0


def test_wire_items_equal_the_converted_snake_case_items() -> None:
    """GetRecommendations builds its items with wire names (WireAnswer, no to_wire pass): the bytes must be what
    converting the snake_case items through the output shape gives, for every kind of item list."""
    import orjson

    from tastemaker.api import service_models
    from tastemaker.api.convert import to_wire
    from tastemaker.serving.engine import ITEM_KEYS, WIRE_ITEM_KEYS, _items

    shape = service_models.operation_for_path("POST", "/recommendations").output_shape  # type: ignore[union-attr]
    catalog = build_catalog(small_model(6), None)
    positions = np.array([4, 0, 2], dtype=np.int64)
    scores = np.array([0.123456789, 0.5, 1e-9])
    cases = [(None, None, frozenset(), None), (scores, None, frozenset(), None),
             (scores, None, frozenset({0}), "promo"), (None, [{"GENRES": "a"}, {}, {"GENRES": "b|c"}], frozenset(), None),
             (scores, [{"GENRES": "a"}, {}, {}], frozenset({2}), "p2")]
    for values, metadata, promoted, name in cases:
        snake = {"item_list": _items(catalog, positions, values, metadata, promoted, name, ITEM_KEYS),
                 "recommendation_id": "RID-1"}
        wire = {"itemList": _items(catalog, positions, values, metadata, promoted, name, WIRE_ITEM_KEYS),
                "recommendationId": "RID-1"}
        assert orjson.dumps(wire) == orjson.dumps(to_wire(shape, snake))
