"""Resources belong to the region of their ARN: listings and quota counts of one region (issue #14 item 9),
on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from tastemaker.store import resources
from tests.store.test_metadata_store import engine  # noqa: F401 - the shared SQLite/PostgreSQL fixture


def add(conn: sa.Connection, region: str, name: str) -> None:
    resources.insert(conn, arn=f"arn:aws:personalize:{region}:000000000000:dataset-group/{name}",
                     kind="dataset_group", body={"name": name}, status="CREATE PENDING",
                     name_key=f"000000000000/{region}/{name}")


def test_pages_and_counts_are_per_region(engine: sa.Engine) -> None:  # noqa: F811
    names = [("us-east-1", "region-a"), ("eu-west-1", "region-b"), ("us-east-1", "region-c"),
             ("us_east-1", "region-odd")]  # LIKE wildcards in a region name are matched literally
    with engine.begin() as conn:
        for region, name in names:
            add(conn, region, name)
    try:
        with engine.connect() as conn:
            east, _ = resources.page(conn, kind="dataset_group", next_token=None, max_results=None,
                                     region="us-east-1")
            west, _ = resources.page(conn, kind="dataset_group", next_token=None, max_results=None,
                                     region="eu-west-1")
            assert [r.body["name"] for r in east] == ["region-a", "region-c"]
            assert [r.body["name"] for r in west] == ["region-b"]
            assert resources.count(conn, "dataset_group", ["CREATE PENDING"], region="us-east-1") == 2
            assert resources.count(conn, "dataset_group", ["CREATE PENDING"]) == 4
    finally:  # the PostgreSQL database is shared with other suites
        with engine.begin() as conn:
            for region, name in names:
                resources.delete(conn, f"arn:aws:personalize:{region}:000000000000:dataset-group/{name}")
