"""aws-user-personalization-v2 / aws-personalized-ranking-v2: the SASRec transformer learns item order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.evaluation.metrics import hit_rate_at_k, top_k
from tastemaker.recipes import TrainingStopped, load_model
from tastemaker.recipes.sasrec import (
    TORCH_MISSING_MESSAGE,
    PersonalizedRankingV2,
    UserPersonalizationV2,
    torch_available,
    torch_missing_message,
)
from tastemaker.recipes.sasrec_net import NetConfig, encode_histories, torch_forward_last
from tastemaker.recipes.sasrec_train import train_network
from tastemaker.recipes.training_data import TrainingConfig, TrainingData

pytestmark = pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed (pip install 'tastemaker[torch]')")

N_ITEMS = 60
# A tiny network and few epochs: enough to learn a chain over 60 items in a few seconds.
FAST = {"hidden_dimension": "32", "num_blocks": "1", "max_sequence_length": "20", "training_epochs": "15",
        "learning_rate": "0.005", "dropout": "0.1", "batch_size": "32", "negative_samples": "0"}


def successor(item: int) -> int:
    """The chain users mostly follow: a fixed permutation of the catalogue."""
    return (item * 7 + 3) % N_ITEMS


def chain_data(n_users: int = 300, seed: int = 3) -> TrainingData:
    """Users walk the chain (85% of steps) from random starts; item popularity is nearly flat."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(n_users):
        item = int(rng.integers(N_ITEMS))
        t = 1_700_000_000 + int(rng.integers(0, 10_000))
        for _ in range(int(rng.integers(8, 20))):
            users.append(f"u{user}")
            items.append(f"i{item}")
            times.append(t)
            t += int(rng.integers(10, 100))
            item = successor(item) if rng.random() < 0.85 else int(rng.integers(N_ITEMS))
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    return TrainingData.from_tables(table, None, None, TrainingConfig())


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return chain_data()


@pytest.fixture(scope="module")
def model(data):
    return UserPersonalizationV2().fit(data, FAST, seed=0)


def item_index(data: TrainingData, item: int) -> int:
    return int(np.nonzero(data.item_ids == f"i{item}")[0][0])


def test_learns_the_next_item_far_better_than_popularity(data, model):
    offsets = data.user_offsets()
    histories = [data.items[offsets[u]:offsets[u + 1] - 1] for u in range(data.n_users)]
    truths = [data.items[offsets[u + 1] - 1:offsets[u + 1]] for u in range(data.n_users)]
    scores = model.score_users(np.full(data.n_users, -1, dtype=np.int64), histories)
    hr_model = hit_rate_at_k(top_k(scores, 10), truths, 10)
    hr_popularity = hit_rate_at_k(top_k(model.popularity_scores(data.n_users), 10), truths, 10)
    assert hr_model > 0.7
    assert hr_model > 2 * hr_popularity


def test_a_fresh_event_changes_the_recommendation_at_once(data, model):
    for start in (5, 17, 42):
        top = model.score_users(np.array([-1]), [np.array([item_index(data, start)])])[0].argmax()
        assert data.item_ids[top] == f"i{successor(start)}"


def test_known_user_without_request_history_uses_their_training_history(data, model):
    offsets = data.user_offsets()
    user = 4
    history = data.items[offsets[user]:offsets[user + 1]]
    from_request = model.score_users(np.array([user]), [history])
    from_model = model.score_users(np.array([user]), [np.zeros(0, np.int32)])
    np.testing.assert_allclose(from_model, from_request, rtol=1e-5, atol=1e-5)


def test_unknown_user_without_history_gets_the_popular_items(data, model):
    scores = model.score_users(np.array([-1, -1]), [np.zeros(0, np.int32), np.array([-1, N_ITEMS + 5])])
    assert scores.shape == (2, data.n_items) and scores.dtype == np.float32
    counts = data.unique_user_counts()
    assert np.corrcoef(scores[0], counts)[0, 1] > 0.8  # distinct users per item (recency-weighted)
    np.testing.assert_array_equal(scores[0], scores[1])  # unknown item indices carry no signal


def test_save_and_load_give_identical_scores_without_pickle(data, model, tmp_path):
    model.save(tmp_path / "m")
    assert {p.suffix for p in (tmp_path / "m").iterdir()} <= {".npy", ".json"}
    for path in (tmp_path / "m").glob("*.npy"):
        np.load(path, allow_pickle=False)  # fails if anything was pickled
    offsets = data.user_offsets()
    histories = [data.items[offsets[u]:offsets[u + 1]] for u in range(20)]
    users = np.arange(20, dtype=np.int64)
    for mmap in (True, False):
        loaded = load_model(tmp_path / "m", mmap=mmap)
        assert loaded.recipe_name == "aws-user-personalization-v2"
        np.testing.assert_array_equal(loaded.score_users(users, histories), model.score_users(users, histories))


