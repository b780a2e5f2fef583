"""Hyperparameter optimisation (performHPO) and recipe selection (performAutoML) with Optuna's TPE sampler.

Resuming: given a `Checkpoints` store, every finished trial (its parameters, metrics or failure) is saved as
one JSON blob per recipe after it ends. A restarted job loads that blob, replays the trials into the Optuna
study (so the sampler conditions on them as if it had run them) and runs only the remaining trials. The blob
carries a key of the search (recipe, ranges, fixed parameters, objective, seed); a different search ignores it.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tastemaker.errors import InvalidInputException
from tastemaker.evaluation.evaluate import recommend_for_split
from tastemaker.evaluation.metrics import personalize_metrics
from tastemaker.evaluation.splits import Split, personalize_split
from tastemaker.recipes.base import Checkpoints, HyperParameter, Recipe, TrainedModel, TrainingStopped
from tastemaker.recipes.training_data import TrainingData

DEFAULT_OBJECTIVE = "normalized_discounted_cumulative_gain_at_25"
OBJECTIVE_METRICS = (
    "coverage",
    "mean_reciprocal_rank_at_25",
    *(f"normalized_discounted_cumulative_gain_at_{k}" for k in (5, 10, 25)),
    *(f"precision_at_{k}" for k in (5, 10, 25)),
    *(f"normalized_discounted_cumulative_gain_with_event_weights_at_{k}" for k in (5, 10, 25)),
)
# Personalize caps hpoResourceConfig at 40 training jobs and 10 parallel jobs.
MAX_TRIALS = 40
MAX_PARALLEL = 10


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: [low, high] for numbers, `values` for categories."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    values: tuple[str, ...] = ()

    @property
    def log_scale(self) -> bool:
        # Ranges spanning two or more orders of magnitude (learning rates, regularisation) search in log space.
        return self.kind != "categorical" and self.low > 0 and self.high / self.low >= 100


@dataclass
class Trial:
    number: int
    params: dict[str, str]
    value: float | None  # None when the trial failed
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


@dataclass
class HpoResult:
    best_params: dict[str, str]  # every hyperparameter of the recipe, as strings
    best_value: float
    objective_metric: str
    trials: list[Trial]


@dataclass
class AutoMLResult:
    best_recipe_name: str
    per_recipe_scores: dict[str, float]
    best_params: dict[str, str]
    objective_metric: str
    results: dict[str, HpoResult]


def search_space(recipe: Recipe, ranges: dict[str, Any] | None) -> list[Dimension]:
    """The dimensions to search: the given algorithmHyperParameterRanges (checked against the recipe), or
    every tunable hyperparameter over its default range when `ranges` is None."""
    known = {hp.name: hp for hp in recipe.hyperparameters}
    if ranges is None:
        return [_default_dimension(hp) for hp in recipe.hyperparameters if hp.tunable]
    ranges = _wire_names(ranges)
    unknown_keys = sorted(set(ranges) - set(_RANGE_KINDS))
    if unknown_keys:
        raise InvalidInputException(
            f"algorithmHyperParameterRanges has an unknown key {unknown_keys[0]} "
            f"(allowed: {', '.join(_RANGE_KINDS)})."
        )
    tunable = sorted(hp.name for hp in recipe.hyperparameters if hp.tunable)
    dims: list[Dimension] = []
    seen: set[str] = set()
    for key, kind in _RANGE_KINDS.items():
        for entry in ranges.get(key) or []:
            if not isinstance(entry, dict):
                raise InvalidInputException(f"Each entry of {key} must be an object with a name.")
            name = entry.get("name")
            hp = known.get(name) if isinstance(name, str) else None
            if hp is None:
                raise InvalidInputException(
                    f"{key} names {name!r}, which is not a hyperparameter of recipe {recipe.name} "
                    f"(tunable: {', '.join(tunable) or 'none'})."
                )
            if not hp.tunable:
                raise InvalidInputException(
                    f"Hyperparameter {name} of recipe {recipe.name} is not tunable "
                    f"(tunable: {', '.join(tunable) or 'none'})."
                )
            if hp.kind != kind:
                raise InvalidInputException(
                    f"Hyperparameter {name} of recipe {recipe.name} is {hp.kind}; give its range in "
                    f"{hp.kind}HyperParameterRanges, not {key}."
                )
            if name in seen:
                raise InvalidInputException(f"Hyperparameter {name} has more than one range.")
            seen.add(hp.name)
            dims.append(_checked_dimension(hp, entry, recipe.name))
    return dims


validate_ranges = search_space  # CreateSolution checks hpoConfig.algorithmHyperParameterRanges with this

_RANGE_KINDS = {
    "integerHyperParameterRanges": "integer",
    "continuousHyperParameterRanges": "continuous",
    "categoricalHyperParameterRanges": "categorical",
}
_SNAKE_TO_WIRE = {
    "integer_hyper_parameter_ranges": "integerHyperParameterRanges",
    "continuous_hyper_parameter_ranges": "continuousHyperParameterRanges",
    "categorical_hyper_parameter_ranges": "categoricalHyperParameterRanges",
    "min_value": "minValue",
    "max_value": "maxValue",
}


def _wire_names(ranges: dict[str, Any]) -> dict[str, Any]:
    """Accept the ranges as sent on the wire (camelCase) or as the api layer hands them on (snake_case)."""
    out: dict[str, Any] = {}
    for key, entries in ranges.items():
        if isinstance(entries, list):
            entries = [{_SNAKE_TO_WIRE.get(k, k): v for k, v in e.items()} if isinstance(e, dict) else e
                       for e in entries]
        out[_SNAKE_TO_WIRE.get(key, key)] = entries
    return out


def _default_dimension(hp: HyperParameter) -> Dimension:
    if hp.kind == "categorical":
        return Dimension(hp.name, hp.kind, values=hp.values)
    return Dimension(hp.name, hp.kind, float(hp.min if hp.min is not None else 0.0), float(hp.max or 0.0))


def _checked_dimension(hp: HyperParameter, entry: dict[str, Any], recipe_name: str) -> Dimension:
    if hp.kind == "categorical":
        values = entry.get("values")
        if not values or not isinstance(values, list):
            raise InvalidInputException(f"Categorical range for {hp.name} needs a non-empty list of values.")
        canonical = []
        for value in values:
            match = [v for v in hp.values if v.lower() == str(value).strip().lower()]
            if not match:
                raise InvalidInputException(
                    f"Value {value!r} is not allowed for hyperparameter {hp.name} of recipe {recipe_name} "
                    f"(allowed: {', '.join(hp.values)})."
                )
            canonical.append(match[0])
        return Dimension(hp.name, hp.kind, values=tuple(dict.fromkeys(canonical)))
    try:
        low, high = float(entry["minValue"]), float(entry["maxValue"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInputException(f"Range for {hp.name} needs numeric minValue and maxValue.") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidInputException(f"Range for {hp.name} must have finite minValue and maxValue.")
    if hp.kind == "integer" and (low != int(low) or high != int(high)):
        raise InvalidInputException(f"Range for integer hyperparameter {hp.name} must have integer bounds.")
    if low > high:
        raise InvalidInputException(
            f"Range for {hp.name} has minValue {_fmt(low)} greater than maxValue {_fmt(high)}."
        )
    lo_allowed = -math.inf if hp.min is None else hp.min
    hi_allowed = math.inf if hp.max is None else hp.max
    if low < lo_allowed or high > hi_allowed:
        raise InvalidInputException(
            f"Range [{_fmt(low)}, {_fmt(high)}] for hyperparameter {hp.name} of recipe {recipe_name} is outside "
            f"its allowed range [{_fmt(hp.min)}, {_fmt(hp.max)}]."
        )
    return Dimension(hp.name, hp.kind, low, high)


def _fmt(number: float | None) -> str:
    if number is None:
        return "unbounded"
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def validation_split(data: TrainingData, seed: int = 0) -> Split:
    """Personalize's split applied to the training data itself: 10% of the training users are held out for
    validation, so the tuner never sees the solution version's test users."""
    return personalize_split(data, seed=seed + 1)


