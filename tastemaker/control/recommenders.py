"""Domain recommenders: create/describe/list/update/delete, start and stop."""

from __future__ import annotations

from typing import Any

from tastemaker.arns import build_arn
from tastemaker.control.common import (
    create_with_tags,
    list_page,
    locked_in,
    name_key,
    schedule,
    storage_id,
)
from tastemaker.control.context import RequestContext
from tastemaker.control.dataset_groups import get_active_group
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException, LimitExceededException, ResourceInUseException
from tastemaker.store import keys, queue, resources
from tastemaker.store.records import DatasetGroup, Recommender
from tastemaker.store.status import BUSY, Status

KIND = "recommender"
MAX_RECOMMENDERS_PER_GROUP = 5
EXPLORATION_USE_CASES = ("aws-vod-top-picks", "aws-ecomm-recommended-for-you")


def check_recommender_config(use_case: Any, config: dict[str, Any] | None) -> dict[str, Any]:
    """Validate recommenderConfig for the use case; fills minRecommendationRequestsPerSecond's default."""
    from tastemaker.control.campaigns import EXPLORATION_KEYS, check_number

    config = dict(config or {})
    exploration = config.get("item_exploration_config")
    if exploration:
        if use_case.name not in EXPLORATION_USE_CASES:
            raise InvalidInputException(f"itemExplorationConfig only applies to {' and '.join(EXPLORATION_USE_CASES)}.")
        unknown = [k for k in exploration if k not in EXPLORATION_KEYS]
        if unknown:
            raise InvalidInputException(f"itemExplorationConfig accepts {' and '.join(EXPLORATION_KEYS)}; "
                                        f"got {unknown[0]}.")
        check_number(exploration, "explorationWeight", 0.0, 1.0, inclusive_low=True)
        check_number(exploration, "explorationItemAgeCutOff", 0.0, None, inclusive_low=False)
    config.setdefault("min_recommendation_requests_per_second", 1)
    return config


@operation("CreateRecommender")
def create_recommender(ctx: RequestContext, *, name: str, dataset_group_arn: str, recipe_arn: str,
                       recommender_config: dict[str, Any] | None = None,
                       tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    from tastemaker.control.datasets import dataset_of_type
    from tastemaker.recipes.catalog import domain_use_case

    use_case = domain_use_case(recipe_arn)
    config = check_recommender_config(use_case, recommender_config)
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    with ctx.engine.begin() as conn:
        group = get_active_group(conn, dataset_group_arn, "create a recommender")
        domain = DatasetGroup.of(group).domain
        if domain != use_case.domain:
            raise InvalidInputException(f"Use case {use_case.name} belongs to the {use_case.domain} domain; dataset "
                                        f"group {dataset_group_arn} is {domain or 'a custom group'}.")
        if dataset_of_type(conn, dataset_group_arn, "Interactions") is None:
            raise InvalidInputException(f"Use case {use_case.name} needs an Interactions dataset; create one and "
                                        "import interactions first.")
        if use_case.requires_items_dataset and dataset_of_type(conn, dataset_group_arn, "Items") is None:
            raise InvalidInputException(f"Use case {use_case.name} needs an Items dataset.")
        live = [r for r in resources.children(conn, kind=KIND, dataset_group_arn=dataset_group_arn)
                if r.status != Status.DELETE_PENDING]
        if len(live) >= MAX_RECOMMENDERS_PER_GROUP:
            raise LimitExceededException(f"Dataset group {dataset_group_arn} already has {len(live)} recommenders "
                                         f"(the limit is {MAX_RECOMMENDERS_PER_GROUP}).")
        sid = storage_id()
        body = {"name": name, "recommender_arn": arn, "dataset_group_arn": dataset_group_arn,
                "recipe_arn": use_case.recipe_arn, "recommender_config": config, "storage_id": sid,
                "model_prefix": keys.model_prefix(sid)}
        create_with_tags(conn, tags, arn=arn, kind=KIND, body=body, status=Status.CREATE_PENDING,
                         name_key=name_key(ctx, name), dataset_group_arn=dataset_group_arn,
                         parent_arn=dataset_group_arn)
        queue.enqueue(conn, queue.JobKind.RECOMMENDER_TRAIN, arn, max_attempts=2)
    return {"recommender_arn": arn}


def _public(body: dict[str, Any], status: str | None) -> dict[str, Any]:
    out = dict(body)
    if status in BUSY or (status or "").startswith("DELETE"):
        out.pop("model_metrics", None)
    return out


@operation("DescribeRecommender")
def describe_recommender(ctx: RequestContext, *, recommender_arn: str) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        found = resources.get(conn, recommender_arn, KIND)
    return {"recommender": _public(found.body, found.status)}


@operation("ListRecommenders")
def list_recommenders(ctx: RequestContext, *, dataset_group_arn: str | None = None, next_token: str | None = None,
                      max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "recommenders", next_token=next_token, max_results=max_results,
                     parent=("dataset_group", dataset_group_arn), by_group=True)


@operation("UpdateRecommender")
def update_recommender(ctx: RequestContext, *, recommender_arn: str,
                       recommender_config: dict[str, Any]) -> dict[str, Any]:
    from tastemaker.recipes.catalog import domain_use_case

    with ctx.engine.begin() as conn:
        found = locked_in(conn, recommender_arn, KIND, (Status.ACTIVE,), "update the recommender")
        if Recommender.of(found).latest_recommender_update.get("status") in BUSY:
            raise ResourceInUseException(f"Recommender {recommender_arn} is already being updated.")
        merged = dict(Recommender.of(found).recommender_config)
        merged.update(recommender_config)
        config = check_recommender_config(domain_use_case(Recommender.of(found).recipe_arn), merged)
        ts = resources.now()
        update = {"recommender_config": config, "status": Status.CREATE_PENDING, "creation_date_time": ts,
                  "last_updated_date_time": ts}
        resources.update(conn, recommender_arn, changes={"latest_recommender_update": update})
        queue.enqueue(conn, queue.JobKind.RECOMMENDER_UPDATE, recommender_arn, max_attempts=2)
    return {"recommender_arn": recommender_arn}


@operation("StopRecommender")
def stop_recommender(ctx: RequestContext, *, recommender_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        locked_in(conn, recommender_arn, KIND, (Status.ACTIVE,), "stop the recommender")
        schedule(conn, recommender_arn, Status.STOP_PENDING, queue.JobKind.RECOMMENDER_STOP)
    return {"recommender_arn": recommender_arn}


@operation("StartRecommender")
def start_recommender(ctx: RequestContext, *, recommender_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        locked_in(conn, recommender_arn, KIND, (Status.INACTIVE,), "start the recommender")
        schedule(conn, recommender_arn, Status.START_PENDING, queue.JobKind.RECOMMENDER_START)
    return {"recommender_arn": recommender_arn}


@operation("DeleteRecommender")
def delete_recommender(ctx: RequestContext, *, recommender_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        found = locked_in(conn, recommender_arn, KIND, (Status.ACTIVE, Status.CREATE_FAILED, Status.INACTIVE),
                          "delete the recommender")
        if Recommender.of(found).latest_recommender_update.get("status") in BUSY:
            raise ResourceInUseException(f"Recommender {recommender_arn} is being updated; delete it afterwards.")
        schedule(conn, recommender_arn, Status.DELETE_PENDING, queue.JobKind.RECOMMENDER_DELETE)
    return {}
