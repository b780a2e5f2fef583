"""The compiled serving kernels agree with the plain numpy / scipy formulation they replace."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastemaker.recipes import kernels
from tastemaker.recipes.collaborative import regularized_gram


def test_fold_in_solves_the_weighted_least_squares() -> None:
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((50, 8)).astype(np.float32)
    gram = regularized_gram(factors).astype(np.float64)
    history = np.array([3, 7, 3, 11, 49, 60, -1], dtype=np.int64)  # repeats and out-of-range rows
    decay, alpha = 0.8, 5.0
    valid = history[(history >= 0) & (history < 50)]
    weights = np.zeros(50)
    np.add.at(weights, valid, decay ** np.arange(valid.size - 1, -1, -1))
    confidence = 1.0 + alpha * weights
    y = factors.astype(np.float64)
    expected = np.linalg.solve(gram + (y.T * (confidence - 1.0)) @ y, y.T @ (confidence * (weights > 0)))
    got = kernels.fold_in(factors, np.linalg.inv(gram), history, decay, alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not kernels.fold_in(factors, np.linalg.inv(gram), np.zeros(0, np.int64), decay, alpha).any()


def test_short_term_is_the_decayed_transition_row_scaled_to_its_peak() -> None:
    rng = np.random.default_rng(1)
    dense = (rng.random((30, 30)) < 0.2) * rng.random((30, 30))
    matrix = sp.csr_matrix(dense.astype(np.float32))
    history = np.array([4, 9, 4, 17], dtype=np.int64)
    decay, last, weight = 0.7, 3, 0.4
    row = np.zeros(30)
    for k, item in enumerate(history[-last:]):
        row += decay ** (last - 1 - k) * dense[item].astype(np.float32)
    expected = row * (weight / np.abs(row).max())
    items, values = kernels.short_term(matrix.indptr, matrix.indices, matrix.data, history, last, decay, weight)
    assert items.tolist() == np.flatnonzero(row).tolist()
    np.testing.assert_allclose(values, expected[items], rtol=1e-5)


def test_merge_sources_marks_items_found_only_in_the_sample() -> None:
    as_int = lambda *v: np.array(v, dtype=np.int64)
    items, only_sample = kernels.merge_sources(as_int(9, 2), as_int(2, 5), as_int(7), as_int(), as_int(5, 8, 1))
    assert items.tolist() == [1, 2, 5, 7, 8, 9]
    assert only_sample.tolist() == [True, False, False, False, True, False]


def test_score_items_matches_the_dense_formula() -> None:
    rng = np.random.default_rng(2)
    factors = rng.standard_normal((40, 6)).astype(np.float32)
    vector = rng.standard_normal(6).astype(np.float32)
    items = np.array([1, 4, 8, 20, 33], dtype=np.int64)
    reached, values = np.array([4, 9, 33], dtype=np.int64), np.array([0.3, 0.2, -0.1], dtype=np.float32)
    popularity = rng.random(40).astype(np.float32)
    history = np.array([8, 8, 1], dtype=np.int64)
    scores, scale = kernels.score_items(factors, vector, items, -1.0, reached, values, 0.05, popularity,
                                        history, True)
    long_term = factors[items] @ vector
    expected = long_term / np.abs(long_term).max() + 0.05 * popularity[items]
    expected[[1, 4]] += [0.3, -0.1]
    expected[[0, 2]] -= 8.0
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert scale == pytest.approx(float(np.abs(long_term).max()), rel=1e-6)
    fixed, same = kernels.score_items(factors, vector, items, 2.0, reached, values, 0.0, popularity, history, False)
    assert same == 2.0
    np.testing.assert_allclose(fixed[2], long_term[2] / 2.0, rtol=1e-5)


def test_scores_at_agrees_with_score_items_inside_and_outside_the_candidates() -> None:
    rng = np.random.default_rng(3)
    factors = rng.standard_normal((60, 6)).astype(np.float32)
    vector = rng.standard_normal(6).astype(np.float32)
    popularity = rng.random(60).astype(np.float32)
    history = np.array([5, 9, 5], dtype=np.int64)
    reached, values = np.array([2, 9, 40], dtype=np.int64), np.array([0.2, 0.1, 0.3], dtype=np.float32)
    candidates = np.array([2, 5, 9, 17], dtype=np.int64)
    scores, scale = kernels.score_items(factors, vector, candidates, -1.0, reached, values, 0.05, popularity,
                                        history, True)
    everything = np.arange(60, dtype=np.int64)
    full, _ = kernels.score_items(factors, vector, everything, scale, reached, values, 0.05, popularity, history,
                                  True)
    asked = np.array([17, 40, 5, 33], dtype=np.int64)  # two candidates, two outside (one reached by transitions)
    got = kernels.scores_at(candidates, scores, asked, factors, vector, scale, reached, values, 0.05, popularity,
                            history, True)
    np.testing.assert_allclose(got, full[asked], rtol=1e-6, atol=1e-6)


def test_the_fused_request_kernels_give_what_the_separate_kernels_give() -> None:
    rng = np.random.default_rng(5)
    factors = rng.standard_normal((40, 6)).astype(np.float32)
    gram_inverse = np.linalg.inv(regularized_gram(factors).astype(np.float64))
    matrix = sp.csr_matrix(((rng.random((40, 40)) < 0.15) * rng.random((40, 40))).astype(np.float32))
    recent = rng.random(40).astype(np.float32)
    history = np.array([3, 8, 3, 21], dtype=np.int64)
    vector, reached, values = kernels.user_state(factors, gram_inverse, matrix.indptr, matrix.indices, matrix.data,
                                                 history, 3, 0.8, 5.0, 0.5)
    np.testing.assert_array_equal(vector, kernels.fold_in(factors, gram_inverse, history, 0.8, 5.0))
    expected_reached, expected_values = kernels.short_term(matrix.indptr, matrix.indices, matrix.data, history, 3,
                                                           0.8, 0.5)
    np.testing.assert_array_equal(reached, expected_reached)
    np.testing.assert_array_equal(values, expected_values)
    found, head, sample = (np.array(v, dtype=np.int64) for v in ([30, 2, 9], [2, 5], [9, 39, 11]))
    items, only_sample, scores, top = kernels.merge_and_score(found, head, history, reached, values, sample,
                                                              factors, vector, 0.1, recent, True)
    merged, flags = kernels.merge_sources(found, head, history, reached, sample)
    expected_scores, expected_top = kernels.score_items(factors, vector, merged, -1.0, reached, values, 0.1, recent,
                                                        history, True)
    assert items.tolist() == merged.tolist() and only_sample.tolist() == flags.tolist()
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
    assert top == pytest.approx(expected_top)
