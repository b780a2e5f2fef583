"""AWS's getting-started notebook, its boto3 calls as written, runs unchanged against a live server with a
moto S3 server (tests/compat/getting_started.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.compat import getting_started

pytestmark = pytest.mark.slow


def test_getting_started_notebook_runs_unchanged(server: LocalServer, moto_s3: str, tmp_path: Path) -> None:
    clients = {name: server.client(name) for name in ("personalize", "personalize-runtime", "personalize-events")}
    clients["s3"] = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    seen = getting_started.run(clients, tmp_path, f"notebook-{uuid.uuid4().hex[:8]}")
    assert seen["import_interactions"]["status"] == "ACTIVE"
    assert seen["import_items"]["status"] == "ACTIVE"  # movies without a year are skipped, as Personalize does
    assert "arn:aws:personalize:::recipe/aws-user-personalization" in seen["recipes"]
    assert seen["solution_version"]["status"] == "ACTIVE"
    assert 0 < seen["metrics"]["normalized_discounted_cumulative_gain_at_10"] <= 1
    assert seen["campaign"]["status"] == "ACTIVE"
    assert len(seen["recommendations"]) == 25
    assert len(seen["after_events"]) == 25
    assert seen["filtered"] and not {"3", "8", "13"} & {r["itemId"] for r in seen["filtered"]}
