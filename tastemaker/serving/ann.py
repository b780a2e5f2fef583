"""Approximate top-k over item factors with hnswlib (optional extra `ann`), and its recall against exact."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastemaker.serving.topk import top_k


def ann_available() -> bool:
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


# The arrays of hnswlib's serialised state (Index.__getstate__); everything else in it is a scalar.
STATE_ARRAYS = ("label_lookup_external", "label_lookup_internal", "element_levels", "data_level0", "link_lists")


class FactorIndex:
    """Inner-product HNSW index over item vectors; `query` returns the k best items per user vector."""

    def __init__(self, item_vectors: np.ndarray, *, m: int = 16, ef_construction: int = 200, ef: int = 100,
                 threads: int = 1) -> None:
        import hnswlib

        vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        self.index.init_index(max_elements=vectors.shape[0], M=m, ef_construction=ef_construction)
        self.index.add_items(vectors, np.arange(vectors.shape[0]), num_threads=threads)
        self.index.set_ef(ef)
        self.index.set_num_threads(threads)

    def save(self, folder: Path) -> None:
        """Write the index as hnswlib's own serialised state (what its pickling hands over), without pickle: the
        graph's and vectors' arrays as .npy files and the scalar parameters as JSON, into a new `folder`."""
        state = dict(self.index.__getstate__()[0])
        folder.mkdir(parents=True)
        for name in STATE_ARRAYS:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(state.pop(name)), allow_pickle=False)
        (folder / "params.json").write_text(json.dumps(state))

    @classmethod
    def load(cls, folder: Path, *, ef: int = 100) -> FactorIndex:
        """An index written by `save` (built once, shared by every worker through the cache dir). hnswlib copies
        the memory-mapped arrays into its own structures (~5 ms of CPU for 60,000 x 64) while holding the GIL, as
        every hnswlib call does: its own load_index parses the file element by element, about 8x the CPU, which
        stalled the worker's event loop when a new model was loaded in the background."""
        import hnswlib

        params: dict[str, Any] = json.loads((folder / "params.json").read_text())
        for name in STATE_ARRAYS:
            params[name] = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        found = cls.__new__(cls)
        found.index = hnswlib.Index.__new__(hnswlib.Index)
        found.index.__setstate__((params,))
        found.index.set_ef(ef)
        found.index.set_num_threads(1)
        return found

    @classmethod
    def load_legacy(cls, path: Path, dim: int, size: int, *, ef: int = 100) -> FactorIndex:
        """An index file written by hnswlib's save_index (what releases before the `save` format wrote)."""
        import hnswlib

        found = cls.__new__(cls)
        found.index = hnswlib.Index(space="ip", dim=dim)
        found.index.load_index(str(path), max_elements=size)
        found.index.set_ef(ef)
        found.index.set_num_threads(1)
        return found

    def query(self, user_vectors: np.ndarray, k: int) -> np.ndarray:
        labels, _distances = self.index.knn_query(np.asarray(user_vectors, dtype=np.float32), k=k)
        return labels.astype(np.int64)


@dataclass
class RecallReport:
    items: int
    k: int
    queries: int
    recall: float
    exact_ms: float  # per query, numpy dot + argpartition
    ann_ms: float  # per query
    build_s: float


def measure(item_vectors: np.ndarray, user_vectors: np.ndarray, k: int = 25, ef: int = 100) -> RecallReport:
    """Recall@k of the HNSW index against exact inner-product top-k, and the time per query of each."""
    items = np.ascontiguousarray(item_vectors, dtype=np.float32)
    users = np.ascontiguousarray(user_vectors, dtype=np.float32)
    started = time.perf_counter()
    index = FactorIndex(items, ef=max(ef, k))
    build = time.perf_counter() - started
    started = time.perf_counter()
    exact = [set(top_k(items @ u, k).tolist()) for u in users]
    exact_ms = (time.perf_counter() - started) / len(users) * 1000
    started = time.perf_counter()
    approx = [set(index.query(u[None, :], k)[0].tolist()) for u in users]
    ann_ms = (time.perf_counter() - started) / len(users) * 1000
    recall = float(np.mean([len(a & e) / k for a, e in zip(approx, exact, strict=True)]))
    return RecallReport(items.shape[0], k, len(users), recall, exact_ms, ann_ms, build)