def evaluate(model: TrainedModel, split: Split) -> dict[str, float]:
    """GetSolutionMetrics-style metrics of `model` on a split's queries, computed exactly as the solution
    version's own metrics are (held-out users scored as new users from their input events)."""
    recommended = recommend_for_split(model, split, known_users=False)
    weights = split.train.has_event_weights
    return personalize_metrics(recommended, split.truths, model.n_items, split.truth_weights if weights else None)


def _check_objective(objective_metric: str) -> None:
    if objective_metric not in OBJECTIVE_METRICS:
        raise InvalidInputException(
            f"Unknown objective metric {objective_metric!r} (allowed: {', '.join(OBJECTIVE_METRICS)})."
        )


def _check_budget(max_trials: int, max_parallel: int) -> None:
    if not 1 <= max_trials <= MAX_TRIALS:
        raise InvalidInputException(f"maxNumberOfTrainingJobs must be between 1 and {MAX_TRIALS}, got {max_trials}.")
    if not 1 <= max_parallel <= MAX_PARALLEL:
        raise InvalidInputException(
            f"maxParallelTrainingJobs must be between 1 and {MAX_PARALLEL}, got {max_parallel}."
        )


def tune(
    recipe: Recipe,
    data: TrainingData,
    *,
    ranges: dict[str, Any] | None = None,
    max_trials: int = 10,
    max_parallel: int = 1,
    objective_metric: str = DEFAULT_OBJECTIVE,
    seed: int = 0,
    fixed_params: dict[str, str] | None = None,
    split: Split | None = None,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoints: Checkpoints | None = None,
) -> HpoResult:
    """Search the recipe's hyperparameters with seeded TPE, maximising `objective_metric` on a validation
    split carved from `data`'s users. `fixed_params` (the solution's algorithmHyperParameters) hold the
    hyperparameters that are not searched; searched names override them. With `checkpoints`, finished
    trials are saved as they end and a rerun of the same search resumes after them."""
    _check_objective(objective_metric)
    _check_budget(max_trials, max_parallel)
    dims = search_space(recipe, ranges)
    fixed = dict(fixed_params or {})
    recipe.validate_hyperparameters(fixed)  # unknown names / bad values fail before any training
    if not dims:
        raise InvalidInputException(f"Recipe {recipe.name} has no tunable hyperparameters to optimise.")
    split = split if split is not None else validation_split(data, seed)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    key = _search_key(recipe, dims, fixed, objective_metric, seed)
    trials = _restore_trials(study, dims, checkpoints, _checkpoint_name(recipe), key, max_trials)
    lock = threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        if should_stop is not None and should_stop():
            raise TrainingStopped("Training was stopped.")
        params = {**fixed, **{d.name: _suggest(trial, d) for d in dims}}
        record = Trial(trial.number, params, None)
        try:
            model = recipe.fit(split.train, params, seed=seed, should_stop=should_stop)
            record.metrics = evaluate(model, split)
            record.value = float(record.metrics[objective_metric])
        except (TrainingStopped, KeyboardInterrupt):
            raise
        except (InvalidInputException, ValueError, RuntimeError, ArithmeticError) as exc:
            # a failed trial is recorded and the search goes on, as in SageMaker HPO
            record.error = str(exc) or type(exc).__name__
        with lock:
            trials.append(record)
            if checkpoints is not None:
                checkpoints.save(_checkpoint_name(recipe), _encode_trials(key, trials))
            if progress is not None:
                progress(len(trials) / max_trials)
        if record.value is None:
            raise optuna.TrialPruned(record.error)
        return record.value

    if len(trials) < max_trials:
        study.optimize(objective, n_trials=max_trials - len(trials), n_jobs=max_parallel, catch=())
    trials.sort(key=lambda t: t.number)
    finished = [t for t in trials if t.value is not None]
    if not finished:
        reason = trials[0].error if trials else "no trial ran"
        raise InvalidInputException(f"Every hyperparameter optimisation trial failed; the first failure: {reason}")
    best = max(finished, key=lambda t: (t.value, -t.number))
    best_params = {hp.name: hp.default for hp in recipe.hyperparameters}
    best_params.update(best.params)
    return HpoResult(best_params, float(best.value or 0.0), objective_metric, trials)


