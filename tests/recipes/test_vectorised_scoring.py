"""The vectorised scoring of aws-user-personalization and the batch top k equal their per-row formulations."""

from __future__ import annotations

import numpy as np
import pytest

from tastemaker.recipes import get_recipe, kernels
from tastemaker.recipes.collaborative import LAST_EVENTS_FOR_TRANSITIONS, TRANSITION_WEIGHT
from tastemaker.recipes.common import history_matrix, unit_max
from tastemaker.recipes.user_personalization import CollaborativeModel, fit_collaborative
from tastemaker.serving.batch import top_with_softmax
from tastemaker.serving.topk import softmax_scores, top_k


def per_row_scores(model: CollaborativeModel, histories: list[np.ndarray]) -> np.ndarray:
    """score_histories as it was written before vectorising: dense short term, unit_max, a loop per row."""
    decay = float(model.settings["decay"])
    long_term = model._affinity(history_matrix(histories, model.n_items, decay))
    last = [h[-LAST_EVENTS_FOR_TRANSITIONS:] for h in histories]
    short_term = (history_matrix(last, model.n_items, decay) @ model.transitions).toarray()
    scores = unit_max(long_term) + np.float32(TRANSITION_WEIGHT) * unit_max(short_term)
    if model.settings.get("trend_weight", 0.0):
        scores += np.float32(model.settings["trend_weight"]) * np.asarray(model.arrays["recent_popularity"])
    empty = np.array([len(h) == 0 for h in histories], dtype=bool)
    if empty.any():
        scores[empty] = np.asarray(model.arrays["cold_scores"])
    if model.settings.get("demote_history"):
        for row, history in enumerate(histories):
            if len(history):
                scores[row, history] -= np.float32(8.0)
    return scores.astype(np.float32)


@pytest.mark.parametrize("engine", ["ease", "als"])
def test_score_histories_equals_the_per_row_formulation(training_data, engine: str) -> None:
    recipe = get_recipe("aws-user-personalization")
    typed = recipe.validate_hyperparameters({"hidden_dimension": "32"})
    model = fit_collaborative(recipe, training_data, typed, seed=0, progress=None, should_stop=None, engine=engine)
    rng = np.random.default_rng(3)
    for trial, (demote, trend) in enumerate([(False, 0.0), (True, 0.05), (True, 0.0), (False, 0.05)]):
        model.settings.update(demote_history=demote, trend_weight=trend)
        model.__dict__.pop("_trend_vector", None)
        users = rng.integers(-1, model.n_users, 64)
        given = [rng.integers(0, model.n_items, int(rng.integers(0, 12))).astype(np.int32) for _ in users]
        given[0] = np.zeros(0, np.int32)  # an unknown user with no history: cold start
        users[0] = -1
        given[1] = np.array([5, 5, 9, 5], np.int32)  # repeats
        histories = model.merged_histories(users, given)
        got = model.score_histories(histories)
        expected = per_row_scores(model, histories)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.array_equal(got, expected), (engine, trial, np.abs(got - expected).max())


def test_top_k_rows_equals_top_k_and_flags_boundary_ties() -> None:
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(30, 3000))
        k = int(rng.integers(1, min(n - 1, 40)))
        rows = rng.standard_normal((8, n)).astype(np.float32)
        if trial % 3 == 0:
            rows = np.round(rows, 1)  # many ties, some at the boundary
        if trial % 4 == 0:
            rows[:2] = 0
            rows[:2, :3] = 1  # fewer distinct scores than k
        picked, tied = kernels.top_k_rows(rows, k)
        for r, row in enumerate(rows):
            ordered = np.sort(row)[::-1]
            assert tied[r] == (ordered[k - 1] == ordered[k])
            if not tied[r]:
                assert np.array_equal(picked[r], top_k(row, k)), (trial, r)


def test_batch_top_with_softmax_equals_serving_on_small_rows() -> None:
    rng = np.random.default_rng(2)
    rows = np.round(rng.standard_normal((20, 500)), 1).astype(np.float32)
    picked, values = top_with_softmax(rows.copy(), 25)
    for r, row in enumerate(rows):
        expected = top_k(row, 25)
        assert np.array_equal(picked[r], expected)
        assert np.allclose(values[r], softmax_scores(row, None, expected), rtol=1e-12, atol=0)
    picked, values = top_with_softmax(rows[:, :10].copy(), 25)  # fewer items than numResults: all, ranked
    assert picked.shape == (20, 10)
    assert all(np.array_equal(picked[r], top_k(rows[r, :10], 25)) for r in range(20))


def test_batch_blocks_are_the_same_for_either_chunk_size() -> None:
    """A line's block (which sets its scores' last bits) depends on the file, not on how it was chunked: the
    blocks of a SPARK_CHUNK-line chunk are those of its CHUNK-line chunks, each cut `step` at a time."""
    from tastemaker.serving.batch import CHUNK, SPARK_CHUNK, score_blocks

    assert SPARK_CHUNK % CHUNK == 0
    rng = np.random.default_rng(3)
    lines = np.flatnonzero(rng.random(5 * CHUNK + 300) < 0.9).tolist()  # the plain lines of a chunk
    step = 174
    big = score_blocks(lines, step)
    small: list[tuple[int, int]] = []
    for window in range(0, lines[-1] + 1, CHUNK):
        first = int(np.searchsorted(lines, window))
        part = [line - window for line in lines if window <= line < window + CHUNK]
        small += [(first + a, first + b) for a, b in score_blocks(part, step)]
    assert big == small
    assert all(b - a <= step for a, b in big) and big[0][0] == 0 and big[-1][1] == len(lines)
    assert all(lines[a] // CHUNK == lines[b - 1] // CHUNK for a, b in big)
    assert score_blocks(list(range(10)), 4) == [(0, 4), (4, 8), (8, 10)]
