"""The v2 transformer's next-item distribution mixed with v1's whole model, the mixture weighed on validation.

Two different models score a history: the transformer (its softmax p over the catalogue) and v1, the collaborative
engine of aws-user-personalization (user_personalization.fit_collaborative with v1's default hyperparameters: EASE
or ALS affinity over a recency-weighted history, plus its "what follows what" transition table and trend push; a
few seconds to fit). v1's scores s become a distribution q = softmax(s / T), and the two are mixed in one of two
forms with a weight w:

- "linear", the mixture of the two distributions: log((1 - w) p + w q), computed in log space. An item scores
  high when either model is sure of it.
- "product", their weighted geometric mean: (1 - w) log p + w log q, which ranks as logits + s * w / (T (1 - w)).
  An item scores high when both models rate it; on movielens-1m-partial (leave-last-out, two seeds) it chose
  logits + ~2 s and reached 2.5-2.8% more NDCG@10 than the best linear mixture, on validation and test alike.

The form, w and T are chosen after training on the validation slice the epoch loop held out (the newest event of up
to 2048 training users), with a v1 fitted on the training data without those events, each user's history ranked as
the served model ranks it (below every other item where the domain does not re-consume, else in place): the
Mixture of both forms x BLEND_WEIGHTS x TEMPERATURES with the best NDCG@10, ties to the linear form, then the
smaller w and the smaller T. At w = 0 both forms serve the transformer alone, at w = 1 v1 alone (the order of s,
whatever T), so on the validation slice the mixture is never below the better of the two. v1's part keeps working
as v1 does at serving time: a known user's stored history followed by the request's streamed events.

The network ranks users it never trained on much worse than those it did (on a draw of movielens-latest-small's
Personalize split, NDCG@10 0.040 for the network alone against v1's 0.117 on users it never saw, where it is 0.062
against 0.061 on users it trained on), so those users get a mixture of their own: the same candidates scored on the cold users sasrec_train left out
of training (each one's newest tenth of events the truth), with a v1 fitted without them that scores them as it
scores a user it does not know. It serves users unknown to the model and the cold users themselves. Models trained
before the product form existed carry no form and are served with the linear one; models trained before the cold
users' mixture serve every user with the one mixture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.recipes.sasrec_net import NetConfig, encode_histories

BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TEMPERATURES = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
CHUNK_SCORES = 2**24  # validation users are scored in blocks of at most this many scores (16 - 256 users)
FORMS = ("linear", "product")


@dataclass(frozen=True)
class Mixture:
    """How the served score combines the transformer's logits and v1's scores (see the module docstring)."""

    form: str = "linear"
    weight: float = 0.0
    temperature: float = TEMPERATURES[0]

    def label(self) -> str:
        return f"{self.form} w={self.weight} T={self.temperature}"


def candidates() -> list[Mixture]:
    """Every mixture validation compares: each model alone once (form and T do not act there), then both forms
    at every weight between and every temperature."""
    ends = [Mixture("linear", w, TEMPERATURES[0]) for w in (BLEND_WEIGHTS[0], BLEND_WEIGHTS[-1])]
    return ends + [Mixture(form, w, t) for form in FORMS for w in BLEND_WEIGHTS[1:-1] for t in TEMPERATURES]


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log softmax of scores / temperature, float32."""
    scaled = np.asarray(scores, dtype=np.float32) / np.float32(temperature)
    top = scaled.max(axis=1, keepdims=True)
    shifted = scaled - top
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(np.float32)


def blended_scores(logits: np.ndarray, v1_scores: np.ndarray, mixture: Mixture,
                   log_p: np.ndarray | None = None, log_q: np.ndarray | None = None) -> np.ndarray:
    """Per row, linear: log((1 - w) softmax(logits) + w softmax(v1_scores / T)); product: (1 - w) log_softmax(logits)
    + w log_softmax(v1_scores / T). The logits unchanged when w is 0 and the v1 scores unchanged when w is 1 (the
    same orders as either form's limits). `log_p` and `log_q` are those log-softmaxes when the caller already has
    them (validation scores many mixtures of the same rows)."""
    weight = mixture.weight
    if weight <= 0:
        return logits
    if weight >= 1:
        return v1_scores
    log_p = log_softmax(logits) if log_p is None else log_p
    log_q = log_softmax(v1_scores, mixture.temperature) if log_q is None else log_q
    if mixture.form == "product":
        return (np.float32(1.0 - weight) * log_p + np.float32(weight) * log_q).astype(np.float32)
    return np.logaddexp(np.float32(np.log1p(-weight)) + log_p, np.float32(np.log(weight)) + log_q).astype(np.float32)


def choose_mixture(weights: dict[str, np.ndarray], cfg: NetConfig, inputs: Sequence[np.ndarray],
                   truths: Sequence[np.ndarray], v1_score: Callable[[slice], np.ndarray],
                   demote_history: bool) -> tuple[Mixture, dict[Mixture, float]]:
    """The candidate Mixture with the best NDCG@10 over the validation users and the NDCG@10 of every candidate.
    User i's history is inputs[i], their truth the items truths[i] (each a gain of 1); the history is treated as
    the served model treats it: ranked below every other item with `demote_history`, else left in the ranking.
    `v1_score(rows)` gives v1's (B, n_items) scores of the users inputs[rows], as v1 serves them."""
    items = weights["item_embedding"][1:]
    gains = dict.fromkeys(candidates(), 0.0)
    chunk = int(min(256, max(16, CHUNK_SCORES // max(len(items), 1))))
    discount = 1.0 / np.log2(np.arange(10) + 2.0)
    for start in range(0, len(inputs), chunk):
        rows_here = slice(start, min(start + chunk, len(inputs)))
        histories = [np.asarray(h)[-cfg.max_sequence_length:] for h in inputs[rows_here]]
        seen_all = [np.asarray(h) for h in inputs[rows_here]]
        truth_lists = [np.asarray(t, dtype=np.int64) for t in truths[rows_here]]
        truth_rows = np.repeat(np.arange(len(truth_lists)), [len(t) for t in truth_lists])
        truth_items = np.concatenate(truth_lists)
        single = len(truth_items) == len(truth_lists)
        ideal = np.array([discount[:min(10, len(t))].sum() for t in truth_lists])[truth_rows]
        logits = encode_histories(weights, cfg, histories) @ items.T
        v1 = np.asarray(v1_score(rows_here), dtype=np.float32)
        rows = np.repeat(np.arange(len(seen_all)), [len(h) for h in seen_all])
        seen = np.concatenate(seen_all).astype(np.int64)
        log_p = log_softmax(logits)
        log_q = {t: log_softmax(v1, t) for t in TEMPERATURES}
        for mixture in gains:
            scores = blended_scores(logits, v1, mixture, log_p, log_q[mixture.temperature])
            if scores is logits or scores is v1:  # a model alone: its own scores, not to be changed below
                scores = scores.copy()
            if demote_history:  # below every other item (their own order does not matter to the truth's rank)
                scores[rows, seen] = -np.inf
            above = scores if single else scores[truth_rows]  # one truth a user: rows already aligned
            rank = (above > scores[truth_rows, truth_items][:, None]).sum(axis=1)
            gains[mixture] += float((np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0) / ideal).sum())
    ndcg = {m: g / max(len(inputs), 1) for m, g in gains.items()}
    best = max(ndcg, key=lambda m: (ndcg[m], m.form == FORMS[0], -m.weight, -m.temperature))
    return best, ndcg
