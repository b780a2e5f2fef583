"""The v2 transformer's next-item distribution mixed with v1's whole model, the mixture weighed on validation.

Two different models score a history: the transformer (its softmax p over the catalogue) and v1, the collaborative
engine of aws-user-personalization (user_personalization.fit_collaborative with v1's default hyperparameters: EASE
or ALS affinity over a recency-weighted history, plus its "what follows what" transition table and trend push; a
few seconds to fit). v1's scores s become a distribution q = softmax(s / T), and the served score is the log of
the mixture (1 - w) p + w q, computed in log space. The weight w and temperature T are chosen after training on
the validation slice the epoch loop held out (the newest event of up to 2048 training users), with a v1 fitted on
the training data without those events, each user's history ranked as the served model ranks it (below every
other item where the domain does not re-consume, else in place): the pair of BLEND_WEIGHTS x TEMPERATURES with the
best NDCG@10, ties to the smaller w and then the smaller T. w = 0 serves the transformer alone, w = 1 v1 alone (the order of s, whatever
T), so on the validation slice the mixture is never below the better of the two. v1's part keeps working as v1
does at serving time: a known user's stored history followed by the request's streamed events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tastemaker.recipes.sasrec_net import NetConfig, encode_histories

BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TEMPERATURES = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
CHUNK_SCORES = 2**24  # validation users are scored in blocks of at most this many scores (16 - 256 users)


def log_softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log softmax of scores / temperature, float32."""
    scaled = np.asarray(scores, dtype=np.float32) / np.float32(temperature)
    top = scaled.max(axis=1, keepdims=True)
    shifted = scaled - top
    return (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).astype(np.float32)


def blended_scores(logits: np.ndarray, v1_scores: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """log((1 - w) softmax(logits) + w softmax(v1_scores / T)) per row; the logits unchanged when w is 0 and the
    v1 scores unchanged when w is 1 (the same orders as the mixture's limits)."""
    if weight <= 0:
        return logits
    if weight >= 1:
        return v1_scores
    return np.logaddexp(np.float32(np.log1p(-weight)) + log_softmax(logits),
                        np.float32(np.log(weight)) + log_softmax(v1_scores, temperature)).astype(np.float32)


def choose_mixture(weights: dict[str, np.ndarray], cfg: NetConfig, inputs: Sequence[np.ndarray], targets: np.ndarray,
                   v1_score: Callable[[np.ndarray], np.ndarray], users: np.ndarray,
                   demote_history: bool) -> tuple[float, float, dict[tuple[float, float], float]]:
    """The (w, T) of BLEND_WEIGHTS x TEMPERATURES with the best validation NDCG@10 and the NDCG@10 of every pair,
    each user's history treated as the served model treats it: ranked below every other item with
    `demote_history`, else left in the ranking. `v1_score(users)` gives v1's (B, n_items) scores of those
    validation users from their stored histories (the held-out events left out)."""
    items = weights["item_embedding"][1:]
    pairs = [(w, t) for w in BLEND_WEIGHTS for t in TEMPERATURES]
    gains = dict.fromkeys(pairs, 0.0)
    chunk = int(min(256, max(16, CHUNK_SCORES // max(len(items), 1))))
    for start in range(0, len(targets), chunk):
        histories = [np.asarray(h)[-cfg.max_sequence_length:] for h in inputs[start:start + chunk]]
        seen_all = [np.asarray(h) for h in inputs[start:start + chunk]]
        truth = targets[start:start + chunk]
        logits = encode_histories(weights, cfg, histories) @ items.T
        v1 = np.asarray(v1_score(users[start:start + chunk]), dtype=np.float32)
        rows = np.repeat(np.arange(len(seen_all)), [len(h) for h in seen_all])
        seen = np.concatenate(seen_all).astype(np.int64)
        for weight, temperature in pairs:
            if (weight <= 0 or weight >= 1) and temperature != TEMPERATURES[0]:
                continue  # T does not act at the ends: the same scores as the first T
            scores = blended_scores(logits, v1, weight, temperature).copy()
            if demote_history:  # below every other item (their own order does not matter to the truth's rank)
                scores[rows, seen] = -np.inf
            rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
            gains[(weight, temperature)] += float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).sum())
    ndcg = {p: g / max(len(targets), 1) for p, g in gains.items()
            if not ((p[0] <= 0 or p[0] >= 1) and p[1] != TEMPERATURES[0])}
    best = max(ndcg, key=lambda p: (ndcg[p], -p[0], -p[1]))
    return best[0], best[1], ndcg
