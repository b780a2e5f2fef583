"""Model cache: each deployed model is loaded once per process from memory-mapped artifact files."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from tastemaker.control.context import Services
from tastemaker.recipes import load_model
from tastemaker.recipes.base import TrainedModel

MAX_MODELS = 32  # loaded models kept per process (least recently used are dropped; files stay mmapped by others)


@dataclass
class LoadedModel:
    """A model with where its files are and how many bytes they map (shared by every worker process)."""

    prefix: str
    model: TrainedModel
    directory: Path
    mapped_bytes: int


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
        with self._lock:
            gate = self._loading.setdefault(prefix, threading.Lock())
        with gate:
            hit = self._models.get(prefix)
            if hit is not None:
                return hit
            directory = materialise(services, prefix)
            model = load_model(directory, mmap=True)
            size = sum(p.stat().st_size for p in directory.glob("*.npy"))
            loaded = LoadedModel(prefix, model, directory, size)
            with self._lock:
                if len(self._models) >= MAX_MODELS:
                    self._models.pop(next(iter(self._models)))
                self._models[prefix] = loaded
            return loaded

    def loaded(self) -> list[LoadedModel]:
        return list(self._models.values())


def model_cache(services: Services) -> ModelCache:
    return services.caches.setdefault("serving.models", ModelCache())
