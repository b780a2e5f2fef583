"""aws-item-affinity at scale: the ALS engine scores item sets block by block of users (the user factors read
from memory once per call, not once per set), and the offline evaluation scores held-out items in bounded blocks; both give the
figures of the one-set-at-a-time, all-at-once formulation (found at 1M users: 86 GiB asked for at once)."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.evaluation import evaluate
from tastemaker.recipes import user_personalization
from tastemaker.recipes.affinity import AffinityModel, ItemAffinity
from tastemaker.recipes.training_data import TrainingData
from tastemaker.recipes.user_personalization import fit_collaborative


def test_a_block_of_item_sets_is_scored_as_one_set_at_a_time(training_data: TrainingData,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = ItemAffinity()
    model = fit_collaborative(recipe, training_data, recipe.validate_hyperparameters({"hidden_dimension": "32"}),
                              seed=0, progress=None, should_stop=None, model_class=AffinityModel,
                              keep_user_factors=True, engine="als")
    users, factors = np.asarray(model.arrays["user_factors"]), np.asarray(model.arrays["item_factors"])
    sets = [np.array([3]), np.zeros(0, np.int64), np.array([0, 5, 9]), np.array([1, 1])]
    scores = model.user_affinity_for_item_sets(sets)
    assert scores.shape == (4, model.n_users) and scores.dtype == np.float32
    for row, items in enumerate(sets):
        expected = users @ factors[items].mean(axis=0) if len(items) else np.zeros(model.n_users)
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5, atol=1e-6)
    assert not scores[1].any()  # an empty set scores zero for everyone
    np.testing.assert_array_equal(model.user_affinity_for_item_sets(sets, slice(10, 30)), scores[:, 10:30])
    monkeypatch.setattr(user_personalization, "AFFINITY_USER_BLOCK", 64)  # many blocks: the same scores
    np.testing.assert_array_equal(model.user_affinity_for_item_sets(sets), scores)


def test_the_segmentation_metrics_do_not_depend_on_the_block_size(training_data: TrainingData,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = ItemAffinity()
    params = {"hidden_dimension": "32"}
    whole = evaluate.evaluate_solution(recipe, training_data, params, seed=0)
    monkeypatch.setattr(evaluate, "SEGMENT_SCORE_ELEMENTS", 3 * training_data.n_users)  # blocks of 3 items
    assert evaluate.evaluate_solution(recipe, training_data, params, seed=0) == whole
    assert set(whole) == {"hit", "recall"}
