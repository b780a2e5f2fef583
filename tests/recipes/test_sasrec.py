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
        "learning_rate": "0.005", "dropout": "0.1", "batch_size": "32", "negative_samples": "0",
        "early_stopping_patience": "0"}


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


def test_streamed_events_of_a_known_user_follow_their_stored_history(data, model):
    offsets = data.user_offsets()
    user = 4
    stored = data.items[offsets[user]:offsets[user + 1]]
    streamed = np.array([item_index(data, 5), item_index(data, 17)], np.int32)
    as_known = model.score_users(np.array([user]), [streamed])
    # The same as folding the whole sequence in for an unknown user: the stored history is not dropped.
    np.testing.assert_allclose(as_known, model.score_users(np.array([-1]), [np.concatenate([stored, streamed])]),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(as_known, model.score_users(np.array([-1]), [streamed]), atol=1e-3)


def first_views_only(data: TrainingData) -> TrainingData:
    """The data with each user's repeats of an item dropped: a domain without re-consumption."""
    pair = data.users.astype(np.int64) * data.n_items + data.items
    keep = np.zeros(data.n_interactions, dtype=bool)
    keep[np.unique(pair, return_index=True)[1]] = True
    return data.subset_events(keep)


@pytest.fixture(scope="module")
def no_repeats(data):
    once = first_views_only(data)
    return once, UserPersonalizationV2().fit(once, {**FAST, "training_epochs": "5"}, seed=0)


def test_history_goes_below_every_other_item_where_the_domain_does_not_reconsume(data, model, no_repeats):
    once, demoting = no_repeats
    offsets = once.user_offsets()
    users = np.array([-1, 3, 7], dtype=np.int64)
    histories = [once.items[offsets[2]:offsets[3]], np.zeros(0, np.int32), np.array([item_index(data, 9)], np.int32)]
    scores = demoting.score_users(users, histories)
    plain = with_own_settings(demoting)
    plain.settings["demote_history"] = False
    plain.after_load()
    raw = plain.score_users(users, histories)
    for row, seen in enumerate([histories[0], once.items[offsets[3]:offsets[4]],
                                np.concatenate([once.items[offsets[7]:offsets[8]], histories[2]])]):
        others = np.setdiff1d(np.arange(once.n_items), seen)
        assert scores[row, seen].max() < scores[row, others].min()  # a list without filters skips what they have
        np.testing.assert_array_equal(np.argsort(-scores[row, seen], kind="stable"),
                                      np.argsort(-raw[row, seen], kind="stable"))  # their own order is kept
        np.testing.assert_array_equal(scores[row, others], raw[row, others])  # the rest untouched
    assert demoting.settings["demote_history"] and not model.settings["demote_history"]  # chain data repeats


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


class MemoryCheckpoints:
    """Checkpoints in a dict (the jobs side keeps them in the blob store)."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}
        self.saves = 0

    def load(self, name: str) -> bytes | None:
        return self.saved.get(name)

    def save(self, name: str, data: bytes) -> None:
        self.saved[name] = data
        self.saves += 1


def test_a_fit_stopped_midway_resumes_from_its_checkpoint_bit_for_bit(data):
    params = {**FAST, "training_epochs": "6", "early_stopping_patience": "4"}
    straight = UserPersonalizationV2().fit(data, params, seed=5)
    store, checks = MemoryCheckpoints(), []

    def crash_after_three_epochs() -> bool:
        checks.append(1)
        return len(checks) > 3

    with pytest.raises(TrainingStopped):
        UserPersonalizationV2().fit(data, params, seed=5, should_stop=crash_after_three_epochs, checkpoints=store)
    assert store.saves == 3
    resumed = UserPersonalizationV2().fit(data, params, seed=5, checkpoints=store)
    assert resumed.settings["training"]["resumed_from_epoch"] == 3
    assert straight.settings["training"]["resumed_from_epoch"] == 0
    assert resumed.settings["training"]["epochs_run"] == straight.settings["training"]["epochs_run"] == 6
    histories = [np.array([item_index(data, s), item_index(data, successor(s))]) for s in range(20)]
    users = np.full(20, -1)
    assert np.array_equal(straight.score_users(users, histories), resumed.score_users(users, histories))


def test_a_checkpoint_of_other_inputs_is_not_resumed(data):
    store = MemoryCheckpoints()
    UserPersonalizationV2().fit(data, {**FAST, "training_epochs": "2"}, seed=1, checkpoints=store)
    other = UserPersonalizationV2().fit(data, {**FAST, "training_epochs": "3"}, seed=1, checkpoints=store)
    assert other.settings["training"]["resumed_from_epoch"] == 0


def test_same_seed_same_model(data):
    params = {**FAST, "training_epochs": "3"}
    first, second = (UserPersonalizationV2().fit(data, params, seed=2) for _ in range(2))
    assert all(np.array_equal(first.arrays[k], second.arrays[k]) for k in first.arrays)


def test_early_stopping_ends_training_and_keeps_the_best_epoch(data):
    model = UserPersonalizationV2().fit(data, {**FAST, "training_epochs": "60", "early_stopping_patience": "2"})
    run = model.settings["training"]
    assert run["epochs_run"] < 60
    assert run["epochs_run"] == run["best_epoch"] + 2
    assert run["validation_ndcg_at_10"] > 0.5  # the chain is learnable: the kept epoch ranks held-out steps high


def test_validation_holds_out_only_each_chosen_users_newest_training_event():
    from tastemaker.recipes.sasrec_train import carve_validation

    sequences = [np.arange(k, k + 5) for k in range(30)] + [np.array([1, 2])]
    held = carve_validation(sequences, None, np.random.default_rng(0))
    assert held is not None
    assert len(held.targets) == 30  # the 2-event user keeps both events
    for seq, kept in zip(sequences[:30], held.sequences[:30], strict=True):
        assert np.array_equal(kept, seq[:-1])
    assert sorted(held.targets.tolist()) == [s[-1] for s in sequences[:30]]
    assert carve_validation(sequences[:5], None, np.random.default_rng(0)) is None  # too few users: no early stopping


def test_default_sequence_length_and_batch_adapt_to_the_data():
    from tastemaker.recipes.sasrec import net_config

    typed = UserPersonalizationV2().validate_hyperparameters({})
    short = [np.arange(6)] * 900
    long = [np.arange(400)] * 3000
    small, large = net_config(typed, short, 100), net_config(typed, long, 5000)
    assert (small.max_sequence_length, small.batch_size) == (20, 16)
    assert (large.max_sequence_length, large.batch_size) == (200, 46)  # 6,000 windows: 128+ steps an epoch
    assert net_config({**typed, "max_sequence_length": 200}, short, 100).max_sequence_length == 200  # set: kept
    assert small.negative_samples == 0  # full softmax where an epoch is cheap
    assert large.negative_samples == 512  # 1.2M events x 5,000 items: logQ-corrected sampled softmax
    # The epoch budget gives both about 7,200 optimiser steps: 57 steps an epoch -> 127 epochs, 131 -> 55.
    assert (small.epochs, large.epochs) == (127, 55)
    assert net_config({**typed, "training_epochs": 5}, short, 100).epochs == 5  # set: kept
    costly = net_config({**typed, "negative_samples": 4000}, long, 5000)  # 1.2M events x 4,001 logits an epoch
    assert costly.epochs == 10  # capped by the 5e10-logit budget


@pytest.fixture(scope="module")
def weak_mixed(data):
    """One epoch at a tiny learning rate: the transformer has barely learnt the chain; v1 knows it."""
    weak = {**FAST, "training_epochs": "1", "early_stopping_patience": "1", "learning_rate": "0.0001"}
    return UserPersonalizationV2().fit(data, weak, seed=0), weak


def test_v1_is_mixed_in_where_the_validation_slice_says_it_helps(data, weak_mixed, tmp_path):
    from tastemaker.recipes.sasrec_blend import BLEND_WEIGHTS, FORMS, TEMPERATURES

    model, _ = weak_mixed
    run = model.settings["training"]
    by_pair = run["validation_ndcg_by_v1_mixture"]
    # Form and T do not act at w = 0 and w = 1: one entry each, both forms and every T for the weights between.
    assert len(by_pair) == 2 + len(FORMS) * (len(BLEND_WEIGHTS) - 2) * len(TEMPERATURES)
    assert run["v1_weight"] > 0 and run["v1_mixture"] in FORMS
    chosen = f"{run['v1_mixture']} w={run['v1_weight']} T={run['v1_temperature']}"
    assert by_pair[chosen] == max(by_pair.values()) > by_pair[f"linear w=0.0 T={TEMPERATURES[0]}"] + 0.2
    assert any(name.startswith("v1.") for name in model.arrays)  # v1 is part of the artifact
    offsets = data.user_offsets()
    histories = [data.items[offsets[u]:offsets[u + 1] - 1] for u in range(data.n_users)]
    truths = [data.items[offsets[u + 1] - 1:offsets[u + 1]] for u in range(data.n_users)]
    users = np.full(data.n_users, -1, dtype=np.int64)
    blended = model.score_users(users, histories)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").score_users(users, histories), blended)
    alone = load_model(tmp_path / "m")
    alone.settings["training"]["v1_weight"] = 0.0  # the same network served alone
    alone.settings["training"]["v1_mixture_unknown_users"]["weight"] = 0.0  # also to users it does not know
    alone.after_load()
    assert hit_rate_at_k(top_k(blended, 10), truths, 10) > hit_rate_at_k(
        top_k(alone.score_users(users, histories), 10), truths, 10) + 0.2


def test_the_mixture_is_deterministic_under_a_seed(data, weak_mixed):
    model, weak = weak_mixed
    again = UserPersonalizationV2().fit(data, weak, seed=0)
    assert again.arrays.keys() == model.arrays.keys()
    assert all(np.array_equal(again.arrays[k], model.arrays[k]) for k in model.arrays)
    assert again.settings == model.settings


def test_streamed_events_reach_the_v1_part_as_they_reach_v1(data, weak_mixed):
    from tastemaker.recipes.sasrec_blend import Mixture, blended_scores
    from tastemaker.recipes.user_personalization import UserPersonalization

    model, _ = weak_mixed
    v1 = UserPersonalization().fit(data, {}, seed=0)  # the same data and seed as the part inside v2
    run = model.settings["training"]
    alone = with_own_settings(model)
    alone.settings["training"]["v1_weight"] = 0.0
    alone.after_load()
    trained_user = int(np.setdiff1d(np.arange(data.n_users), model.arrays["cold_users"])[0])
    user, streamed = np.array([trained_user]), [np.array([item_index(data, 5), item_index(data, 17)], np.int32)]
    expected = blended_scores(alone.score_users(user, streamed), v1.score_users(user, streamed),
                              Mixture(run["v1_mixture"], run["v1_weight"], run["v1_temperature"]))
    np.testing.assert_allclose(model.score_users(user, streamed), expected, rtol=1e-5, atol=1e-5)
    # The new events move the list: v1 folds them in on top of the user's stored history.
    assert not np.allclose(model.score_users(user, streamed), model.score_users(user, [np.zeros(0, np.int32)]))


def with_own_settings(model):
    """A second model object over the same arrays (its settings changed without touching the fixture's)."""
    import copy

    other = copy.copy(model)
    other.settings = copy.deepcopy(model.settings)
    return other


def test_the_mixture_is_a_probability_mixture_and_its_ends_are_each_model_alone():
    from tastemaker.recipes.sasrec_blend import Mixture, blended_scores

    logits = np.array([[3.0, 1.0, 2.0, 0.0]], np.float32)
    v1 = np.array([[0.0, 1.0, 0.2, 0.1]], np.float32)
    mixed = blended_scores(logits, v1, Mixture("linear", 0.5, 0.05))
    assert np.argsort(-mixed[0]).tolist() == [1, 0, 2, 3]  # v1's sharp favourite first, then the transformer's order
    np.testing.assert_allclose(np.exp(mixed).sum(), 1.0, rtol=1e-5)  # a probability mixture
    for form in ("linear", "product"):
        assert blended_scores(logits, v1, Mixture(form, 0.0, 0.05)) is logits
        assert blended_scores(logits, v1, Mixture(form, 1.0, 0.05)) is v1


def test_the_product_form_ranks_by_what_both_models_rate():
    from tastemaker.recipes.sasrec_blend import Mixture, blended_scores

    # Item 0 is the transformer's sure favourite, item 1 v1's; item 2 is second for both.
    logits = np.array([[4.0, 0.0, 3.0, -1.0]], np.float32)
    v1 = np.array([[0.0, 4.0, 3.0, -1.0]], np.float32)
    assert np.argmax(blended_scores(logits, v1, Mixture("linear", 0.5, 1.0))[0]) in (0, 1)  # either one's favourite
    product = blended_scores(logits, v1, Mixture("product", 0.5, 1.0))[0]
    assert np.argsort(-product).tolist()[0] == 2  # the item both rate highly
    # It ranks as logits + v1 * w / (T (1 - w)).
    rng = np.random.default_rng(0)
    logits, v1 = rng.normal(size=(3, 50)).astype(np.float32), rng.normal(size=(3, 50)).astype(np.float32)
    product = blended_scores(logits, v1, Mixture("product", 0.3, 0.2))
    assert (np.argsort(-product, axis=1) == np.argsort(-(logits + v1 * 0.3 / (0.2 * 0.7)), axis=1)).all()


def test_a_model_saved_before_the_product_form_is_served_with_the_linear_one(data, weak_mixed, tmp_path):
    model, _ = weak_mixed
    old = with_own_settings(model)
    old.settings["training"]["v1_mixture"] = "linear"
    old.after_load()
    legacy = with_own_settings(model)
    del legacy.settings["training"]["v1_mixture"]
    legacy.after_load()
    users, histories = np.array([1, 2]), [np.zeros(0, np.int32)] * 2
    np.testing.assert_array_equal(legacy.score_users(users, histories), old.score_users(users, histories))
    assert model.settings["training"]["v1_mixture"] == "product" and 0 < model.settings["training"]["v1_weight"] < 1
    assert not np.array_equal(legacy.score_users(users, histories), model.score_users(users, histories))


def test_item_metadata_becomes_part_of_the_item_vectors():
    table = chain_data().item_ids
    genres = ["red" if int(i[1:]) % 2 else "blue" for i in table]
    items = pa.table({"ITEM_ID": list(table), "GENRE": genres, "YEAR": pa.array(range(len(table)), pa.int64())})
    interactions = pa.table({"USER_ID": ["u1"] * 3 + ["u2"] * 3, "ITEM_ID": ["i1", "i2", "i3", "i2", "i3", "i4"],
                             "TIMESTAMP": pa.array([1, 2, 3, 4, 5, 6], pa.int64())})
    data = TrainingData.from_tables(interactions, items, None, TrainingConfig(), check_minimum=False)
    small = {**FAST, "training_epochs": "1"}
    with_meta = UserPersonalizationV2().fit(data, small)
    assert with_meta.settings["training"]["item_metadata_features"] == 2 + 10  # 2 genres, 10 year deciles
    without = UserPersonalizationV2().fit(data, {**small, "use_item_metadata": "false"})
    assert without.settings["training"]["item_metadata_features"] == 0
    # Items never interacted with still differ by their metadata.
    table_rows = with_meta.arrays["net.item_embedding"]
    red, blue = [item_index(data, 7), item_index(data, 9)], [item_index(data, 8), item_index(data, 10)]
    assert not np.allclose(table_rows[red[0] + 1], table_rows[blue[0] + 1])


def test_chunked_full_softmax_gives_the_same_loss_and_gradients(monkeypatch):
    import torch

    from tastemaker.recipes import sasrec_train

    generator = torch.Generator().manual_seed(0)
    h0, table0 = torch.randn(50, 8, generator=generator), torch.randn(30, 8, generator=generator)
    y = torch.randint(0, 30, (50,), generator=generator)

    def loss_and_grads() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, table = h0.clone().requires_grad_(), table0.clone().requires_grad_()
        loss = sasrec_train.full_softmax_loss(torch, h, y, table)
        loss.sum().backward()
        return loss.detach(), h.grad, table.grad

    whole = loss_and_grads()
    monkeypatch.setattr(sasrec_train, "FULL_SOFTMAX_CHUNK_LOGITS", 7 * 30)  # chunks of 7 positions
    chunked = loss_and_grads()
    for a, b in zip(whole, chunked, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_mixture_is_chosen_on_history_treated_as_served():
    from tastemaker.recipes.sasrec_blend import Mixture, choose_mixture

    cfg = NetConfig(hidden_dimension=16, num_blocks=1, max_sequence_length=8, epochs=1, batch_size=4)
    rng = np.random.default_rng(0)
    sequences = [rng.permutation(30)[:6].astype(np.int32) for _ in range(20)]
    weights = train_network(sequences, 30, cfg, seed=1).weights
    inputs = [s[:-1] for s in sequences]
    targets = np.array([int(s[0]) for s in sequences])  # every held-out item repeats one the user already has

    def v1_knows(rows: slice) -> np.ndarray:  # a v1 part that puts each user's repeat first
        scores = np.zeros((len(targets[rows]), 30), np.float32)
        scores[np.arange(len(targets[rows])), targets[rows]] = 1.0
        return scores

    _, kept = choose_mixture(weights, cfg, inputs, targets[:, None], v1_knows, demote_history=False)
    assert kept[Mixture("linear", 1.0, 0.02)] == 1.0  # history stays in the ranking where the model serves it so
    chosen, demoted = choose_mixture(weights, cfg, inputs, targets[:, None], v1_knows, demote_history=True)
    assert max(demoted.values()) == 0.0 and chosen.weight == 0.0  # served below 24 other items: never in the top 10


def test_the_mixture_scores_several_truth_items_a_user_as_ndcg_does():
    from tastemaker.recipes.sasrec_blend import Mixture, choose_mixture

    cfg = NetConfig(hidden_dimension=16, num_blocks=1, max_sequence_length=8, epochs=1, batch_size=4)
    rng = np.random.default_rng(0)
    sequences = [rng.permutation(40)[:9].astype(np.int32) for _ in range(12)]
    weights = train_network(sequences, 40, cfg, seed=1).weights
    inputs, truths = [s[:6] for s in sequences], [s[6:] for s in sequences]  # three truth items a user

    def v1_ranks(rows: slice) -> np.ndarray:  # v1 puts two of the three truths first and third, an input second
        scores = np.tile(-1.0 - np.arange(40, dtype=np.float32) / 100, (len(inputs[rows]), 1))
        for row, (given, truth) in enumerate(zip(inputs[rows], truths[rows], strict=True)):
            scores[row, truth] = 3.0, 1.0, -9.0  # the third truth last of all
            scores[row, given[0]] = 2.0
        return scores

    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    _, ndcg = choose_mixture(weights, cfg, inputs, truths, v1_ranks, demote_history=False)
    assert ndcg[Mixture("linear", 1.0, 0.02)] == pytest.approx((1 + 1 / np.log2(4)) / ideal)
    _, demoted = choose_mixture(weights, cfg, inputs, truths, v1_ranks, demote_history=True)
    assert demoted[Mixture("linear", 1.0, 0.02)] == pytest.approx((1 + 1 / np.log2(3)) / ideal)  # the input last


def test_cold_users_are_left_out_of_training_and_split_as_test_users():
    from tastemaker.recipes.sasrec_train import COLD_USERS, carve_validation

    sequences = [np.arange(k, k + 20) for k in range(1000)] + [np.array([1, 2])]
    held = carve_validation(sequences, None, np.random.default_rng(0))
    assert held is not None and held.cold is not None
    cold = held.cold
    assert len(cold.users) == COLD_USERS and not set(cold.users.tolist()) & set(held.users.tolist())
    for user, given, truth in zip(cold.users, cold.inputs, cold.truths, strict=True):
        assert len(held.sequences[user]) == 0  # never trained on
        np.testing.assert_array_equal(given, sequences[user][:18])  # the newest tenth (2 of 20) is the truth
        np.testing.assert_array_equal(truth, sequences[user][18:])
    assert len(held.users) == 1000 - COLD_USERS  # every other user with 3+ events gives up its newest event
    small = carve_validation(sequences[:60], None, np.random.default_rng(0))
    assert small is not None and small.cold is None  # 6 cold users would be too few to choose on


def test_users_the_network_never_trained_on_are_served_with_their_own_mixture(data, weak_mixed):
    from tastemaker.recipes.sasrec_blend import Mixture, blended_scores

    model, _ = weak_mixed
    run = model.settings["training"]
    cold = model.arrays["cold_users"]
    assert run["cold_users"] == len(cold) == 30  # a tenth of the 300 users
    unknown = Mixture(**run["v1_mixture_unknown_users"])
    assert run["cold_ndcg_by_v1_mixture"][unknown.label()] == max(run["cold_ndcg_by_v1_mixture"].values())
    mixed = with_own_settings(model)  # the two mixtures made different, to tell them apart
    mixed.settings["training"].update(v1_mixture="linear", v1_weight=0.3, v1_temperature=0.5,
                                      v1_mixture_unknown_users={"form": "product", "weight": 0.8, "temperature": 0.1})
    mixed.after_load()
    alone = with_own_settings(mixed)
    alone.settings["training"].update(v1_weight=0.0, v1_mixture_unknown_users={"form": "linear", "weight": 0.0,
                                                                               "temperature": 0.02})
    alone.after_load()
    v1 = model._v1
    trained_user = int(np.setdiff1d(np.arange(data.n_users), cold)[0])
    events = [np.array([item_index(data, 5), item_index(data, 6)], np.int32)] * 3
    users = np.array([trained_user, int(cold[0]), -1])
    scores = mixed.score_users(users, events)
    network, v1_scores = alone.score_users(users, events), v1.score_users(users, events)
    for row, mixture in enumerate([Mixture("linear", 0.3, 0.5), Mixture("product", 0.8, 0.1),
                                   Mixture("product", 0.8, 0.1)]):
        np.testing.assert_allclose(scores[row], blended_scores(network[row:row + 1], v1_scores[row:row + 1],
                                                               mixture)[0], rtol=1e-5, atol=1e-5)
    legacy = with_own_settings(mixed)  # saved before the cold users' mixture: one mixture for every user
    del legacy.settings["training"]["v1_mixture_unknown_users"]
    legacy.after_load()
    np.testing.assert_allclose(legacy.score_users(users[2:], events[2:])[0],
                               blended_scores(network[2:], v1_scores[2:], Mixture("linear", 0.3, 0.5))[0],
                               rtol=1e-5, atol=1e-5)
