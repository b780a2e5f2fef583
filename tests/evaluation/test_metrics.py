"""Personalize's metric definitions, checked against the documented examples and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tastemaker.evaluation.metrics import (
    coverage,
    hit_rate_at_k,
    mean_reciprocal_rank,
    ndcg_at_k,
    ndcg_per_query,
    paired_ratio_interval,
    personalize_metrics,
    precision_at_k,
    segment_metrics,
    top_k,
)


def test_ndcg_documentation_example_hits_at_2_and_5():
    recommended = np.array([[10, 1, 11, 12, 2, 13, 14, 15, 16, 17]])
    assert ndcg_at_k(recommended, [np.array([1, 2])], 10) == pytest.approx(0.6241, abs=1e-4)
    expected = (1 / math.log(3) + 1 / math.log(6)) / (1 / math.log(2) + 1 / math.log(3))
    assert ndcg_at_k(recommended, [np.array([1, 2])], 5) == pytest.approx(expected)


def test_ndcg_only_counts_the_top_k():
    recommended = np.array([[10, 11, 12, 13, 14, 1]])
    assert ndcg_at_k(recommended, [np.array([1])], 5) == 0.0
    assert ndcg_at_k(np.array([[1, 2, 3]]), [np.array([1])], 5) == 1.0


def test_event_weighted_ndcg_uses_weights_as_gains():
    recommended = np.array([[1, 2, 3]])
    # The heavier item (weight 3) is second: DCG = 1 + 3/log2(3); ideal = 3 + 1/log2(3).
    value = ndcg_at_k(recommended, [np.array([1, 2])], 3, truth_weights=[np.array([1.0, 3.0])])
    assert value == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))


def test_precision_mrr_hit_rate_and_coverage():
    recommended = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    truths = [np.array([2, 5]), np.array([42])]
    assert precision_at_k(recommended, truths, 5) == pytest.approx((2 / 5 + 0) / 2)
    assert mean_reciprocal_rank(recommended, truths, 5) == pytest.approx((1 / 2 + 0) / 2)
    assert hit_rate_at_k(recommended, truths, 5) == 0.5
    assert coverage(recommended, 20) == 0.5


def test_personalize_metric_keys():
    recommended = np.tile(np.arange(25), (3, 1))
    truths = [np.array([0]), np.array([30]), np.array([3, 4])]
    metrics = personalize_metrics(recommended, truths, 100)
    assert set(metrics) == {
        "coverage", "mean_reciprocal_rank_at_25",
        "normalized_discounted_cumulative_gain_at_5", "normalized_discounted_cumulative_gain_at_10",
        "normalized_discounted_cumulative_gain_at_25", "precision_at_5", "precision_at_10", "precision_at_25",
    }
    weighted = personalize_metrics(recommended, truths, 100, [np.ones(1), np.ones(1), np.ones(2)])
    assert weighted["normalized_discounted_cumulative_gain_with_event_weights_at_10"] == pytest.approx(
        weighted["normalized_discounted_cumulative_gain_at_10"])


def test_top_k_orders_and_excludes():
    scores = np.array([[0.1, 0.9, 0.5, 0.7]], dtype=np.float32)
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]
    assert top_k(scores, 2, [np.array([1])]).tolist() == [[3, 2]]


def test_segment_hit_and_recall_use_the_top_one_percent_of_users():
    ranked = np.array([[5, 9, 1], [2, 3, 4]])  # 300 users -> K = 3
    metrics = segment_metrics(ranked, [np.array([5, 1, 7, 8]), np.array([0])], n_users=300)
    assert metrics["hit"] == pytest.approx((2 + 0) / 2)
    assert metrics["recall"] == pytest.approx((2 / 4 + 0) / 2)


def test_ndcg_per_query_is_what_ndcg_at_k_averages():
    recommended = np.array([[10, 1, 11, 12, 2], [3, 4, 5, 6, 7], [9, 8, 7, 6, 5]])
    truths = [np.array([1, 2]), np.array([3]), np.array([42])]
    per_query = ndcg_per_query(recommended, truths, 5)
    assert per_query[1] == 1.0 and per_query[2] == 0.0
    assert per_query[0] == pytest.approx(ndcg_at_k(recommended[:1], truths[:1], 5))
    assert per_query.mean() == pytest.approx(ndcg_at_k(recommended, truths, 5))


def test_paired_ratio_interval_tells_a_real_lead_from_the_draw():
    rng = np.random.default_rng(3)
    reference = rng.random(400)
    ratio, low, high = paired_ratio_interval(reference * 1.2, reference)  # 20% better on every query
    assert ratio == pytest.approx(1.2) and low == pytest.approx(1.2) and high == pytest.approx(1.2)
    noise = rng.random(400)  # as good on average, but not query by query: the interval straddles 1
    ratio, low, high = paired_ratio_interval(noise, reference)
    assert low < 1.0 < high and low < ratio < high
    small_lead, _, _ = paired_ratio_interval(reference[:60] + 0.01, reference[:60])
    assert small_lead > 1.0
    with pytest.raises(ValueError, match="same non-empty queries"):
        paired_ratio_interval(reference[:3], reference[:4])
