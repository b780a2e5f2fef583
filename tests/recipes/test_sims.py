"""aws-sims: the item-count percentiles cap popular items' weight deterministically without losing their users."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData


def popular_item_data() -> TrainingData:
    """Item p0 is in every history; half of its users also have a0, a quarter a1, a tenth a2; p1 (popular too)
    is in 80% of histories and half of those also have p0 late. Filler items give the count distribution."""
    rng = np.random.default_rng(3)
    rows = []
    for user in range(400):
        items = ["p0"]
        if user % 2 == 0:
            items.append("a0")
        if user % 4 == 1:
            items.append("a1")
        if user % 10 == 3:
            items.append("a2")
        if user % 5 != 0:
            items.append("p1")
        items += [f"f{int(i)}" for i in rng.choice(300, size=4, replace=False)]
        rows += [(f"u{user}", item, 1_000_000 + 10 * user + step) for step, item in enumerate(items)]
    users, items, times = zip(*rows, strict=True)
    table = pa.table({"USER_ID": list(users), "ITEM_ID": list(items), "TIMESTAMP": pa.array(times, pa.int64())})
    return TrainingData.from_tables(table, None, None, TrainingConfig())


def neighbours(model, item: str) -> list[str]:
    scores = model.score_items(model.item_index([item]))[0]
    return [str(model.item_ids[i]) for i in np.argsort(-scores, kind="stable")[:4]]


def test_a_capped_popular_item_keeps_the_neighbours_all_its_users_show():
    data = popular_item_data()
    sims = get_recipe("aws-sims")
    params = {"max_item_interaction_count_percentile": "0.5", "min_cointeraction_count": "1",
              "popularity_discount_factor": "0.5"}
    capped = sims.fit(data, params)
    # every user of p0 counts: its uncapped neighbours come in order of evidence (a random subsample of its
    # events down to the cap, a few dozen, would lose most of it)
    assert [n for n in neighbours(capped, "p0") if n != "p1"] == ["a0", "a1", "a2"]
    # deterministic: no random subsample, so another seed gives the same neighbours and scores
    again = sims.fit(data, params, seed=9)
    np.testing.assert_array_equal(capped.arrays["sim_data"], again.arrays["sim_data"])


def test_the_percentile_cap_weighs_down_very_popular_neighbours():
    data = popular_item_data()
    sims = get_recipe("aws-sims")
    params = {"min_cointeraction_count": "1", "popularity_discount_factor": "0.5"}
    uncapped = sims.fit(data, {**params, "max_item_interaction_count_percentile": "1.0"})
    capped = sims.fit(data, {**params, "max_item_interaction_count_percentile": "0.5"})
    query = capped.item_index(["a0"])
    p1 = int(capped.item_index(["p1"])[0])
    rank = {name: int(np.argsort(-m.score_items(query)[0]).tolist().index(p1)) for name, m in
            (("uncapped", uncapped), ("capped", capped))}
    assert rank["capped"] > rank["uncapped"]


def test_unset_cap_and_discount_are_chosen_on_a_validation_split_and_set_ones_are_kept(training_data):
    from tastemaker.recipes.sims import DISCOUNT_CANDIDATES, ITEM_CAP_CANDIDATES

    sims = get_recipe("aws-sims")
    chosen = sims.fit(training_data, {})
    cap = chosen.params["max_item_interaction_count_percentile"]
    discount = chosen.params["popularity_discount_factor"]
    assert cap in ITEM_CAP_CANDIDATES and discount in DISCOUNT_CANDIDATES
    explicit = sims.fit(training_data, {"max_item_interaction_count_percentile": str(cap),
                                        "popularity_discount_factor": str(discount)})
    np.testing.assert_array_equal(chosen.arrays["sim_data"], explicit.arrays["sim_data"])
    kept = sims.fit(training_data, {"max_item_interaction_count_percentile": "0.7",
                                    "popularity_discount_factor": "0.95"})
    assert kept.params["max_item_interaction_count_percentile"] == 0.7
    assert kept.params["popularity_discount_factor"] == 0.95
    only_cap = sims.fit(training_data, {"popularity_discount_factor": "0.95"})
    assert only_cap.params["popularity_discount_factor"] == 0.95
    assert only_cap.params["max_item_interaction_count_percentile"] in ITEM_CAP_CANDIDATES


def test_too_few_validation_users_keep_the_defaults():
    data = popular_item_data()  # 400 users: 40 held out, enough to choose
    few = data.subset_users(np.arange(data.n_users) < 150)  # 15 held-out queries: too few
    params = get_recipe("aws-sims").fit(few, {}).params
    assert params["max_item_interaction_count_percentile"] == 0.99
    assert params["popularity_discount_factor"] == 0.5
