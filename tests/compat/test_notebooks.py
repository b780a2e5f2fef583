"""AWS's sample notebooks, their boto3 calls as written, run unchanged against a live server with a moto S3
server: getting started (tests/compat/getting_started.py), the POC-in-a-box workshop (tests/compat/poc_in_a_box.py),
the VIDEO_ON_DEMAND recommender and the ECOMMERCE promotions notebooks (tests/compat/domain_notebooks.py).
bench/compat/run_notebooks.py runs the notebooks themselves."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tastemaker.cli.local_server import LocalServer
from tests.compat import domain_notebooks, getting_started, poc_in_a_box

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


def _clients(server: LocalServer, moto_s3: str) -> dict[str, Any]:
    clients = {name: server.client(name) for name in ("personalize", "personalize-runtime")}
    clients["s3"] = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    return clients


def test_video_on_demand_recommender_notebook_runs_unchanged(server: LocalServer, moto_s3: str,
                                                             tmp_path: Path) -> None:
    seen = domain_notebooks.vod(_clients(server, moto_s3), tmp_path, f"vod-{uuid.uuid4().hex[:8]}")
    assert [job["status"] for job in seen["imports"]] == ["ACTIVE", "ACTIVE", "ACTIVE"]
    assert {"arn:aws:personalize:::recipe/aws-vod-more-like-x",
            "arn:aws:personalize:::recipe/aws-vod-top-picks"} <= set(seen["recipes"])
    assert [r["status"] for r in seen["recommenders"]] == ["ACTIVE", "ACTIVE"]
    similar = [r["itemId"] for r in seen["more_like_x"]]
    assert len(similar) == 20 and "7" not in similar  # never the movie the list is for
    picks = [r["itemId"] for r in seen["top_picks"]]
    assert len(picks) == 20 and not set(picks) & seen["watched_by_111"]  # top picks leave out what was watched


def test_promotions_notebook_runs_unchanged(server: LocalServer, moto_s3: str, tmp_path: Path) -> None:
    seen = domain_notebooks.promotions(_clients(server, moto_s3), tmp_path, f"promo-{uuid.uuid4().hex[:8]}")
    category = seen["categories"]
    assert [job["status"] for job in seen["imports"]] == ["ACTIVE", "ACTIVE"]
    assert "arn:aws:personalize:::recipe/aws-ecomm-recommended-for-you" in seen["recipes"]
    assert seen["recommender"]["status"] == "ACTIVE" and seen["filter"]["status"] == "ACTIVE"
    assert len(seen["plain"]) == 20 and not any("promotionName" in r for r in seen["plain"])
    filtered = seen["filtered"]
    assert filtered and {category[r["itemId"]] for r in filtered} == {"halloween"}
    promoted = [r for r in seen["promoted"] if r.get("promotionName") == "halloween_promotion"]
    assert len(seen["promoted"]) == 20 and len(promoted) == 4  # 20% of 20
    assert {category[r["itemId"]] for r in promoted} == {"halloween"}
    both = seen["filtered_and_promoted"]
    promoted = [r for r in both if r.get("promotionName") == "halloween_promotion"]
    assert len(promoted) == 4 and {category[r["itemId"]] for r in promoted} == {"halloween"}
    assert {category[r["itemId"]] for r in both if r not in promoted} == {"decorative"}
    assert len({r["itemId"] for r in both}) == len(both)


def test_poc_in_a_box_workshop_runs_unchanged(server: LocalServer, moto_s3: str, tmp_path: Path) -> None:
    clients = _clients(server, moto_s3)
    clients["personalize-events"] = server.client("personalize-events")
    seen = poc_in_a_box.run(clients, tmp_path, f"poc-{uuid.uuid4().hex[:8]}")
    with seen["items_file"].open() as fh:
        meta = {row["ITEM_ID"]: row for row in csv.DictReader(fh)}
    assert [job["status"] for job in seen["imports"]] == ["ACTIVE", "ACTIVE"]
    assert {key: v["status"] for key, v in seen["versions"].items()} == dict.fromkeys(
        ("userpersonalization", "sims", "rerank"), "ACTIVE")
    assert all("normalized_discounted_cumulative_gain_at_10" in m for m in seen["metrics"].values())
    assert {c["status"] for c in seen["campaigns"].values()} == {"ACTIVE"}
    similar = [r["itemId"] for r in seen["sims"]]
    assert len(similar) == 25 and "5" not in similar
    assert len(seen["user"]) == 25
    for genre, listed in seen["by_genre"].items():
        assert listed and all(genre in meta[r["itemId"]]["GENRE"].split("|") for r in listed)
    assert seen["decade"] and all(1970 <= int(meta[r["itemId"]]["YEAR"]) < 1980 for r in seen["decade"])
    watched = {r["itemId"] for r in seen["watched"]}
    unwatched = {r["itemId"] for r in seen["unwatched"]}
    assert len(seen["sent_watch"]) == 4 and set(seen["sent_watch"]) <= watched
    assert not set(seen["sent_watch"]) & unwatched and not watched & unwatched
    assert sorted(r["itemId"] for r in seen["reranked"]) == sorted(seen["rerank_input"])
    assert seen["batch"]["status"] == "ACTIVE"
    assert sorted(line["input"]["userId"] for line in seen["batch_lines"]) == ["3", "42", "99"]
    assert all(len(line["output"]["recommendedItems"]) == 25 for line in seen["batch_lines"])
