"""The common GetRecommendations shape's fused path gives the engine's answer byte for byte.

Random requests on a small ALS model served through its candidate index (the index path's threshold lowered
for the test): known and new users, streamed events (known, unknown and newer-than-the-model items), filters
from permissive to so strict that the engine must score the whole catalogue, exploration off and on (seeded
generator), items newer than the model in the catalogue; each answer from tastemaker.serving.fastpath is
compared with the engine's score_and_rank + respond as serialised JSON, and the generator's state after both.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData
from tastemaker.recipes.user_personalization import CollaborativeModel, fit_collaborative
from tastemaker.serving import approx, engine, fastpath
from tastemaker.serving.catalog import build_catalog
from tastemaker.serving.history import UserEvents

pytest.importorskip("hnswlib")

N_USERS, N_ITEMS = 600, 700
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/fast"
VERSION = "arn:aws:personalize:us-east-1:000000000000:solution/s/v1"
EXPLORATIONS: list[dict[str, str] | None] = [
    None, {"explorationWeight": "0.3", "explorationItemAgeCutOff": "30"},
    {"explorationWeight": "1.0", "explorationItemAgeCutOff": "100000"}]


def als_model() -> CollaborativeModel:
    """600 users in 5 taste groups over 700 items with power-law popularity and a sequence signal."""
    rng = np.random.default_rng(3)
    users, items, times = [], [], []
    for user in range(N_USERS):
        group = user % 5
        for step in range(int(rng.integers(3, 15))):
            if rng.random() < 0.75:
                item = group * 140 + min(int(rng.pareto(1.2) * 10), 139)
            else:
                item = int(rng.integers(0, N_ITEMS))
            users.append(f"u{user}")
            items.append(f"i{item}")
            times.append(1_700_000_000 + user * 1000 + step * 10 + item * 86400 // N_ITEMS)
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    data = TrainingData.from_tables(table, None, None, TrainingConfig())
    recipe = get_recipe("aws-user-personalization")
    typed = recipe.validate_hyperparameters({"hidden_dimension": "32"})
    return fit_collaborative(recipe, data, typed, seed=0, progress=None, should_stop=None, engine="als")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    """(services, the campaign's Deployment, its LoadedModel) with the candidate index built."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.serving.deployments import deployment_cache
    from tastemaker.serving.models import model_cache
    from tastemaker.store import resources

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(approx, "ANN_MIN_ITEMS", 10)  # the candidate path for this small catalogue
        root: Path = tmp_path_factory.mktemp("fastpath")
        model = als_model()
        assert model.supports_candidates and model.n_items > 600
        model.save(root / "model")
        services = build_services(Settings(data_dir=root / "data"))
        for path in (root / "model").iterdir():
            services.blobs.put_file(f"models/v1/{path.name}", path)
        with services.engine.begin() as conn:
            resources.insert(conn, arn=VERSION, kind="solution_version", status="ACTIVE", dataset_group_arn="g",
                             body={"model_prefix": "models/v1/", "trained_recipe": "aws-user-personalization"})
            resources.insert(conn, arn=CAMPAIGN, kind="campaign", status="ACTIVE", dataset_group_arn="g",
                             body={"solution_version_arn": VERSION})
        dep = deployment_cache(services).resolve(services, CAMPAIGN, "campaign")
        loaded = model_cache(services).get(services, "models/v1/")
        assert approx.prepare_index(services, loaded) > 0
        for thread in threading.enumerate():  # the deployment's warm-up may have started a build of its own:
            if thread.name == "ann-index":  # let it finish, so the index does not change under the comparisons
                thread.join()
        scorer = services.serving.scorers.get(loaded.prefix, loaded.model, services)
        assert scorer is not None and scorer.n_candidates < model.n_items  # the index finds only some items
        yield services, dep, loaded
        services.engine.dispose()


def seeded(seed: int) -> np.random.Generator:
    rng = np.random.default_rng(seed)
    engine._local.rng = rng
    return rng


def random_request(rng: np.random.Generator, catalog: Any) -> tuple[str, UserEvents, np.ndarray | None, int]:
    """(user id, streamed events, eligible mask or None, numResults)."""
    user = f"u{int(rng.integers(0, N_USERS))}" if rng.random() < 0.8 else f"new-{int(rng.integers(0, 10**6))}"
    n_events = int(rng.choice([0, 0, 1, 3, 8]))
    pool = catalog.item_ids.tolist() + ["never-seen"]
    recent = [pool[int(rng.integers(0, len(pool)))] for _ in range(n_events)]
    events = UserEvents(recent, ["click"] * n_events, list(range(n_events, 0, -1)))
    eligible: np.ndarray | None = None
    share = float(rng.choice([1.0, 0.6, 0.1, 0.02, 0.004]))
    if share < 1.0:
        eligible = rng.random(catalog.size) < share
        if rng.random() < 0.5:
            eligible.setflags(write=False)  # a cached filter mask is read-only
    return user, events, eligible, int(rng.choice([1, 5, 25, 25, 100]))


def test_the_fused_path_answers_as_the_engine_does(served: tuple[Any, Any, Any]) -> None:
    services, dep, loaded = served
    model_catalog = engine.catalog_for(services, dep, loaded)
    # the same model with items it never saw (Items dataset rows newer than the training): exploration picks
    newer = pa.table({"ITEM_ID": [f"new{k}" for k in range(30)],
                      "CREATION_TIMESTAMP": pa.array([1_700_700_000 + k for k in range(30)], pa.int64())})
    catalogs = [model_catalog, build_catalog(loaded.model, newer)]
    rng = np.random.default_rng(11)
    fused = fallbacks = explored_new = 0
    for number in range(600):
        catalog = catalogs[number % 2]
        exploration = EXPLORATIONS[number % 3]
        config = {"item_exploration_config": exploration} if exploration else {}
        campaign = dataclasses.replace(dep, config=config)
        user, events, eligible, num = random_request(rng, catalog)
        req = engine.Request(loaded, catalog, [], None, events, None, None, None)
        query = engine.Query(user_id=user, num_results=num)
        seed = int(rng.integers(0, 2**31))
        seeded(seed)
        ranked = engine.score_and_rank(services, campaign, query, req, num, eligible, np.zeros(0, np.int64))
        expected = engine.respond(campaign, req, ranked, engine.WIRE_ITEM_KEYS)["item_list"]
        after_engine = engine._local.rng.random()
        generator = seeded(seed)
        plan = fastpath.plan_for(services, loaded)  # per request, as the server looks it up
        assert plan is not None
        got = fastpath.rank_and_respond(plan, campaign, req, user, num, eligible)
        if got is None:  # too few allowed candidates: the engine scores the whole catalogue; nothing drawn
            fallbacks += 1
            assert generator.random() == np.random.default_rng(seed).random()
            continue
        fused += 1
        assert orjson.dumps(got) == orjson.dumps(expected), (number, user, num)
        assert generator.random() == after_engine  # the same random draws
        explored_new += any(str(item["itemId"]).startswith("new") for item in got)
    assert fused > 350 and fallbacks > 10 and explored_new > 5, (fused, fallbacks, explored_new)


def test_the_operation_uses_the_fused_path_for_the_common_shape_only(served: tuple[Any, Any, Any]) -> None:
    from tastemaker.control.context import RequestContext
    from tastemaker.serving.runtime import get_recommendations

    services, dep, _loaded = served
    ctx = RequestContext(services, "us-east-1")
    for number, user in enumerate(["u1", "u77", "u599", "someone-new"]):
        seeded(number)
        answer = get_recommendations(ctx, campaign_arn=CAMPAIGN, user_id=user, num_results=10 + number)
        seeded(number)
        expected = engine.recommend(services, dep, engine.Query(user_id=user, num_results=10 + number), wire=True)
        assert orjson.dumps(answer["itemList"]) == orjson.dumps(expected["item_list"])
        assert answer["recommendationId"].startswith("RID-")
        assert fastpath.recommend(services, dep, engine.Query(user_id=user, num_results=3)) is not None
    # every other shape is the engine's
    for query in (engine.Query(user_id="u1", context={"DEVICE": "phone"}), engine.Query(user_id="u1", item_id="i3"),
                  engine.Query(user_id="u1", metadata_columns={"ITEMS": ["GENRES"]}),
                  engine.Query(user_id="u1", promotions=[{"name": "p", "percent_promoted_items": 10}]),
                  engine.Query(item_id="i3")):
        assert fastpath.recommend(services, dep, query) is None
    influenced = dataclasses.replace(dep, config={"ranking_influence": {"POPULARITY": 0.5}})
    assert fastpath.recommend(services, influenced, engine.Query(user_id="u1")) is None


def test_a_model_served_exactly_stays_on_the_engine(served: tuple[Any, Any, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tastemaker.control.context import RequestContext
    from tastemaker.serving.runtime import get_recommendations

    services, dep, loaded = served
    monkeypatch.setattr(approx, "ANN_MIN_ITEMS", 10**6)
    monkeypatch.setattr(services.serving, "scorers", approx.ScorerRegistry())  # no index: exact scoring
    assert fastpath.plan_for(services, loaded) is None
    assert fastpath.recommend(services, dep, engine.Query(user_id="u5")) is None
    seeded(5)
    answer = get_recommendations(RequestContext(services, "us-east-1"), campaign_arn=CAMPAIGN, user_id="u5")
    seeded(5)
    expected = engine.recommend(services, dep, engine.Query(user_id="u5"), wire=True)
    assert orjson.dumps(answer["itemList"]) == orjson.dumps(expected["item_list"]) and len(expected["item_list"]) == 25
