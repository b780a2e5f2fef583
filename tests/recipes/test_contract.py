"""The contract every registered recipe keeps: learns, saves/loads exactly, stops, validates, falls back."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.evaluation import evaluate_solution, personalize_split, recommend_for_split
from tastemaker.evaluation.metrics import ndcg_at_k, top_k
from tastemaker.recipes import TrainingStopped, all_recipes, get_recipe, load_model
from tastemaker.recipes.training_data import TrainingData
from tests.recipes.synthetic import cold_item_ids, genre_of_item_id

RECIPES = sorted(name for name, recipe in all_recipes().items() if recipe.available)
USER_TYPES = ("USER_PERSONALIZATION", "PERSONALIZED_RANKING", "POPULAR_ITEMS")
# The v2 recipes train a neural network (seconds per fit even when small): smaller settings here, and the
# tests that need extra fits of them are marked slow.
NEURAL = {name for name in RECIPES if name.endswith("-v2")}
FAST_PARAMS: dict[str, dict[str, str]] = {
    name: {"training_epochs": "10", "hidden_dimension": "32", "max_sequence_length": "30"} for name in NEURAL
}


def cases(names: list[str]) -> list:
    """Parametrisation: the neural recipes' cases are marked slow (a fit takes seconds)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in NEURAL else n for n in names]


def fast_params(name: str) -> dict[str, str]:
    recipe = get_recipe(name)
    known = {hp.name for hp in recipe.hyperparameters}
    return {k: v for k, v in FAST_PARAMS.get(name, {}).items() if k in known}


_FITTED: dict[str, object] = {}


def fitted(name: str, data: TrainingData):
    """One fit per recipe for the whole module (fitting is the slow part)."""
    if name not in _FITTED:
        _FITTED[name] = get_recipe(name).fit(data, fast_params(name), seed=0)
    return _FITTED[name]


def scores_for(model, data: TrainingData, queries: int = 8) -> np.ndarray:
    """The scores of whatever the recipe type answers, for a few queries."""
    if model.recipe_type in USER_TYPES:
        users = np.arange(queries, dtype=np.int64)
        offsets = data.user_offsets()
        histories = [data.items[offsets[u]:offsets[u + 1]][-5:] for u in users]
        return model.score_users(users, histories)
    if model.recipe_type == "RELATED_ITEMS":
        return model.score_items(np.arange(queries, dtype=np.int64))
    if model.recipe_type == "PERSONALIZED_ACTIONS":
        offsets = data.user_offsets()
        return model.score_actions([data.items[offsets[u]:offsets[u + 1]] for u in range(queries)],
                                   [np.zeros(0, np.int64)] * queries)
    return model.score_users_for_items(np.arange(queries, dtype=np.int64))


@pytest.mark.parametrize("name", cases(RECIPES))
def test_scores_have_the_documented_shape_and_type(name, training_data):
    model = fitted(name, training_data)
    scores = scores_for(model, training_data)
    width = {"USER_SEGMENTATION": training_data.n_users,
             "PERSONALIZED_ACTIONS": training_data.actions.catalog.n_actions}.get(model.recipe_type,
                                                                                   training_data.n_items)
    assert scores.shape == (8, width)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert list(model.item_ids) == list(training_data.item_ids)
    assert model.item_popularity.shape == (training_data.n_items,)
    assert model.item_first_seen.dtype == np.int64


@pytest.mark.parametrize("name", cases(RECIPES))
def test_save_and_load_give_identical_scores(name, training_data, tmp_path):
    model = fitted(name, training_data)
    model.save(tmp_path / "model")
    files = sorted(p.suffix for p in (tmp_path / "model").iterdir())
    assert set(files) <= {".json", ".npy", ".npz", ".pt", ".safetensors"}
    for mmap in (True, False):
        loaded = load_model(tmp_path / "model", mmap=mmap)
        assert loaded.recipe_name == name
        np.testing.assert_array_equal(scores_for(loaded, training_data), scores_for(model, training_data))


