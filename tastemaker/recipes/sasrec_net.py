"""SASRec network: torch training (imported lazily) and a numpy forward pass for inference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NetConfig:
    """Shape and training settings of one SASRec network."""

    hidden_dimension: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    max_sequence_length: int = 200
    dropout: float = 0.2
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 40
    negative_samples: int = 2048
    future_target_rate: float = 0.0
    future_window: int = 10
    patience: int = 0  # early stopping: epochs without a better validation NDCG@10 before stopping (0: never)

    def weight_names(self) -> list[str]:
        names = ["item_embedding", "position_embedding"]
        for b in range(self.num_blocks):
            names += [f"block{b}.{part}" for part in BLOCK_PARTS]
        return names + ["final_norm.weight", "final_norm.bias"]


BLOCK_PARTS = (
    "norm1.weight", "norm1.bias", "qkv.weight", "qkv.bias", "out.weight", "out.bias",
    "norm2.weight", "norm2.bias", "ff1.weight", "ff1.bias", "ff2.weight", "ff2.bias",
)


def build_windows(
    sequences: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None, max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut each item sequence (oldest first) into left-padded training windows, newest window first.

    Returns tokens (N, max_len) with item index + 1 and 0 for padding, targets (N, max_len) with the
    next item index or -1, and per-target loss weights. Long histories give several windows so that
    no interaction is wasted.
    """
    starts: list[tuple[int, int, int]] = []
    for u, seq in enumerate(sequences):
        end = len(seq)
        while end >= 2:
            begin = max(0, end - max_len - 1)
            starts.append((u, begin, end))
            end = begin + 1 if begin > 0 else 0
    n = len(starts)
    tokens = np.zeros((n, max_len), dtype=np.int64)
    targets = np.full((n, max_len), -1, dtype=np.int64)
    loss_w = np.zeros((n, max_len), dtype=np.float32)
    for row, (u, begin, end) in enumerate(starts):
        chunk = np.asarray(sequences[u][begin:end], dtype=np.int64)
        width = len(chunk) - 1
        tokens[row, max_len - width:] = chunk[:-1] + 1
        targets[row, max_len - width:] = chunk[1:]
        loss_w[row, max_len - width:] = 1.0 if weights is None else weights[u][begin + 1:end]
    return tokens, targets, loss_w


def make_module(torch, n_items: int, cfg: NetConfig, item_features=None):  # type: ignore[no-untyped-def]
    """The torch module, built inside a function so that importing this file never needs torch.

    `item_features` (a torch sparse (n_items, F) matrix, rows normalised) adds a learned embedding per
    metadata value to each item's id embedding; the sum is the item's input and output vector.
    """
    nn = torch.nn
    functional = torch.nn.functional
    d, heads = cfg.hidden_dimension, cfg.num_heads

    class Block(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)
            self.norm2 = nn.LayerNorm(d)
            self.ff1 = nn.Linear(d, d)
            self.ff2 = nn.Linear(d, d)
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x, attn_mask):  # type: ignore[no-untyped-def]
            b, length, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).split(d, dim=-1)
            q, k, v = (t.view(b, length, heads, d // heads).transpose(1, 2) for t in (q, k, v))
            att = functional.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask
            )
            x = x + self.drop(self.out(att.transpose(1, 2).reshape(b, length, d)))
            h = self.ff2(functional.gelu(self.ff1(self.norm2(x)), approximate="tanh"))
            return x + self.drop(h)

    class SasRec(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.item_embedding = nn.Embedding(n_items + 1, d, padding_idx=0)
            self.position_embedding = nn.Embedding(cfg.max_sequence_length, d)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.num_blocks))
            self.final_norm = nn.LayerNorm(d)
            self.drop = nn.Dropout(cfg.dropout)
            nn.init.normal_(self.item_embedding.weight, std=d**-0.5)
            nn.init.normal_(self.position_embedding.weight, std=d**-0.5)
            self.features = item_features
            if item_features is not None:
                self.feature_embedding = nn.Parameter(torch.randn(item_features.shape[1], d) * d**-0.5)
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()

        def item_table(self):  # type: ignore[no-untyped-def]
            """(n_items + 1, d): row 0 is padding, row i + 1 is item i (id embedding + metadata embedding)."""
            table = self.item_embedding.weight
            if self.features is None:
                return table
            extra = torch.sparse.mm(self.features, self.feature_embedding)
            return table + torch.cat([extra.new_zeros(1, d), extra])

        def forward(self, tokens, table=None):  # type: ignore[no-untyped-def]
            length = tokens.shape[1]
            real = tokens > 0
            table = self.item_table() if table is None else table
            positions = torch.arange(cfg.max_sequence_length - length, cfg.max_sequence_length)
            x = table[tokens] * math.sqrt(d) + self.position_embedding(positions)
            x = self.drop(x) * real.unsqueeze(-1)
            causal = torch.ones(length, length, dtype=torch.bool).tril()
            # Queries see earlier real items and themselves (so padded rows never see an empty set).
            mask = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool)
            mask = mask[:, None, :, :]
            for block in self.blocks:
                x = block(x, mask)
            return self.final_norm(x)

    return SasRec()


