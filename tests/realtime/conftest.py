"""In-process services on SQLite or PostgreSQL, and a dataset group with an event tracker, for realtime tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tastemaker.config import Settings
from tastemaker.control.context import RequestContext
from tastemaker.services import Services

INTERACTIONS = {
    "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "EVENT_VALUE", "type": ["null", "float"]},
        {"name": "IMPRESSION", "type": ["null", "string"]},
        {"name": "RECOMMENDATION_ID", "type": ["null", "string"]},
        {"name": "EVENT_ATTRIBUTION_SOURCE", "type": ["null", "string"]},
        {"name": "DEVICE", "type": ["null", "string"], "categorical": True},
        {"name": "NUMBER_OF_RATINGS", "type": ["null", "int"]},
    ],
    "version": "1.0",
}
ITEMS = {
    "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "GENRES", "type": ["null", "string"], "categorical": True},
        {"name": "PRICE", "type": ["null", "float"]},
        {"name": "CREATION_TIMESTAMP", "type": "long"},
    ],
    "version": "1.0",
}
USERS = {
    "type": "record", "name": "Users", "namespace": "com.amazonaws.personalize.schema",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "AGE", "type": ["null", "int"]},
        {"name": "MEMBERSHIP", "type": ["null", "string"], "categorical": True},
    ],
    "version": "1.0",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    from tastemaker.cli.wiring import build_services

    db_url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    svc = build_services(Settings(data_dir=tmp_path / "data", db_url=db_url))
    yield svc
    svc.engine.dispose()


@dataclass
class Group:
    ctx: RequestContext
    arn: str
    tracking_id: str
    datasets: dict[str, str]


def activate_all(services: Services) -> None:
    """Stand in for the job runner: every pending resource becomes ACTIVE."""
    import sqlalchemy as sa

    from tastemaker.store import resources
    from tastemaker.store.status import Status
    from tastemaker.store.tables import resources as table

    with services.engine.begin() as conn:
        pending = [r.arn for r in conn.execute(sa.select(table.c.arn).where(table.c.status == "CREATE PENDING"))]
        for arn in pending:
            resources.update(conn, arn, status=Status.CREATE_IN_PROGRESS)
            resources.update(conn, arn, status=Status.ACTIVE)


def make_group(services: Services, schemas: dict[str, dict[str, Any]] | None = None, tracker: bool = True) -> Group:
    from tastemaker.control.dataset_groups import create_dataset_group
    from tastemaker.control.datasets import create_dataset
    from tastemaker.control.event_trackers import create_event_tracker
    from tastemaker.control.schemas import create_schema

    ctx = RequestContext(services, "us-east-1")
    tag = uuid.uuid4().hex[:8]
    arn = create_dataset_group(ctx, name=f"g-{tag}")["dataset_group_arn"]
    activate_all(services)
    datasets = {}
    defaults = {"Interactions": INTERACTIONS, "Items": ITEMS, "Users": USERS}
    for kind, schema in (defaults if schemas is None else schemas).items():
        schema_arn = create_schema(ctx, name=f"{kind.lower()}-{tag}", schema=json.dumps(schema))["schema_arn"]
        datasets[kind] = create_dataset(ctx, name=f"{kind.lower()}-{tag}", schema_arn=schema_arn,
                                        dataset_group_arn=arn, dataset_type=kind)["dataset_arn"]
    tracking_id = ""
    if tracker:
        tracking_id = create_event_tracker(ctx, name=f"t-{tag}", dataset_group_arn=arn)["tracking_id"]
    activate_all(services)
    return Group(ctx, arn, tracking_id, datasets)
