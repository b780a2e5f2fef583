"""aws-next-best-action: the probability that a user takes each action, learned from labelled action events.

Mechanism. A user is described by two d-dimensional profiles:
  * taste: the mean of the item factors of the items the user interacted with (the factors are the top-d right
    singular vectors of the row-normalised user x item matrix of the required item interactions);
  * action profile: the normalised sum of the embeddings of the actions the user TOOK before the moment being
    predicted (an action's embedding is the normalised mean taste of the users who took it).
For each action a, P(TAKEN | user, a) = sigmoid(x_u . (w0 + w_a) + b_a) with x_u = [taste, action profile]: a
logistic regression with a weight vector shared by all actions (w0) and a per-action correction (w_a, more
strongly regularised), fitted by Adam on every TAKEN (label 1), NOT_TAKEN (label 0) and VIEWED (label 0, half
weight) interaction. Training rows see only the actions taken before them, exactly what serving sees, so new
PutActionInteractions change the action profile (and the repeat-frequency exclusions) at the next request.

Scores are probabilities. As in Personalize, an action scores 0.0 until it has >= 50 TAKEN and >= 50
NOT_TAKEN/VIEWED interactions within 6 weeks of the latest action interaction; among equal scores the higher
VALUE ranks first. Expired actions
and actions inside their REPEAT_FREQUENCY are removed by serving (tastemaker.serving.actions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from tastemaker.recipes import register_recipe
from tastemaker.recipes.action_data import NOT_TAKEN, TAKEN, VIEWED, ActionData
from tastemaker.recipes.base import (
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    register_model_class,
    report,
)
from tastemaker.recipes.training_data import InsufficientDataError, TrainingData

MIN_LABELS = 50  # Personalize: scores stay 0.0 until >= 50 TAKEN and >= 50 NOT_TAKEN/VIEWED
LABEL_WINDOW_SECONDS = 6 * 7 * 86_400  # ... counted within 6 weeks of the latest action interaction
MAX_ACTIONS = 1000  # Personalize considers at most 1000 actions
TASTE_DIMENSIONS = 16
STEPS = 300
LEARNING_RATE = 0.05
SHARED_L2 = 1e-4
PER_ACTION_L2 = 1e-3
VIEWED_WEIGHT = 0.5


def _normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.where(norms > 0, rows / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)


@register_model_class
class NextBestActionModel(TrainedModel):
    """arrays: item_factors (n_items, d), action_embed / weights (n_actions, d|2d), shared (2d), bias, scored;
    action_ids and values; the training action history (hist_users sorted with offsets, actions, codes, times)."""

    model_kind: ClassVar[str] = "next-best-action"

    @property
    def action_ids(self) -> np.ndarray:
        return self.arrays["action_ids"]

    @property
    def n_actions(self) -> int:
        return len(self.arrays["action_ids"])

    def action_index(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        from tastemaker.recipes.base import _lookup

        return _lookup(self.arrays["action_ids"], ids, self, "_action_order")

    def training_history(self, user_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(action indices, codes, timestamps) of the user's action interactions seen in training, oldest first."""
        users = self.arrays["hist_users"]
        pos = int(np.searchsorted(users, user_id))
        if pos >= users.size or users[pos] != user_id:
            empty = np.zeros(0, np.int64)
            return empty, empty.astype(np.int8), empty
        start, end = int(self.arrays["hist_offsets"][pos]), int(self.arrays["hist_offsets"][pos + 1])
        return (np.asarray(self.arrays["hist_actions"][start:end], np.int64),
                np.asarray(self.arrays["hist_codes"][start:end]), np.asarray(self.arrays["hist_times"][start:end]))

    def features(self, item_histories: Sequence[np.ndarray], taken: Sequence[np.ndarray]) -> np.ndarray:
        """(B, 2d) user features from item indices (-1 ignored) and indices of actions taken."""
        factors = self.arrays["item_factors"]
        embed = self.arrays["action_embed"]
        d = factors.shape[1]
        out = np.zeros((len(item_histories), 2 * d), np.float32)
        for row, (items, acts) in enumerate(zip(item_histories, taken, strict=True)):
            items = np.asarray(items, np.int64)
            items = items[(items >= 0) & (items < len(factors))]
            if items.size:
                out[row, :d] = factors[items].mean(axis=0)
            acts = np.asarray(acts, np.int64)
            acts = acts[(acts >= 0) & (acts < len(embed))]
            if acts.size:
                out[row, d:] = embed[acts].sum(axis=0)
        out[:, :d] = _normalise(out[:, :d])
        out[:, d:] = _normalise(out[:, d:])
        return out

    def score_actions(self, item_histories: Sequence[np.ndarray], taken: Sequence[np.ndarray]) -> np.ndarray:
        """(B, n_actions) float32 probabilities that each user takes each action (0.0 for actions without
        enough labelled interactions)."""
        x = self.features(item_histories, taken)
        logits = x @ (self.arrays["weights"] + self.arrays["shared"]).T + self.arrays["bias"]
        return np.where(self.arrays["scored"], _sigmoid(logits), np.float32(0.0)).astype(np.float32)

    def score_users(self, user_index: np.ndarray, histories: Sequence[np.ndarray],
                    context: Sequence[dict[str, str]] | None = None) -> np.ndarray:
        from tastemaker.errors import InvalidInputException

        raise InvalidInputException("aws-next-best-action recommends actions: use GetActionRecommendations.")