def _checkpoint_name(recipe: Recipe) -> str:
    return f"hpo-trials-{recipe.name}.json"


def _search_key(recipe: Recipe, dims: list[Dimension], fixed: dict[str, str], objective_metric: str,
                seed: int) -> str:
    """What makes two searches the same one (so a saved trial of one is a trial of the other)."""
    return json.dumps({"recipe": recipe.name, "dims": [[d.name, d.kind, d.low, d.high, list(d.values)] for d in dims],
                       "fixed": fixed, "objective": objective_metric, "seed": seed}, sort_keys=True)


def _encode_trials(key: str, trials: list[Trial]) -> bytes:
    return json.dumps({"key": key, "trials": [
        {"number": t.number, "params": t.params, "value": t.value, "metrics": t.metrics, "error": t.error}
        for t in sorted(trials, key=lambda t: t.number)
    ]}).encode()


def _restore_trials(study: Any, dims: list[Dimension], checkpoints: Checkpoints | None, name: str,
                    key: str, limit: int) -> list[Trial]:
    """The finished trials a previous run of this search saved, replayed into `study` in their order."""
    saved = checkpoints.load(name) if checkpoints is not None else None
    if not saved:
        return []
    try:
        state = json.loads(saved)
        entries = state["trials"] if state.get("key") == key else []
        restored = [Trial(int(e["number"]), {str(k): str(v) for k, v in e["params"].items()},
                          None if e["value"] is None else float(e["value"]),
                          {str(k): float(v) for k, v in e["metrics"].items()}, str(e["error"]))
                    for e in entries[:limit]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []  # an unreadable checkpoint is no checkpoint: the search starts over
    import optuna

    distributions = {d.name: _distribution(d) for d in dims}
    for position, trial in enumerate(restored):
        trial.number = position  # optuna numbers trials in the order they are added
        params = {d.name: _typed(d, trial.params[d.name]) for d in dims}
        finished = trial.value is not None
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=trial.value if finished else None,
            state=optuna.trial.TrialState.COMPLETE if finished else optuna.trial.TrialState.PRUNED,
        ))
    return restored


