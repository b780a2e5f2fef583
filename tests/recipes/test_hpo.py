"""performHPO / performAutoML: the tuner finds better settings, refuses bad ranges and picks the better recipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.recipes.base import HyperParameter, Recipe, TrainedModel, register_model_class
from tastemaker.recipes.hpo import auto_ml, search_space, tune, validation_split
from tastemaker.recipes.training_data import TrainingConfig, TrainingData

N_ITEMS = 50


def sequential_data(n_users: int = 200, seed: int = 5) -> TrainingData:
    """Users follow item -> item + 1 (90% of steps); popularity alone says little about the next items."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(n_users):
        item = int(rng.integers(N_ITEMS))
        for step in range(12):
            users.append(f"u{user}")
            items.append(f"i{item}")
            times.append(1_000_000 + 100 * user + step)
            item = (item + 1) % N_ITEMS if rng.random() < 0.9 else int(rng.integers(N_ITEMS))
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    return TrainingData.from_tables(table, None, None, TrainingConfig())


@register_model_class
class MixModel(TrainedModel):
    """Scores = w * P(next item | last item) + (1 - w) * normalised popularity."""

    model_kind = "test-hpo-mix"

    def score_users(self, user_index: np.ndarray, histories: Sequence[np.ndarray], context=None) -> np.ndarray:
        w = float(self.settings["sequence_weight"])
        transitions = self.arrays["transitions"]
        scores = self.popularity_scores(len(histories)) * (1 - w)
        for row, history in enumerate(histories):
            if len(history):
                scores[row] += w * transitions[int(history[-1])]
        return scores