@register_recipe
class NextBestAction(Recipe):
    name = "aws-next-best-action"
    recipe_type = "PERSONALIZED_ACTIONS"
    description = ("Recommends the actions a user is most likely to take next, with the probability of each, "
                   "learned from Action interactions (TAKEN / NOT_TAKEN / VIEWED), Actions and item interactions.")
    supports_hpo = False
    hyperparameters = (
        HyperParameter("action_optimization_period", "integer", "14", 7, 28,
                       description="Days of recent action interactions Personalize optimises for (accepted; "
                                   "all action interactions train here)."),
    )

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        report(progress, should_stop, 0.0)
        actions: ActionData | None = data.actions
        if actions is None or actions.catalog.n_actions == 0:
            raise InsufficientDataError("Create failed. aws-next-best-action needs an Actions dataset with data; "
                                        "import actions (CreateDatasetImportJob or PutActions) first.")
        if actions.catalog.n_actions > MAX_ACTIONS:
            raise InsufficientDataError(f"Create failed. The Actions dataset has {actions.catalog.n_actions} "
                                        f"actions; aws-next-best-action considers at most {MAX_ACTIONS}.")
        factors = _item_factors(data, seed)
        report(progress, should_stop, 0.1)
        taste = _user_taste(data, factors, actions.user_ids)
        embed = _action_embeddings(actions, taste, factors.shape[1])
        x, y, w, a = _training_rows(actions, taste, embed)
        n_actions = actions.catalog.n_actions
        shared, weights, bias = _fit_logistic(x, y, w, a, n_actions, progress, should_stop)
        labelled_times = actions.timestamps[np.isin(actions.codes, (TAKEN, NOT_TAKEN, VIEWED))]
        recent = labelled_times >= labelled_times.max(initial=0) - LABEL_WINDOW_SECONDS
        taken = np.bincount(a[recent & (y == 1)], minlength=n_actions)
        negatives = np.bincount(a[recent & (y == 0)], minlength=n_actions)
        scored = (taken >= MIN_LABELS) & (negatives >= MIN_LABELS)
        users, offsets = np.unique(actions.user_ids, return_index=True)
        model = NextBestActionModel(
            recipe_name=self.name, recipe_type=self.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
            item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
            arrays={
                "item_factors": factors, "action_embed": embed, "shared": shared, "weights": weights,
                "bias": bias, "scored": scored, "action_ids": actions.catalog.action_ids,
                "action_values": actions.catalog.value,
                "hist_users": users.astype(str) if users.size else np.zeros(0, "<U1"),
                "hist_offsets": np.append(offsets, actions.n_interactions).astype(np.int64),
                "hist_actions": actions.actions.astype(np.int32), "hist_codes": actions.codes.astype(np.int8),
                "hist_times": actions.timestamps.astype(np.int64),
            },
            settings={"min_labels": MIN_LABELS},
        )
        report(progress, should_stop, 1.0)
        return model


