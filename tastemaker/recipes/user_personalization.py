"""aws-user-personalization and aws-personalized-ranking: the collaborative engine with real-time fold-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from tastemaker.recipes import kernels, register_recipe
from tastemaker.recipes.base import (
    HyperParameter,
    Progress,
    Recipe,
    ShouldStop,
    TrainedModel,
    register_model_class,
    report,
)
from tastemaker.recipes.collaborative import (
    ALS_ALPHA,
    EASE_MAX_ITEMS,
    EASE_MIN_USERS,
    LAST_EVENTS_FOR_TRANSITIONS,
    TRANSITION_WEIGHT,
    ease_lambda,
    fit_als,
    fit_ease,
    fit_transitions,
    fold_in,
    interaction_matrix,
    regularized_gram,
    repeat_ratio,
)
from tastemaker.recipes.common import (
    cold_start_scores,
    decay_from_bptt,
    demote_history,
    history_matrix,
    merge_histories,
    recent_popularity,
    stored_histories,
    trim_users_by_history_percentiles,
    unit_max,
)
from tastemaker.recipes.training_data import TrainingData

# Below this share of repeat events the domain does not re-consume, so items in the history are ranked last.
REPEAT_RATIO_FOR_DEMOTION = 0.1
TREND_WEIGHT = 0.05  # with recency_mask, a small push for items popular in the newest 10% of the data
AFFINITY_USER_BLOCK = 8192  # users per block scoring item sets (2 MiB of 64 float32 factors); a power of 2, so
# the blocks split the rows where the BLAS kernel does and every score is bit for bit the unblocked one

HIDDEN_DIMENSION = HyperParameter(
    "hidden_dimension", "integer", "149", 32, 256, tunable=True,
    description="Latent factors of the ALS engine (catalogues above 10,000 items).",
)
BPTT = HyperParameter(
    "bptt", "integer", "32", 2, 32, tunable=True,
    description="How far back the history counts: half of an event's weight is gone after bptt/5 newer events.",
)
RECENCY_MASK = HyperParameter(
    "recency_mask", "categorical", "true", values=("true", "false"), tunable=True,
    description="Consider the latest popularity trends (new-user lists and a small trend boost).",
)
MIN_HISTORY_PCT = HyperParameter("min_user_history_length_percentile", "continuous", "0.0", 0.0, 1.0)
MAX_HISTORY_PCT = HyperParameter("max_user_history_length_percentile", "continuous", "0.99", 0.0, 1.0)


@register_model_class
class CollaborativeModel(TrainedModel):
    """Item-item (EASE) or ALS item factors + a transition matrix; users are folded in from their history."""

    model_kind: ClassVar[str] = "collaborative"

    def after_load(self) -> None:
        self.__dict__.pop("_transitions", None)
        self.__dict__.pop("_gram", None)
        self.__dict__.pop("_trend_vector", None)

    @property
    def gram(self) -> np.ndarray:
        """Y^T Y + lambda I of the item factors, computed once per loaded model (not per request)."""
        cached = self.__dict__.get("_gram")
        if cached is None:
            cached = regularized_gram(self.arrays["item_factors"])
            self.__dict__["_gram"] = cached
        return cached

    # --- learned pieces -------------------------------------------------------------------------
    @property
    def transitions(self) -> sp.csr_matrix:
        cached = self.__dict__.get("_transitions")
        if cached is None:
            a = self.arrays
            cached = sp.csr_matrix(
                (a["trans_data"], a["trans_indices"], a["trans_indptr"]), shape=(self.n_items, self.n_items)
            )
            self.__dict__["_transitions"] = cached
        return cached

    def _histories(self, user_index: np.ndarray, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        return merge_histories(user_index, histories, self.arrays.get("hist_indptr"), self.arrays.get("hist_items"))

    def _affinity(self, history: sp.csr_matrix) -> np.ndarray:
        """(B, n_items) long-term affinity from (decayed) history rows."""
        if "ease" in self.arrays:
            active = np.asarray(self.arrays["ease_items"])
            out = np.zeros((history.shape[0], self.n_items), np.float32)
            out[:, active] = np.asarray(history[:, active] @ self.arrays["ease"], dtype=np.float32)
            return out
        factors = self.arrays["item_factors"]
        return fold_in(factors, history, gram=self.gram) @ np.asarray(factors).T

    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """(B, n_items) float32 scores: unit_max(long term) + TRANSITION_WEIGHT * unit_max(short term) + the
        trend push; cold-start scores for empty histories; history items demoted when the domain does not
        re-consume.

        Vectorised over the rows, with the same float32 operations per element as that formula: the long
        term is divided in place by its rows' peak magnitudes (one broadcast division); the short term stays
        sparse (the transitions reach few items), so its scaling and weighting touch only its nonzeros, which
        are then added at their places (a zero adds nothing); the trend vector is added once per chunk."""
        n_items = self.n_items
        decay = float(self.settings["decay"])
        scores = np.asarray(self._affinity(history_matrix(histories, n_items, decay)), dtype=np.float32)
        if scores.shape[1]:
            peak = np.maximum(scores.max(axis=1), -scores.min(axis=1))  # the rows' largest |value|, no |.| copy
            np.divide(scores, np.where(peak > 0, peak, np.float32(1.0))[:, None], out=scores)
        last = [h[-LAST_EVENTS_FOR_TRANSITIONS:] for h in histories]
        short = sp.csr_matrix(history_matrix(last, n_items, decay) @ self.transitions, dtype=np.float32)
        short.sum_duplicates()
        short.eliminate_zeros()  # every row left has a nonzero peak
        if short.nnz:
            rows = np.repeat(np.arange(short.shape[0]), np.diff(short.indptr))
            magnitude = np.abs(short.data)
            starts = short.indptr[:-1][np.diff(short.indptr) > 0]
            row_peak = np.zeros(short.shape[0], np.float32)
            row_peak[rows[starts]] = np.maximum.reduceat(magnitude, starts)
            added = np.float32(TRANSITION_WEIGHT) * (short.data / row_peak[rows])
            scores[rows, short.indices] += added
        trend = self._trend
        if trend is not None:
            scores += trend
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        empty = lengths == 0
        if empty.any():
            scores[empty] = np.asarray(self.arrays["cold_scores"])
        if self.settings.get("demote_history"):
            demote_history(scores, histories, np.float32(8.0))  # scores lie in [-3, 3]: below every other item
        return scores

    @property
    def _trend(self) -> np.ndarray | None:
        """trend_weight * recent_popularity as float32, once per loaded model (None without a trend push)."""
        if not self.settings.get("trend_weight", 0.0):
            return None
        cached = self.__dict__.get("_trend_vector")
        if cached is None:
            cached = np.float32(self.settings["trend_weight"]) * np.asarray(self.arrays["recent_popularity"])
            self.__dict__["_trend_vector"] = cached
        return cached

    # --- candidate scoring (serving's approximate path for large ALS catalogues) ------------------------
    @property
    def supports_candidates(self) -> bool:
        """True when the long-term part is a dot product with item factors (ALS), so an index can find it."""
        return "item_factors" in self.arrays

    def merged_histories(self, user_index: np.ndarray, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each query's stored training history followed by its given recent events (what scoring folds in)."""
        return self._histories(np.asarray(user_index), histories)

    @property
    def gram_inverse(self) -> np.ndarray:
        """(Y^T Y + lambda I)^-1 in float64, once per loaded model (the fold-in's Woodbury form needs it)."""
        cached = self.__dict__.get("_gram_inverse")
        if cached is None:
            cached = np.linalg.inv(np.asarray(self.gram, dtype=np.float64))
            self.__dict__["_gram_inverse"] = cached
        return cached

    def use_gram_inverse(self, value: np.ndarray) -> None:
        """Take gram_inverse as computed (from these same factors) and saved by another process."""
        self.__dict__["_gram_inverse"] = np.array(value, dtype=np.float64, order="C")  # writable, as computed

    def serving_state(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One user's (vector, transition-reached rows, their short-term values) in one compiled call: the
        fold-in (long-term affinity is vector @ item_factors.T, solved through the Woodbury identity) and the
        decayed last events through the transition matrix, scaled by their peak (score_histories' short term).
        `history` int64 item rows, oldest first."""
        a = self.arrays
        return kernels.user_state(a["item_factors"], self.gram_inverse, a["trans_indptr"],  # type: ignore[no-any-return]
                                  a["trans_indices"], a["trans_data"], history, LAST_EVENTS_FOR_TRANSITIONS,
                                  float(self.settings["decay"]), ALS_ALPHA, TRANSITION_WEIGHT)

    def merge_and_score(self, found: np.ndarray, head: np.ndarray, history: np.ndarray,
                        state: tuple[np.ndarray, np.ndarray, np.ndarray],
                        sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """One user's candidates (index hits, head, history, transitions, sample; sorted, distinct), which of
        them only the sample supplied, their scores and the long-term scale used.

        The scores equal score_histories at those items when the candidates include the item whose long-term
        score has the largest magnitude (the long-term scale is the candidates' own maximum); the short-term
        scale is exact, computed from every item the transitions reach."""
        vector, reached, values = state
        items, only_sample, scores, top = kernels.merge_and_score(
            found, head, history, reached, values, sample, self.arrays["item_factors"], vector,
            float(self.settings.get("trend_weight", 0.0) or 0.0), self.arrays["recent_popularity"],
            bool(self.settings.get("demote_history")))
        if not len(history):  # no history: the cold-start scores, as score_histories gives them
            return items, only_sample, np.asarray(self.arrays["cold_scores"])[items].astype(np.float32), 0.0
        return items, only_sample, scores, float(top)

    def prepare_serving(self) -> None:
        """Compile the serving kernels for this model's arrays before it takes requests."""
        if self.supports_candidates:
            a = self.arrays
            kernels.warm_up(a["item_factors"], self.gram_inverse, a["trans_indptr"], a["trans_indices"],
                            a["trans_data"], a["recent_popularity"])

    # --- the TrainedModel interface ---------------------------------------------------------------
    def score_users(self, user_index: np.ndarray, histories: Sequence[np.ndarray],
                    context: Sequence[dict[str, str]] | None = None) -> np.ndarray:
        return self.score_histories(self._histories(np.asarray(user_index), histories))


    def user_affinity_for_item_sets(self, item_sets: Sequence[np.ndarray], users: slice = slice(None)) -> np.ndarray:
        """(B, n_users): mean affinity of each user over each set of items (empty set -> zeros); only the model
        rows `users` when given (each user's value does not depend on the others: users can be scored in parts)."""
        rows = range(self.n_users)[users]
        out = np.zeros((len(item_sets), len(rows)), np.float32)
        if "user_factors" in self.arrays:
            factors = np.asarray(self.arrays["user_factors"])[users]
            item_factors = np.asarray(self.arrays["item_factors"])
            means = np.zeros((len(item_sets), item_factors.shape[1]), np.float32)
            for row, items in enumerate(item_sets):
                if len(items):
                    means[row] = item_factors[np.asarray(items)].mean(axis=0)
            # Users in blocks that stay in cache while every set is scored against them: the user factors are
            # read from memory once per call, not once per set. Each score stays one row-vector product, so a
            # user's value does not depend on which other users are scored with it.
            filled = [row for row, items in enumerate(item_sets) if len(items)]
            for lo in range(0, len(factors), AFFINITY_USER_BLOCK):
                part = np.asarray(factors[lo:lo + AFFINITY_USER_BLOCK])
                for row in filled:
                    out[row, lo:lo + AFFINITY_USER_BLOCK] = part @ means[row]
            return out
        indptr, hist = self.arrays["hist_indptr"], self.arrays["hist_items"]
        histories = [np.asarray(hist[indptr[u]:indptr[u + 1]]) for u in rows]
        all_history = history_matrix(histories, self.n_items, float(self.settings["decay"]))
        active = np.asarray(self.arrays["ease_items"])
        local = np.full(self.n_items, -1, np.int64)
        local[active] = np.arange(len(active))
        active_history = all_history[:, active]
        ease = self.arrays["ease"]
        for row, items in enumerate(item_sets):
            columns = local[np.asarray(items, dtype=np.int64)] if len(items) else np.zeros(0, np.int64)
            # Items outside the EASE set have no long-term weights: they count as zero in the mean.
            columns = columns[columns >= 0]
            if len(items) and len(columns):
                weights = np.asarray(ease[:, columns]).sum(axis=1) / len(items)
                out[row] = np.asarray(active_history @ weights).ravel()
        return out


def fit_collaborative(
    recipe: Recipe, data: TrainingData, typed: dict[str, Any], *, seed: int, progress: Progress | None,
    should_stop: ShouldStop | None, model_class: type[CollaborativeModel] = CollaborativeModel,
    keep_user_factors: bool = False, engine: str | None = None,
) -> CollaborativeModel:
    """Train the engine on `data` (after the history-length trims) and build the model object."""
    report(progress, should_stop, 0.0)
    trimmed = trim_users_by_history_percentiles(
        data, float(typed.get("min_user_history_length_percentile", 0.0)),
        float(typed.get("max_user_history_length_percentile", 1.0)),
    )
    matrix = interaction_matrix(trimmed)
    # EASE covers the items with a few interactions (rarer ones carry no reliable item-item signal and the
    # dense solve costs n^3); ALS takes over when even those are too many.
    active = np.nonzero(np.diff(matrix.tocsc().indptr) >= EASE_MIN_USERS)[0]
    engine = engine or ("ease" if len(active) <= EASE_MAX_ITEMS else "als")
    arrays: dict[str, np.ndarray] = {}
    report(progress, should_stop, 0.05)
    if engine == "ease":
        arrays["ease"] = fit_ease(matrix[:, active], ease_lambda(trimmed))
        arrays["ease_items"] = active.astype(np.int64)
        report(progress, should_stop, 0.7)
    else:
        user_factors, item_factors = fit_als(
            matrix, int(typed.get("hidden_dimension", 149)), seed, progress, should_stop, (0.05, 0.7)
        )
        arrays["item_factors"] = item_factors
        if keep_user_factors:
            arrays["user_factors"] = user_factors
    transitions = fit_transitions(trimmed)
    arrays.update(trans_indptr=transitions.indptr.astype(np.int64), trans_indices=transitions.indices.astype(np.int32),
                  trans_data=transitions.data.astype(np.float32))
    report(progress, should_stop, 0.85)
    recency = bool(typed.get("recency_mask", True))
    arrays["cold_scores"] = cold_start_scores(data, recency)
    arrays["recent_popularity"] = unit_max(recent_popularity(data))
    arrays["hist_indptr"], arrays["hist_items"] = stored_histories(data)
    model = model_class(
        recipe_name=recipe.name, recipe_type=recipe.recipe_type, item_ids=data.item_ids, user_ids=data.user_ids,
        item_popularity=data.unique_user_counts(), item_first_seen=data.item_first_seen(), params=typed,
        arrays=arrays,
        settings={
            "engine": engine,
            "decay": decay_from_bptt(int(typed.get("bptt", 32))),
            "demote_history": repeat_ratio(data) < REPEAT_RATIO_FOR_DEMOTION,
            "trend_weight": TREND_WEIGHT if recency else 0.0,
        },
    )
    report(progress, should_stop, 1.0)
    return model


@register_recipe
class UserPersonalization(Recipe):
    name = "aws-user-personalization"
    recipe_type = "USER_PERSONALIZATION"
    explores_new_items = True
    incremental_updates = True
    description = (
        "Recommends items for a user from their interaction history, updated in real time by new events; "
        "new users get what people start with plus current trends."
    )
    feature_transformation = "JSON-percentile-filtering"
    hyperparameters = (HIDDEN_DIMENSION, BPTT, RECENCY_MASK, MIN_HISTORY_PCT, MAX_HISTORY_PCT)

    def fit(self, data: TrainingData, params: dict[str, str], *, seed: int = 0,
            progress: Progress | None = None, should_stop: ShouldStop | None = None,
            checkpoints: object = None) -> TrainedModel:  # accepted and ignored: nothing to resume
        typed = self.validate_hyperparameters(params)
        return fit_collaborative(self, data, typed, seed=seed, progress=progress, should_stop=should_stop)


@register_recipe
class PersonalizedRanking(UserPersonalization):
    """Same engine; GetPersonalizedRanking restricts score_users to the input list."""

    name = "aws-personalized-ranking"
    recipe_type = "PERSONALIZED_RANKING"
    description = "Ranks a given list of items for a user by the user's predicted interest."

