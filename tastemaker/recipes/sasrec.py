"""aws-user-personalization-v2 / aws-personalized-ranking-v2: a SASRec transformer trained with PyTorch."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastemaker.errors import InvalidInputException
from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import (
    Checkpoints,
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    TrainingStopped,
    register_model_class,
)
from tastemaker.recipes.collaborative import repeat_ratio
from tastemaker.recipes.common import demote_history, merge_histories
from tastemaker.recipes.sasrec_blend import Mixture, blended_scores, choose_mixture
from tastemaker.recipes.sasrec_net import NetConfig, encode_histories
from tastemaker.recipes.sasrec_train import train_network
from tastemaker.recipes.training_data import TrainingData
from tastemaker.recipes.user_personalization import (
    REPEAT_RATIO_FOR_DEMOTION,
    CollaborativeModel,
    UserPersonalization,
    fit_collaborative,
)

USER_PERSONALIZATION_V2 = "aws-user-personalization-v2"
PERSONALIZED_RANKING_V2 = "aws-personalized-ranking-v2"
TORCH_REQUIREMENT = "torch==2.13.0"


def torch_missing_message(recipe_name: str = USER_PERSONALIZATION_V2) -> str:
    """What to tell a user whose server lacks PyTorch (the CreateSolution / training failure text)."""
    return (
        f"Recipe {recipe_name} needs PyTorch. Install it with: pip install 'tastemaker[torch]' "
        f"({TORCH_REQUIREMENT}, CPU build)."
    )


TORCH_MISSING_MESSAGE = torch_missing_message(USER_PERSONALIZATION_V2)


def torch_available() -> bool:
    """True when PyTorch can be imported (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


# With apply_recency_bias an event's training weight halves every RECENCY_HALF_LIFE of the data's time
# span (newest event = weight 1), never below RECENCY_FLOOR; the cold-start list uses the same weights.
RECENCY_HALF_LIFE = 0.5
RECENCY_FLOOR = 0.2
# negative_samples 0 (the default): full softmax while an epoch scores at most FULL_SOFTMAX_LOGITS (training events x
# catalogue items), else AUTO_NEGATIVES logQ-corrected negatives. One logit costs about 6 flops forward and backward at
# hidden 64 (measured: 6e7 logits per CPU second), so the limit is about 15 CPU seconds an epoch: movielens-latest-small
# (0.1M events x 9.7k items = 9.7e8) trains on the full catalogue, as SASRec+ does; movielens-1m-partial (0.49M events
# x 3.9k items = 1.9e9) on 512 negatives, which cost 12.6 CPU s an epoch against 30 for the full softmax, so that the
# same CPU time buys twice the epochs: measured there (leave-last-out), 51 epochs of 512 negatives reached NDCG@10
# 0.1660 for the transformer alone in 643 CPU s, against 0.1613 for 26 epochs of the full softmax in 791 CPU s.
FULL_SOFTMAX_LOGITS = 1_000_000_000
# batch_size 0 (the default) gives an epoch at least this many optimiser steps (16 - 128 windows a step): at equal CPU
# time, 4 epochs of 32-window steps reached 2.2x the validation NDCG@10 of 128-window steps on ML-1M users.
MIN_STEPS_PER_EPOCH = 128
AUTO_NEGATIVES = 512
# training_epochs 0 (the default) sizes the epoch budget from the data: enough epochs for AUTO_TRAINING_STEPS optimiser
# steps (small data has few steps an epoch, so it gets more epochs), at most AUTO_TRAINING_LOGITS logits in all (about
# 15 CPU minutes of logits), between AUTO_EPOCHS_MIN and AUTO_EPOCHS_MAX. movielens-1m-partial: 55 epochs (its
# validation NDCG@10 peaked at epoch 45 of a 60-epoch budget); movielens-latest-small: 51 (the logits bound).
AUTO_TRAINING_STEPS = 7200
AUTO_TRAINING_LOGITS = 50_000_000_000
AUTO_EPOCHS_MIN, AUTO_EPOCHS_MAX = 3, 200

SASREC_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter(
        "apply_recency_bias", "categorical", "true", values=("true", "false"), tunable=False,
        description="Give recent interactions more weight in training and in the list for new users.",
    ),
    HyperParameter(
        "hidden_dimension", "integer", "64", min=16, max=256, tunable=True,
        description="Width of item embeddings and transformer layers.",
    ),
    HyperParameter(
        "num_blocks", "integer", "2", min=1, max=4, tunable=True,
        description="Number of self-attention blocks.",
    ),
    HyperParameter(
        "num_heads", "integer", "1", min=1, max=8, tunable=False,
        description="Attention heads per block; must divide hidden_dimension.",
    ),
    HyperParameter(
        "max_sequence_length", "integer", "0", min=0, max=512, tunable=False,
        description="How many of a user's most recent interactions the model reads. 0: the 80th percentile of the "
                    "users' history lengths, rounded up to a multiple of 10, between 20 and 200.",
    ),
    HyperParameter(
        "training_epochs", "integer", "0", min=0, max=500, tunable=True,
        description="Epoch budget: the learning rate decays linearly over it, and early stopping may end training "
                    "sooner. 0: sized from the data (enough epochs for about 7,200 optimiser steps, fewer when an "
                    "epoch is costly).",
    ),
    HyperParameter(
        "early_stopping_patience", "integer", "12", min=0, max=50, tunable=False,
        description="Stop after this many epochs without a better NDCG@10 on a validation slice of the training "
                    "data (the newest event of up to 2048 training users) and keep the best epoch; 0: train all "
                    "training_epochs.",
    ),
    HyperParameter(
        "learning_rate", "continuous", "0.002", min=0.0001, max=0.01, tunable=True,
        description="Adam learning rate at the start; it decays linearly to 2% of this over training_epochs.",
    ),
    HyperParameter(
        "dropout", "continuous", "0.2", min=0.0, max=0.5, tunable=True,
        description="Dropout on embeddings, attention and feed-forward outputs.",
    ),
    HyperParameter(
        "future_target_rate", "continuous", "0.1", min=0.0, max=0.9, tunable=True,
        description="Share of training targets drawn from the next 10 items instead of the very next one "
                    "(learns what the user wants soon, not only next).",
    ),
    HyperParameter(
        "batch_size", "integer", "0", min=0, max=1024, tunable=False,
        description="Training windows per optimiser step. 0: 128, or fewer so that an epoch has at least 128 "
                    "steps (never below 16).",
    ),
    HyperParameter(
        "negative_samples", "integer", "0", min=0, max=65536, tunable=False,
        description=f"0: softmax over the whole catalogue while training events x items is at most "
                    f"{FULL_SOFTMAX_LOGITS:,}, else {AUTO_NEGATIVES} sampled negatives. N > 0: when the catalogue has "
                    "more than N items, softmax over the true item and N negatives drawn by popularity with the "
                    "logQ correction (much faster on CPUs, slightly less accurate).",
    ),
    HyperParameter(
        "use_item_metadata", "categorical", "true", values=("true", "false"), tunable=False,
        description="Add a learned embedding of each item's categorical (and bucketed numeric) Items columns to its "
                    "id embedding, so that items with few interactions borrow from similar ones.",
    ),
)