def _item_factors(data: TrainingData, seed: int) -> np.ndarray:
    """(n_items, d) top right singular vectors of the row-normalised binary user x item matrix."""
    matrix = data.user_item_matrix(binary=True)
    rows = np.asarray(matrix.sum(axis=1)).ravel()
    matrix = sp.diags(1.0 / np.sqrt(np.maximum(rows, 1.0))) @ matrix
    d = min(TASTE_DIMENSIONS, min(matrix.shape) - 1)
    if d < 1:
        return np.zeros((data.n_items, 1), np.float32)
    v0 = np.random.default_rng(seed).random(min(matrix.shape))
    _u, _s, vt = svds(matrix.astype(np.float64), k=d, v0=v0)
    return np.ascontiguousarray(vt.T, dtype=np.float32)


def _user_taste(data: TrainingData, factors: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
    """(len(user_ids), d) normalised mean item factor of each user's items (zeros without item interactions)."""
    matrix = data.user_item_matrix(binary=True)
    per_user = np.asarray(matrix @ factors)
    order = np.argsort(data.user_ids, kind="stable")
    pos = np.minimum(np.searchsorted(data.user_ids[order], user_ids), max(data.n_users - 1, 0))
    found = data.user_ids[order][pos] == user_ids if data.n_users else np.zeros(len(user_ids), bool)
    out = np.zeros((len(user_ids), factors.shape[1]), np.float32)
    out[found] = per_user[order[pos[found]]]
    return _normalise(out)


def _action_embeddings(actions: ActionData, taste: np.ndarray, d: int) -> np.ndarray:
    taken = actions.codes == TAKEN
    embed = np.zeros((actions.catalog.n_actions, d), np.float32)
    np.add.at(embed, actions.actions[taken], taste[taken])
    return _normalise(embed)


def _training_rows(actions: ActionData, taste: np.ndarray, embed: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels, weights and action of every labelled interaction; the action profile of a row sums
    the embeddings of the actions its user took strictly before it (rows are sorted by user, time)."""
    labelled = np.isin(actions.codes, (TAKEN, NOT_TAKEN, VIEWED))
    taken = (actions.codes == TAKEN).astype(np.float32)[:, None] * embed[actions.actions]
    running = np.cumsum(taken, axis=0) - taken  # exclusive running sum over all rows ...
    starts = np.r_[0, np.nonzero(actions.user_ids[1:] != actions.user_ids[:-1])[0] + 1]
    lengths = np.diff(np.r_[starts, len(actions.user_ids)])
    before_user = np.repeat(running[starts] if starts.size and len(running) else np.zeros((0, embed.shape[1])),
                            lengths, axis=0)
    profile = _normalise(running - before_user)  # ... minus what earlier users contributed
    x = np.concatenate([taste, profile], axis=1)[labelled]
    y = (actions.codes[labelled] == TAKEN).astype(np.float32)
    w = np.where(actions.codes[labelled] == VIEWED, VIEWED_WEIGHT, 1.0).astype(np.float32)
    return x, y, w, actions.actions[labelled].astype(np.int64)


def _fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, a: np.ndarray, n_actions: int,
                  progress: Progress | None, should_stop: ShouldStop | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam on the weighted log-loss of sigmoid(x . (w0 + w_a) + b_a), full batch (deterministic)."""
    dim = x.shape[1]
    prior = (np.bincount(a, weights=w * y, minlength=n_actions) + 1.0) / (
        np.bincount(a, weights=w, minlength=n_actions) + 2.0)
    params: dict[str, np.ndarray] = {
        "shared": np.zeros(dim, np.float64), "weights": np.zeros((n_actions, dim), np.float64),
        "bias": np.log(prior / (1.0 - prior)),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    total = max(float(w.sum()), 1.0)
    for step in range(1, STEPS + 1):
        logits = np.einsum("nd,nd->n", x, params["weights"][a] + params["shared"]) + params["bias"][a]
        residual = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30))) - y) * w / total
        per_row = residual[:, None] * x
        grad_weights = np.zeros_like(params["weights"])
        np.add.at(grad_weights, a, per_row)
        grads = {
            "shared": per_row.sum(axis=0) + SHARED_L2 * params["shared"],
            "weights": grad_weights + PER_ACTION_L2 * params["weights"],
            "bias": np.bincount(a, weights=residual, minlength=n_actions),
        }
        for key, grad in grads.items():
            m, v = moments[key]
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            params[key] -= LEARNING_RATE * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        if step % 30 == 0:
            report(progress, should_stop, 0.1 + 0.85 * step / STEPS)
    return (params["shared"].astype(np.float32), params["weights"].astype(np.float32),
            params["bias"].astype(np.float32))


