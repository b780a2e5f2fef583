"""Shared recipe contract: typed hyperparameters, the Recipe interface and batch-first trained models."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from tastemaker.errors import InvalidInputException

if TYPE_CHECKING:
    from tastemaker.recipes.training_data import TrainingData

RECIPE_TYPES = (
    "USER_PERSONALIZATION",
    "PERSONALIZED_RANKING",
    "RELATED_ITEMS",
    "POPULAR_ITEMS",
    "USER_SEGMENTATION",
    "PERSONALIZED_ACTIONS",
)
MODEL_FORMAT_VERSION = 1
_BOOLEAN_VALUES = {"true": True, "false": False}

Progress = Callable[[float], None]
ShouldStop = Callable[[], bool]


class Checkpoints(Protocol):
    """Where a long fit keeps named snapshots of its progress, so that a restarted fit resumes from the last one."""

    def load(self, name: str) -> bytes | None: ...

    def save(self, name: str, data: bytes) -> None: ...


class TrainingStopped(Exception):
    """Raised by Recipe.fit when should_stop() turned true between iterations (StopSolutionVersionCreation)."""


@dataclass(frozen=True)
class HyperParameter:
    """One hyperparameter with its AWS name, default (as AWS reports it, a string) and allowed range."""

    name: str
    kind: str  # "integer" | "continuous" | "categorical"
    default: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()
    tunable: bool = False
    description: str = ""

    @property
    def is_boolean(self) -> bool:
        return self.kind == "categorical" and {v.lower() for v in self.values} == set(_BOOLEAN_VALUES)

    def parse(self, value: str) -> int | float | str | bool:
        """The typed value of `value`; InvalidInputException naming this hyperparameter and its rule."""
        text = str(value).strip()
        if self.kind == "integer":
            try:
                number: float = float(text)
            except ValueError:
                raise InvalidInputException(
                    f"Hyperparameter {self.name} must be an integer, got {value!r}."
                ) from None
            if not math.isfinite(number) or number != int(number):
                raise InvalidInputException(f"Hyperparameter {self.name} must be an integer, got {value!r}.")
            self._check_range(number, value)
            return int(number)
        if self.kind == "continuous":
            try:
                number = float(text)
            except ValueError:
                raise InvalidInputException(f"Hyperparameter {self.name} must be a number, got {value!r}.") from None
            if not math.isfinite(number):
                raise InvalidInputException(f"Hyperparameter {self.name} must be a finite number, got {value!r}.")
            self._check_range(number, value)
            return number
        # categorical: case-insensitive match against the allowed values
        for allowed in self.values:
            if allowed.lower() == text.lower():
                return _BOOLEAN_VALUES[allowed.lower()] if self.is_boolean else allowed
        raise InvalidInputException(
            f"Hyperparameter {self.name} must be one of {', '.join(self.values)}, got {value!r}."
        )

    def _check_range(self, number: float, raw: str) -> None:
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise InvalidInputException(
                f"Hyperparameter {self.name} must be between {_fmt(self.min)} and {_fmt(self.max)}, got {raw!r}."
            )

    @property
    def typed_default(self) -> int | float | str | bool:
        return self.parse(self.default)

    def range_description(self) -> dict[str, Any]:
        """The DescribeAlgorithm `defaultHyperParameterRanges` entry for this hyperparameter."""
        if self.kind == "integer":
            return {"name": self.name, "minValue": int(self.min or 0), "maxValue": int(self.max or 0),
                    "isTunable": self.tunable}
        if self.kind == "continuous":
            return {"name": self.name, "minValue": float(self.min or 0.0), "maxValue": float(self.max or 0.0),
                    "isTunable": self.tunable}
        return {"name": self.name, "values": list(self.values), "isTunable": self.tunable}


def _fmt(number: float | None) -> str:
    if number is None:
        return "unbounded"
    return str(int(number)) if float(number).is_integer() else str(number)


class Recipe(ABC):
    """A recipe: configuration only. fit() learns from TrainingData and returns a TrainedModel."""

    name: ClassVar[str]
    recipe_type: ClassVar[str]
    description: ClassVar[str] = ""
    hyperparameters: ClassVar[tuple[HyperParameter, ...]] = ()
    feature_transformation: ClassVar[str] = ""
    # featureTransformationParameters this recipe accepts, as HyperParameter objects (e.g. trend_discovery_frequency)
    feature_transformation_parameters: ClassVar[tuple[HyperParameter, ...]] = ()
    available: ClassVar[bool] = True  # False for legacy recipes that cannot be used for new solutions
    supports_hpo: ClassVar[bool] = True
    # False when Interactions are optional (aws-semantic-similarity): build TrainingData with check_minimum=False.
    needs_interactions: ClassVar[bool] = True
    needs_items: ClassVar[bool] = False  # True when an Items dataset is required
    # itemExplorationConfig applies (campaigns mix in new and less-known items) and trainingMode UPDATE exists.
    explores_new_items: ClassVar[bool] = False
    returns_metadata: ClassVar[bool] = False  # item metadata in answers without enableMetadataWithRecommendations
    incremental_updates: ClassVar[bool] = False

    def validate_hyperparameters(self, params: dict[str, str]) -> dict[str, Any]:
        """Typed values for every known parameter (defaults filled in). Accepts algorithm hyperparameters
        and featureTransformationParameters in one dict; unknown names raise InvalidInputException."""
        known = {hp.name: hp for hp in (*self.hyperparameters, *self.feature_transformation_parameters)}
        unknown = sorted(set(params) - set(known))
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise InvalidInputException(
                f"Unknown hyperparameter {unknown[0]} for recipe {self.name} (allowed: {allowed})."
            )
        typed = {name: hp.typed_default for name, hp in known.items()}
        for name, raw in params.items():
            typed[name] = known[name].parse(raw)
        return typed

    def default_hyperparameters(self) -> dict[str, str]:
        return {hp.name: hp.default for hp in self.hyperparameters}

    def check_available(self) -> None:
        if not self.available:
            raise InvalidInputException(
                f"Recipe {self.name} is no longer available for new solutions; use aws-user-personalization "
                "or aws-user-personalization-v2."
            )

    @abstractmethod
    def fit(
        self,
        data: TrainingData,
        params: dict[str, str],
        *,
        seed: int = 0,
        progress: Progress | None = None,
        should_stop: ShouldStop | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> TrainedModel:
        """Learn from `data` with string `params`; raise TrainingStopped if should_stop() turns true. Recipes
        with long loops save their state to `checkpoints` and resume from it; others ignore it."""


@runtime_checkable
class RefreshesTrend(Protocol):
    """A model whose scores serving recomputes at each interval boundary from the events streamed since
    training (Trending-Now)."""

    @property
    def interval_seconds(self) -> int: ...

    def refreshed_scores(self, item_index: np.ndarray, timestamps: np.ndarray, now: int) -> np.ndarray: ...


def report(progress: Progress | None, should_stop: ShouldStop | None, fraction: float) -> None:
    """Report progress and honour a stop request; recipes call this between iterations."""
    if should_stop is not None and should_stop():
        raise TrainingStopped("Training was stopped.")
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))))


@dataclass
class TrainedModel(ABC):
    """A learned model. Scores are float32 over the model's catalogue (`item_ids` / `user_ids`), batch-first.

    Subclasses store their learned state as numpy arrays in `arrays` and JSON-able settings in `settings`;
    save/load are generic (one .npy per array, plus model.json; nothing executes code on load).
    """

    recipe_name: str
    recipe_type: str
    item_ids: np.ndarray  # str, (n_items,)
    user_ids: np.ndarray  # str, (n_users,)
    item_popularity: np.ndarray  # float32, unique users per item
    item_first_seen: np.ndarray  # int64 epoch seconds (earliest interaction or CREATION_TIMESTAMP); -1 unknown
    params: dict[str, Any] = field(default_factory=dict)  # typed hyperparameters used for training
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    model_kind: ClassVar[str] = ""  # key in the model-class registry, written to model.json

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    # --- scoring (override what the recipe type supports) -------------------------------------------
    def score_users(
        self,
        user_index: np.ndarray,
        histories: Sequence[np.ndarray],
        context: Sequence[dict[str, str]] | None = None,
    ) -> np.ndarray:
        """(B, n_items) scores for users (-1 = unknown); histories are item indices, oldest first."""
        raise InvalidInputException(f"Recipe {self.recipe_name} does not recommend items for users.")

    def score_items(self, item_index: np.ndarray) -> np.ndarray:
        """(B, n_items) related-item scores for items (-1 = unknown -> popularity)."""
        raise InvalidInputException(f"Recipe {self.recipe_name} does not recommend related items.")

    def score_users_for_items(self, item_index: np.ndarray, users: slice = slice(None)) -> np.ndarray:
        """(B, n_users) affinity of every known user for each item (only the model rows `users` when given:
        the same values as those columns of the whole, for scoring users in partitions)."""
        raise InvalidInputException(f"Recipe {self.recipe_name} does not produce user segments for items.")

    def score_users_for_attributes(self, queries: Sequence[list[tuple[str, str]]],
                                   users: slice = slice(None)) -> np.ndarray:
        """(B, n_users) affinity for item attribute queries (column, value) pairs joined by AND (`users`: as
        score_users_for_items)."""
        raise InvalidInputException(f"Recipe {self.recipe_name} does not produce user segments for attributes.")

    # --- what serving may use (defaults: nothing to prepare, the whole catalogue scored) ------------------
    @property
    def supports_candidates(self) -> bool:
        """Whether serving may score only an index's candidates (a long-term part that is a dot product with
        item factors, as ALS's) instead of the whole catalogue."""
        return False

    def prepare_serving(self) -> None:
        """Called once after a load for serving (e.g. to compile its kernels); nothing by default."""

    # --- id lookups --------------------------------------------------------------------------------
    def item_index(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """int64 indices of item ids in this model's catalogue, -1 for ids it does not know."""
        return _lookup(self.item_ids, ids, self, "_item_order")

    def user_index(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """int64 indices of user ids known to this model, -1 for unknown users."""
        return _lookup(self.user_ids, ids, self, "_user_order")

    def popularity_scores(self, batch: int) -> np.ndarray:
        """Cold-start scores: unique-user popularity, normalised to [0, 1]."""
        pop = self.item_popularity.astype(np.float32)
        top = float(pop.max()) if pop.size else 0.0
        row = pop / top if top > 0 else pop
        return np.broadcast_to(row, (batch, self.n_items)).astype(np.float32, copy=True)

    # --- persistence -------------------------------------------------------------------------------
    def after_load(self) -> None:
        """Hook run by load_model to rebuild cheap derived state. Default: nothing."""

    def save(self, directory: Path) -> None:
        """Write model.json and one uncompressed .npy per array (loadable with mmap, no pickle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        all_arrays = {
            "item_ids": _as_str_array(self.item_ids),
            "user_ids": _as_str_array(self.user_ids),
            "item_popularity": np.asarray(self.item_popularity, dtype=np.float32),
            "item_first_seen": np.asarray(self.item_first_seen, dtype=np.int64),
        }
        for name, arr in self.arrays.items():
            all_arrays[f"a_{name}"] = _as_str_array(arr) if np.asarray(arr).dtype.kind in "OUS" else np.asarray(arr)
        shapes = {}
        for name, arr in all_arrays.items():
            np.save(directory / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            shapes[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
        meta = {
            "format": MODEL_FORMAT_VERSION,
            "model_kind": self.model_kind,
            "recipe_name": self.recipe_name,
            "recipe_type": self.recipe_type,
            "params": _jsonable(self.params),
            "settings": _jsonable(self.settings),
            "arrays": shapes,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


_MODEL_CLASSES: dict[str, type[TrainedModel]] = {}


def register_model_class(cls: type[TrainedModel]) -> type[TrainedModel]:
    """Class decorator: make a TrainedModel subclass loadable by its model_kind."""
    if not cls.model_kind:
        raise ValueError(f"{cls.__name__} needs a model_kind")
    _MODEL_CLASSES[cls.model_kind] = cls
    return cls


def load_model(directory: Path, mmap: bool = True) -> TrainedModel:
    """Load a saved model without executing code (numpy arrays, optionally memory-mapped, and JSON)."""
    directory = Path(directory)
    meta = json.loads((directory / "model.json").read_text())
    if meta.get("format") != MODEL_FORMAT_VERSION:
        raise ValueError(f"Unsupported model format {meta.get('format')!r} in {directory}")
    cls = _MODEL_CLASSES.get(meta["model_kind"])
    if cls is None:
        raise ValueError(f"Unknown model kind {meta['model_kind']!r} in {directory}")
    loaded = {
        name: np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        for name in meta["arrays"]
    }
    model = cls(
        recipe_name=meta["recipe_name"],
        recipe_type=meta["recipe_type"],
        item_ids=loaded.pop("item_ids"),
        user_ids=loaded.pop("user_ids"),
        item_popularity=loaded.pop("item_popularity"),
        item_first_seen=loaded.pop("item_first_seen"),
        params=meta["params"],
        arrays={name[2:]: arr for name, arr in loaded.items()},
        settings=meta["settings"],
    )
    model.after_load()
    return model


def _as_str_array(arr: np.ndarray | Sequence[str]) -> np.ndarray:
    out = np.asarray(arr)
    if out.dtype.kind != "U":
        out = out.astype(str) if out.size else np.zeros(0, dtype="<U1")
    return out


def _lookup(catalogue: np.ndarray, ids: Sequence[str] | np.ndarray, owner: Any, cache: str) -> np.ndarray:
    query = _as_str_array(np.asarray(ids, dtype=object) if not isinstance(ids, np.ndarray) else ids)
    if catalogue.size == 0 or query.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    order = owner.__dict__.get(cache)
    if order is None:
        order = np.argsort(catalogue, kind="stable")
        owner.__dict__[cache] = order
    sorted_ids = catalogue[order]
    pos = np.searchsorted(sorted_ids, query)
    pos_clipped = np.minimum(pos, len(sorted_ids) - 1)
    found = sorted_ids[pos_clipped] == query
    return np.where(found, order[pos_clipped], -1).astype(np.int64)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