def _distribution(dim: Dimension) -> Any:
    import optuna

    if dim.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(dim.values))
    if dim.kind == "integer":
        return optuna.distributions.IntDistribution(int(dim.low), int(dim.high), log=dim.log_scale)
    return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.log_scale)


def _typed(dim: Dimension, value: str) -> str | int | float:
    if dim.kind == "categorical":
        return value
    return int(value) if dim.kind == "integer" else float(value)


def _suggest(trial: Any, dim: Dimension) -> str:
    if dim.kind == "categorical":
        return str(trial.suggest_categorical(dim.name, list(dim.values)))
    if dim.kind == "integer":
        return str(trial.suggest_int(dim.name, int(dim.low), int(dim.high), log=dim.log_scale))
    return repr(float(trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log_scale)))


def auto_ml(
    recipes: Sequence[Recipe],
    data: TrainingData,
    *,
    max_trials_per_recipe: int = 5,
    max_parallel: int = 1,
    objective_metric: str = DEFAULT_OBJECTIVE,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoints: Checkpoints | None = None,
) -> AutoMLResult:
    """performAutoML: tune every USER_PERSONALIZATION recipe in `recipes` on one shared validation split and
    return the recipe (and its hyperparameters) with the best objective value."""
    if not recipes:
        raise InvalidInputException("autoMLConfig.recipeList must name at least one recipe.")
    for recipe in recipes:
        if recipe.recipe_type != "USER_PERSONALIZATION":
            raise InvalidInputException(
                f"AutoML chooses among USER_PERSONALIZATION recipes; {recipe.name} is {recipe.recipe_type}."
            )
    _check_objective(objective_metric)
    split = validation_split(data, seed)
    results: dict[str, HpoResult] = {}
    for position, recipe in enumerate(recipes):
        def recipe_progress(fraction: float, position: int = position) -> None:
            if progress is not None:
                progress((position + fraction) / len(recipes))

        if any(hp.tunable for hp in recipe.hyperparameters):
            results[recipe.name] = tune(
                recipe, data, max_trials=max_trials_per_recipe, max_parallel=max_parallel,
                objective_metric=objective_metric, seed=seed, split=split, progress=recipe_progress,
                should_stop=should_stop, checkpoints=checkpoints,
            )
        else:  # nothing to tune: one training with the defaults
            model = recipe.fit(split.train, {}, seed=seed, should_stop=should_stop)
            metrics = evaluate(model, split)
            value = float(metrics[objective_metric])
            results[recipe.name] = HpoResult(
                recipe.default_hyperparameters(), value, objective_metric, [Trial(0, {}, value, metrics)]
            )
            recipe_progress(1.0)
    scores = {name: result.best_value for name, result in results.items()}
    best_name = max(scores, key=lambda name: scores[name])  # ties keep the earlier recipe in the list
    return AutoMLResult(best_name, scores, results[best_name].best_params, objective_metric, results)
