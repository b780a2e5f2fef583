"""PERSONALIZED_RANKING evaluation lists: the truth plus unseen items, seeded, never the query's history."""

from __future__ import annotations

import numpy as np

from tastemaker.evaluation.evaluate import RANKING_LIST_SIZE, ranking_lists
from tastemaker.evaluation.splits import Split


def split(n_items: int) -> Split:
    rng = np.random.default_rng(3)
    inputs = [rng.choice(n_items, size=30, replace=False).astype(np.int32) for _ in range(40)]
    truths = [np.setdiff1d(rng.choice(n_items, size=5, replace=False), h).astype(np.int32) for h in inputs]
    return Split(train=None, query_users=np.arange(40), inputs=inputs, truths=truths,  # type: ignore[arg-type]
                 truth_weights=[np.ones(len(t), np.float32) for t in truths])


def test_lists_hold_the_truth_and_unseen_items_only() -> None:
    s = split(1000)
    lists = ranking_lists(s, 1000, seed=0)
    for items, inputs, truth in zip(lists, s.inputs, s.truths, strict=True):
        assert len(items) == RANKING_LIST_SIZE == len(set(items.tolist()))
        assert set(truth.tolist()) <= set(items.tolist())
        assert not set(items.tolist()) & (set(inputs.tolist()) - set(truth.tolist()))
    again = ranking_lists(s, 1000, seed=0)
    assert all((a == b).all() for a, b in zip(lists, again, strict=True))


def test_small_catalogues_give_every_unseen_item() -> None:
    s = split(60)  # 60 items, 30 seen: fewer than RANKING_LIST_SIZE candidates exist
    for items, inputs in zip(ranking_lists(s, 60, seed=1), s.inputs, strict=True):
        assert sorted(items.tolist()) == sorted(set(range(60)) - set(inputs.tolist()))
