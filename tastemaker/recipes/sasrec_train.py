"""SASRec training: softmax cross-entropy epochs, early stopping on a validation slice, resumable checkpoints.

Loss: full softmax over the catalogue ("SASRec+"), or, when cfg.negative_samples is smaller than the catalogue,
a sampled softmax over negatives drawn by popularity**0.75 with the logQ correction (each logit minus the log of
its expected sample count), so that popular items are not over-penalised. Early stopping: each of up to
VALIDATION_USERS training users (seeded choice) gives up their newest event; after every epoch the network ranks
the catalogue for them (their other items excluded), and training stops after cfg.patience epochs without a better
NDCG@10, keeping the best epoch's weights. Up to COLD_USERS other users (at most COLD_SHARE of those with 3+
events) are left out of training altogether, each split as Personalize splits a test user (the newest
COLD_TRUTH_SHARE of their events the truth, the rest the input): the network never sees them, so they stand for the
users it will serve without having trained on them (sasrec_blend chooses those users' mixture with v1 on them).
The learning rate decays linearly from cfg.learning_rate to LR_FLOOR of it over the cfg.epochs budget (a function
of the step, so a resumed run continues the schedule): large steps early, small ones near the budget's end, where
the validation NDCG@10 settles instead of wandering on a plateau.
With `checkpoints`, the state after every epoch (network, optimiser, random generators, early-stopping best) is
saved under CHECKPOINT_NAME, and a later call with the same inputs resumes after that epoch with bit-identical
results; a checkpoint made from other inputs is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.recipes.base import Checkpoints
from tastemaker.recipes.sasrec_net import (
    NetConfig,
    bucketed_batches,
    build_windows,
    default_threads,
    make_module,
    state_to_numpy,
)

log = logging.getLogger("tastemaker.recipes.sasrec")
CHECKPOINT_NAME = "sasrec"
CHECKPOINT_FORMAT = 2
VALIDATION_USERS = 2048
MIN_VALIDATION_USERS = 10
COLD_USERS = 64
COLD_SHARE = 0.1
COLD_TRUTH_SHARE = 0.1
SAMPLING_POWER = 0.75
LR_FLOOR = 0.02  # the learning rate at the end of the epoch budget, as a share of cfg.learning_rate
# Full softmax holds at most this many logits of a step at once (128 MiB of float32); a larger step is scored in
# chunks of positions whose logits are recomputed in the backward pass instead of kept.
FULL_SOFTMAX_CHUNK_LOGITS = 2**25


@dataclass(frozen=True)
class TrainedNet:
    """Inference weights and what the epoch loop did."""

    weights: dict[str, np.ndarray]
    epochs_run: int
    best_epoch: int  # the epoch whose weights were kept (epochs_run without validation)
    validation_ndcg: float | None  # NDCG@10 of the kept weights on the validation slice
    resumed_from_epoch: int  # epochs restored from a checkpoint (0: trained from scratch)
    validation: Validation | None = None  # the held-out slice early stopping used


@dataclass(frozen=True)
class ColdUsers:
    """Users left out of training altogether: each one's older events (the input) and newest distinct items (the
    truth)."""

    users: np.ndarray  # indices into the sequences, in the order of inputs and truths
    inputs: list[np.ndarray]
    truths: list[np.ndarray]


@dataclass(frozen=True)
class Validation:
    """Training sequences without the held-out events, and the held-out (history, next item) pairs."""

    sequences: list[np.ndarray]
    weights: list[np.ndarray] | None
    inputs: list[np.ndarray]
    targets: np.ndarray
    users: np.ndarray  # the held-out users (indices into the sequences), in the order of inputs and targets
    cold: ColdUsers | None = None  # users not trained on at all (empty sequences above); None when too few


def carve_validation(
    sequences: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None, rng: np.random.Generator
) -> Validation | None:
    """Leave out the cold users (see the module docstring; none when fewer than MIN_VALIDATION_USERS would be),
    then hold out the newest event of up to VALIDATION_USERS other users with at least 3 events; None if too few."""
    eligible = np.array([u for u, s in enumerate(sequences) if len(s) >= 3], dtype=np.int64)
    if len(eligible) < MIN_VALIDATION_USERS:
        return None
    n_cold = min(COLD_USERS, int(COLD_SHARE * len(eligible)))
    cold_users = np.sort(rng.choice(eligible, size=n_cold, replace=False)) if n_cold >= MIN_VALIDATION_USERS else None
    if cold_users is not None:
        eligible = np.setdiff1d(eligible, cold_users)
    chosen = np.sort(rng.choice(eligible, size=min(VALIDATION_USERS, len(eligible)), replace=False))
    held = np.zeros(len(sequences), dtype=bool)
    held[chosen] = True
    out = np.zeros(len(sequences), dtype=bool)
    cold = None
    if cold_users is not None:
        out[cold_users] = True
        cuts = [len(sequences[u]) - max(1, int(COLD_TRUTH_SHARE * len(sequences[u]))) for u in cold_users]
        cold = ColdUsers(cold_users, [np.asarray(sequences[u][:cut]) for u, cut in zip(cold_users, cuts, strict=True)],
                         [np.unique(sequences[u][cut:]) for u, cut in zip(cold_users, cuts, strict=True)])
    seqs = [np.asarray(s[:0] if out[u] else s[:-1] if held[u] else s) for u, s in enumerate(sequences)]
    w = None if weights is None else [x[:0] if out[u] else x[:-1] if held[u] else x for u, x in enumerate(weights)]
    targets = np.array([int(sequences[u][-1]) for u in chosen], dtype=np.int64)
    return Validation(seqs, w, [seqs[u] for u in chosen], targets, chosen, cold)


def fingerprint(sequences: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None, n_items: int,
                cfg: NetConfig, seed: int, item_features: object | None) -> str:
    """A digest of everything the training depends on: a checkpoint of other inputs must not be resumed."""
    digest = hashlib.sha256(f"{CHECKPOINT_FORMAT}|{cfg!r}|{n_items}|{seed}|{len(sequences)}".encode())
    for seq in sequences:
        digest.update(np.asarray(seq, dtype=np.int64).tobytes() + b"|")
    for w in weights or ():
        digest.update(np.asarray(w, dtype=np.float32).tobytes())
    if item_features is not None:
        digest.update(repr(item_features).encode())
    return digest.hexdigest()


def train_network(
    sequences: Sequence[np.ndarray],
    n_items: int,
    cfg: NetConfig,
    *,
    weights: Sequence[np.ndarray] | None = None,
    item_features: object | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_stop: Callable[[], Exception] | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainedNet:
    """Train SASRec on per-user item sequences (oldest first); `item_features` is a scipy sparse
    (n_items, F) matrix of metadata values, rows normalised, or None."""
    import torch

    torch.set_num_threads(threads or default_threads(cfg))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    features = _sparse_tensor(torch, item_features)
    model = make_module(torch, n_items, cfg, features)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98))
    validation = carve_validation(sequences, weights, rng) if cfg.patience > 0 else None
    train_seqs = validation.sequences if validation else sequences
    train_weights = validation.weights if validation else weights
    tokens, targets, loss_w = build_windows(train_seqs, train_weights, cfg.max_sequence_length)
    if len(tokens) == 0:
        raise ValueError("no user has at least two interactions, so there is nothing to learn from")
    lengths = (tokens > 0).sum(axis=1)
    sampler = _NegativeSampler(targets, n_items, cfg.negative_samples) if 0 < cfg.negative_samples < n_items else None
    key = fingerprint(sequences, weights, n_items, cfg, seed, item_features) if checkpoints is not None else ""
    loop = _LoopState()
    if checkpoints is not None:
        loop = _restore(torch, checkpoints.load(CHECKPOINT_NAME), key, model, optimizer, rng) or loop
    resumed_from = loop.epoch
    if resumed_from:
        log.info("resuming SASRec training after epoch %d from a checkpoint", resumed_from)
    while loop.epoch < cfg.epochs and not (validation and loop.bad_epochs >= cfg.patience):
        if should_stop is not None and should_stop():
            raise on_stop() if on_stop is not None else RuntimeError("training stopped")
        model.train()
        batches = bucketed_batches(lengths, cfg.batch_size, rng)
        for step, rows in enumerate(batches):
            done = (loop.epoch + step / len(batches)) / cfg.epochs
            for group in optimizer.param_groups:
                group["lr"] = cfg.learning_rate * (1.0 - (1.0 - LR_FLOOR) * done)
            width = int(lengths[rows].max())  # windows are left-padded: keep the last `width` columns
            tok = torch.from_numpy(tokens[rows, -width:])
            w = torch.from_numpy(loss_w[rows, -width:])
            tgt = torch.from_numpy(_with_future_targets(targets[rows, -width:], cfg, rng))
            table = model.item_table()
            hidden = model(tok, table)
            valid = tgt >= 0
            h, y, wv = hidden[valid], tgt[valid], w[valid]
            items = table[1:]
            loss = sampler.loss(torch, h, y, items, rng) if sampler is not None else full_softmax_loss(torch, h, y, items)
            loss = (loss * wv).sum() / wv.sum().clamp_min(1e-6)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loop.epoch += 1
        if validation is not None:
            ndcg = _validation_ndcg(torch, model, validation, cfg.max_sequence_length)
            if ndcg > loop.best_ndcg:
                loop.best_ndcg, loop.best_epoch, loop.bad_epochs = ndcg, loop.epoch, 0
                loop.best_weights = state_to_numpy(model, cfg)
            else:
                loop.bad_epochs += 1
            log.info("epoch %d: validation NDCG@10 %.4f (best %.4f at epoch %d)", loop.epoch, ndcg,
                     loop.best_ndcg, loop.best_epoch)
        if progress is not None:
            progress(loop.epoch / cfg.epochs)
        if checkpoints is not None:
            checkpoints.save(CHECKPOINT_NAME, _snapshot(torch, key, loop, model, optimizer, rng))
    if progress is not None and loop.epoch < cfg.epochs:
        progress(1.0)
    if validation is not None and loop.best_weights is not None:
        return TrainedNet(loop.best_weights, loop.epoch, loop.best_epoch, loop.best_ndcg, resumed_from, validation)
    model.eval()
    return TrainedNet(state_to_numpy(model, cfg), loop.epoch, loop.epoch, None, resumed_from)


@dataclass
class _LoopState:
    epoch: int = 0
    best_epoch: int = 0
    best_ndcg: float = -1.0
    bad_epochs: int = 0
    best_weights: dict[str, np.ndarray] | None = None


def _snapshot(torch, key: str, loop: _LoopState, model, optimizer, rng: np.random.Generator) -> bytes:  # type: ignore[no-untyped-def]
    """The loop's full state as torch.save bytes (tensors, numbers and strings only: loads with weights_only)."""
    best = {k: torch.from_numpy(v) for k, v in (loop.best_weights or {}).items()}
    state = {
        "fingerprint": key, "epoch": loop.epoch, "best_epoch": loop.best_epoch, "best_ndcg": loop.best_ndcg,
        "bad_epochs": loop.bad_epochs, "best_weights": best, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _restore(torch, data: bytes | None, key: str, model, optimizer, rng: np.random.Generator) -> _LoopState | None:  # type: ignore[no-untyped-def]
    """Load a snapshot made from the same inputs into model, optimiser and generators; None if there is none."""
    if not data:
        return None
    state = torch.load(io.BytesIO(data), weights_only=True)
    if state.get("fingerprint") != key:
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])
    best = {k: v.numpy().copy() for k, v in state["best_weights"].items()} or None
    return _LoopState(int(state["epoch"]), int(state["best_epoch"]), float(state["best_ndcg"]),
                      int(state["bad_epochs"]), best)


