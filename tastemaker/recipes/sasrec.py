"""aws-user-personalization-v2 / aws-personalized-ranking-v2: a SASRec transformer trained with PyTorch."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from tastemaker.errors import InvalidInputException
from tastemaker.recipes import register_recipe
from tastemaker.recipes.base import (
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    TrainingStopped,
    register_model_class,
)
from tastemaker.recipes.sasrec_net import NetConfig, encode_histories, train_network
from tastemaker.recipes.training_data import TrainingData

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
RECENCY_HALF_LIFE = 0.25
DEFAULT_NEGATIVE_SAMPLES = 256
RECENCY_FLOOR = 0.1

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
        "max_sequence_length", "integer", "50", min=10, max=512, tunable=False,
        description="How many of a user's most recent interactions the model reads.",
    ),
    HyperParameter(
        "training_epochs", "integer", "20", min=1, max=300, tunable=True,
        description="Passes over all training sequences.",
    ),
    HyperParameter(
        "learning_rate", "continuous", "0.002", min=0.0001, max=0.01, tunable=True,
        description="Adam learning rate.",
    ),
    HyperParameter(
        "dropout", "continuous", "0.2", min=0.0, max=0.5, tunable=True,
        description="Dropout on embeddings, attention and feed-forward outputs.",
    ),
    HyperParameter(
        "future_target_rate", "continuous", "0.3", min=0.0, max=0.9, tunable=True,
        description="Share of training targets drawn from the next 10 items instead of the very next one "
                    "(learns what the user wants soon, not only next).",
    ),
    HyperParameter(
        "batch_size", "integer", "128", min=8, max=1024, tunable=False,
        description="Training windows per optimiser step.",
    ),
    HyperParameter(
        "negative_samples", "integer", str(DEFAULT_NEGATIVE_SAMPLES), min=0, max=65536, tunable=False,
        description="0: softmax over the whole catalogue. N > 0: when the catalogue has more than N items, "
                    "softmax over the true item and N random negatives per step (much faster on CPUs).",
    ),
)


def net_config(typed: dict[str, Any]) -> NetConfig:
    """NetConfig from typed hyperparameters, checking the one cross-field rule."""
    if typed["hidden_dimension"] % typed["num_heads"]:
        raise InvalidInputException(
            f"Hyperparameter hidden_dimension ({typed['hidden_dimension']}) must be a multiple of "
            f"num_heads ({typed['num_heads']})."
        )
    return NetConfig(
        hidden_dimension=typed["hidden_dimension"],
        num_blocks=typed["num_blocks"],
        num_heads=typed["num_heads"],
        max_sequence_length=typed["max_sequence_length"],
        dropout=float(typed["dropout"]),
        learning_rate=float(typed["learning_rate"]),
        batch_size=typed["batch_size"],
        epochs=typed["training_epochs"],
        negative_samples=typed["negative_samples"],
        future_target_rate=float(typed["future_target_rate"]),
    )


def recency_weights(timestamps: np.ndarray) -> np.ndarray:
    """float32 weight per event: 1 for the newest, halving every RECENCY_HALF_LIFE of the span, floored."""
    if timestamps.size == 0:
        return np.ones(0, np.float32)
    newest, oldest = int(timestamps.max()), int(timestamps.min())
    span = max(newest - oldest, 1)
    age = (newest - timestamps.astype(np.float64)) / span
    return np.maximum(0.5 ** (age / RECENCY_HALF_LIFE), RECENCY_FLOOR).astype(np.float32)


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
    ) -> TrainedModel:
        if not torch_available():
            raise InvalidInputException(torch_missing_message(self.name))
        typed = self.validate_hyperparameters(params)
        cfg = net_config(typed)
        event_weights = data.weights.astype(np.float32)
        if typed["apply_recency_bias"]:
            event_weights = event_weights * recency_weights(data.timestamps)
        offsets = data.user_offsets()
        sequences = [data.items[offsets[u]:offsets[u + 1]] for u in range(data.n_users)]
        weights = [event_weights[offsets[u]:offsets[u + 1]] for u in range(data.n_users)]
        net = train_network(
            sequences, data.n_items, cfg, weights=weights, seed=seed, progress=progress,
            should_stop=should_stop, on_stop=lambda: TrainingStopped("Training was stopped."),
        )
        # Cold-start list: distinct users per item, recency-weighted when apply_recency_bias is on.
        cold = np.zeros(data.n_items, np.float64)
        newest_of_pair = _newest_event_per_user_item(data)
        np.add.at(cold, data.items[newest_of_pair], event_weights[newest_of_pair] if typed["apply_recency_bias"] else 1.0)
        # Keep each known user's newest max_sequence_length items, used when a request brings no history.
        lengths = np.minimum(np.diff(offsets), cfg.max_sequence_length)
        history_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        history_items = np.concatenate(
            [s[len(s) - n:] for s, n in zip(sequences, lengths.tolist(), strict=True)] or [np.zeros(0, np.int32)]
        ).astype(np.int32)
        arrays = {f"net.{name}": arr for name, arr in net.items()}
        arrays.update(cold_scores=(cold / max(cold.max(), 1e-12)).astype(np.float32),
                      history_items=history_items, history_offsets=history_offsets)
        model = SasRecModel(
            recipe_name=self.name,
            recipe_type=self.recipe_type,
            item_ids=data.item_ids,
            user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(),
            item_first_seen=data.item_first_seen(),
            params=typed,
            arrays=arrays,
            settings={"net": {f.name: getattr(cfg, f.name) for f in fields(cfg)}},
        )
        model.after_load()
        return model


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
        "Transformer (SASRec) over each user's interaction sequence, trained with softmax cross-entropy "
        "(sampled negatives by default); reflects new events immediately. Needs PyTorch to train."
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
    """Scores = final hidden state of the user's sequence x shared item embeddings (numpy, no torch)."""

    model_kind = "sasrec"

    def after_load(self) -> None:
        net = self.settings["net"]
        self._cfg = NetConfig(**net)
        self._weights = {
            name[4:]: np.asarray(arr, dtype=np.float32) for name, arr in self.arrays.items() if name.startswith("net.")
        }
        # Output projection = input item embeddings without the padding row; contiguous for fast matmul.
        self._item_matrix = np.ascontiguousarray(self._weights["item_embedding"][1:])

    def user_history(self, user: int) -> np.ndarray:
        """The newest training interactions of known user `user` (item indices, oldest first)."""
        offsets = self.arrays["history_offsets"]
        return np.asarray(self.arrays["history_items"][offsets[user]:offsets[user + 1]], dtype=np.int32)

    def score_users(
        self,
        user_index: np.ndarray,
        histories: Sequence[np.ndarray],
        context: Sequence[dict[str, str]] | None = None,
    ) -> np.ndarray:
        users = np.asarray(user_index, dtype=np.int64).reshape(-1)
        if len(histories) != len(users):
            raise ValueError("score_users needs one history per user")
        resolved: list[np.ndarray] = []
        for user, history in zip(users.tolist(), histories, strict=True):
            items = np.asarray(history, dtype=np.int64).reshape(-1)
            items = items[(items >= 0) & (items < self.n_items)]  # unknown items carry no signal
            if items.size == 0 and 0 <= user < self.n_users:
                items = self.user_history(user)
            resolved.append(items)
        scores = np.empty((len(users), self.n_items), dtype=np.float32)
        has_history = np.array([len(h) > 0 for h in resolved], dtype=bool)
        if has_history.any():
            hidden = encode_histories(self._weights, self._cfg, [h for h in resolved if len(h)])
            scores[has_history] = hidden @ self._item_matrix.T
        if (~has_history).any():
            scores[~has_history] = np.asarray(self.arrays["cold_scores"], dtype=np.float32)
        return scores
