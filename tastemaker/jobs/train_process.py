"""The training subprocess: read a spec, build training data, tune, evaluate, fit, save (no DB access).

Run as `python -m tastemaker.jobs.train_process SPEC.json`. It writes OUT/result.json and OUT/model/.
Exit codes: 0 trained, 3 the data or configuration was refused (reason in result.json), 4 stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit and torch bring their own threads

EXIT_REFUSED, EXIT_STOPPED = 3, 4


def load_tables(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dataset tables (upserts and dedup applied) and parsed schemas by dataset type."""
    import pyarrow as pa

    from tastemaker.data.schemas import parse_schema
    from tastemaker.data.tables import read_dataset

    tables: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for dataset_type, info in spec["datasets"].items():
        schema = parse_schema(info["schema"], info.get("domain"))
        schemas[dataset_type] = schema
        parts = [Path(p) for p in info["parts"]]
        tables[dataset_type] = read_dataset(parts, schema, dataset_type) if parts else None
    events = spec.get("events_part")
    if events and "Interactions" in schemas:
        from tastemaker.data.tables import read_dataset as read

        streamed = read([Path(events)], schemas["Interactions"], "Interactions")
        base = tables.get("Interactions")
        tables["Interactions"] = streamed if base is None else pa.concat_tables(
            [base, streamed.select(base.column_names).cast(base.schema)])
    return tables, schemas


def training_config(spec: dict[str, Any]) -> Any:
    from tastemaker.recipes.training_data import TrainingConfig

    cfg = spec.get("config") or {}
    threshold = cfg.get("event_value_threshold")
    return TrainingConfig(
        event_type=cfg.get("event_type"),
        event_value_threshold=float(threshold) if threshold not in (None, "") else None,
        events_config=[(e["event_type"], e.get("event_value_threshold"), float(e.get("weight", 1.0)))
                       for e in cfg.get("events_config") or []],
        included_columns=cfg.get("included_columns") or {},
        excluded_columns=cfg.get("excluded_columns") or {},
        domain_event_type_message=bool(cfg.get("domain_event_type_message")),
    )


def run(spec: dict[str, Any], stop_file: Path) -> dict[str, Any]:
    from tastemaker.evaluation import evaluate_solution
    from tastemaker.recipes import get_recipe
    from tastemaker.recipes.training_data import TrainingData

    def should_stop() -> bool:
        return stop_file.exists()

    started = time.time()
    tables, schemas = load_tables(spec)
    if tables.get("Interactions") is None:
        raise ValueError("Create failed. The dataset group has no Interactions data; import interactions first.")
    recipe_for_data = get_recipe(spec["recipe"]) if spec.get("recipe") else None
    data = TrainingData.from_tables(tables["Interactions"], tables.get("Items"), tables.get("Users"),
                                    training_config(spec), item_schema=schemas.get("Items"),
                                    user_schema=schemas.get("Users"),
                                    check_minimum=getattr(recipe_for_data, "needs_interactions", True))
    params: dict[str, str] = dict(spec.get("params") or {})
    result: dict[str, Any] = {}
    recipe_name = spec.get("recipe")
    if spec.get("perform_auto_ml"):
        from tastemaker.recipes.hpo import auto_ml

        candidates = [get_recipe(n) for n in spec.get("auto_ml_recipes") or []]
        chosen = auto_ml(candidates, data, seed=spec.get("seed", 0))
        recipe_name = chosen.best_recipe_name
        result["auto_ml_result"] = {"best_recipe_arn": f"arn:aws:personalize:::recipe/{recipe_name}"}
        params.update(chosen.best_params)  # AutoML already tuned each candidate
        result["tuned_hpo_params"] = {"algorithm_hyper_parameters": dict(chosen.best_params)}
    recipe = get_recipe(str(recipe_name))
    if spec.get("perform_hpo") and not spec.get("perform_auto_ml"):
        from tastemaker.recipes.hpo import tune

        hpo = spec.get("hpo") or {}
        resource = hpo.get("hpo_resource_config") or {}
        tuned = tune(recipe, data, ranges=hpo.get("algorithm_hyper_parameter_ranges"),
                     max_trials=int(resource.get("max_number_of_training_jobs") or 8),
                     max_parallel=int(resource.get("max_parallel_training_jobs") or 1),
                     seed=spec.get("seed", 0), fixed_params=params)
        params.update(tuned.best_params)
        result["tuned_hpo_params"] = {"algorithm_hyper_parameters": tuned.best_params}
    if should_stop():
        raise StopIteration
    evaluation: dict[str, Any] = {}
    metrics = (evaluate_solution(recipe, data, params, seed=spec.get("seed", 0), report=evaluation)
               if spec.get("evaluate", True) else {})
    model = recipe.fit(data, params, seed=spec.get("seed", 0), should_stop=should_stop)
    model.save(Path(spec["out"]) / "model")
    if evaluation:
        evaluation["metrics"] = metrics
        (Path(spec["out"]) / "model" / "evaluation.json").write_text(json.dumps(evaluation))
    result.update({"status": "ok", "recipe": recipe.name, "metrics": metrics,
                   "training_seconds": round(time.time() - started, 3),
                   "n_interactions": int(data.n_interactions), "n_users": int(data.n_users),
                   "n_items": int(data.n_items)})
    return result


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    stop_file = out / "STOP"
    from tastemaker.errors import TastemakerError
    from tastemaker.recipes.base import TrainingStopped
    from tastemaker.recipes.training_data import InsufficientDataError

    code = 0
    try:
        result = run(spec, stop_file)
    except (TrainingStopped, StopIteration):
        result, code = {"status": "stopped"}, EXIT_STOPPED
    except (InsufficientDataError, TastemakerError, ValueError) as exc:
        result, code = {"status": "refused", "reason": getattr(exc, "message", None) or str(exc)}, EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the version
        traceback.print_exc()
        result, code = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}, 1
    (out / "result.json").write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
