"""The training subprocess: read a spec, build training data, tune, evaluate, fit, save (no DB access).

Run as `python -m tastemaker.jobs.train_process SPEC.json`. It writes OUT/result.json and OUT/model/.
Exit codes: 0 trained, 3 the data or configuration was refused (reason in result.json), 4 stopped.
When OUT/checkpoints/ exists (the parent mirrors it to and from the blob store), the evaluation's metrics and
the recipes' epoch checkpoints are kept there, so a run started again after a crash resumes from them.
What it is doing is in OUT/progress.json (`Stages`): each stage it has entered with its start time, and the
current fit's fraction done (the recipes' progress callback); the parent records it on the version while it runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit and torch bring their own threads

from tastemaker.jobs.spec import TrainingSpec  # after the thread setting: it loads numpy

EXIT_REFUSED, EXIT_STOPPED = 3, 4
CHECKPOINT_FOLDER = "checkpoints"
PROGRESS_FILE = "progress.json"
STAGE_WRITE_SECONDS = 0.5  # within a stage, the fraction done is rewritten at most this often
_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class FolderCheckpoints:
    """Checkpoints (tastemaker.recipes.base) as files of one folder, each written to a temp file and renamed, so
    a reader (the parent's upload) never sees half a file. `prefix` keeps the fits of one run apart."""

    def __init__(self, folder: Path, prefix: str = "") -> None:
        self.folder, self.prefix = folder, prefix

    def scoped(self, prefix: str) -> FolderCheckpoints:
        return FolderCheckpoints(self.folder, self.prefix + prefix)

    def _path(self, name: str) -> Path:
        if not _CHECKPOINT_NAME.fullmatch(self.prefix + name):
            raise ValueError(f"checkpoint name {self.prefix + name!r} must be letters, digits, '.', '_' or '-'")
        return self.folder / (self.prefix + name)

    def load(self, name: str) -> bytes | None:
        path = self._path(name)
        return path.read_bytes() if path.exists() else None

    def save(self, name: str, data: bytes) -> None:
        path = self._path(name)
        temp = self.folder / f".{path.name}.tmp"
        temp.write_bytes(data)
        os.replace(temp, path)


class Stages:
    """OUT/progress.json: {"stages": [[name, started_at], ...], "fraction": the current stage's fit fraction or
    None}, rewritten whole (a temporary file renamed over it, so a reader never sees half of it) at each stage
    and, called with a fraction (a recipe's `progress`), at most every STAGE_WRITE_SECONDS."""

    def __init__(self, out: Path) -> None:
        self.path = out / PROGRESS_FILE
        self.stages: list[tuple[str, float]] = []
        self._written = 0.0

    def enter(self, name: str) -> None:
        self.stages.append((name, round(time.time(), 3)))
        self._write(None)

    def __call__(self, fraction: float) -> None:
        if time.monotonic() - self._written >= STAGE_WRITE_SECONDS:
            self._write(round(fraction, 4))

    def _write(self, fraction: float | None) -> None:
        self._written = time.monotonic()
        temporary = self.path.with_name(PROGRESS_FILE + ".tmp")
        temporary.write_text(json.dumps({"stages": self.stages, "fraction": fraction}))
        os.replace(temporary, self.path)


def load_tables(spec: TrainingSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dataset tables (upserts and dedup applied) and parsed schemas by dataset type."""
    import pyarrow as pa

    from tastemaker.data.schemas import parse_schema
    from tastemaker.data.tables import read_dataset

    tables: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for dataset_type, info in spec.datasets.items():
        schema = parse_schema(info.schema, info.domain)
        schemas[dataset_type] = schema
        parts = [Path(p) for p in info.parts]
        tables[dataset_type] = read_dataset(parts, schema, dataset_type) if parts else None
    if spec.events_part and "Interactions" in schemas:
        streamed = read_dataset([Path(spec.events_part)], schemas["Interactions"], "Interactions")
        base = tables.get("Interactions")
        tables["Interactions"] = streamed if base is None else pa.concat_tables(
            [base, streamed.select(base.column_names).cast(base.schema)])
    return tables, schemas


def run(spec: TrainingSpec, stop_file: Path) -> dict[str, Any]:
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.training_data import TrainingData

    def should_stop() -> bool:
        return stop_file.exists()

    started = time.time()
    stages = Stages(spec.out)
    stages.enter("reading the datasets")
    tables, schemas = load_tables(spec)
    if tables.get("Interactions") is None:
        raise ValueError("Create failed. The dataset group has no Interactions data; import interactions first.")
    recipe_for_data = get_recipe(spec.recipe) if spec.recipe else None
    data = TrainingData.from_tables(tables["Interactions"], tables.get("Items"), tables.get("Users"),
                                    spec.config, item_schema=schemas.get("Items"),
                                    user_schema=schemas.get("Users"),
                                    check_minimum=getattr(recipe_for_data, "needs_interactions", True))
    if tables.get("Actions") is not None:  # aws-next-best-action
        from tastemaker.recipes.action_data import ActionData

        data.actions = ActionData.from_tables(tables["Actions"], tables.get("Action_Interactions"))
    params: dict[str, str] = dict(spec.params)
    result: dict[str, Any] = {}
    spark = None
    if spec.spark_master and data.n_interactions >= spec.spark_min_interactions:
        from tastemaker.spark.training import use_spark_als  # pyspark is an optional extra: only when used

        spark = use_spark_als(spec.spark_master)  # every ALS fit of this process (evaluation, final, HPO)
    folder = spec.out / CHECKPOINT_FOLDER
    checkpoints = FolderCheckpoints(folder) if folder.is_dir() else None
    recipe_name = spec.recipe
    if spec.perform_auto_ml:
        from tastemaker.recipes.hpo import auto_ml

        stages.enter("choosing a recipe (AutoML)")
        candidates = [get_recipe(n) for n in spec.auto_ml_recipes]
        chosen = auto_ml(candidates, data, seed=spec.seed, should_stop=should_stop, progress=stages,
                         checkpoints=checkpoints.scoped("automl.") if checkpoints else None)
        recipe_name = chosen.best_recipe_name
        result["auto_ml_result"] = {"best_recipe_arn": f"arn:aws:personalize:::recipe/{recipe_name}"}
        params.update(chosen.best_params)  # AutoML already tuned each candidate
        result["tuned_hpo_params"] = {"algorithm_hyper_parameters": dict(chosen.best_params)}
    recipe = get_recipe(str(recipe_name))
    if spec.perform_hpo and not spec.perform_auto_ml:
        from tastemaker.recipes.hpo import tune

        stages.enter("tuning hyperparameters")
        hpo = spec.hpo
        resource = hpo.get("hpo_resource_config") or {}
        tuned = tune(recipe, data, ranges=hpo.get("algorithm_hyper_parameter_ranges"),
                     max_trials=int(resource.get("max_number_of_training_jobs") or 8),
                     max_parallel=int(resource.get("max_parallel_training_jobs") or 1),
                     seed=spec.seed, fixed_params=params, should_stop=should_stop, progress=stages,
                     checkpoints=checkpoints.scoped("hpo.") if checkpoints else None)
        params.update(tuned.best_params)
        result["tuned_hpo_params"] = {"algorithm_hyper_parameters": tuned.best_params}
    if should_stop():
        raise StopIteration
    evaluation: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    if spec.evaluate:
        stages.enter("computing offline metrics")
        metrics, evaluation = _evaluate(recipe, data, params, spec.seed, should_stop, checkpoints, stages)
    stages.enter("training the model")
    model = recipe.fit(data, params, seed=spec.seed, progress=stages, should_stop=should_stop,
                       checkpoints=checkpoints.scoped("model.") if checkpoints else None)
    stages.enter("saving the model")
    model.save(spec.out / "model")
    if evaluation:
        evaluation["metrics"] = metrics
        (spec.out / "model" / "evaluation.json").write_text(json.dumps(evaluation))
    result.update({"status": "ok", "recipe": recipe.name, "metrics": metrics,
                   "training_seconds": round(time.time() - started, 3),
                   "n_interactions": int(data.n_interactions), "n_users": int(data.n_users),
                   "n_items": int(data.n_items)})
    if spark is not None and spark.fits:
        result["spark"] = {"master": spec.spark_master, "als_fits": spark.fits}
    return result


def _evaluate(recipe: Any, data: Any, params: dict[str, str], seed: int, should_stop: Any,
              checkpoints: FolderCheckpoints | None, stages: Stages) -> tuple[dict[str, Any], dict[str, Any]]:
    """GetSolutionMetrics and their evidence; taken from the checkpoint of an earlier run when there is one."""
    from tastemaker.evaluation import evaluate_solution

    digest = _inputs_digest(data, params, seed)
    saved = checkpoints.load("evaluation.json") if checkpoints else None
    if saved is not None and (done := json.loads(saved)).get("inputs") == digest:
        return done["metrics"], done["evaluation"]
    evaluation: dict[str, Any] = {}
    fit = functools.partial(recipe.fit, progress=stages, should_stop=should_stop,
                            checkpoints=checkpoints.scoped("evaluation.") if checkpoints else None)
    metrics = evaluate_solution(recipe, data, params, seed=seed, report=evaluation, fit=fit)
    if checkpoints is not None:
        checkpoints.save("evaluation.json", json.dumps({"inputs": digest, "metrics": metrics,
                                                        "evaluation": evaluation}).encode())
    return metrics, evaluation


def _inputs_digest(data: Any, params: dict[str, str], seed: int) -> str:
    """What the evaluation depends on: events streamed in since an earlier run make its metrics stale."""
    import numpy as np

    digest = hashlib.sha256(json.dumps([sorted(params.items()), seed, data.n_items]).encode())
    for array in (data.users, data.items, data.timestamps, data.weights):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = TrainingSpec.from_json(spec_path.read_text())
    out = spec.out
    out.mkdir(parents=True, exist_ok=True)
    stop_file = out / "STOP"
    from tastemaker.errors import JobFailed, TastemakerError
    from tastemaker.recipes.base import TrainingStopped
    from tastemaker.recipes.training_data import InsufficientDataError

    code = 0
    try:
        result = run(spec, stop_file)
    except (TrainingStopped, StopIteration):
        result, code = {"status": "stopped"}, EXIT_STOPPED
    except JobFailed as exc:  # e.g. tastemaker.spark.training's Spark failure, with its precise reason
        traceback.print_exc()
        result, code = {"status": "error", "reason": exc.reason}, 1
    except (InsufficientDataError, TastemakerError, ValueError) as exc:
        result, code = {"status": "refused", "reason": getattr(exc, "message", None) or str(exc)}, EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the version
        traceback.print_exc()
        result, code = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}, 1
    (out / "result.json").write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
