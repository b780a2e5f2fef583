"""The recipe catalogue as plain data (ListRecipes, DescribeRecipe/Algorithm/FeatureTransformation, use cases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tastemaker.errors import InvalidInputException, ResourceNotFoundException
from tastemaker.recipes import all_recipes, get_recipe
from tastemaker.recipes.base import Recipe

RECIPE_ARN_PREFIX = "arn:aws:personalize:::recipe/"
ALGORITHM_ARN_PREFIX = "arn:aws:personalize:::algorithm/"
FEATURE_TRANSFORMATION_ARN_PREFIX = "arn:aws:personalize:::feature-transformation/"
# Fixed creation time reported for built-in recipes (they predate any dataset group).
CATALOGUE_TIMESTAMP = 1_546_300_800.0  # 2019-01-01T00:00:00Z
ALGORITHM_NAMES = {"aws-trending-now": "aws-trending-now-custom"}
TRAINING_INPUT_MODE = "File"
DEFAULT_RESOURCE_CONFIG = {"maxNumberOfTrainingJobs": "20", "maxParallelTrainingJobs": "5"}


@dataclass(frozen=True)
class UseCase:
    """A domain recommender use case and how Tastemaker serves it."""

    name: str  # recipe name, e.g. "aws-vod-top-picks"
    domain: str  # "ECOMMERCE" | "VIDEO_ON_DEMAND"
    description: str
    engine_recipe: str  # the custom recipe that trains it
    event_types: tuple[str, ...]  # EVENT_TYPE values it trains on (empty = all types)
    required_event_type: str | None  # the type that needs >= 1000 events (the failure message names it)
    excluded_event_types: tuple[str, ...]  # items the user had these events with are never recommended
    requires_user_id: bool
    requires_item_id: bool
    requires_items_dataset: bool = False
    returns_scores: bool = False  # domain recommenders return no scores

    @property
    def recipe_arn(self) -> str:
        return RECIPE_ARN_PREFIX + self.name


USE_CASES: tuple[UseCase, ...] = (
    UseCase("aws-ecomm-popular-items-by-views", "ECOMMERCE", "Most viewed: popular items by number of views.",
            "aws-popularity-count", ("View",), "View", (), True, False),
    UseCase("aws-ecomm-popular-items-by-purchases", "ECOMMERCE", "Best sellers: popular items by purchases.",
            "aws-popularity-count", ("Purchase",), "Purchase", (), True, False),
    UseCase("aws-ecomm-frequently-bought-together", "ECOMMERCE",
            "Frequently bought together: items often purchased with the given item.",
            "aws-sims", ("Purchase",), "Purchase", (), False, True),
    UseCase("aws-ecomm-customers-who-viewed-x-also-viewed", "ECOMMERCE",
            "Customers who viewed X also viewed: items viewed together with the given item.",
            "aws-sims", ("View",), "View", ("Purchase",), True, True),
    UseCase("aws-ecomm-recommended-for-you", "ECOMMERCE", "Recommended for you: personalized recommendations.",
            "aws-user-personalization", (), None, ("Purchase",), True, False),
    UseCase("aws-vod-because-you-watched-x", "VIDEO_ON_DEMAND",
            "Because you watched X: videos watched together with the given video.",
            "aws-sims", ("Watch",), "Watch", ("Watch",), True, True),
    UseCase("aws-vod-more-like-x", "VIDEO_ON_DEMAND", "More like X: videos similar in behaviour and metadata.",
            "aws-similar-items", (), None, ("Watch",), True, True, requires_items_dataset=True),
    UseCase("aws-vod-most-popular", "VIDEO_ON_DEMAND", "Most popular: the most watched videos.",
            "aws-popularity-count", ("Watch",), "Watch", (), True, False),
    UseCase("aws-vod-trending-now", "VIDEO_ON_DEMAND", "Trending now: videos gaining popularity fastest.",
            "aws-trending-now", (), None, (), False, False),
    UseCase("aws-vod-top-picks", "VIDEO_ON_DEMAND", "Top picks for you: personalized recommendations.",
            "aws-user-personalization", (), None, ("Watch",), True, False),
)
_USE_CASES_BY_NAME = {u.name: u for u in USE_CASES}


def domain_use_case(name: str) -> UseCase:
    """The use case for a recipe name or recipe ARN; InvalidInputException if it is not a domain use case."""
    key = name.removeprefix(RECIPE_ARN_PREFIX)
    use_case = _USE_CASES_BY_NAME.get(key)
    if use_case is None:
        raise InvalidInputException(f"{name} is not a domain recommender use case.")
    return use_case


def recipe_names(domain: str | None = None) -> list[str]:
    """ListRecipes order: custom recipes (no domain) or only the given domain's use cases, sorted by name."""
    if domain is not None:
        return sorted(u.name for u in USE_CASES if u.domain == domain)
    return sorted([*all_recipes(), *_USE_CASES_BY_NAME])


