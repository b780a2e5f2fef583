"""Solutions and solution versions: create/describe/list/update/delete, stop, and GetSolutionMetrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn, parse_arn, short_id
from tastemaker.control.common import (
    DELETABLE,
    activate_now,
    create_with_tags,
    describe,
    list_page,
    locked_in,
    name_key,
    require_status,
    schedule,
    storage_id,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException, LimitExceededException, ResourceInUseException
from tastemaker.store import queue, resources
from tastemaker.store.records import Campaign, Solution, SolutionVersion
from tastemaker.store.status import BUSY, Status

KIND, VERSION = "solution", "solution_version"
MAX_TRAINING_VERSIONS = 20


def check_recipe_config(recipe_arn: str | None, solution_config: dict[str, Any] | None, *, perform_hpo: bool,
                        perform_auto_ml: bool) -> str | None:
    """Validate the recipe and its hyperparameters now, so CreateSolution fails fast with a clear reason."""
    from tastemaker.recipes import get_recipe, recipe_name_from_arn

    config = solution_config or {}
    if perform_auto_ml:
        names = (config.get("auto_ml_config") or {}).get("recipe_list") or []
        for arn in names:
            recipe = get_recipe(recipe_name_from_arn(arn))
            if recipe.recipe_type != "USER_PERSONALIZATION":
                raise InvalidInputException(f"autoMLConfig.recipeList may only name USER_PERSONALIZATION recipes; "
                                            f"{arn} is {recipe.recipe_type}.")
        if recipe_arn is None:
            return None
    if not recipe_arn:
        raise InvalidInputException("recipeArn is required unless performAutoML is true.")
    recipe = get_recipe(recipe_name_from_arn(recipe_arn))
    recipe.check_available()
    if recipe.name.endswith("-v2"):
        from tastemaker.recipes.sasrec import torch_available, torch_missing_message

        if not torch_available():
            raise InvalidInputException(torch_missing_message(recipe.name))
    params = dict(config.get("algorithm_hyper_parameters") or {})
    params.update(config.get("feature_transformation_parameters") or {})
    recipe.validate_hyperparameters(params)
    if perform_hpo:
        from tastemaker.recipes.hpo import validate_ranges

        validate_ranges(recipe, (config.get("hpo_config") or {}).get("algorithm_hyper_parameter_ranges"))
    if config.get("event_value_threshold") is not None:
        try:
            float(config["event_value_threshold"])
        except ValueError:
            raise InvalidInputException(
                f"solutionConfig.eventValueThreshold must be a number, got {config['event_value_threshold']!r}."
            ) from None
    return recipe.name


@operation("CreateSolution")
def create_solution(ctx: RequestContext, *, name: str, dataset_group_arn: str, recipe_arn: str | None = None,
                    perform_hpo: bool | None = None, perform_auto_ml: bool | None = None,
                    perform_auto_training: bool | None = None, perform_incremental_update: bool | None = None,
                    event_type: str | None = None, solution_config: dict[str, Any] | None = None,
                    tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    check_recipe_config(recipe_arn, solution_config, perform_hpo=bool(perform_hpo),
                        perform_auto_ml=bool(perform_auto_ml))
    if perform_incremental_update and not (recipe_arn or "").endswith("/aws-semantic-similarity"):
        raise InvalidInputException("performIncrementalUpdate is only supported for aws-semantic-similarity.")
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    body = {
        "name": name, "solution_arn": arn, "dataset_group_arn": dataset_group_arn, "recipe_arn": recipe_arn,
        "perform_hpo": bool(perform_hpo), "perform_auto_ml": bool(perform_auto_ml),
        "perform_auto_training": True if perform_auto_training is None else perform_auto_training,
        "perform_incremental_update": bool(perform_incremental_update), "event_type": event_type,
        "solution_config": solution_config or {},
    }
    with ctx.engine.begin() as conn:
        get_active_group(conn, dataset_group_arn, "create a solution")
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        activate_now(conn, arn)
    return {"solution_arn": arn}


def _latest_version(conn: sa.Connection, solution_arn: str) -> dict[str, Any] | None:
    versions = resources.children(conn, kind=VERSION, parent_arn=solution_arn)
    return versions[-1].body if versions else None


@operation("DescribeSolution")
def describe_solution(ctx: RequestContext, *, solution_arn: str) -> dict[str, Any]:
    with ctx.read_engine.connect() as conn:
        body = dict(resources.get(conn, solution_arn, KIND).body)
        body["latest_solution_version"] = _latest_version(conn, solution_arn)
    return {"solution": body}


@operation("ListSolutions")
def list_solutions(ctx: RequestContext, *, dataset_group_arn: str | None = None, next_token: str | None = None,
                   max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "solutions", next_token=next_token, max_results=max_results,
                     parent=("dataset_group", dataset_group_arn), by_group=True)


@operation("UpdateSolution")
def update_solution(ctx: RequestContext, *, solution_arn: str, perform_auto_training: bool | None = None,
                    perform_incremental_update: bool | None = None,
                    solution_update_config: dict[str, Any] | None = None) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        solution = locked_in(conn, solution_arn, KIND, (Status.ACTIVE,), "update the solution")
        changes: dict[str, Any] = {}
        if perform_auto_training is not None:
            changes["perform_auto_training"] = perform_auto_training
        if perform_incremental_update is not None:
            changes["perform_incremental_update"] = perform_incremental_update
        config = dict(Solution.of(solution).solution_config)
        for key, value in (solution_update_config or {}).items():
            config[key] = value
        changes["solution_config"] = config
        ts = resources.now()
        changes["latest_solution_update"] = {
            "solution_update_config": solution_update_config or {}, "status": Status.ACTIVE,
            "perform_auto_training": changes.get("perform_auto_training", Solution.of(solution).perform_auto_training),
            "perform_incremental_update": changes.get("perform_incremental_update",
                                                      Solution.of(solution).perform_incremental_update),
            "creation_date_time": ts, "last_updated_date_time": ts,
        }
        resources.update(conn, solution_arn, changes=changes)
    return {"solution_arn": solution_arn}


@operation("DeleteSolution")
def delete_solution(ctx: RequestContext, *, solution_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        found = resources.get(conn, solution_arn, KIND)
        resources.get(conn, found.dataset_group_arn or "", "dataset_group", lock=True)  # lock order: group first
        solution = locked_in(conn, solution_arn, KIND, DELETABLE, "delete the solution")
        versions = resources.children(conn, kind=VERSION, parent_arn=solution_arn)
        busy = [v for v in versions if v.status in BUSY + (Status.CREATE_STOPPING,)]
        if busy:
            raise ResourceInUseException(f"Cannot delete solution {solution_arn}: version {busy[0].arn} is "
                                         f"{busy[0].status}. Stop it or wait for it to finish.")
        version_arns = {v.arn for v in versions}
        campaigns = [c for c in resources.children(conn, kind="campaign", dataset_group_arn=solution.dataset_group_arn)
                     if Campaign.of(c).solution_version_arn in version_arns
                     or Campaign.of(c).solution_version_arn.startswith(solution_arn + "/$LATEST")]
        if campaigns:
            raise ResourceInUseException(f"Cannot delete solution {solution_arn}: campaign {campaigns[0].arn} "
                                         "deploys one of its versions. Delete the campaign first.")
        # The delete job removes the versions with the solution.
        schedule(conn, solution_arn, Status.DELETE_PENDING, queue.JobKind.DELETE)
    return {}


@operation("CreateSolutionVersion")
def create_solution_version(ctx: RequestContext, *, solution_arn: str, name: str | None = None,
                            training_mode: str | None = None,
                            tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    mode = training_mode or "FULL"
    with ctx.engine.begin() as conn:
        solution = locked_in(conn, solution_arn, KIND, (Status.ACTIVE,), "create a solution version")
        if mode == "UPDATE":
            from tastemaker.recipes import get_recipe

            if not get_recipe((Solution.of(solution).recipe_arn or "").rsplit("/", 1)[-1]).incremental_updates:
                raise InvalidInputException("trainingMode UPDATE is only supported for aws-user-personalization.")
            full = [v for v in resources.children(conn, kind=VERSION, parent_arn=solution_arn)
                    if v.status == Status.ACTIVE and SolutionVersion.of(v).training_mode == "FULL"]
            if not full:
                raise InvalidInputException("trainingMode UPDATE needs an ACTIVE solution version trained with "
                                            "trainingMode FULL.")
        arn = new_version(conn, solution, mode=mode, name=name, tags=tags)
    return {"solution_version_arn": arn}


def new_version(conn: sa.Connection, solution: resources.Resource, *, mode: str = "FULL", name: str | None = None,
                tags: list[dict[str, str]] | None = None, training_type: str = "MANUAL") -> str:
    """Create a solution version row and its training job (also used by auto-training)."""
    training = resources.count(conn, VERSION, BUSY, region=parse_arn(solution.arn).region)
    if training >= MAX_TRAINING_VERSIONS:
        raise LimitExceededException(f"More than {MAX_TRAINING_VERSIONS} resources with PENDING or IN_PROGRESS status.")
    parsed = parse_arn(solution.arn)
    arn = build_arn(VERSION, parsed.region, parsed.account, Solution.of(solution).name, short_id())
    body = {key: solution.body.get(key) for key in (
        "solution_arn", "perform_hpo", "perform_auto_ml", "perform_incremental_update", "recipe_arn",
        "event_type", "dataset_group_arn", "solution_config")}
    body.update({"name": name, "solution_version_arn": arn, "training_mode": mode, "training_type": training_type,
                 "storage_id": storage_id()})
    create_with_tags(conn, tags, arn=arn, kind=VERSION, body=body, status=Status.CREATE_PENDING,
                     dataset_group_arn=solution.dataset_group_arn, parent_arn=solution.arn)
    queue.enqueue(conn, queue.JobKind.TRAIN, arn, max_attempts=2)
    return arn


@operation("DescribeSolutionVersion")
def describe_solution_version(ctx: RequestContext, *, solution_version_arn: str) -> dict[str, Any]:
    return describe(ctx, VERSION, "solution_version", solution_version_arn)


@operation("ListSolutionVersions")
def list_solution_versions(ctx: RequestContext, *, solution_arn: str | None = None, next_token: str | None = None,
                           max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, VERSION, "solution_versions", next_token=next_token, max_results=max_results,
                     parent=(KIND, solution_arn))


@operation("StopSolutionVersionCreation")
def stop_solution_version_creation(ctx: RequestContext, *, solution_version_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        version = locked_in(conn, solution_version_arn, VERSION, BUSY, "stop the solution version")
        queue.request_cancel(conn, solution_version_arn)
        if version.status == Status.CREATE_PENDING:
            resources.update(conn, solution_version_arn, status=Status.CREATE_STOPPED)
        else:
            resources.update(conn, solution_version_arn, status=Status.CREATE_STOPPING)
    return {}


@operation("GetSolutionMetrics")
def get_solution_metrics(ctx: RequestContext, *, solution_version_arn: str) -> dict[str, Any]:
    with ctx.read_engine.connect() as conn:
        version = resources.get(conn, solution_version_arn, VERSION)
    require_status(version, (Status.ACTIVE,), "get metrics")
    return {"solution_version_arn": solution_version_arn, "metrics": SolutionVersion.of(version).metrics}


def solution_of_latest(arn: str) -> str | None:
    """`solution/NAME/$LATEST` -> the solution ARN, else None."""
    if arn.endswith("/$LATEST"):
        parse_arn(arn)
        return arn[: -len("/$LATEST")]
    return None