def popularity_of_actions(actions: ActionData) -> np.ndarray:
    """The baseline: TAKEN count per action (the same ranking for every user)."""
    return np.bincount(actions.actions[actions.codes == TAKEN], minlength=actions.catalog.n_actions).astype(
        np.float32)


def evaluate_actions(recipe: Recipe, data: TrainingData, params: dict[str, str], seed: int = 0,
                     report_to: dict[str, Any] | None = None) -> dict[str, float]:
    """Solution metrics for actions: train on the oldest 90% of action interactions (by time), then on the
    newest 10%: `auc` of the predicted probabilities against TAKEN (over actions that have scores), and per-action `precision` (takers among
    the users whose top-1 it was) and `recall` (of the takers, how many had it top-1), averaged over actions."""
    actions = data.actions
    if actions is None or actions.n_interactions < 20:
        return {}
    cut = np.quantile(actions.timestamps, 0.9)
    older = actions.timestamps < cut
    if older.all() or not older.any():
        older = np.arange(actions.n_interactions) < int(0.9 * actions.n_interactions)
    train = ActionData(actions.catalog, actions.user_ids[older], actions.actions[older], actions.codes[older],
                       actions.timestamps[older])
    train_data = data.subset_events(np.ones(data.n_interactions, bool))
    train_data.actions = train
    model = recipe.fit(train_data, params, seed=seed)
    assert isinstance(model, NextBestActionModel)
    test = ~older & np.isin(actions.codes, (TAKEN, NOT_TAKEN, VIEWED))
    if not test.any():
        return {}
    offsets = data.user_offsets()
    user_row = {u: i for i, u in enumerate(data.user_ids)}
    histories, taken_lists = [], []
    for user in actions.user_ids[test]:
        row = user_row.get(str(user))
        histories.append(data.items[offsets[row]:offsets[row + 1]] if row is not None else np.zeros(0, np.int32))
        acts, codes, _times = model.training_history(str(user))
        taken_lists.append(acts[codes == TAKEN])
    scores = model.score_actions(histories, taken_lists)
    test_actions = actions.actions[test]
    predicted = scores[np.arange(len(test_actions)), test_actions]
    label = actions.codes[test] == TAKEN
    top1 = scores.argmax(axis=1)
    per_action_precision, per_action_recall = [], []
    for action in np.unique(test_actions):
        mine = test_actions == action
        chosen = mine & (top1 == action)
        if chosen.any():
            per_action_precision.append(float(label[chosen].mean()))
        if (mine & label).any():
            per_action_recall.append(float((top1[mine & label] == action).mean()))
    scored = np.asarray(model.arrays["scored"], bool)[test_actions]  # unscored actions all read 0.0
    metrics = {"auc": _auc(predicted[scored], label[scored]),
               "precision": float(np.mean(per_action_precision)) if per_action_precision else 0.0,
               "recall": float(np.mean(per_action_recall)) if per_action_recall else 0.0}
    if report_to is not None:
        report_to.update({"protocol": "actions: oldest 90% of action interactions train, newest 10% test",
                          "n_test": int(test.sum()), "seed": seed})
    return metrics


def _auc(scores: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney rank statistic, ties averaged); 0.5 when one class is missing."""
    from scipy.stats import rankdata

    positives, negatives = int(label.sum()), int((~label).sum())
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = rankdata(scores)
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))
