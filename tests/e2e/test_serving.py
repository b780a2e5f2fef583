"""End-to-end: campaigns and the runtime API (recommendations, rankings, filters, promotions) through boto3."""

from __future__ import annotations

import csv
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import GENRES, INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_gone, wait_status

RECIPE = "arn:aws:personalize:::recipe/"
NEW_ITEMS = 12  # items only the Items dataset knows (never interacted with)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def genre_of(item_id: str) -> str:
    return GENRES[int(item_id[1:]) % len(GENRES)] if item_id.startswith("i") else "new"


@pytest.fixture(scope="module")
def group(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A custom group with data, and UP / SIMS / popularity / ranking solutions trained once."""
    paths = write_dataset(import_root / unique("serving"))
    newest = 1_700_000_000 + 200 * 1000
    with paths["items"].open("a", newline="") as fh:
        out = csv.writer(fh)
        for k in range(NEW_ITEMS):
            out.writerow([f"new{k}", GENRES[k % len(GENRES)], "9.5", newest + k, f"brand new title {k}"])
    arn = personalize.create_dataset_group(name=unique("serving"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    datasets = {}
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA), ("Users", USERS_SCHEMA)):
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        datasets[kind] = ds
    jobs = [personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=datasets[kind], dataSource={"dataLocation": str(paths[kind.lower()])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"] for kind in datasets]
    for job in jobs:
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    solutions, versions = {}, {}
    for key, recipe in (("up", "aws-user-personalization"), ("sims", "aws-sims"), ("pop", "aws-popularity-count"),
                        ("pr", "aws-personalized-ranking")):
        sol = personalize.create_solution(name=unique(key), datasetGroupArn=arn, recipeArn=RECIPE + recipe,
                                          performAutoTraining=False)["solutionArn"]
        wait_status(lambda sol=sol: personalize.describe_solution(solutionArn=sol), "solution")
        solutions[key] = sol
        versions[key] = personalize.create_solution_version(solutionArn=sol)["solutionVersionArn"]
    for key, version in versions.items():
        done = wait_status(lambda v=version: personalize.describe_solution_version(solutionVersionArn=v),
                           "solutionVersion", timeout=240)
        assert done["status"] == "ACTIVE", (key, done.get("failureReason"))
    return {"arn": arn, "datasets": datasets, "solutions": solutions, "versions": versions, "paths": paths}


def deploy(personalize, name: str, version: str, **kwargs: Any) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_campaign(name=unique(name), solutionVersionArn=version, **kwargs)["campaignArn"]
    done = wait_status(lambda: personalize.describe_campaign(campaignArn=arn), "campaign")
    assert done["status"] == "ACTIVE", done.get("failureReason")
    return arn


@pytest.fixture(scope="module")
def campaigns(personalize, group: dict[str, Any]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    v = group["versions"]
    return {
        "up": deploy(personalize, "up", v["up"], minProvisionedTPS=3, campaignConfig={
            "itemExplorationConfig": {"explorationWeight": "0", "explorationItemAgeCutOff": "30"},
            "enableMetadataWithRecommendations": True}),
        "sims": deploy(personalize, "sims", v["sims"]),
        "pop": deploy(personalize, "pop", v["pop"]),
        "pr": deploy(personalize, "pr", v["pr"]),
        "latest": deploy(personalize, "latest", group["solutions"]["up"] + "/$LATEST",
                         campaignConfig={"syncWithLatestSolutionVersion": True}),
    }


def test_describe_and_list_campaigns(personalize, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    up = personalize.describe_campaign(campaignArn=campaigns["up"])["campaign"]
    assert up["solutionVersionArn"] == group["versions"]["up"]
    assert up["minProvisionedTPS"] == 3
    assert up["campaignConfig"]["itemExplorationConfig"] == {"explorationWeight": "0",
                                                             "explorationItemAgeCutOff": "30"}
    assert up["campaignConfig"]["enableMetadataWithRecommendations"] is True
    assert "latestCampaignUpdate" not in up
    sims = personalize.describe_campaign(campaignArn=campaigns["sims"])["campaign"]
    assert sims["minProvisionedTPS"] == 1
    latest = personalize.describe_campaign(campaignArn=campaigns["latest"])["campaign"]
    assert latest["solutionVersionArn"] == group["versions"]["up"]
    listed = personalize.list_campaigns(solutionArn=group["solutions"]["up"])["campaigns"]
    assert {c["campaignArn"] for c in listed} == {campaigns["up"], campaigns["latest"]}
    assert all(c["status"] == "ACTIVE" for c in listed)


def test_create_campaign_refusals(personalize, group) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        personalize.create_campaign(name=unique("bad"), solutionVersionArn=group["versions"]["up"],
                                    campaignConfig={"syncWithLatestSolutionVersion": True})
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        personalize.create_campaign(name=unique("bad"), solutionVersionArn=group["versions"]["up"],
                                    campaignConfig={"itemExplorationConfig": {"explorationWeight": "2"}})
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        personalize.create_campaign(name=unique("bad"), solutionVersionArn=group["versions"]["up"] + "0")
    assert code(exc) == "ResourceNotFoundException"


def test_user_personalization_follows_taste_with_softmax_scores(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    first = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0")
    items = first["itemList"]
    assert len(items) == 25
    assert len({i["itemId"] for i in items}) == 25
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s < 1 for s in scores) and sum(scores) <= 1.0 + 1e-6
    # u0 likes Action (the generator's clusters): most of the top 10 are Action items.
    assert sum(genre_of(i["itemId"]) == "Action" for i in items[:10]) >= 6
    assert not any(i["itemId"].startswith("new") for i in items)
    second = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0", numResults=5)
    assert [i["itemId"] for i in second["itemList"]] == [i["itemId"] for i in items[:5]]
    assert first["recommendationId"].startswith("RID-") and first["recommendationId"] != second["recommendationId"]


def test_unknown_user_gets_the_cold_start_list(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    a = runtime.get_recommendations(campaignArn=campaigns["up"], userId="nobody-1", numResults=10)["itemList"]
    b = runtime.get_recommendations(campaignArn=campaigns["up"], userId="nobody-2", numResults=10)["itemList"]
    assert [i["itemId"] for i in a] == [i["itemId"] for i in b]
    assert len(a) == 10 and all("score" in i for i in a)


def test_related_and_popular_items_have_no_scores(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    similar = runtime.get_recommendations(campaignArn=campaigns["sims"], itemId="i0", numResults=10)["itemList"]
    assert len(similar) == 10 and all("score" not in i for i in similar)
    assert "i0" not in [i["itemId"] for i in similar]
    assert sum(genre_of(i["itemId"]) == "Action" for i in similar) >= 5
    popular = runtime.get_recommendations(campaignArn=campaigns["pop"], numResults=10)["itemList"]
    assert all("score" not in i for i in popular)
    again = runtime.get_recommendations(campaignArn=campaigns["pop"], userId="u3", numResults=10)["itemList"]
    assert [i["itemId"] for i in popular] == [i["itemId"] for i in again]
    unknown = runtime.get_recommendations(campaignArn=campaigns["sims"], itemId="no-such-item",
                                          numResults=10)["itemList"]
    assert len(unknown) == 10  # popular items for an item the model does not know


def test_personalized_ranking_orders_the_input_list(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    inputs = ["i1", "i0", "unseen-item", "i6", "i12", "i2"]
    ranked = runtime.get_personalized_ranking(campaignArn=campaigns["pr"], userId="u0",
                                              inputList=inputs)["personalizedRanking"]
    ids = [i["itemId"] for i in ranked]
    assert sorted(ids) == sorted(inputs)
    assert ids[-1] == "unseen-item" and "score" not in ranked[-1]
    scores = [i["score"] for i in ranked[:-1]]
    assert scores == sorted(scores, reverse=True)
    assert abs(sum(scores) - 1.0) < 1e-3  # softmax over the input list only
    assert genre_of(ids[0]) == "Action"  # u0's taste wins over the other genres


def test_ids_and_limits_per_recipe_type(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"campaignArn": campaigns["up"]}, "userId"),
        ({"campaignArn": campaigns["sims"]}, "itemId"),
        ({"campaignArn": campaigns["up"], "userId": "u0", "numResults": 501}, "numResults"),
        ({"campaignArn": campaigns["up"], "userId": "u0", "numResults": 51, "metadataColumns": {"ITEMS": ["GENRES"]}},
         "numResults"),
        ({"campaignArn": campaigns["pr"], "userId": "u0"}, "GetPersonalizedRanking"),
        ({"campaignArn": campaigns["up"], "recommenderArn": campaigns["up"], "userId": "u0"}, "exactly one"),
    ]
    for kwargs, words in cases:
        with pytest.raises(ClientError) as exc:
            runtime.get_recommendations(**kwargs)
        assert code(exc) == "InvalidInputException", kwargs
        assert words in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        runtime.get_personalized_ranking(campaignArn=campaigns["up"], userId="u0", inputList=["i1"])
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        runtime.get_recommendations(campaignArn=campaigns["up"].replace("campaign/", "campaign/missing-"), userId="u0")
    assert code(exc) == "ResourceNotFoundException"
    assert len(runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0",
                                           numResults=500)["itemList"]) == 90 + NEW_ITEMS


def test_metadata_columns(runtime, campaigns) -> None:  # type: ignore[no-untyped-def]
    items = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u1", numResults=5,
                                        metadataColumns={"ITEMS": ["GENRES", "PRICE"]})["itemList"]
    for item in items:
        assert item["metadata"]["GENRES"] == genre_of(item["itemId"])
        assert float(item["metadata"]["PRICE"]) > 0
    with pytest.raises(ClientError) as exc:  # this campaign did not enable metadata
        runtime.get_recommendations(campaignArn=campaigns["sims"], itemId="i1",
                                    metadataColumns={"ITEMS": ["GENRES"]})
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        runtime.get_recommendations(campaignArn=campaigns["up"], userId="u1", metadataColumns={"ITEMS": ["NOPE"]})
    assert code(exc) == "InvalidInputException"


def make_filter(personalize, group_arn: str, expression: str) -> str:  # type: ignore[no-untyped-def]
    try:
        arn = personalize.create_filter(name=unique("f"), datasetGroupArn=group_arn,
                                        filterExpression=expression)["filterArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NotImplementedException":
            pytest.skip("CreateFilter is not built yet (filters issue)")
        raise
    wait_status(lambda: personalize.describe_filter(filterArn=arn), "filter")
    return arn


def test_filters_apply_before_top_k(personalize, runtime, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    by_genre = make_filter(personalize, group["arn"], "EXCLUDE ItemID WHERE Items.GENRES IN ($G)")
    items = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0", filterArn=by_genre,
                                        filterValues={"G": '"Action"'})["itemList"]
    assert len(items) == 25 and not any(genre_of(i["itemId"]) == "Action" for i in items)
    clicked = make_filter(personalize, group["arn"], 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    history = {}
    with group["paths"]["interactions"].open() as fh:
        for row in csv.DictReader(fh):
            if row["USER_ID"] == "u0" and row["EVENT_TYPE"] == "click":
                history[row["ITEM_ID"]] = True
    items = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0", filterArn=clicked)["itemList"]
    assert history and not set(history) & {i["itemId"] for i in items}
    ranked = runtime.get_personalized_ranking(campaignArn=campaigns["pr"], userId="u0", inputList=["i0", "i1", "i6"],
                                              filterArn=by_genre, filterValues={"G": '"Action"'})
    assert [i["itemId"] for i in ranked["personalizedRanking"]] == ["i1"]


def test_promotions_take_their_share_of_slots(personalize, runtime, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    comedy = make_filter(personalize, group["arn"], 'INCLUDE ItemID WHERE Items.GENRES IN ("Comedy")')
    items = runtime.get_recommendations(
        campaignArn=campaigns["up"], userId="u0", numResults=10,
        promotions=[{"name": "laughs", "percentPromotedItems": 30, "filterArn": comedy}])["itemList"]
    promoted = [i for i in items if i.get("promotionName") == "laughs"]
    assert len(items) == 10 and len(promoted) == 3
    assert all(genre_of(i["itemId"]) in ("Comedy", "new") for i in promoted)
    rest = [i["itemId"] for i in items if "promotionName" not in i]
    plain = [i["itemId"] for i in runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0",
                                                               numResults=10)["itemList"]]
    assert rest == [i for i in plain if i not in {p["itemId"] for p in promoted}][:7]


@pytest.mark.slow  # trains a second solution version
def test_update_while_serving_and_latest_sync(personalize, runtime, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    calls, failures = [0], []
    stop = threading.Event()

    def keep_calling() -> None:
        while not stop.is_set():
            try:
                runtime.get_recommendations(campaignArn=campaigns["up"], userId="u2", numResults=5)
                calls[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is what this test counts
                failures.append(repr(exc))

    thread = threading.Thread(target=keep_calling, daemon=True)
    thread.start()
    try:
        v2 = personalize.create_solution_version(solutionArn=group["solutions"]["up"])["solutionVersionArn"]
        done = wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=v2), "solutionVersion",
                           timeout=240)
        assert done["status"] == "ACTIVE", done.get("failureReason")
        personalize.update_campaign(campaignArn=campaigns["up"], solutionVersionArn=v2, campaignConfig={
            "itemExplorationConfig": {"explorationWeight": "1", "explorationItemAgeCutOff": "100000"},
            "enableMetadataWithRecommendations": True})
        update = wait_status(lambda: {"u": personalize.describe_campaign(campaignArn=campaigns["up"])["campaign"]
                                      .get("latestCampaignUpdate", {})}, "u")
        assert update["status"] == "ACTIVE" and update["solutionVersionArn"] == v2
        time.sleep(1.5)  # keep calling across the workers' switch to the new version
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures[:3]
    assert calls[0] > 10
    described = personalize.describe_campaign(campaignArn=campaigns["up"])["campaign"]
    assert described["solutionVersionArn"] == v2 and described["status"] == "ACTIVE"
    # Exploration now gives about half of the slots to young or cold items, including never-seen new items.
    explored = False
    for _attempt in range(30):  # workers pick up the new config within about a second
        items = runtime.get_recommendations(campaignArn=campaigns["up"], userId="u0")["itemList"]
        explored = any(i["itemId"].startswith("new") for i in items)
        if explored:
            break
        time.sleep(0.2)
    assert explored
    # The $LATEST campaign followed the new version by itself.
    latest = wait_status(lambda: {"c": personalize.describe_campaign(campaignArn=campaigns["latest"])["campaign"]
                                  .get("latestCampaignUpdate", {"status": "none"})}, "c")
    assert latest["solutionVersionArn"] == v2 and latest["status"] == "ACTIVE"


def test_update_refusals_and_delete(personalize, runtime, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as exc:
        personalize.update_campaign(campaignArn=campaigns["sims"], solutionVersionArn=group["versions"]["up"] + "x")
    assert code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        personalize.delete_solution(solutionArn=group["solutions"]["pop"])
    assert code(exc) == "ResourceInUseException"
    personalize.delete_campaign(campaignArn=campaigns["pop"])
    seen: set[str] = set()
    deadline = time.time() + 30
    while time.time() < deadline and "ResourceNotFoundException" not in seen:
        try:
            runtime.get_recommendations(campaignArn=campaigns["pop"])
        except ClientError as err:
            seen.add(err.response["Error"]["Code"])
        time.sleep(0.1)
    assert seen <= {"InvalidInputException", "ResourceNotFoundException"} and "ResourceNotFoundException" in seen
    wait_gone(lambda: personalize.describe_campaign(campaignArn=campaigns["pop"]), personalize)


def test_streamed_events_change_recommendations(personalize, runtime, events, group, campaigns) -> None:  # type: ignore[no-untyped-def]
    try:
        tracker = personalize.create_event_tracker(name=unique("tracker"), datasetGroupArn=group["arn"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NotImplementedException":
            pytest.skip("event trackers are not built yet (events issue)")
        raise
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]),
                "eventTracker")
    before = runtime.get_recommendations(campaignArn=campaigns["latest"], userId="fresh-user", numResults=10)
    comedy = [f"i{k}" for k in range(1, 90, len(GENRES))][:8]  # item k has genre GENRES[k % 6]: Comedy
    now = time.time()
    events.put_events(trackingId=tracker["trackingId"], userId="fresh-user", sessionId="s-fresh",
                      eventList=[{"eventType": "click", "itemId": item, "sentAt": now - 60 + k}
                                 for k, item in enumerate(comedy)])
    liked = 0
    for _attempt in range(30):  # the serving workers see the tracker within about a second
        items = runtime.get_recommendations(campaignArn=campaigns["latest"], userId="fresh-user",
                                            numResults=10)["itemList"]
        liked = sum(genre_of(i["itemId"]) == "Comedy" for i in items)
        if liked >= 6:
            break
        time.sleep(0.2)
    assert liked >= 6, (before["itemList"], items)


def test_deployments_command_reports_each_campaigns_memory(server, personalize, campaigns) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-m", "tastemaker.cli.main", "deployments", "--data-dir",
                            str(server.data_dir)], capture_output=True, text=True, check=True).stdout
    lines = {line.rsplit("  ", 1)[-1].split(" (")[0]: line for line in shown.splitlines()}
    live = {c["campaignArn"] for c in personalize.list_campaigns()["campaigns"]}
    assert {"up", "sims", "pr"} <= {key for key, arn in campaigns.items() if arn in live}
    for arn in live & set(campaigns.values()):
        status, items, model_kib, index_kib = lines[arn].split()[:4]
        assert status == "ACTIVE" and int(items.replace(",", "")) > 0 and int(model_kib.replace(",", "")) > 0
        assert index_kib == "0"  # small catalogues are scored exactly: no approximate index