@pytest.mark.parametrize("name", cases(RECIPES))
def test_same_seed_gives_the_same_model(name, training_data):
    again = get_recipe(name).fit(training_data, fast_params(name), seed=0)
    np.testing.assert_allclose(scores_for(again, training_data), scores_for(fitted(name, training_data),
                                                                             training_data), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", cases(RECIPES))
def test_should_stop_stops_training(name, training_data):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return True

    with pytest.raises(TrainingStopped):
        get_recipe(name).fit(training_data, fast_params(name), should_stop=should_stop)
    assert calls


@pytest.mark.parametrize("name", cases(RECIPES))
def test_progress_is_reported_up_to_done(name, training_data):
    seen: list[float] = []
    get_recipe(name).fit(training_data, fast_params(name), progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for f in seen)


@pytest.mark.parametrize("name", RECIPES)
def test_unknown_hyperparameter_is_named(name):
    with pytest.raises(InvalidInputException, match="no_such_knob"):
        get_recipe(name).validate_hyperparameters({"no_such_knob": "1"})


@pytest.mark.parametrize("name", [n for n in RECIPES if get_recipe(n).hyperparameters])
def test_out_of_range_hyperparameter_is_named(name):
    recipe = get_recipe(name)
    for hp in recipe.hyperparameters:
        bad = "not-a-value" if hp.kind == "categorical" else str((hp.max or 0) + 1000)
        with pytest.raises(InvalidInputException, match=hp.name):
            recipe.validate_hyperparameters({hp.name: bad})


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type in USER_TYPES]))
def test_new_user_without_history_gets_cold_start_scores(name, training_data):
    model = fitted(name, training_data)
    scores = model.score_users(np.array([-1, -1], dtype=np.int64), [np.zeros(0, np.int32)] * 2)
    assert scores.shape == (2, training_data.n_items)
    np.testing.assert_allclose(scores[0], scores[1])
    # Cold-start lists favour items many users interacted with.
    top = top_k(scores[:1], 10)[0]
    assert model.item_popularity[top].mean() > np.median(model.item_popularity)


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type == "RELATED_ITEMS"]))
def test_unknown_item_gets_popular_items(name, training_data):
    model = fitted(name, training_data)
    scores = model.score_items(np.array([-1], dtype=np.int64))
    top = top_k(scores, 10)[0]
    assert model.item_popularity[top].mean() > np.median(model.item_popularity)


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type == "RELATED_ITEMS"]))
def test_related_items_share_the_query_genre(name, training_data):
    model = fitted(name, training_data)
    queries = np.arange(0, 120, 7, dtype=np.int64)
    top = top_k(model.score_items(queries), 5)
    same = [genre_of_item_id(training_data.item_ids[t]) == genre_of_item_id(training_data.item_ids[q])
            for q, row in zip(queries, top, strict=True) for t in row]
    assert np.mean(same) > 0.7
    assert not any(q in row for q, row in zip(queries, top, strict=True))


def test_similar_items_gives_cold_items_metadata_neighbours(training_data):
    model = fitted("aws-similar-items", training_data)
    cold = model.item_index(cold_item_ids())
    assert (cold >= 0).all()
    top = top_k(model.score_items(cold), 5)
    for query, row in zip(cold, top, strict=True):
        genres = {genre_of_item_id(training_data.item_ids[t]) for t in row}
        assert genres == {genre_of_item_id(training_data.item_ids[query])}


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type in
                                         ("USER_PERSONALIZATION", "PERSONALIZED_RANKING")]))
def test_personalized_recipe_beats_popularity_on_held_out_users(name, training_data):
    learned = evaluate_solution(get_recipe(name), training_data, fast_params(name))
    baseline = evaluate_solution(get_recipe("aws-popularity-count"), training_data, {})
    key = "normalized_discounted_cumulative_gain_at_10"
    assert learned[key] > 1.5 * baseline[key] + 0.05


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type == "USER_PERSONALIZATION"]))
def test_new_events_change_recommendations_in_real_time(name, training_data):
    """Fold-in: an unknown user's history steers recommendations to that history's genre."""
    model = fitted(name, training_data)
    for genre in range(4):
        history = model.item_index([f"i{genre * 30 + k}" for k in range(5)]).astype(np.int32)
        top = top_k(model.score_users(np.array([-1]), [history]), 10, [history])[0]
        genres = [genre_of_item_id(training_data.item_ids[t]) for t in top]
        assert np.mean([g == genre for g in genres]) >= 0.8


@pytest.mark.parametrize("name", cases([n for n in RECIPES if get_recipe(n).recipe_type == "USER_SEGMENTATION"]))
def test_segments_find_the_users_of_the_item_genre(name, training_data):
    model = fitted(name, training_data)
    item = int(model.item_index(["i5"])[0])  # an action item; users u0, u4, u8, ... like action
    top_users = top_k(model.score_users_for_items(np.array([item])), 20)[0]
    share = np.mean([int(training_data.user_ids[u][1:]) % 4 == 0 for u in top_users])
    assert share >= 0.8


def test_attribute_affinity_answers_and_queries(training_data):
    model = fitted("aws-item-attribute-affinity", training_data)
    scores = model.score_users_for_attributes([[("GENRES", "horror")], [("genres", "Comedy"), ("GENRES", "new")]])
    assert scores.shape == (2, training_data.n_users)
    horror_fans = top_k(scores[:1], 20)[0]
    assert np.mean([int(training_data.user_ids[u][1:]) % 4 == 3 for u in horror_fans]) >= 0.8
    comedy_fans = top_k(scores[1:], 20)[0]
    assert np.mean([int(training_data.user_ids[u][1:]) % 4 == 1 for u in comedy_fans]) >= 0.8


def test_held_out_queries_exercise_fold_in(training_data):
    """evaluate_solution queries held-out users as unknown (-1) with their input history."""
    recipe = get_recipe("aws-user-personalization")
    split = personalize_split(training_data, seed=0)
    model = recipe.fit(split.train, {})
    assert not np.isin(split.query_users, split.train.users).any()
    recommended = recommend_for_split(model, split, known_users=False)
    assert ndcg_at_k(recommended, split.truths, 10) > 0.2


class _MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def load(self, name: str) -> bytes | None:
        return self.saved.get(name)

    def save(self, name: str, data: bytes) -> None:
        self.saved[name] = data


@pytest.mark.parametrize("name", cases(RECIPES))
def test_fit_accepts_checkpoints_and_learns_the_same_model(name, training_data):
    store = _MemoryCheckpoints()
    model = get_recipe(name).fit(training_data, fast_params(name), seed=0, checkpoints=store)
    np.testing.assert_allclose(scores_for(model, training_data), scores_for(fitted(name, training_data),
                                                                            training_data), rtol=1e-5, atol=1e-6)
    if name in NEURAL:  # the epoch loop keeps its state there
        assert store.saved
