"""aws-next-best-action against the popularity-of-action baseline on generated actions with known preferences
(the generator: tests.recipes.synthetic.make_action_tables)."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.recipes import get_recipe
from tastemaker.recipes.action_data import ActionData, event_code
from tastemaker.recipes.next_best_action import evaluate_actions, popularity_of_actions
from tests.recipes.synthetic import GENRES, action_genre, make_action_tables


@pytest.fixture(scope="module")
def model(training_data):
    return get_recipe("aws-next-best-action").fit(training_data, {}, seed=0)


def _inputs(data, users):
    offsets = data.user_offsets()
    return [data.items[offsets[u]:offsets[u + 1]] for u in users], [np.zeros(0, np.int64)] * len(users)


def best_action_precision(top1_ids, users, data) -> float:
    """Share of users whose top action is one of their known best (an action of their genre)."""
    return float(np.mean([action_genre(a) == int(data.user_ids[u][1:]) % len(GENRES)
                          for a, u in zip(top1_ids, users, strict=True)]))


def test_learned_actions_beat_popularity_for_every_user(model, training_data):
    users = np.arange(training_data.n_users)
    scores = model.score_actions(*_inputs(training_data, users))
    learned = best_action_precision(model.action_ids[scores.argmax(axis=1)], users, training_data)
    popular = popularity_of_actions(training_data.actions)
    baseline = best_action_precision([model.action_ids[int(popular.argmax())]] * len(users), users, training_data)
    assert learned >= 0.9
    assert baseline <= 0.3
    assert learned > baseline + 0.5


def test_scores_are_probabilities_close_to_the_generating_ones(model, training_data):
    users = np.arange(0, training_data.n_users, 4)  # genre 0 users
    scores = model.score_actions(*_inputs(training_data, users))
    assert ((scores >= 0) & (scores <= 1)).all()
    mine = model.action_index(["a0_0", "a0_1"])
    other = model.action_index(["a2_0", "a3_1"])
    assert 0.5 < scores[:, mine].mean() < 0.85  # generated with 0.7
    assert scores[:, other].mean() < 0.15  # generated with 0.05


def test_actions_without_enough_labels_score_zero(training_data):
    actions, interactions = make_action_tables(n_users=40)
    data = training_data.subset_events(np.ones(training_data.n_interactions, bool))
    data.actions = ActionData.from_tables(actions, interactions)
    model = get_recipe("aws-next-best-action").fit(data, {}, seed=0)
    scores = model.score_actions(*_inputs(data, np.arange(4)))
    assert (scores == 0).all()  # 40 users cannot give any action 50 TAKEN and 50 other labels


def test_only_labels_of_the_last_six_weeks_make_an_action_scored(training_data):
    import pyarrow as pa
    import pyarrow.compute as pc

    actions, interactions = make_action_tables()
    old = pc.starts_with(interactions.column("ACTION_ID"), "a0_")
    shifted = pc.if_else(old, pc.subtract(interactions.column("TIMESTAMP"), pa.scalar(60 * 86_400, pa.int64())),
                         interactions.column("TIMESTAMP"))
    interactions = interactions.set_column(3, "TIMESTAMP", shifted)
    data = training_data.subset_events(np.ones(training_data.n_interactions, bool))
    data.actions = ActionData.from_tables(actions, interactions)
    model = get_recipe("aws-next-best-action").fit(data, {}, seed=0)
    scores = model.score_actions(*_inputs(data, np.arange(8)))
    assert (scores[:, model.action_index(["a0_0", "a0_1"])] == 0).all()
    assert (scores[:, model.action_index(["a1_0", "a_pop"])] > 0).all()


def test_taking_actions_moves_an_unknown_user_toward_their_kind(model, training_data):
    """No item history, only real-time TAKEN actions: the profile alone points to the right genre."""
    taken = model.action_index(["a3_0"])
    scores = model.score_actions([np.zeros(0, np.int32)], [taken])[0]
    best = [model.action_ids[i] for i in np.argsort(-scores)[:2]]
    assert "a3_1" in best


def test_event_type_spellings_are_the_same():
    assert event_code("Not Taken") == event_code("NOT_TAKEN") != event_code("TAKEN") == event_code("taken")
    assert event_code("Viewed") == event_code("VIEWED")


def test_solution_metrics_for_actions(training_data):
    metrics = evaluate_actions(get_recipe("aws-next-best-action"), training_data, {})
    assert metrics["auc"] > 0.8
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1


def test_without_actions_training_is_refused(training_data):
    from tastemaker.recipes import InsufficientDataError

    data = training_data.subset_events(np.ones(training_data.n_interactions, bool))
    data.actions = None
    with pytest.raises(InsufficientDataError, match="Actions dataset"):
        get_recipe("aws-next-best-action").fit(data, {})
