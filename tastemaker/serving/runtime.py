"""The personalize-runtime operations: GetRecommendations and GetPersonalizedRanking."""

from __future__ import annotations

from typing import Any

from tastemaker.control.context import RequestContext
from tastemaker.control.recommendation_ids import tag, tag_answer
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException
from tastemaker.serving import fastpath
from tastemaker.serving.arms import route
from tastemaker.serving.deployments import Deployment, deployment_cache
from tastemaker.serving.engine import Query, WireAnswer, rank, recommend, rid
from tastemaker.store.status import Status


def _serving(ctx: RequestContext, arn: str, kind: str) -> Deployment:
    """The ACTIVE deployment; a missing one is ResourceNotFound, one in any other state InvalidInput."""
    dep = deployment_cache(ctx.services).resolve(ctx.services, arn, kind)
    if dep.status != Status.ACTIVE:
        hint = " Start it with StartRecommender." if dep.status == Status.INACTIVE else ""
        raise InvalidInputException(f"{dep.label} {arn} is {dep.status}; it must be ACTIVE to serve requests.{hint}")
    if not dep.model_prefix:
        raise InvalidInputException(f"{dep.label} {arn} has no trained model to serve.")
    return dep


@operation("GetRecommendations", inline=True)
def get_recommendations(ctx: RequestContext, *, campaign_arn: str | None = None, item_id: str | None = None,
                        user_id: str | None = None, num_results: int | None = None,
                        context: dict[str, str] | None = None, filter_arn: str | None = None,
                        filter_values: dict[str, str] | None = None, recommender_arn: str | None = None,
                        promotions: list[dict[str, Any]] | None = None,
                        metadata_columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    if bool(campaign_arn) == bool(recommender_arn):
        raise InvalidInputException("Give exactly one of campaignArn or recommenderArn.")
    dep = (_serving(ctx, campaign_arn, "campaign") if campaign_arn
           else _serving(ctx, recommender_arn or "", "recommender"))
    query = Query(user_id=user_id or None, item_id=item_id or None, num_results=num_results, context=context,
                  filter_arn=filter_arn, filter_values=filter_values, metadata_columns=metadata_columns,
                  promotions=list(promotions or []))
    if query.promotions and dep.recipe_type not in ("USER_PERSONALIZATION", "POPULAR_ITEMS", "RELATED_ITEMS"):
        raise InvalidInputException(f"Promotions are not supported for {dep.recipe_type} recipes.")
    served, source, arm = route(ctx.services, dep)  # the comparison-arm extension (tastemaker.serving.arms)
    items = fastpath.recommend(ctx.services, served, query)  # the common shape in a few compiled calls
    if items is None:
        answer = recommend(ctx.services, served, query, wire=True)
        items, recommendation_id = answer["item_list"], answer["recommendation_id"]
    else:
        recommendation_id = rid()
    if arm is not None:
        ctx.services.serving.arms.count(ctx.services, dep.arn, arm)
    return WireAnswer(itemList=items, recommendationId=tag(recommendation_id, source))


@operation("GetPersonalizedRanking", inline=True)
def get_personalized_ranking(ctx: RequestContext, *, campaign_arn: str, input_list: list[str], user_id: str,
                             context: dict[str, str] | None = None, filter_arn: str | None = None,
                             filter_values: dict[str, str] | None = None,
                             metadata_columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    dep = _serving(ctx, campaign_arn, "campaign")
    query = Query(user_id=user_id, context=context, filter_arn=filter_arn, filter_values=filter_values,
                  metadata_columns=metadata_columns, input_list=list(input_list))
    return tag_answer(rank(ctx.services, dep, query), dep.arn)
