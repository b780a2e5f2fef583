"""Recipe-specific behaviour: popularity counts, trending windows, sims rules, hyperparameter parsing, catalogue."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.errors import InvalidInputException, ResourceNotFoundException
from tastemaker.recipes import get_recipe, load_model
from tastemaker.recipes.base import HyperParameter
from tastemaker.recipes.catalog import (
    USE_CASES,
    describe_algorithm,
    describe_feature_transformation,
    describe_recipe,
    domain_use_case,
    recipe_names,
    recipe_summary,
)
from tastemaker.recipes.training_data import TrainingConfig, TrainingData
from tastemaker.recipes.trending import trending_scores
from tests.recipes.synthetic import cold_item_ids

HOUR = 3600


def test_popularity_counts_unique_users_not_events():
    # item "a": one user, 1200 events; item "b": 30 users, 2 events each.
    users = ["heavy"] * 1200 + [f"u{k}" for k in range(30) for _ in range(2)]
    items = ["a"] * 1200 + ["b"] * 60
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(range(1260), pa.int64())})
    data = TrainingData.from_tables(table, None, None, TrainingConfig())
    model = get_recipe("aws-popularity-count").fit(data, {})
    scores = model.score_users(np.array([-1, 0]), [np.zeros(0, np.int32)] * 2)
    b, a = model.item_index(["b", "a"])
    assert scores[0, b] == 30 and scores[0, a] == 1
    np.testing.assert_array_equal(scores[0], scores[1])


def test_trending_prefers_growth_over_volume():
    now = 100 * HOUR
    # item 0: steady and big (50 per interval); item 1: grows from 2 to 20; item 2: falls.
    items = [0] * 50 + [0] * 50 + [1] * 2 + [1] * 20 + [2] * 30 + [2] * 5
    times = ([now - 3 * HOUR] * 50 + [now - HOUR // 2] * 50 + [now - 3 * HOUR] * 2 + [now - HOUR // 2] * 20
             + [now - 3 * HOUR] * 30 + [now - HOUR // 2] * 5)
    scores = trending_scores(np.array(items), np.array(times), 3, now, 2 * HOUR, np.array([100.0, 22.0, 35.0]))
    assert list(np.argsort(-scores)) == [1, 0, 2]


def test_trending_without_recent_events_returns_popularity():
    popularity = np.array([5.0, 50.0, 1.0])
    scores = trending_scores(np.array([0, 1]), np.array([0, 10]), 3, 1_000_000, HOUR, popularity)
    assert list(np.argsort(-scores)) == [1, 0, 2]


def test_trending_model_refreshes_with_streamed_events(training_data):
    model = get_recipe("aws-trending-now").fit(training_data, {"trend_discovery_frequency": "1 hour"})
    assert model.interval_seconds == HOUR
    now = int(model.settings["trained_at"]) + HOUR
    cold = int(model.item_index(cold_item_ids()[:1])[0])  # never interacted with in training
    assert int(np.argmax(model.score_users(np.array([-1]), [np.zeros(0, np.int32)])[0])) != cold
    fresh = model.refreshed_scores(np.full(40, cold), np.full(40, now - 60), now)
    assert int(np.argmax(fresh)) == cold


def test_trending_rejects_unknown_frequency():
    with pytest.raises(InvalidInputException, match="trend_discovery_frequency"):
        get_recipe("aws-trending-now").validate_hyperparameters({"trend_discovery_frequency": "5 minutes"})


def test_sims_min_cointeraction_count_cuts_rare_pairs(training_data):
    strict = get_recipe("aws-sims").fit(training_data, {"min_cointeraction_count": "10"})
    loose = get_recipe("aws-sims").fit(training_data, {"min_cointeraction_count": "0"})
    assert len(strict.arrays["sim_data"]) < len(loose.arrays["sim_data"])


def test_hyperparameter_parsing_rules():
    hp = HyperParameter("hidden_dimension", "integer", "149", 32, 256)
    assert hp.parse("64") == 64 and hp.parse("64.0") == 64
    with pytest.raises(InvalidInputException, match="hidden_dimension must be an integer"):
        hp.parse("6.5")
    with pytest.raises(InvalidInputException, match="hidden_dimension must be between 32 and 256"):
        hp.parse("1000")
    flag = HyperParameter("recency_mask", "categorical", "true", values=("true", "false"))
    assert flag.parse("True") is True and flag.parse("false") is False
    assert get_recipe("aws-user-personalization").validate_hyperparameters({})["hidden_dimension"] == 149


def test_legacy_recipes_are_listed_but_refused(training_data):
    assert "aws-hrnn" in recipe_names()
    with pytest.raises(InvalidInputException, match="no longer available"):
        get_recipe("aws-hrnn-coldstart").fit(training_data, {})


def test_unknown_recipe_is_refused():
    with pytest.raises(InvalidInputException, match="Unknown recipe"):
        get_recipe("aws-nope")


def test_saved_model_has_no_pickles(training_data, tmp_path):
    model = get_recipe("aws-item-attribute-affinity").fit(training_data, {})
    model.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["recipe_name"] == "aws-item-attribute-affinity"
    for name in meta["arrays"]:
        np.load(tmp_path / f"{name}.npy", allow_pickle=False)  # raises if any array needed pickle
    loaded = load_model(tmp_path)
    assert isinstance(loaded.arrays["ease"], np.memmap)


def test_semantic_similarity_needs_text(tables):
    interactions, _items, _users = tables
    data = TrainingData.from_tables(interactions, None, None, TrainingConfig())
    with pytest.raises(Exception, match="textual"):
        get_recipe("aws-semantic-similarity").fit(data, {})


def test_catalogue_describes_recipes_algorithms_and_transformations():
    recipe = describe_recipe("aws-user-personalization")
    assert recipe["recipeArn"] == "arn:aws:personalize:::recipe/aws-user-personalization"
    assert recipe["recipeType"] == "USER_PERSONALIZATION" and recipe["status"] == "ACTIVE"
    algorithm = describe_algorithm(recipe["algorithmArn"])
    assert algorithm["defaultHyperParameters"]["hidden_dimension"] == "149"
    ranges = algorithm["defaultHyperParameterRanges"]["integerHyperParameterRanges"]
    assert {"name": "hidden_dimension", "minValue": 32, "maxValue": 256, "isTunable": True} in ranges
    trending = describe_recipe("aws-trending-now")
    assert trending["algorithmArn"].endswith("algorithm/aws-trending-now-custom")
    transformation = describe_feature_transformation(trending["featureTransformationArn"])
    assert transformation["defaultParameters"] == {"trend_discovery_frequency": "2 hours"}
    with pytest.raises(ResourceNotFoundException):
        describe_recipe("aws-missing")


def test_domain_use_cases():
    assert len(USE_CASES) == 10
    assert recipe_names("VIDEO_ON_DEMAND") == sorted(u.name for u in USE_CASES if u.domain == "VIDEO_ON_DEMAND")
    top_picks = domain_use_case("arn:aws:personalize:::recipe/aws-vod-top-picks")
    assert top_picks.engine_recipe == "aws-user-personalization" and top_picks.excluded_event_types == ("Watch",)
    assert recipe_summary("aws-ecomm-popular-items-by-views")["domain"] == "ECOMMERCE"
    assert "domain" not in recipe_summary("aws-sims")
    for use_case in USE_CASES:
        get_recipe(use_case.engine_recipe)
    with pytest.raises(InvalidInputException):
        domain_use_case("aws-sims")


def test_large_catalogue_engine_als_folds_in_new_users(training_data, tmp_path):
    """Catalogues too big for EASE use ALS factors; an unknown user's history still steers the list."""
    from tastemaker.recipes.user_personalization import fit_collaborative

    recipe = get_recipe("aws-user-personalization")
    typed = recipe.validate_hyperparameters({"hidden_dimension": "32"})
    model = fit_collaborative(recipe, training_data, typed, seed=0, progress=None, should_stop=None, engine="als")
    assert "item_factors" in model.arrays and "ease" not in model.arrays
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    history = loaded.item_index([f"i{60 + k}" for k in range(5)]).astype(np.int32)  # genre 2
    scores = loaded.score_users(np.array([-1]), [history])
    top = np.argsort(-scores[0])[:10]
    assert np.mean([60 <= int(training_data.item_ids[t][1:]) < 90 for t in top]) >= 0.8
