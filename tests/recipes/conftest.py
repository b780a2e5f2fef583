"""Fixtures: one small structured dataset (with Items and Users) shared by the recipe tests."""

from __future__ import annotations

import pytest

from tastemaker.data.schemas import Schema, SchemaField
from tastemaker.recipes.action_data import ActionData
from tastemaker.recipes.training_data import TrainingConfig, TrainingData
from tests.recipes.synthetic import make_action_tables, make_tables

ITEM_SCHEMA = Schema("items", (
    SchemaField("ITEM_ID", "string"),
    SchemaField("GENRES", "string", categorical=True),
    SchemaField("NAME", "string", item_name=True),
    SchemaField("DESCRIPTION", "string", textual=True),
    SchemaField("CREATION_TIMESTAMP", "long"),
))
USER_SCHEMA = Schema("users", (SchemaField("USER_ID", "string"), SchemaField("SEGMENT", "string", categorical=True)))


@pytest.fixture(scope="session")
def tables():
    return make_tables()


@pytest.fixture(scope="session")
def training_data(tables) -> TrainingData:
    interactions, items, users = tables
    data = TrainingData.from_tables(interactions, items, users, TrainingConfig(),
                                    item_schema=ITEM_SCHEMA, user_schema=USER_SCHEMA)
    data.actions = ActionData.from_tables(*make_action_tables())  # only aws-next-best-action reads them
    return data