def net_config(typed: dict[str, Any], sequences: list[np.ndarray], n_items: int) -> NetConfig:
    """NetConfig from typed hyperparameters; sequence length, batch and negatives left at 0 adapt to the data."""
    if typed["hidden_dimension"] % typed["num_heads"]:
        raise InvalidInputException(
            f"Hyperparameter hidden_dimension ({typed['hidden_dimension']}) must be a multiple of "
            f"num_heads ({typed['num_heads']})."
        )
    lengths = np.array([len(s) for s in sequences] or [0])
    max_len = typed["max_sequence_length"]
    if not max_len:
        max_len = int(min(200, max(20, math.ceil(float(np.percentile(lengths, 80)) / 10) * 10)))
    windows = int(np.ceil(np.maximum(lengths - 1, 0) / max_len).sum())
    batch = typed["batch_size"] or int(min(128, max(16, windows // MIN_STEPS_PER_EPOCH)))
    negatives = typed["negative_samples"] or (0 if lengths.sum() * n_items <= FULL_SOFTMAX_LOGITS else AUTO_NEGATIVES)
    epochs = typed["training_epochs"]
    if not epochs:
        steps = max(1, math.ceil(windows / batch))
        logits = max(1, int(lengths.sum()) * (n_items if not 0 < negatives < n_items else negatives + 1))
        epochs = min(math.ceil(AUTO_TRAINING_STEPS / steps), AUTO_TRAINING_LOGITS // logits)
        epochs = int(min(AUTO_EPOCHS_MAX, max(AUTO_EPOCHS_MIN, epochs)))
    return NetConfig(
        hidden_dimension=typed["hidden_dimension"],
        num_blocks=typed["num_blocks"],
        num_heads=typed["num_heads"],
        max_sequence_length=max_len,
        dropout=float(typed["dropout"]),
        learning_rate=float(typed["learning_rate"]),
        batch_size=batch,
        epochs=epochs,
        negative_samples=negatives,
        future_target_rate=float(typed["future_target_rate"]),
        patience=typed["early_stopping_patience"],
    )


def recency_weights(timestamps: np.ndarray) -> np.ndarray:
    """float32 weight per event: 1 for the newest, halving every RECENCY_HALF_LIFE of the span, floored."""
    if timestamps.size == 0:
        return np.ones(0, np.float32)
    newest, oldest = int(timestamps.max()), int(timestamps.min())
    span = max(newest - oldest, 1)
    age = (newest - timestamps.astype(np.float64)) / span
    return np.maximum(0.5 ** (age / RECENCY_HALF_LIFE), RECENCY_FLOOR).astype(np.float32)


def item_feature_matrix(data: TrainingData) -> sp.csr_matrix | None:
    """(n_items, F) metadata values per item: each categorical column's values on at least 2 items and each
    numeric column's decile, every column's block rows summing to 1/columns; None without usable metadata."""
    meta = data.item_metadata
    if meta is None:
        return None
    blocks: list[sp.csr_matrix] = []
    for matrix, _values in meta.categorical.values():
        on = sp.csr_matrix(matrix, dtype=np.float32)
        on.data[:] = 1.0
        keep = np.asarray(on.sum(axis=0)).ravel() >= 2
        if keep.any() and keep.sum() <= data.n_items / 2:  # a near-unique column is an id, not a feature
            blocks.append(on[:, np.nonzero(keep)[0]])
    for column in meta.numeric.values():
        finite = np.nonzero(np.isfinite(column))[0]
        if len(finite) < 2:
            continue
        edges = np.unique(np.quantile(column[finite], np.linspace(0, 1, 11)[1:-1]))
        bins = np.searchsorted(edges, column[finite], side="right")
        blocks.append(sp.csr_matrix((np.ones(len(finite), np.float32), (finite, bins)),
                                    shape=(data.n_items, len(edges) + 1)))
    if not blocks:
        return None
    normalised = []
    for block in blocks:
        sums = np.asarray(block.sum(axis=1)).ravel()
        normalised.append(sp.diags(np.where(sums > 0, 1.0 / np.maximum(sums, 1e-12), 0.0)) @ block)
    return (sp.hstack(normalised).tocsr() / len(blocks)).astype(np.float32)


class _SasRecRecipe(Recipe):
    """Shared fit for both v2 recipes (same model; they differ in the runtime API that serves them)."""

    hyperparameters = SASREC_HYPERPARAMETERS
    supports_hpo = True
    returns_metadata = True

    def fit(
        self,
        data: TrainingData,
        params: dict[str, str],
        *,
        seed: int = 0,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> TrainedModel:
        if not torch_available():
            raise InvalidInputException(torch_missing_message(self.name))
        typed = self.validate_hyperparameters(params)
        event_weights = data.weights.astype(np.float32)
        if typed["apply_recency_bias"]:
            event_weights = event_weights * recency_weights(data.timestamps)
        offsets = data.user_offsets()
        sequences = [data.items[offsets[u]:offsets[u + 1]] for u in range(data.n_users)]
        weights = [event_weights[offsets[u]:offsets[u + 1]] for u in range(data.n_users)]
        cfg = net_config(typed, sequences, data.n_items)
        features = item_feature_matrix(data) if typed["use_item_metadata"] else None
        trained = train_network(
            sequences, data.n_items, cfg, weights=weights, item_features=features, seed=seed, progress=progress,
            should_stop=should_stop, on_stop=lambda: TrainingStopped("Training was stopped."),
            checkpoints=checkpoints,
        )
        net = trained.weights
        # Cold-start list: distinct users per item, recency-weighted when apply_recency_bias is on.
        cold = np.zeros(data.n_items, np.float64)
        newest_of_pair = _newest_event_per_user_item(data)
        np.add.at(cold, data.items[newest_of_pair], event_weights[newest_of_pair] if typed["apply_recency_bias"] else 1.0)
        # Each known user's training items (oldest first): the transformer reads their newest max_sequence_length
        # and a request's events follow them; where history is demoted, every one of them is.
        history_offsets = np.asarray(offsets, dtype=np.int64)
        history_items = np.asarray(data.items, dtype=np.int32)
        arrays = {f"net.{name}": arr for name, arr in net.items()}
        arrays.update(cold_scores=(cold / max(cold.max(), 1e-12)).astype(np.float32),
                      history_items=history_items, history_offsets=history_offsets)
        demote = repeat_ratio(data) < REPEAT_RATIO_FOR_DEMOTION  # the domain does not re-consume: history last
        mixture, mix_ndcg = Mixture(), dict[Mixture, float]()
        unknown, unknown_ndcg = mixture, mix_ndcg
        if trained.validation is not None:  # the mixtures with v1 (sasrec_blend), chosen on the validation slice
            held_out, left_out = trained.validation, trained.validation.cold
            keep = np.ones(data.n_interactions, dtype=bool)
            keep[offsets[held_out.users + 1] - 1] = False  # each held-out user's newest event
            for user in [] if left_out is None else left_out.users.tolist():
                keep[offsets[user]:offsets[user + 1]] = False  # v1 does not know the cold users either
            v1_validation = self._fit_v1(data.subset_events(keep), seed)
            mixture, mix_ndcg = choose_mixture(
                net, cfg, held_out.inputs, list(held_out.targets[:, None]),
                lambda rows: v1_validation.score_users(held_out.users[rows],
                                                       [np.zeros(0, np.int32)] * len(held_out.users[rows])),
                demote)
            unknown, unknown_ndcg = mixture, {}
            if left_out is not None:
                unknown, unknown_ndcg = choose_mixture(
                    net, cfg, left_out.inputs, left_out.truths,
                    lambda rows: v1_validation.score_users(np.full(len(left_out.inputs[rows]), -1),
                                                           [h.astype(np.int32) for h in left_out.inputs[rows]]),
                    demote)
                arrays["cold_users"] = left_out.users.astype(np.int64)
        v1_settings: dict[str, Any] | None = None
        if mixture.weight > 0 or unknown.weight > 0:
            v1 = self._fit_v1(data, seed)
            arrays.update({f"v1.{name}": arr for name, arr in v1.arrays.items()})
            v1_settings = v1.settings
        model = SasRecModel(
            recipe_name=self.name,
            recipe_type=self.recipe_type,
            item_ids=data.item_ids,
            user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(),
            item_first_seen=data.item_first_seen(),
            params=typed,
            arrays=arrays,
            settings={"net": {f.name: getattr(cfg, f.name) for f in fields(cfg)},
                      "training": {"epochs_run": trained.epochs_run, "best_epoch": trained.best_epoch,
                                   "validation_ndcg_at_10": trained.validation_ndcg,
                                   "resumed_from_epoch": trained.resumed_from_epoch,
                                   "item_metadata_features": 0 if features is None else features.shape[1],
                                   "v1_weight": mixture.weight, "v1_temperature": mixture.temperature,
                                   "v1_mixture": mixture.form,
                                   "validation_ndcg_by_v1_mixture": {
                                       m.label(): round(v, 4) for m, v in mix_ndcg.items()},
                                   "cold_users": 0 if "cold_users" not in arrays else len(arrays["cold_users"]),
                                   "v1_mixture_unknown_users": asdict(unknown),
                                   "cold_ndcg_by_v1_mixture": {
                                       m.label(): round(v, 4) for m, v in unknown_ndcg.items()}},
                      "v1": v1_settings,
                      "demote_history": demote},
        )
        model.after_load()
        return model

    def _fit_v1(self, data: TrainingData, seed: int) -> CollaborativeModel:
        """v1 (aws-user-personalization with its default hyperparameters) on `data`, the mixture's other part."""
        v1 = UserPersonalization()
        return fit_collaborative(v1, data, v1.validate_hyperparameters({}), seed=seed, progress=None,
                                 should_stop=None)


def _newest_event_per_user_item(data: TrainingData) -> np.ndarray:
    """Indices of the newest event of each distinct (user, item) pair."""
    pair = data.users.astype(np.int64) * max(data.n_items, 1) + data.items
    _, last_reversed = np.unique(pair[::-1], return_index=True)
    return (len(pair) - 1 - last_reversed).astype(np.int64)


@register_recipe
class UserPersonalizationV2(_SasRecRecipe):
    name = USER_PERSONALIZATION_V2
    recipe_type = "USER_PERSONALIZATION"
    description = (
        "Transformer (SASRec) over each user's interaction sequence and item metadata, trained with full softmax "
        "cross-entropy and early stopping, mixed with aws-user-personalization's model where a validation slice says "
        "it helps; reflects new events immediately. Needs PyTorch to train."
    )


@register_recipe
class PersonalizedRankingV2(_SasRecRecipe):
    name = PERSONALIZED_RANKING_V2
    recipe_type = "PERSONALIZED_RANKING"
    description = (
        "Transformer (SASRec) that ranks a given list of items for a user; reflects new events "
        "immediately. Needs PyTorch to train."
    )


@register_model_class
class SasRecModel(TrainedModel):
    """Scores = final hidden state of the user's sequence x shared item embeddings (numpy, no torch), mixed with v1's
    scores (a CollaborativeModel kept in this model's arrays under "v1.") when training chose a weight above 0 for
    them (sasrec_blend)."""

    model_kind = "sasrec"

    def after_load(self) -> None:
        net = self.settings["net"]
        self._cfg = NetConfig(**net)
        self._weights = {
            name[4:]: np.asarray(arr, dtype=np.float32) for name, arr in self.arrays.items() if name.startswith("net.")
        }
        # Output projection = input item embeddings without the padding row; contiguous for fast matmul.
        self._item_matrix = np.ascontiguousarray(self._weights["item_embedding"][1:])
        training = self.settings.get("training", {})
        # Models trained before the product form carry no "v1_mixture": theirs is the linear one.
        self._mixture = Mixture(str(training.get("v1_mixture", "linear")), float(training.get("v1_weight", 0.0)),
                                float(training.get("v1_temperature", 0.0)))
        # Users the network never trained on (unknown to the model, or left out as cold users) get their own
        # mixture; models trained before it serve them with the one mixture.
        unknown = training.get("v1_mixture_unknown_users")
        self._mixture_unknown = self._mixture if unknown is None else Mixture(**unknown)
        self._untrained = np.zeros(len(self.user_ids), dtype=bool)
        self._untrained[np.asarray(self.arrays.get("cold_users", np.zeros(0, np.int64)), dtype=np.int64)] = True
        self._demote_history = bool(self.settings.get("demote_history", False))
        self._v1: CollaborativeModel | None = None
        if self._mixture.weight > 0 or self._mixture_unknown.weight > 0:
            self._v1 = CollaborativeModel(
                recipe_name=self.recipe_name, recipe_type=self.recipe_type, item_ids=self.item_ids,
                user_ids=self.user_ids, item_popularity=self.item_popularity, item_first_seen=self.item_first_seen,
                arrays={name[3:]: arr for name, arr in self.arrays.items() if name.startswith("v1.")},
                settings=self.settings["v1"],
            )
            self._v1.after_load()

    def score_users(
        self,
        user_index: np.ndarray,
        histories: Sequence[np.ndarray],
        context: Sequence[dict[str, str]] | None = None,
    ) -> np.ndarray:
        users = np.asarray(user_index, dtype=np.int64).reshape(-1)
        if len(histories) != len(users):
            raise ValueError("score_users needs one history per user")
        given = []
        for history in histories:
            items = np.asarray(history, dtype=np.int64).reshape(-1)
            given.append(items[(items >= 0) & (items < self.n_items)].astype(np.int32))  # unknown items: no signal
        # A known user's stored history followed by the request's events, as v1 folds them in (an unknown user:
        # the request's events alone); the transformer reads the newest max_sequence_length of them.
        resolved = merge_histories(users, given, self.arrays["history_offsets"], self.arrays["history_items"])
        scores = np.empty((len(users), self.n_items), dtype=np.float32)
        has_history = np.array([len(h) > 0 for h in resolved], dtype=bool)
        if has_history.any():
            known = [h for h in resolved if len(h)]
            logits = encode_histories(self._weights, self._cfg, known) @ self._item_matrix.T
            if self._v1 is not None:  # v1 scores the request as v1 does: stored history + the given events
                rows = np.nonzero(has_history)[0]
                v1_scores = self._v1.score_users(users[rows], [given[i] for i in rows])
                untrained = users[rows] < 0
                untrained[~untrained] = self._untrained[users[rows][~untrained]]
                mixed = np.empty_like(logits)
                for mixture, part in ((self._mixture, ~untrained), (self._mixture_unknown, untrained)):
                    if part.any():
                        mixed[part] = blended_scores(logits[part], v1_scores[part], mixture)
                logits = mixed
            if self._demote_history:  # below each row's minimum (logits are unbounded), order kept
                logits = np.asarray(logits, dtype=np.float32)
                demote_history(logits, known, logits.max(axis=1) - logits.min(axis=1) + np.float32(1.0))
            scores[has_history] = logits
        if (~has_history).any():
            scores[~has_history] = np.asarray(self.arrays["cold_scores"], dtype=np.float32)
        return scores
