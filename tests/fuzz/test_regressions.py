"""Defects the fuzzer found, each pinned through boto3 against the live fuzz server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

MISSING = "arn:aws:personalize:us-east-1:000000000000:{}/fuzz-missing"


def error(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_list_solution_versions_keeps_its_declared_not_found(personalize) -> None:  # type: ignore[no-untyped-def]
    code, message = error(personalize.list_solution_versions, solutionArn=MISSING.format("solution"))
    assert code == "ResourceNotFoundException" and "fuzz-missing" in message


def test_every_recipes_algorithm_and_feature_transformation_can_be_described(personalize) -> None:  # type: ignore[no-untyped-def]
    """DescribeRecipe of a use case trained by aws-trending-now named an algorithm DescribeAlgorithm did not know."""
    for summary in personalize.list_recipes()["recipes"]:
        recipe = personalize.describe_recipe(recipeArn=summary["recipeArn"])["recipe"]
        algorithm = personalize.describe_algorithm(algorithmArn=recipe["algorithmArn"])["algorithm"]
        assert algorithm["algorithmArn"] == recipe["algorithmArn"]
        if recipe.get("featureTransformationArn"):
            personalize.describe_feature_transformation(featureTransformationArn=recipe["featureTransformationArn"])


@pytest.mark.parametrize("arn", ["arn:aws:personalize:::feature-transformation/",
                                 "arn:aws:personalize:us-east-1:000000000000:campaign/not-a-transformation"])
def test_describe_feature_transformation_of_no_name_is_not_found(personalize, arn: str) -> None:  # type: ignore[no-untyped-def]
    """Recipes without a feature transformation have an empty one; an ARN naming none matched them (200)."""
    code, message = error(personalize.describe_feature_transformation, featureTransformationArn=arn)
    assert code == "ResourceNotFoundException" and arn in message
