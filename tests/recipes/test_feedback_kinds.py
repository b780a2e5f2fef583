"""Feedback kinds act on what a recipe learns: eventValueThreshold (explicit ratings) and eventsConfig weights."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData


def ratings_table() -> pa.Table:
    """After item A, 60% of users go on to B and rate it 1 (a `view`), 40% to C and rate it 5 (a `like`);
    everyone also likes a few filler items (4)."""
    rng = np.random.default_rng(11)
    rows = []
    for user in range(300):
        t = 1_000_000 + 1000 * user
        events = [(f"f{int(i)}", 4.0, "like") for i in rng.choice(40, size=4, replace=False)]
        events.append(("A", 4.0, "like"))
        events.append(("B", 1.0, "view") if user % 5 < 3 else ("C", 5.0, "like"))
        rows += [(f"u{user}", item, t + step, value, kind) for step, (item, value, kind) in enumerate(events)]
    users, items, times, values, kinds = zip(*rows, strict=True)
    return pa.table({"USER_ID": list(users), "ITEM_ID": list(items), "TIMESTAMP": pa.array(times, pa.int64()),
                     "EVENT_VALUE": pa.array(values, pa.float32()), "EVENT_TYPE": list(kinds)})


def preference(recipe: str, config: TrainingConfig) -> str:
    """Which of B and C the recipe puts first for a new user who just took A."""
    data = TrainingData.from_tables(ratings_table(), None, None, config)
    model = get_recipe(recipe).fit(data, {}, seed=0)
    a, b, c = model.item_index(["A", "B", "C"])
    if model.recipe_type == "RELATED_ITEMS":
        scores = model.score_items(np.array([a]))[0]
    else:
        scores = model.score_users(np.array([-1]), [np.array([a], dtype=np.int32)])[0]
    return "B" if scores[b] > scores[c] else "C"


@pytest.mark.parametrize("recipe", ["aws-user-personalization", "aws-sims"])
def test_implicit_counts_every_rating_and_explicit_threshold_keeps_only_liked_ones(recipe):
    assert preference(recipe, TrainingConfig()) == "B"  # more people went on to B
    assert preference(recipe, TrainingConfig(event_value_threshold=4.0)) == "C"  # but they did not like it


def test_event_type_weights_of_a_hybrid_configuration_change_the_ranking():
    recipe = "aws-user-personalization"
    equal = TrainingConfig(events_config=[("like", None, 1.0), ("view", None, 1.0)])
    views_count_less = TrainingConfig(events_config=[("like", None, 1.0), ("view", None, 0.1)])
    assert preference(recipe, equal) == "B"
    assert preference(recipe, views_count_less) == "C"
