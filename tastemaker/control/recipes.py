"""The recipe catalogue: ListRecipes, DescribeRecipe, DescribeAlgorithm, DescribeFeatureTransformation."""

from __future__ import annotations

import base64
from typing import Any

from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidNextTokenException, ResourceNotFoundException
from tastemaker.recipes import catalog


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("recipes:"))
    except ValueError as exc:
        raise InvalidNextTokenException("The nextToken is not valid; pass the token from the previous page.") from exc


@operation("ListRecipes")
def list_recipes(ctx: RequestContext, *, recipe_provider: str | None = None, next_token: str | None = None,
                 max_results: int | None = None, domain: str | None = None) -> dict[str, Any]:
    names = catalog.recipe_names(domain)
    start, size = _offset(next_token), max_results or 100
    page = names[start:start + size]
    token = base64.urlsafe_b64encode(f"recipes:{start + size}".encode()).decode() if start + size < len(names) else None
    return {"recipes": [catalog.recipe_summary(n) for n in page], "next_token": token}


@operation("DescribeRecipe")
def describe_recipe(ctx: RequestContext, *, recipe_arn: str) -> dict[str, Any]:
    if not recipe_arn.startswith(catalog.RECIPE_ARN_PREFIX):
        raise ResourceNotFoundException(f"Recipe {recipe_arn} does not exist.")
    return {"recipe": catalog.describe_recipe(recipe_arn[len(catalog.RECIPE_ARN_PREFIX):])}


@operation("DescribeAlgorithm")
def describe_algorithm(ctx: RequestContext, *, algorithm_arn: str) -> dict[str, Any]:
    return {"algorithm": catalog.describe_algorithm(algorithm_arn)}


@operation("DescribeFeatureTransformation")
def describe_feature_transformation(ctx: RequestContext, *, feature_transformation_arn: str) -> dict[str, Any]:
    name = feature_transformation_arn.removeprefix(catalog.FEATURE_TRANSFORMATION_ARN_PREFIX)
    if name == feature_transformation_arn or not name:  # v2 recipes have none: "" names no transformation
        raise ResourceNotFoundException(
            f"Feature transformation {feature_transformation_arn} does not exist; feature transformation ARNs "
            f"look like {catalog.FEATURE_TRANSFORMATION_ARN_PREFIX}<name> (DescribeRecipe names a recipe's).")
    return {"feature_transformation": catalog.describe_feature_transformation(feature_transformation_arn)}
