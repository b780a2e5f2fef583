"""Recipe registry: get_recipe(name), load_model(directory), and every recipe module registered at import."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from tastemaker.errors import InvalidInputException
from tastemaker.recipes.base import (
    HyperParameter,
    Recipe,
    TrainedModel,
    TrainingStopped,
    register_model_class,
)
from tastemaker.recipes.base import load_model as _load_saved_model
from tastemaker.recipes.training_data import InsufficientDataError, TrainingConfig, TrainingData

_RECIPES: dict[str, Recipe] = {}

# Modules that register recipes when imported. sasrec (PyTorch, v2 recipes) is optional.
_RECIPE_MODULES = (
    "tastemaker.recipes.popularity",
    "tastemaker.recipes.trending",
    "tastemaker.recipes.user_personalization",
    "tastemaker.recipes.sims",
    "tastemaker.recipes.similar_items",
    "tastemaker.recipes.semantic_similarity",
    "tastemaker.recipes.affinity",
    "tastemaker.recipes.legacy",
    "tastemaker.recipes.next_best_action",
)
_OPTIONAL_MODULES = ("tastemaker.recipes.sasrec",)
_loaded = False
_loading = threading.RLock()  # an RLock: a recipe module may look up another recipe while imported


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: add a recipe (instantiated once; recipes hold configuration only) to the registry."""
    _RECIPES[cls.name] = cls()
    return cls


def _load_modules() -> None:
    """Import every recipe module once; concurrent first callers wait until all are registered (a caller
    must never see a half-filled registry: "Unknown recipe" for a recipe still being imported)."""
    global _loaded
    if _loaded:
        return
    with _loading:
        if _loaded:
            return
        for module in _RECIPE_MODULES:
            importlib.import_module(module)
        for module in _OPTIONAL_MODULES:
            try:
                importlib.import_module(module)
            except ImportError as exc:  # module absent, or its optional dependency (torch) not installed
                if exc.name not in (module, "torch"):
                    raise
        _loaded = True


def all_recipes() -> dict[str, Recipe]:
    """Every registered recipe by name (including legacy ones that refuse new solutions)."""
    _load_modules()
    return dict(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe called `name` (e.g. 'aws-user-personalization'); InvalidInputException if unknown."""
    _load_modules()
    recipe = _RECIPES.get(name)
    if recipe is None:
        raise InvalidInputException(f"Unknown recipe {name!r}. Known recipes: {', '.join(sorted(_RECIPES))}.")
    return recipe


def recipe_name_from_arn(recipe_arn: str) -> str:
    """'arn:aws:personalize:::recipe/aws-sims' -> 'aws-sims'."""
    prefix = "arn:aws:personalize:::recipe/"
    if not recipe_arn.startswith(prefix):
        raise InvalidInputException(f"Invalid recipe ARN {recipe_arn!r}; expected {prefix}<name>.")
    return recipe_arn[len(prefix):]


def load_model(directory: Path, mmap: bool = True) -> TrainedModel:
    """Load a model saved by TrainedModel.save (no code executed; arrays memory-mapped when mmap)."""
    _load_modules()  # model classes register when their recipe module is imported
    return _load_saved_model(Path(directory), mmap=mmap)


__all__ = [
    "HyperParameter",
    "InsufficientDataError",
    "Recipe",
    "TrainedModel",
    "TrainingConfig",
    "TrainingData",
    "TrainingStopped",
    "all_recipes",
    "get_recipe",
    "load_model",
    "recipe_name_from_arn",
    "register_model_class",
    "register_recipe",
]