class MixRecipe(Recipe):
    """A small real model whose quality depends on one tunable weight (default deliberately bad: 0)."""

    name = "test-hpo-mix"
    recipe_type = "USER_PERSONALIZATION"
    hyperparameters: ClassVar[tuple[HyperParameter, ...]] = (
        HyperParameter("sequence_weight", "continuous", "0.0", min=0.0, max=1.0, tunable=True),
        HyperParameter("smoothing", "integer", "1", min=0, max=100, tunable=True),
        HyperParameter("mode", "categorical", "a", values=("a", "b"), tunable=True),
        HyperParameter("fixed_flag", "categorical", "true", values=("true", "false"), tunable=False),
    )
    seen_users: ClassVar[list[set[int]]] = []

    def fit(self, data, params, *, seed=0, progress=None, should_stop=None) -> TrainedModel:
        typed = self.validate_hyperparameters(params)
        MixRecipe.seen_users.append(set(np.unique(data.users).tolist()))
        counts = np.full((data.n_items, data.n_items), float(typed.get("smoothing", 1)) / data.n_items)
        same_user = data.users[1:] == data.users[:-1]
        np.add.at(counts, (data.items[:-1][same_user], data.items[1:][same_user]), 1.0)
        transitions = (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
        return MixModel(self.name, self.recipe_type, data.item_ids, data.user_ids, data.unique_user_counts(),
                        data.item_first_seen(), params=typed, arrays={"transitions": transitions},
                        settings={"sequence_weight": typed["sequence_weight"]})


class PopularityOnly(MixRecipe):
    name = "test-hpo-popularity"
    hyperparameters = (HyperParameter("sequence_weight", "continuous", "0.0", min=0.0, max=0.0),)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return sequential_data()


def test_tuning_finds_a_much_better_value_than_a_bad_default(data):
    ranges = {"continuousHyperParameterRanges": [{"name": "sequence_weight", "minValue": 0.0, "maxValue": 1.0}]}
    result = tune(MixRecipe(), data, ranges=ranges, max_trials=8, seed=0)
    default_value = next(t.value for t in tune(
        MixRecipe(), data, ranges={"continuousHyperParameterRanges": [
            {"name": "sequence_weight", "minValue": 0.0, "maxValue": 0.0}]}, max_trials=1).trials)
    assert float(result.best_params["sequence_weight"]) > 0.3
    assert result.best_value > 2 * default_value
    assert len(result.trials) == 8 and all(t.value is not None for t in result.trials)
    assert result.best_value == max(t.value for t in result.trials)
    assert set(result.best_params) == {"sequence_weight", "smoothing", "mode", "fixed_flag"}
    assert result.best_params["smoothing"] == "1"  # not searched: the default


def test_same_seed_gives_the_same_search(data):
    first = tune(MixRecipe(), data, max_trials=4, seed=3)
    again = tune(MixRecipe(), data, max_trials=4, seed=3)
    assert [t.params for t in first.trials] == [t.params for t in again.trials]


def test_without_ranges_every_tunable_hyperparameter_is_searched_and_fixed_params_are_kept(data):
    result = tune(MixRecipe(), data, max_trials=3, fixed_params={"fixed_flag": "false"})
    assert {d.name for d in search_space(MixRecipe(), None)} == {"sequence_weight", "smoothing", "mode"}
    for trial in result.trials:
        assert set(trial.params) == {"sequence_weight", "smoothing", "mode", "fixed_flag"}
        assert trial.params["fixed_flag"] == "false"
        assert 0 <= int(trial.params["smoothing"]) <= 100 and trial.params["mode"] in ("a", "b")


def test_the_tuner_never_trains_on_its_validation_users(data):
    MixRecipe.seen_users.clear()
    split = validation_split(data)
    tune(MixRecipe(), data, max_trials=2)
    held_out = set(split.query_users.tolist())
    assert held_out and MixRecipe.seen_users
    assert all(not (seen & held_out) for seen in MixRecipe.seen_users)


@pytest.mark.parametrize(("ranges", "message"), [
    ({"categoricalHyperParameterRanges": [{"name": "fixed_flag", "values": ["true"]}]},
     "Hyperparameter fixed_flag of recipe test-hpo-mix is not tunable"),
    ({"integerHyperParameterRanges": [{"name": "hidden", "minValue": 1, "maxValue": 2}]},
     "'hidden', which is not a hyperparameter of recipe test-hpo-mix"),
    ({"continuousHyperParameterRanges": [{"name": "sequence_weight", "minValue": 0.0, "maxValue": 2.0}]},
     (r"Range \[0, 2\] for hyperparameter sequence_weight of recipe test-hpo-mix is outside its allowed range "
     r"\[0, 1\]")),
    ({"integerHyperParameterRanges": [{"name": "smoothing", "minValue": 9, "maxValue": 3}]},
     "smoothing has minValue 9 greater than maxValue 3"),
    ({"integerHyperParameterRanges": [{"name": "sequence_weight", "minValue": 0, "maxValue": 1}]},
     "sequence_weight of recipe test-hpo-mix is continuous; give its range in continuousHyperParameterRanges"),
    ({"categoricalHyperParameterRanges": [{"name": "mode", "values": ["a", "c"]}]},
     r"Value 'c' is not allowed for hyperparameter mode of recipe test-hpo-mix \(allowed: a, b\)"),
    ({"integerHyperParameterRanges": [{"name": "smoothing", "minValue": 1.5, "maxValue": 3}]},
     "integer hyperparameter smoothing must have integer bounds"),
])
def test_invalid_ranges_are_refused_with_a_precise_message(data, ranges, message):
    with pytest.raises(InvalidInputException, match=message):
        tune(MixRecipe(), data, ranges=ranges, max_trials=2)


def test_budget_and_objective_are_checked(data):
    with pytest.raises(InvalidInputException, match="maxNumberOfTrainingJobs must be between 1 and 40"):
        tune(MixRecipe(), data, max_trials=0)
    with pytest.raises(InvalidInputException, match="Unknown objective metric 'auc'"):
        tune(MixRecipe(), data, objective_metric="auc")


def test_auto_ml_picks_the_recipe_that_fits_the_data(data):
    result = auto_ml([PopularityOnly(), MixRecipe()], data, max_trials_per_recipe=4, seed=0)
    assert result.best_recipe_name == "test-hpo-mix"
    scores = result.per_recipe_scores
    assert scores["test-hpo-mix"] > 2 * scores["test-hpo-popularity"]
    assert float(result.best_params["sequence_weight"]) > 0.3


def test_auto_ml_only_considers_user_personalization_recipes(data):
    class Ranking(MixRecipe):
        name = "test-hpo-ranking"
        recipe_type = "PERSONALIZED_RANKING"

    with pytest.raises(InvalidInputException, match="test-hpo-ranking is PERSONALIZED_RANKING"):
        auto_ml([MixRecipe(), Ranking()], data)


def test_snake_case_ranges_from_the_api_layer_are_accepted():
    snake = {"integer_hyper_parameter_ranges": [{"name": "smoothing", "min_value": 2, "max_value": 5}]}
    assert [(d.name, d.low, d.high) for d in search_space(MixRecipe(), snake)] == [("smoothing", 2.0, 5.0)]


class MemoryCheckpoints:
    """The Checkpoints protocol over a dict (what the blob-backed store does, without a store)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def load(self, name: str) -> bytes | None:
        return self.blobs.get(name)

    def save(self, name: str, data: bytes) -> None:
        self.blobs[name] = bytes(data)


class CountingMix(MixRecipe):
    name = "test-hpo-counting"
    fitted: ClassVar[list[dict[str, str]]] = []

    def fit(self, data, params, *, seed=0, progress=None, should_stop=None) -> TrainedModel:
        CountingMix.fitted.append(dict(params))
        return super().fit(data, params, seed=seed, progress=progress, should_stop=should_stop)


def test_a_restarted_search_resumes_its_finished_trials_instead_of_rerunning_them(data):
    from tastemaker.recipes.base import TrainingStopped

    store = MemoryCheckpoints()
    CountingMix.fitted.clear()
    with pytest.raises(TrainingStopped):  # the worker stops as the fourth trial starts
        tune(CountingMix(), data, max_trials=6, seed=2, checkpoints=store,
             should_stop=lambda: len(CountingMix.fitted) >= 3)
    assert len(CountingMix.fitted) == 3 and store.blobs
    first_run = [dict(p) for p in CountingMix.fitted]

    CountingMix.fitted.clear()
    resumed = tune(CountingMix(), data, max_trials=6, seed=2, checkpoints=store)
    assert len(CountingMix.fitted) == 3  # only the three trials that had not finished
    assert [t.params for t in resumed.trials[:3]] == first_run
    assert len(resumed.trials) == 6 and all(t.value is not None for t in resumed.trials)
    assert [t.number for t in resumed.trials] == list(range(6))
    assert resumed.best_value == max(t.value for t in resumed.trials)

    CountingMix.fitted.clear()  # everything finished: a second restart trains nothing
    again = tune(CountingMix(), data, max_trials=6, seed=2, checkpoints=store)
    assert CountingMix.fitted == [] and again.best_params == resumed.best_params


def test_a_checkpoint_of_another_search_is_not_reused(data):
    store = MemoryCheckpoints()
    tune(CountingMix(), data, max_trials=2, seed=2, checkpoints=store)
    CountingMix.fitted.clear()
    tune(CountingMix(), data, max_trials=2, seed=2, checkpoints=store, fixed_params={"fixed_flag": "false"})
    assert len(CountingMix.fitted) == 2
    store.blobs = {name: b"not json" for name in store.blobs}
    CountingMix.fitted.clear()
    tune(CountingMix(), data, max_trials=2, seed=2, checkpoints=store)
    assert len(CountingMix.fitted) == 2
