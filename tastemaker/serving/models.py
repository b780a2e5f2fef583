"""Model cache: each deployed model is loaded once per process from memory-mapped artifact files."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tastemaker.realtime.inline import slow_step
from tastemaker.recipes import load_model
from tastemaker.recipes.base import TrainedModel
from tastemaker.services import Services
from tastemaker.serving import approx, compiled, fused

MAX_MODELS = 32  # loaded models kept per process (least recently used are dropped; files stay mmapped by others)


@dataclass
class LoadedModel:
    """A model with where its files are and how many bytes they map (shared by every worker process)."""

    prefix: str
    model: TrainedModel
    directory: Path
    mapped_bytes: int
    users_sorted: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U1"))  # for user lookups
    users_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def user_position(self, user_id: str) -> int:
        """The user's row in the model (-1 if unknown): a binary search over the memory-mapped sorted ids."""
        sorted_ids = self.users_sorted
        pos = int(sorted_ids.searchsorted(user_id))
        if pos < sorted_ids.size and sorted_ids[pos] == user_id:
            return int(self.users_order[pos])
        return -1


def plain_arrays(model: TrainedModel) -> None:
    """Replace np.memmap objects by plain ndarray views of the same mapped memory: indexing a memmap
    subclass costs microseconds per call on the hot path, a view of the same pages does not."""
    for name in ("item_ids", "user_ids", "item_popularity", "item_first_seen"):
        value = getattr(model, name)
        if isinstance(value, np.memmap):
            setattr(model, name, value.view(np.ndarray))
    for key, value in list(model.arrays.items()):
        if isinstance(value, np.memmap):
            model.arrays[key] = value.view(np.ndarray)


def user_lookup(services: Services, prefix: str, model: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """(sorted user ids, their model rows), saved once in the cache dir and memory-mapped by every worker."""
    folder = services.settings.cache_dir / "serving" / "users" / hashlib.sha1(prefix.encode()).hexdigest()[:20]
    if not (folder / "DONE").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        temp.mkdir(exist_ok=True)
        order = np.argsort(model.user_ids, kind="stable")
        np.save(temp / "sorted.npy", np.ascontiguousarray(model.user_ids[order]), allow_pickle=False)
        np.save(temp / "order.npy", order.astype(np.int64), allow_pickle=False)
        (temp / "DONE").touch()
        try:
            temp.rename(folder)
        except OSError:  # another worker process saved it first
            import shutil

            shutil.rmtree(temp, ignore_errors=True)
    return (np.load(folder / "sorted.npy", mmap_mode="r").view(np.ndarray),
            np.load(folder / "order.npy", mmap_mode="r").view(np.ndarray))


def shared_gram_inverse(services: Services, prefix: str, model: TrainedModel) -> None:
    """An ALS model's (Y^T Y + lambda I)^-1, which its fold-in needs: ~5 * 10^8 multiply-adds over the item factors
    (30-130 ms of CPU at 60,000 x 64), the same in every process. Computed once per host: the first serving process
    to load the model computes it under an exclusive lock file and saves it in the cache dir; the others wait for
    the lock (outside the GIL, in their background load) and read its 32 KiB. A switch used to compute it in
    every worker at once, on the cores their event loops serve from."""
    if not model.supports_candidates:
        return
    path = services.settings.cache_dir / "serving" / "gram" / f"{hashlib.sha1(prefix.encode()).hexdigest()[:20]}.npy"
    if _use_saved_gram(model, path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _use_saved_gram(model, path):  # another process computed it meanwhile
            return
        temp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npy")
        np.save(temp, model.gram_inverse, allow_pickle=False)  # type: ignore[attr-defined]
        temp.replace(path)  # atomic: a reader sees the whole file or none


def _use_saved_gram(model: TrainedModel, path: Path) -> bool:
    try:
        model.use_gram_inverse(np.load(path, allow_pickle=False))  # type: ignore[attr-defined]
    except (OSError, ValueError):  # not saved yet (a damaged file is computed and saved again)
        return False
    return True


def materialise(services: Services, prefix: str) -> Path:
    """A local folder holding the model files: the blob files themselves (local store) or the S3 cache copy."""
    keys = services.blobs.list(prefix)
    if not keys:
        raise FileNotFoundError(f"No model artifacts under {prefix}")
    directory: Path | None = None
    for key in keys:
        path = services.blobs.local_path(key)
        if key.endswith("model.json"):
            directory = path.parent
    if directory is None:
        raise FileNotFoundError(f"The model under {prefix} has no model.json")
    return directory


def open_model(services: Services, prefix: str, *, serving: bool = True) -> LoadedModel:
    """Map a model's files and check them (format, arrays); `serving` also compiles (or loads from numba's cache)
    its serving kernels, which only a process that answers requests needs."""
    directory = materialise(services, prefix)
    model = load_model(directory, mmap=True)
    plain_arrays(model)
    if serving:
        shared_gram_inverse(services, prefix, model)
        model.prepare_serving()
        compiled.warm_up()
        if model.supports_candidates and model.n_items >= approx.ANN_MIN_ITEMS:  # served by the index
            fused.warm_up(model.arrays, model.gram_inverse)  # type: ignore[attr-defined]
    size = sum(p.stat().st_size for p in directory.glob("*.npy"))
    users_sorted, users_order = user_lookup(services, prefix, model)
    return LoadedModel(prefix, model, directory, size, users_sorted, users_order)


class ModelCache:
    """Process-wide: model prefix -> LoadedModel, loaded once (concurrent first requests wait for one load)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._loading: dict[str, threading.Lock] = {}

    def get(self, services: Services, prefix: str) -> LoadedModel:
        hit = self._models.get(prefix)
        if hit is not None:
            return hit
        slow_step("model load")
        with self._lock:
            gate = self._loading.setdefault(prefix, threading.Lock())
        with gate:
            hit = self._models.get(prefix)
            if hit is not None:
                return hit
            loaded = open_model(services, prefix)
            with self._lock:
                if len(self._models) >= MAX_MODELS:
                    self._models.pop(next(iter(self._models)))
                self._models[prefix] = loaded
            return loaded

    def loaded(self) -> list[LoadedModel]:
        return list(self._models.values())

    def forget(self, prefix: str) -> None:
        with self._lock:
            self._models.pop(prefix, None)


def model_cache(services: Services) -> ModelCache:
    return services.serving.models
