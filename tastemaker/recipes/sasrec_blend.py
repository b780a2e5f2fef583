"""The v2 transformer's next-item distribution mixed with a "what follows what" transition table, weighed on validation.

Two next-item distributions for a history: the transformer's softmax p, and q, the rows of a row-normalised
item -> following-item transition table (collaborative.transition_matrix, the sequence signal of v1) for the
history's newest LAST_EVENTS items, weighted 1, 1/2, 1/3 from the newest. The served score is the log of the
mixture (1 - w) p + w q, computed in log space so that items without transition mass keep the transformer's order.
The weight w is chosen after training on the validation slice the epoch loop held out (the newest event of up to
2048 training users, whose transitions are left out of the table used to choose it): the w of BLEND_WEIGHTS with
the best NDCG@10, ties to the smaller. On data where the transformer alone is best, w is 0 and serving is the
transformer's scores unchanged. With little data (hundreds of users, thousands of items), the table's counts carry
what the transformer has too few examples to learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from tastemaker.recipes.collaborative import transition_matrix
from tastemaker.recipes.sasrec_net import NetConfig, encode_histories

BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
LAST_EVENTS = 3
CHUNK_SCORES = 2**24  # validation users are scored in blocks of at most this many scores (16 - 256 users)


def transitions_of(sequences: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """The transition table of per-user item sequences (oldest first)."""
    lengths = [len(s) for s in sequences]
    users = np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences] or [np.zeros(0, np.int64)])
    return transition_matrix(users, items, n_items)


def transition_distribution(table: sp.csr_matrix, histories: Sequence[np.ndarray]) -> np.ndarray:
    """(B, n_items) float32 q: the newest LAST_EVENTS items' table rows, weighted 1, 1/2, 1/3 and normalised."""
    rows, cols, vals = [], [], []
    for b, history in enumerate(histories):
        last = np.asarray(history, dtype=np.int64)[-LAST_EVENTS:][::-1]
        weights = 1.0 / np.arange(1, len(last) + 1)
        for item, weight in zip(last.tolist(), (weights / max(weights.sum(), 1e-12)).tolist(), strict=True):
            start, end = table.indptr[item], table.indptr[item + 1]
            rows.append(np.full(end - start, b, np.int64))
            cols.append(table.indices[start:end])
            vals.append(table.data[start:end] * weight)
    q = np.zeros((len(histories), table.shape[1]), np.float32)
    if rows:
        np.add.at(q, (np.concatenate(rows), np.concatenate(cols)), np.concatenate(vals).astype(np.float32))
    return q


def blended_scores(logits: np.ndarray, q: np.ndarray, weight: float) -> np.ndarray:
    """log((1 - w) softmax(logits) + w q) per row; the logits unchanged when w is 0."""
    if weight <= 0:
        return logits
    top = logits.max(axis=1, keepdims=True)
    log_p = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    return np.logaddexp(np.float32(np.log1p(-weight)) + log_p, np.float32(np.log(weight)) + log_q).astype(np.float32)


def choose_weight(weights: dict[str, np.ndarray], cfg: NetConfig, inputs: Sequence[np.ndarray], targets: np.ndarray,
                  table: sp.csr_matrix) -> tuple[float, dict[float, float]]:
    """The BLEND_WEIGHTS value with the best validation NDCG@10 (each user's other history items excluded), and
    the NDCG@10 of every weight."""
    items = weights["item_embedding"][1:]
    gains = dict.fromkeys(BLEND_WEIGHTS, 0.0)
    chunk = int(min(256, max(16, CHUNK_SCORES // max(len(items), 1))))
    for start in range(0, len(targets), chunk):
        histories = [np.asarray(h)[-cfg.max_sequence_length:] for h in inputs[start:start + chunk]]
        truth = targets[start:start + chunk]
        logits = encode_histories(weights, cfg, histories) @ items.T
        q = transition_distribution(table, histories)
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        seen = np.concatenate(histories).astype(np.int64)
        keep = seen != truth[rows]
        for weight in BLEND_WEIGHTS:
            scores = blended_scores(logits, q, weight).copy()
            scores[rows[keep], seen[keep]] = -np.inf
            rank = (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)
            gains[weight] += float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).sum())
    ndcg = {w: g / max(len(targets), 1) for w, g in gains.items()}
    best = max(BLEND_WEIGHTS, key=lambda w: (ndcg[w], -w))
    return best, ndcg