def _custom(name: str) -> Recipe:
    try:
        return get_recipe(name)
    except InvalidInputException:
        raise ResourceNotFoundException(f"Recipe {RECIPE_ARN_PREFIX + name} does not exist.") from None


def recipe_summary(name: str) -> dict[str, Any]:
    """ListRecipes RecipeSummary."""
    described = describe_recipe(name)
    summary = {k: described[k] for k in ("name", "recipeArn", "status", "creationDateTime", "lastUpdatedDateTime")}
    if name in _USE_CASES_BY_NAME:
        summary["domain"] = _USE_CASES_BY_NAME[name].domain
    return summary


def describe_recipe(name: str) -> dict[str, Any]:
    """DescribeRecipe `recipe` object."""
    if name in _USE_CASES_BY_NAME:
        use_case = _USE_CASES_BY_NAME[name]
        engine = get_recipe(use_case.engine_recipe)
        recipe_type, description, algorithm = engine.recipe_type, use_case.description, algorithm_name(engine.name)
        transformation = engine.feature_transformation
    else:
        recipe = _custom(name)
        recipe_type, description, algorithm = recipe.recipe_type, recipe.description, algorithm_name(recipe.name)
        transformation = recipe.feature_transformation
    out = {
        "name": name,
        "recipeArn": RECIPE_ARN_PREFIX + name,
        "algorithmArn": ALGORITHM_ARN_PREFIX + algorithm,
        "description": description,
        "status": "ACTIVE",
        "recipeType": recipe_type,
        "creationDateTime": CATALOGUE_TIMESTAMP,
        "lastUpdatedDateTime": CATALOGUE_TIMESTAMP,
    }
    if transformation:
        out["featureTransformationArn"] = FEATURE_TRANSFORMATION_ARN_PREFIX + transformation
    return out


def algorithm_name(recipe_name: str) -> str:
    return ALGORITHM_NAMES.get(recipe_name, recipe_name)


def describe_algorithm(algorithm_arn: str) -> dict[str, Any]:
    """DescribeAlgorithm `algorithm` object for :::algorithm/<name>."""
    name = algorithm_arn[len(ALGORITHM_ARN_PREFIX):] if algorithm_arn.startswith(ALGORITHM_ARN_PREFIX) else ""
    by_algorithm = {algorithm_name(r): r for r in all_recipes()}
    if name not in by_algorithm:
        raise ResourceNotFoundException(f"Algorithm {algorithm_arn} does not exist.")
    recipe = get_recipe(by_algorithm[name])
    ranges: dict[str, list[dict[str, Any]]] = {
        "integerHyperParameterRanges": [], "continuousHyperParameterRanges": [],
        "categoricalHyperParameterRanges": [],
    }
    kind_key = {"integer": "integerHyperParameterRanges", "continuous": "continuousHyperParameterRanges",
                "categorical": "categoricalHyperParameterRanges"}
    for hp in recipe.hyperparameters:
        ranges[kind_key[hp.kind]].append(hp.range_description())
    return {
        "name": name,
        "algorithmArn": ALGORITHM_ARN_PREFIX + name,
        "algorithmImage": {"name": name, "dockerURI": f"tastemaker/{name}:builtin"},
        "defaultHyperParameters": recipe.default_hyperparameters(),
        "defaultHyperParameterRanges": ranges,
        "defaultResourceConfig": dict(DEFAULT_RESOURCE_CONFIG) if recipe.supports_hpo else {},
        "trainingInputMode": TRAINING_INPUT_MODE,
        "creationDateTime": CATALOGUE_TIMESTAMP,
        "lastUpdatedDateTime": CATALOGUE_TIMESTAMP,
    }


def describe_feature_transformation(arn: str) -> dict[str, Any]:
    """DescribeFeatureTransformation `featureTransformation` object."""
    name = arn[len(FEATURE_TRANSFORMATION_ARN_PREFIX):] if arn.startswith(FEATURE_TRANSFORMATION_ARN_PREFIX) else ""
    users = [r for r in all_recipes().values() if name and r.feature_transformation == name]
    if not users:
        raise ResourceNotFoundException(f"Feature transformation {arn} does not exist.")
    defaults: dict[str, str] = {}
    for recipe in users:
        defaults.update({hp.name: hp.default for hp in recipe.feature_transformation_parameters})
    return {
        "name": name,
        "featureTransformationArn": FEATURE_TRANSFORMATION_ARN_PREFIX + name,
        "defaultParameters": defaults,
        "status": "ACTIVE",
        "creationDateTime": CATALOGUE_TIMESTAMP,
        "lastUpdatedDateTime": CATALOGUE_TIMESTAMP,
    }
