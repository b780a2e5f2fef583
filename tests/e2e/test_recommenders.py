"""End-to-end: domain recommenders (VIDEO_ON_DEMAND and ECOMMERCE) trained, served, stopped and started."""

from __future__ import annotations

import csv
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import GENRES, INTERACTIONS_SCHEMA, ITEMS_SCHEMA, write_dataset
from tests.e2e.util import wait_gone, wait_status

RECIPE = "arn:aws:personalize:::recipe/"
pytestmark = pytest.mark.slow  # the module trains six recommenders (about 40 s on an idle machine)
ECOMMERCE_ITEMS_SCHEMA = {
    "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "ITEM_ID", "type": "string"}, {"name": "PRICE", "type": "float"},
               {"name": "CATEGORY_L1", "type": "string", "categorical": True}],
    "version": "1.0",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def history(path: Path, user: str, event_type: str) -> set[str]:
    with path.open() as fh:
        return {r["ITEM_ID"] for r in csv.DictReader(fh) if r["USER_ID"] == user and r["EVENT_TYPE"] == event_type}


def domain_group(personalize, folder: Path, domain: str, event_types: tuple[str, ...]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    paths = write_dataset(folder, event_types=event_types)
    items_schema = ITEMS_SCHEMA
    if domain == "ECOMMERCE":
        items_schema = ECOMMERCE_ITEMS_SCHEMA
        with paths["items"].open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["ITEM_ID", "PRICE", "CATEGORY_L1"])
            for i in range(90):
                out.writerow([f"i{i}", f"{5 + i % 20}.5", GENRES[i % len(GENRES)]])
    arn = personalize.create_dataset_group(name=unique(domain.lower()), domain=domain)["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", items_schema)):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema),
                                               domain=domain)["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(
            jobName=unique("imp"), datasetArn=ds, dataSource={"dataLocation": str(paths[kind.lower()])},
            roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    return {"arn": arn, "paths": paths}


@pytest.fixture(scope="module")
def recommenders(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    vod = domain_group(personalize, import_root / unique("vod"), "VIDEO_ON_DEMAND", ("Click", "Watch"))
    # ECOMMERCE data with few purchases: 'frequently bought together' must refuse it.
    shop = domain_group(personalize, import_root / unique("shop"), "ECOMMERCE", ("View",) * 9 + ("Purchase",))
    wanted = {
        "top_picks": (vod, "aws-vod-top-picks"), "because": (vod, "aws-vod-because-you-watched-x"),
        "popular": (vod, "aws-vod-most-popular"), "for_you": (shop, "aws-ecomm-recommended-for-you"),
        "viewed": (shop, "aws-ecomm-customers-who-viewed-x-also-viewed"),
        "bought": (shop, "aws-ecomm-frequently-bought-together"),
    }
    arns = {key: personalize.create_recommender(
        name=unique(key.replace("_", "-")), datasetGroupArn=group["arn"], recipeArn=RECIPE + recipe,
        recommenderConfig={"enableMetadataWithRecommendations": True} if key == "popular" else {})["recommenderArn"]
        for key, (group, recipe) in wanted.items()}
    described = {key: wait_status(lambda arn=arn: personalize.describe_recommender(recommenderArn=arn),
                                  "recommender", timeout=300) for key, arn in arns.items()}
    return {"vod": vod, "shop": shop, "arns": arns, "described": described}


def test_recommenders_train_with_metrics_or_fail_on_missing_events(recommenders) -> None:  # type: ignore[no-untyped-def]
    described = recommenders["described"]
    for key in ("top_picks", "because", "popular", "for_you", "viewed"):
        assert described[key]["status"] == "ACTIVE", (key, described[key].get("failureReason"))
        assert described[key]["modelMetrics"], key
    assert described["top_picks"]["recipeArn"] == RECIPE + "aws-vod-top-picks"
    assert described["top_picks"]["recommenderConfig"]["minRecommendationRequestsPerSecond"] == 1
    failed = described["bought"]
    assert failed["status"] == "CREATE FAILED"
    assert "Purchase" in failed["failureReason"]


def test_list_and_domain_checks(personalize, recommenders) -> None:  # type: ignore[no-untyped-def]
    listed = personalize.list_recommenders(datasetGroupArn=recommenders["vod"]["arn"])["recommenders"]
    assert {r["recommenderArn"] for r in listed} == {recommenders["arns"][k] for k in ("top_picks", "because",
                                                                                      "popular")}
    with pytest.raises(ClientError) as exc:
        personalize.create_recommender(name=unique("wrong"), datasetGroupArn=recommenders["shop"]["arn"],
                                       recipeArn=RECIPE + "aws-vod-top-picks")
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        personalize.create_recommender(name=unique("wrong"), datasetGroupArn=recommenders["vod"]["arn"],
                                       recipeArn=RECIPE + "aws-user-personalization")
    assert code(exc) == "InvalidInputException"


def test_top_picks_exclude_watched_and_have_no_scores(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    arn = recommenders["arns"]["top_picks"]
    items = runtime.get_recommendations(recommenderArn=arn, userId="u0", numResults=20)["itemList"]
    assert len(items) == 20 and all("score" not in i for i in items)
    watched = history(recommenders["vod"]["paths"]["interactions"], "u0", "Watch")
    assert watched and not watched & {i["itemId"] for i in items}
    with pytest.raises(ClientError) as exc:
        runtime.get_recommendations(recommenderArn=arn)
    assert code(exc) == "InvalidInputException" and "userId" in exc.value.response["Error"]["Message"]


def test_related_use_cases_need_their_ids(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    because = recommenders["arns"]["because"]
    items = runtime.get_recommendations(recommenderArn=because, userId="u1", itemId="i1")["itemList"]
    ids = {i["itemId"] for i in items}
    assert items and "i1" not in ids and all("score" not in i for i in items)
    assert not ids & history(recommenders["vod"]["paths"]["interactions"], "u1", "Watch")
    with pytest.raises(ClientError) as exc:
        runtime.get_recommendations(recommenderArn=because, userId="u1")
    assert code(exc) == "InvalidInputException" and "itemId" in exc.value.response["Error"]["Message"]
    viewed = runtime.get_recommendations(recommenderArn=recommenders["arns"]["viewed"], userId="u2",
                                         itemId="i2")["itemList"]
    assert viewed and not {i["itemId"] for i in viewed} & history(recommenders["shop"]["paths"]["interactions"],
                                                                  "u2", "Purchase")


def test_popular_and_recommended_for_you(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    popular = recommenders["arns"]["popular"]
    a = runtime.get_recommendations(recommenderArn=popular, userId="u1", numResults=5,
                                    metadataColumns={"ITEMS": ["GENRES"]})["itemList"]
    b = runtime.get_recommendations(recommenderArn=popular, userId="u7", numResults=5)["itemList"]
    assert [i["itemId"] for i in a] == [i["itemId"] for i in b]
    assert all(i["metadata"]["GENRES"] in GENRES for i in a)
    for_you = runtime.get_recommendations(recommenderArn=recommenders["arns"]["for_you"], userId="u3")["itemList"]
    bought = history(recommenders["shop"]["paths"]["interactions"], "u3", "Purchase")
    assert len(for_you) == 25 and not bought & {i["itemId"] for i in for_you}


def _first_error(call) -> str:  # type: ignore[no-untyped-def]
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            call()
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        time.sleep(0.1)
    return "no error"


def _first_success(call) -> dict:  # type: ignore[no-untyped-def]
    """Serving workers see a state change within about a second; retry until then."""
    deadline = time.time() + 10
    while True:
        try:
            return call()["itemList"]  # type: ignore[no-any-return]
        except ClientError as exc:
            if time.time() > deadline or exc.response["Error"]["Code"] != "InvalidInputException":
                raise
        time.sleep(0.1)


def test_stop_start_update_delete(personalize, runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    arn = recommenders["arns"]["popular"]
    with pytest.raises(ClientError) as exc:
        personalize.start_recommender(recommenderArn=arn)
    assert code(exc) == "ResourceInUseException"
    personalize.stop_recommender(recommenderArn=arn)
    stopped = wait_status(lambda: personalize.describe_recommender(recommenderArn=arn), "recommender")
    assert stopped["status"] == "INACTIVE"
    assert _first_error(lambda: runtime.get_recommendations(recommenderArn=arn, userId="u1")) == "InvalidInputException"
    personalize.start_recommender(recommenderArn=arn)
    started = wait_status(lambda: personalize.describe_recommender(recommenderArn=arn), "recommender")
    assert started["status"] == "ACTIVE"
    assert _first_success(lambda: runtime.get_recommendations(recommenderArn=arn, userId="u1", numResults=3))
    personalize.update_recommender(recommenderArn=arn, recommenderConfig={"minRecommendationRequestsPerSecond": 5})
    update = wait_status(lambda: {"u": personalize.describe_recommender(recommenderArn=arn)["recommender"]
                                  ["latestRecommenderUpdate"]}, "u")
    assert update["status"] == "ACTIVE"
    config = personalize.describe_recommender(recommenderArn=arn)["recommender"]["recommenderConfig"]
    assert config["minRecommendationRequestsPerSecond"] == 5 and config["enableMetadataWithRecommendations"]
    personalize.delete_recommender(recommenderArn=recommenders["arns"]["bought"])
    wait_gone(lambda: personalize.describe_recommender(recommenderArn=recommenders["arns"]["bought"]), personalize)