def _sparse_tensor(torch, matrix: object | None):  # type: ignore[no-untyped-def]
    if matrix is None:
        return None
    coo = matrix.tocoo()  # type: ignore[attr-defined]
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=True).coalesce()


def _validation_ndcg(torch, model, validation: Validation, max_len: int, batch: int = 256) -> float:  # type: ignore[no-untyped-def]
    """NDCG@10 of the held-out next items, each user's other history items excluded from the ranking."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        table = model.item_table()
        items = table[1:]
        for start in range(0, len(validation.targets), batch):
            histories = [h[-max_len:] for h in validation.inputs[start:start + batch]]
            target = torch.from_numpy(validation.targets[start:start + batch])
            width = max(len(h) for h in histories)
            tokens = np.zeros((len(histories), width), dtype=np.int64)
            for i, h in enumerate(histories):
                tokens[i, width - len(h):] = np.asarray(h) + 1
            scores = model(torch.from_numpy(tokens), table)[:, -1] @ items.T
            rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
            seen = torch.from_numpy(np.concatenate(histories).astype(np.int64))
            keep = seen != target[torch.from_numpy(rows)]
            scores[torch.from_numpy(rows)[keep], seen[keep]] = float("-inf")
            truth = scores.gather(1, target[:, None])
            rank = (scores > truth).sum(1).numpy()
            total += float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).sum())
    model.train()
    return total / len(validation.targets)


def full_softmax_loss(torch, h, y, items):  # type: ignore[no-untyped-def]
    """Cross-entropy of each position's hidden state `h` against the whole catalogue `items`, target `y`.

    Only positions that carry a target are scored. Steps with more than FULL_SOFTMAX_CHUNK_LOGITS logits are
    split into chunks of positions under activation checkpointing, so memory stays bounded on large catalogues.
    """
    functional = torch.nn.functional
    rows = max(1, FULL_SOFTMAX_CHUNK_LOGITS // max(int(items.shape[0]), 1))
    if len(h) <= rows:
        return functional.cross_entropy(h @ items.T, y, reduction="none")
    from torch.utils.checkpoint import checkpoint

    def chunk(hc, yc, table):  # type: ignore[no-untyped-def]
        return functional.cross_entropy(hc @ table.T, yc, reduction="none")

    return torch.cat([checkpoint(chunk, h[s:s + rows], y[s:s + rows], items, use_reentrant=False)
                      for s in range(0, len(h), rows)])


def _with_future_targets(targets: np.ndarray, cfg: NetConfig, rng: np.random.Generator) -> np.ndarray:
    """Replace a share of next-item targets by an item a few steps further ahead in the same window, so the
    model learns what the user will want soon, not only the very next item."""
    if cfg.future_target_rate <= 0:
        return targets
    rows, width = targets.shape
    ahead = np.arange(width)[None, :] + rng.integers(1, cfg.future_window, size=(rows, width))
    future = np.take_along_axis(targets, np.minimum(ahead, width - 1), axis=1)
    use = (rng.random((rows, width)) < cfg.future_target_rate) & (ahead < width) & (targets >= 0)
    return np.where(use, future, targets)


class _NegativeSampler:
    """Shared negatives per step drawn with probability q ~ count**SAMPLING_POWER, logQ-corrected softmax."""

    def __init__(self, targets: np.ndarray, n_items: int, n_neg: int) -> None:
        counts = np.bincount(targets[targets >= 0], minlength=n_items).astype(np.float64) + 1.0
        q = counts**SAMPLING_POWER
        q /= q.sum()
        self.cdf = np.cumsum(q)
        self.log_expected = np.log(q * n_neg).astype(np.float32)  # expected times each item is drawn per step
        self.n_neg = n_neg

    def loss(self, torch, h, y, items, rng: np.random.Generator):  # type: ignore[no-untyped-def]
        drawn = np.minimum(np.searchsorted(self.cdf, rng.random(self.n_neg)), len(self.cdf) - 1)
        negatives = torch.from_numpy(drawn.astype(np.int64))
        log_q = torch.from_numpy(self.log_expected)
        pos_logit = (h * items[y]).sum(-1, keepdim=True) - log_q[y][:, None]
        neg_logits = h @ items[negatives].T - log_q[negatives][None, :]
        neg_logits = neg_logits.masked_fill(negatives[None, :] == y[:, None], float("-inf"))
        logits = torch.cat([pos_logit, neg_logits], dim=1)
        return torch.nn.functional.cross_entropy(logits, torch.zeros_like(y), reduction="none")

