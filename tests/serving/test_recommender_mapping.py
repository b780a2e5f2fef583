"""Every domain use case maps to a training spec of its engine recipe with its event type."""

from __future__ import annotations

import pytest

from tastemaker.jobs.recommender_tasks import training_version
from tastemaker.recipes import get_recipe
from tastemaker.recipes.catalog import USE_CASES
from tastemaker.store.resources import Resource


@pytest.mark.parametrize("use_case", USE_CASES, ids=lambda u: u.name)
def test_use_case_trains_its_engine_recipe(use_case) -> None:  # type: ignore[no-untyped-def]
    row = Resource("arn:aws:personalize:us-east-1:1:recommender/r", "recommender", "CREATE PENDING",
                   {"recipe_arn": use_case.recipe_arn}, "group", "group", 0.0, 0.0)
    config = {"training_data_config": {"excluded_dataset_columns": {"Items": ["PRICE"]}}}
    version = training_version(row, config)
    assert version.body["recipe_arn"].endswith("/" + use_case.engine_recipe)
    assert get_recipe(use_case.engine_recipe).recipe_type in ("USER_PERSONALIZATION", "RELATED_ITEMS",
                                                              "POPULAR_ITEMS")
    expected = use_case.required_event_type or (use_case.event_types[0] if len(use_case.event_types) == 1 else None)
    assert version.body["event_type"] == expected
    assert version.body["solution_config"]["training_data_config"] == config["training_data_config"]
    assert version.dataset_group_arn == "group"
