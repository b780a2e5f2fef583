"""Splits: Personalize's held-out users (90/10 by user, then 90/10 by time), segments, leave-last-out."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tastemaker.evaluation.splits import leave_last_out_split, personalize_split, segmentation_split
from tastemaker.recipes.training_data import TrainingConfig, TrainingData


def data(n_users: int = 200, per_user: int = 20, shuffle_seed: int | None = None) -> TrainingData:
    users = np.repeat([f"user-{u}" for u in range(n_users)], per_user)
    items = np.tile([f"item-{i}" for i in range(per_user)], n_users)
    times = np.tile(np.arange(per_user) * 10, n_users) + 1_000
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    if shuffle_seed is not None:
        table = table.take(np.random.default_rng(shuffle_seed).permutation(table.num_rows))
    return TrainingData.from_tables(table, None, None, TrainingConfig(), check_minimum=False)


def test_ten_percent_of_users_are_held_out_with_newest_ten_percent_as_truth():
    d = data()
    split = personalize_split(d, seed=3)
    assert len(split.query_users) == 20
    assert not np.isin(split.query_users, split.train.users).any()
    assert split.train.n_interactions == 180 * 20
    for inputs, truth in zip(split.inputs, split.truths, strict=True):
        assert len(inputs) == 18 and len(truth) == 2
        # Items are consumed in index order, so the newest events are the last two items.
        assert sorted(d.item_ids[truth].tolist()) == ["item-18", "item-19"]


def test_split_is_deterministic_for_dataset_and_seed_whatever_the_row_order():
    a, b = data(), data(shuffle_seed=1)
    held_a = sorted(a.user_ids[personalize_split(a, seed=0).query_users])
    held_b = sorted(b.user_ids[personalize_split(b, seed=0).query_users])
    assert held_a == held_b
    assert held_a != sorted(a.user_ids[personalize_split(a, seed=1).query_users])


def test_short_history_still_has_one_truth_item():
    split = personalize_split(data(per_user=3))
    assert all(len(t) == 1 for t in split.truths)
    assert all(len(i) == 2 for i in split.inputs)


def test_leave_last_out_holds_each_users_last_event():
    d = data(n_users=30, per_user=5)
    split = leave_last_out_split(d)
    assert len(split.truths) == 30
    assert split.train.n_interactions == 30 * 4
    assert {d.item_ids[t[0]] for t in split.truths} == {"item-4"}


def test_segmentation_split_tests_the_newest_fifth_of_each_user():
    d = data(n_users=10, per_user=10)
    split = segmentation_split(d)
    assert split.train.n_interactions == 80
    assert sorted(d.item_ids[split.test_items].tolist()) == ["item-8", "item-9"]
    assert all(len(users) == 10 for users in split.test_users)


def test_queries_are_capped_but_every_held_out_user_stays_out_of_training():
    d = data(n_users=400)
    full = personalize_split(d, seed=2)
    capped = personalize_split(d, seed=2, max_queries=15)
    assert len(full.query_users) == 40 and len(capped.query_users) == 15
    # The capped queries are held-out users, and the model trains on the same 90% of users either way.
    assert set(capped.query_users.tolist()) < set(full.query_users.tolist())
    assert capped.train.n_interactions == full.train.n_interactions == 360 * 20
    assert not np.isin(full.query_users, capped.train.users).any()
    assert personalize_split(d, seed=2, max_queries=15).query_users.tolist() == capped.query_users.tolist()