def test_numpy_inference_matches_the_torch_network():
    cfg = NetConfig(hidden_dimension=16, num_blocks=2, num_heads=2, max_sequence_length=8, epochs=1, batch_size=4)
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 12, size=int(n)).astype(np.int32) for n in rng.integers(2, 15, size=10)]
    weights = train_network(sequences, 12, cfg, seed=1).weights
    histories = [s[:-1] for s in sequences]  # various lengths, some longer than max_sequence_length
    np.testing.assert_allclose(encode_histories(weights, cfg, histories), torch_forward_last(weights, cfg, histories),
                               rtol=1e-4, atol=1e-4)


def test_sampled_softmax_also_learns_the_chain(data):
    params = {**FAST, "negative_samples": "16"}  # fewer negatives than items: sampled softmax
    model = UserPersonalizationV2().fit(data, params, seed=0)
    hits = [model.score_users(np.array([-1]), [np.array([item_index(data, s)])])[0].argmax() for s in range(10)]
    assert sum(data.item_ids[h] == f"i{successor(s)}" for s, h in enumerate(hits)) >= 7


def test_stop_request_is_honoured_between_epochs(data):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(TrainingStopped):
        UserPersonalizationV2().fit(data, {**FAST, "training_epochs": "50"}, should_stop=should_stop)
    assert len(calls) == 3


def test_progress_is_reported_per_epoch(data):
    seen: list[float] = []
    UserPersonalizationV2().fit(data, {**FAST, "training_epochs": "3"}, progress=seen.append)
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_hyperparameters_follow_aws_and_are_validated(data):
    recipe = PersonalizedRankingV2()
    assert recipe.recipe_type == "PERSONALIZED_RANKING"
    bias = next(hp for hp in recipe.hyperparameters if hp.name == "apply_recency_bias")
    assert (bias.default, bias.tunable, bias.kind) == ("true", False, "categorical")
    with pytest.raises(InvalidInputException, match="hidden_dimension .* multiple of num_heads"):
        recipe.fit(data, {**FAST, "hidden_dimension": "30", "num_heads": "4"})
    with pytest.raises(InvalidInputException, match="learning_rate must be between"):
        recipe.fit(data, {"learning_rate": "5"})


def test_recency_bias_favours_recent_items_for_new_users():
    # Items 0-9 were popular long ago, items 10-19 recently (with fewer users): the cold list differs.
    users, items, times = [], [], []
    for user in range(60):
        old = user < 40
        for k in range(20):
            users.append(f"u{user}")
            items.append(f"i{(k % 10) + (0 if old else 10)}")
            times.append((0 if old else 10_000_000) + k)
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    data = TrainingData.from_tables(table, None, None, TrainingConfig())
    small = {**FAST, "training_epochs": "1"}
    empty = [np.zeros(0, np.int32)]
    biased = UserPersonalizationV2().fit(data, small).score_users(np.array([-1]), empty)[0]
    plain = UserPersonalizationV2().fit(data, {**small, "apply_recency_bias": "false"}).score_users(
        np.array([-1]), empty)[0]
    recent = np.array([item_index(data, i) for i in range(10, 20)])
    assert set(np.argsort(-biased)[:10]) == set(recent)
    assert not set(np.argsort(-plain)[:10]) & set(recent)


def test_missing_torch_message_says_how_to_install():
    assert "pip install 'tastemaker[torch]'" in TORCH_MISSING_MESSAGE
    assert "torch==2.13.0" in TORCH_MISSING_MESSAGE
    assert torch_missing_message("aws-personalized-ranking-v2").startswith("Recipe aws-personalized-ranking-v2 ")


def test_hpo_refuses_to_tune_apply_recency_bias():
    from tastemaker.recipes.hpo import search_space

    ranges = {"categoricalHyperParameterRanges": [{"name": "apply_recency_bias", "values": ["true", "false"]}]}
    with pytest.raises(InvalidInputException, match="apply_recency_bias of recipe aws-user-personalization-v2 is not"):
        search_space(UserPersonalizationV2(), ranges)
    default_space = {d.name for d in search_space(UserPersonalizationV2(), None)}
    assert default_space == {"hidden_dimension", "num_blocks", "training_epochs", "learning_rate", "dropout",
                             "future_target_rate"}