def state_to_numpy(model, cfg: NetConfig) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """The inference weights as float32 arrays; `item_embedding` is the full item table (metadata included)."""
    state = model.state_dict()
    out = {name: state[_torch_key(name)].detach().numpy().astype(np.float32, copy=True)
           for name in cfg.weight_names()}
    out["item_embedding"] = model.item_table().detach().numpy().astype(np.float32, copy=True)
    return out


def _torch_key(name: str) -> str:
    """Our flat weight name -> the torch state_dict key."""
    if name in ("item_embedding", "position_embedding"):
        return name + ".weight"
    return name.replace("block", "blocks.", 1) if name.startswith("block") else name


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of windows with similar lengths (little padding), in random order."""
    jitter = rng.random(len(lengths))
    order = np.lexsort((jitter, lengths // 8))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def default_threads(cfg: NetConfig) -> int:
    """2 threads for real models; 1 for tiny ones, where thread hand-offs cost more than the work (on a
    2-vCPU machine a 2-thread step of a tiny model measured up to 20x slower than a 1-thread one). At
    movielens-1m-partial's steps (33 windows x 200 positions x 64) 2 threads measured 8.5 s an epoch against
    11.3 s for one (idle machine, 512 negatives), for 1.5x the CPU time."""
    return 2 if cfg.batch_size * cfg.max_sequence_length * cfg.hidden_dimension >= 2**18 else 1


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * weight + bias


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x @ weight.T + bias over the last axis (as 2-D BLAS calls: numpy's 3-D @ transposed 2-D is far slower)."""
    return (x.reshape(-1, x.shape[-1]) @ weight.T + bias).reshape(*x.shape[:-1], weight.shape[0])


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.float32(math.sqrt(2.0 / math.pi)) * (x + 0.044715 * x**3)))


def encode_histories(
    weights: dict[str, np.ndarray], cfg: NetConfig, histories: Sequence[np.ndarray]
) -> np.ndarray:
    """Numpy forward pass: the final hidden state after each history's newest item, (B, d) float32.

    Histories are item indices, oldest first; only the newest max_sequence_length are used. Empty
    histories give a zero row (the caller decides what to do for them).
    """
    max_len, d, heads = cfg.max_sequence_length, cfg.hidden_dimension, cfg.num_heads
    trimmed = [np.asarray(h, dtype=np.int64)[-max_len:] for h in histories]
    width = max((len(h) for h in trimmed), default=0)
    out = np.zeros((len(trimmed), d), dtype=np.float32)
    if width == 0:
        return out
    tokens = np.zeros((len(trimmed), width), dtype=np.int64)
    for i, h in enumerate(trimmed):
        if len(h):
            tokens[i, width - len(h):] = h + 1
    real = tokens > 0
    x = weights["item_embedding"][tokens] * np.float32(math.sqrt(d))
    x = (x + weights["position_embedding"][max_len - width:]) * real[..., None]
    causal = np.tril(np.ones((width, width), dtype=bool))
    mask = (causal[None] & real[:, None, :]) | np.eye(width, dtype=bool)[None]
    bias = np.where(mask, np.float32(0.0), np.float32(-np.inf))[:, None]  # (B, 1, L, L)
    head_dim = d // heads
    for b in range(cfg.num_blocks):
        p = {part: weights[f"block{b}.{part}"] for part in BLOCK_PARTS}
        qkv = _linear(_layer_norm(x, p["norm1.weight"], p["norm1.bias"]), p["qkv.weight"], p["qkv.bias"])
        q, k, v = (
            qkv[..., i * d:(i + 1) * d].reshape(len(x), width, heads, head_dim).transpose(0, 2, 1, 3)
            for i in range(3)
        )
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head_dim)) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        att = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + _linear(att.transpose(0, 2, 1, 3).reshape(len(x), width, d), p["out.weight"], p["out.bias"])
        h = _linear(_layer_norm(x, p["norm2.weight"], p["norm2.bias"]), p["ff1.weight"], p["ff1.bias"])
        x = x + _linear(_gelu_tanh(h), p["ff2.weight"], p["ff2.bias"])
    last = _layer_norm(x[:, -1], weights["final_norm.weight"], weights["final_norm.bias"])
    nonempty = np.array([len(h) > 0 for h in trimmed])
    out[nonempty] = last[nonempty].astype(np.float32)
    return out


def torch_forward_last(weights: dict[str, np.ndarray], cfg: NetConfig, histories: Sequence[np.ndarray]):  # type: ignore[no-untyped-def]
    """The same encoding through the torch module (used by tests to check the numpy pass)."""
    import torch

    n_items = weights["item_embedding"].shape[0] - 1
    model = make_module(torch, n_items, cfg)
    model.load_state_dict({_torch_key(name): torch.from_numpy(arr) for name, arr in weights.items()})
    model.eval()
    trimmed = [np.asarray(h, dtype=np.int64)[-cfg.max_sequence_length:] for h in histories]
    width = max(len(h) for h in trimmed)
    tokens = np.zeros((len(trimmed), width), dtype=np.int64)
    for i, h in enumerate(trimmed):
        tokens[i, width - len(h):] = h + 1
    with torch.no_grad():
        return model(torch.from_numpy(tokens))[:, -1].numpy()
