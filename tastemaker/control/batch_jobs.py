"""Batch inference and batch segment jobs: Create/Describe/List, validation, quotas; the work runs in a worker.

A job is refused at the call for what can never work (a recipe batch does not serve, a version that is not
ACTIVE, a filter of another dataset group, an output folder equal to the input, the 5-jobs-in-progress
quota); everything found while reading the data (a missing file, a bad line) is the job's to report: a
file that cannot be read fails the job with a failureReason, a bad line gets an `error` in its output line.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tastemaker.arns import build_arn
from tastemaker.control.common import create_with_tags, describe, list_page, name_key, require_status
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.data.jsonl import check_output_location
from tastemaker.data.sources import check_data_location
from tastemaker.errors import InvalidInputException, LimitExceededException
from tastemaker.store import queue, resources
from tastemaker.store.records import Filter, SolutionVersion
from tastemaker.store.status import BUSY, Status

INFERENCE, SEGMENT = "batch_inference_job", "batch_segment_job"
MAX_RUNNING = 5  # per kind, per region (Personalize: 5 batch inference, 5 batch segment jobs in progress)
DEFAULT_RESULTS = 25
MAX_INFERENCE_RESULTS = 500
MAX_SEGMENT_RESULTS = 5_000_000
# Recipes batch inference refuses (Personalize: "not supported: Trending-Now, Next-Best-Action").
NO_BATCH = ("aws-trending-now", "aws-next-best-action")
THEME_RECIPES = ("aws-similar-items",)


def version_recipe(version: resources.Resource) -> tuple[str, str]:
    """(recipe name, recipe type) that trained a solution version."""
    from tastemaker.recipes import get_recipe

    name = SolutionVersion.of(version).recipe_name
    try:
        return name, get_recipe(name).recipe_type
    except Exception:  # noqa: BLE001 - a recipe this build does not know cannot run in batch
        return name, ""


def _locations(ctx: RequestContext, job_input: dict[str, Any] | None,
               job_output: dict[str, Any] | None) -> tuple[str, str]:
    source = ((job_input or {}).get("s3_data_source") or {}).get("path") or ""
    if not source:
        raise InvalidInputException("jobInput.s3DataSource.path is required: an s3:// JSON Lines file or folder.")
    roots = ctx.services.settings.effective_import_roots
    check_data_location(source, roots)
    target = ((job_output or {}).get("s3_data_destination") or {}).get("path") or ""
    return source, check_output_location(target, roots, source)


def _num_results(value: int | None, limit: int) -> int:
    num = DEFAULT_RESULTS if value is None else int(value)
    if not 1 <= num <= limit:
        raise InvalidInputException(f"numResults must be between 1 and {limit}; got {num}.")
    return num


def _check_filter(conn: sa.Connection, filter_arn: str | None, group_arn: str | None) -> resources.Resource | None:
    if not filter_arn:
        return None
    found = resources.get(conn, filter_arn, "filter")
    if found.dataset_group_arn != group_arn:
        raise InvalidInputException(f"Filter {filter_arn} belongs to dataset group {found.dataset_group_arn}, not "
                                    f"to {group_arn} of the solution version.")
    require_status(found, (Status.ACTIVE,), "use the filter")
    return found


def _quota(conn: sa.Connection, kind: str, label: str) -> None:
    running = resources.count(conn, kind, BUSY)
    if running >= MAX_RUNNING:
        raise LimitExceededException(f"{running} {label}s are already CREATE PENDING or CREATE IN_PROGRESS (the "
                                     f"limit is {MAX_RUNNING}); wait for one to finish.")


def _check_inference_recipe(recipe: str, recipe_type: str, mode: str, theme: dict[str, Any] | None) -> None:
    if recipe in NO_BATCH:
        raise InvalidInputException(f"Batch inference jobs are not supported for recipe {recipe}; use "
                                    "GetRecommendations on a campaign instead.")
    if recipe_type == "USER_SEGMENTATION":
        raise InvalidInputException(f"Recipe {recipe} makes user segments: use CreateBatchSegmentJob.")
    if recipe_type not in ("USER_PERSONALIZATION", "POPULAR_ITEMS", "PERSONALIZED_RANKING", "RELATED_ITEMS"):
        raise InvalidInputException(f"Batch inference jobs are not supported for recipe {recipe or 'unknown'}.")
    if mode == "THEME_GENERATION":
        if recipe not in THEME_RECIPES:
            raise InvalidInputException(f"batchInferenceJobMode THEME_GENERATION needs a solution version of "
                                        f"aws-similar-items; this one was trained with {recipe}.")
        if not ((theme or {}).get("fields_for_theme_generation") or {}).get("item_name"):
            raise InvalidInputException("batchInferenceJobMode THEME_GENERATION needs "
                                        "themeGenerationConfig.fieldsForThemeGeneration.itemName (the Items "
                                        "column holding item names).")
    elif theme:
        raise InvalidInputException("themeGenerationConfig is only used with batchInferenceJobMode THEME_GENERATION.")


@operation("CreateBatchInferenceJob")
def create_batch_inference_job(ctx: RequestContext, *, job_name: str, solution_version_arn: str,
                               job_input: dict[str, Any], job_output: dict[str, Any], role_arn: str,
                               filter_arn: str | None = None, num_results: int | None = None,
                               batch_inference_job_config: dict[str, Any] | None = None,
                               tags: list[dict[str, str]] | None = None,
                               batch_inference_job_mode: str | None = None,
                               theme_generation_config: dict[str, Any] | None = None) -> dict[str, Any]:
    _source, target = _locations(ctx, job_input, job_output)
    mode = batch_inference_job_mode or "BATCH_INFERENCE"
    num = _num_results(num_results, MAX_INFERENCE_RESULTS)
    config = dict(batch_inference_job_config or {})
    arn = build_arn(INFERENCE, ctx.region, ctx.account, job_name)
    with ctx.engine.begin() as conn:
        version = resources.get(conn, solution_version_arn, "solution_version")
        require_status(version, (Status.ACTIVE,), "run a batch inference job on the solution version")
        recipe, recipe_type = version_recipe(version)
        _check_inference_recipe(recipe, recipe_type, mode, theme_generation_config)
        _check_exploration(config.get("item_exploration_config"), recipe)
        _check_influence(config.get("ranking_influence"))
        _check_filter(conn, filter_arn, version.dataset_group_arn)
        _quota(conn, INFERENCE, "batch inference job")
        body: dict[str, Any] = {
            "job_name": job_name, "batch_inference_job_arn": arn, "solution_version_arn": solution_version_arn,
            "job_input": {"s3_data_source": dict(job_input["s3_data_source"])},
            "job_output": {"s3_data_destination": {**job_output["s3_data_destination"], "path": target}},
            "role_arn": role_arn, "num_results": num, "batch_inference_job_mode": mode,
            "batch_inference_job_config": config}
        if filter_arn:
            body["filter_arn"] = filter_arn
        if theme_generation_config:
            body["theme_generation_config"] = theme_generation_config
        create_with_tags(conn, tags, arn=arn, kind=INFERENCE, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, job_name), dataset_group_arn=version.dataset_group_arn,
                         parent_arn=solution_version_arn)
        queue.enqueue(conn, queue.JobKind.BATCH_INFERENCE, arn)
    return {"batch_inference_job_arn": arn}


def _check_exploration(exploration: dict[str, str] | None, recipe: str) -> None:
    """itemExplorationConfig as a campaign takes it (aws-user-personalization only); no default is filled in:
    a batch job explores only when asked to."""
    from tastemaker.control.campaigns import EXPLORATION_KEYS, check_number

    if not exploration:
        return
    unknown = [k for k in exploration if k not in EXPLORATION_KEYS]
    if unknown:
        raise InvalidInputException(f"itemExplorationConfig accepts {' and '.join(EXPLORATION_KEYS)}; got {unknown[0]}.")
    check_number(exploration, "explorationWeight", 0.0, 1.0, inclusive_low=True)
    check_number(exploration, "explorationItemAgeCutOff", 0.0, None, inclusive_low=False)
    if recipe != "aws-user-personalization":
        raise InvalidInputException(f"batchInferenceJobConfig.itemExplorationConfig only applies to "
                                    f"aws-user-personalization; this version was trained with {recipe}.")


def _check_influence(influence: dict[str, Any] | None) -> None:
    for key, value in (influence or {}).items():
        if key not in ("POPULARITY", "FRESHNESS"):
            raise InvalidInputException(f"rankingInfluence accepts POPULARITY and FRESHNESS; got {key}.")
        if not 0.0 <= float(value) <= 1.0:
            raise InvalidInputException(f"rankingInfluence {key} must be between 0 and 1; got {value}.")


@operation("DescribeBatchInferenceJob")
def describe_batch_inference_job(ctx: RequestContext, *, batch_inference_job_arn: str) -> dict[str, Any]:
    return describe(ctx, INFERENCE, "batch_inference_job", batch_inference_job_arn)


@operation("ListBatchInferenceJobs")
def list_batch_inference_jobs(ctx: RequestContext, *, solution_version_arn: str | None = None,
                              next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, INFERENCE, "batch_inference_jobs", next_token=next_token, max_results=max_results,
                     parent=("solution_version", solution_version_arn))


@operation("CreateBatchSegmentJob")
def create_batch_segment_job(ctx: RequestContext, *, job_name: str, solution_version_arn: str,
                             job_input: dict[str, Any], job_output: dict[str, Any], role_arn: str,
                             filter_arn: str | None = None, num_results: int | None = None,
                             tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    _source, target = _locations(ctx, job_input, job_output)
    num = _num_results(num_results, MAX_SEGMENT_RESULTS)
    arn = build_arn(SEGMENT, ctx.region, ctx.account, job_name)
    with ctx.engine.begin() as conn:
        version = resources.get(conn, solution_version_arn, "solution_version")
        require_status(version, (Status.ACTIVE,), "run a batch segment job on the solution version")
        recipe, recipe_type = version_recipe(version)
        if recipe_type != "USER_SEGMENTATION":
            raise InvalidInputException(f"Batch segment jobs need a USER_SEGMENTATION solution version "
                                        f"(aws-item-affinity or aws-item-attribute-affinity); this one was "
                                        f"trained with {recipe}. Use CreateBatchInferenceJob instead.")
        found = _check_filter(conn, filter_arn, version.dataset_group_arn)
        if found is not None:
            _check_segment_filter(found, recipe)
        _quota(conn, SEGMENT, "batch segment job")
        body: dict[str, Any] = {
            "job_name": job_name, "batch_segment_job_arn": arn, "solution_version_arn": solution_version_arn,
            "job_input": {"s3_data_source": dict(job_input["s3_data_source"])},
            "job_output": {"s3_data_destination": {**job_output["s3_data_destination"], "path": target}},
            "role_arn": role_arn, "num_results": num}
        if filter_arn:
            body["filter_arn"] = filter_arn
        create_with_tags(conn, tags, arn=arn, kind=SEGMENT, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, job_name), dataset_group_arn=version.dataset_group_arn,
                         parent_arn=solution_version_arn)
        queue.enqueue(conn, queue.JobKind.BATCH_SEGMENT, arn)
    return {"batch_segment_job_arn": arn}


def _check_segment_filter(found: resources.Resource, recipe: str) -> None:
    """Segments are filtered by users: an `INCLUDE|EXCLUDE UserID WHERE Users.<FIELD> ...` expression;
    interaction filters are refused for item-attribute affinity (as Personalize does)."""
    expression = Filter.of(found).filter_expression
    targets = {part.split()[1].lower() for part in expression.split("|") if len(part.split()) > 1}
    if targets != {"userid"}:
        raise InvalidInputException(f"Filter {found.arn} selects items; a batch segment job needs a filter on "
                                    "users (INCLUDE UserID WHERE Users.<FIELD> ... or EXCLUDE UserID ...).")
    if recipe == "aws-item-attribute-affinity" and "interactions." in expression.lower():
        raise InvalidInputException(f"Filter {found.arn} uses interactions, which aws-item-attribute-affinity "
                                    "segments cannot filter on.")


@operation("DescribeBatchSegmentJob")
def describe_batch_segment_job(ctx: RequestContext, *, batch_segment_job_arn: str) -> dict[str, Any]:
    return describe(ctx, SEGMENT, "batch_segment_job", batch_segment_job_arn)


@operation("ListBatchSegmentJobs")
def list_batch_segment_jobs(ctx: RequestContext, *, solution_version_arn: str | None = None,
                            next_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, SEGMENT, "batch_segment_jobs", next_token=next_token, max_results=max_results,
                     parent=("solution_version", solution_version_arn))
