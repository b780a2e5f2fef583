"""End-to-end: the ten domain recommender use cases (VIDEO_ON_DEMAND and ECOMMERCE) trained, served, stopped
and started. Every serving rule is checked against the spec's use-case table (§3.3) and the imported CSVs."""

from __future__ import annotations

import csv
import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from botocore.exceptions import ClientError

from tests.e2e.datagen import GENRES, INTERACTIONS_SCHEMA, ITEMS_SCHEMA, write_dataset, write_store_dataset
from tests.e2e.util import wait_gone, wait_status

RECIPE = "arn:aws:personalize:::recipe/"
pytestmark = pytest.mark.slow  # the module trains eleven recommenders
ECOMMERCE_ITEMS_SCHEMA = {
    "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
    "fields": [{"name": "ITEM_ID", "type": "string"}, {"name": "PRICE", "type": "float"},
               {"name": "CATEGORY_L1", "type": "string", "categorical": True}],
    "version": "1.0",
}
ALL_EVENTS = "*"


class Case(NamedTuple):
    """One recommender of the module, with the spec's rules for its use case (§3.3)."""

    group: str  # vod | shop (few purchases) | store (many purchases, known best seller / most viewed)
    recipe: str
    needs_user: bool
    needs_item: bool
    excludes: str | None = None  # event type whose items the user never gets back
    ranks_by: str | None = None  # popular lists: event type counted (unique users), ALL_EVENTS for every type


CASES = {
    "top_picks": Case("vod", "aws-vod-top-picks", True, False, excludes="Watch"),
    "because": Case("vod", "aws-vod-because-you-watched-x", True, True, excludes="Watch"),
    "more_like": Case("vod", "aws-vod-more-like-x", True, True, excludes="Watch"),
    "popular": Case("vod", "aws-vod-most-popular", True, False, ranks_by="Watch"),
    "trending": Case("vod", "aws-vod-trending-now", False, False, ranks_by=ALL_EVENTS),
    "for_you": Case("shop", "aws-ecomm-recommended-for-you", True, False, excludes="Purchase"),
    "viewed": Case("shop", "aws-ecomm-customers-who-viewed-x-also-viewed", True, True, excludes="Purchase"),
    "bought_few": Case("shop", "aws-ecomm-frequently-bought-together", False, True),  # too few purchases
    "best": Case("store", "aws-ecomm-popular-items-by-purchases", True, False, ranks_by="Purchase"),
    "most_viewed": Case("store", "aws-ecomm-popular-items-by-views", True, False, ranks_by="View"),
    "bought": Case("store", "aws-ecomm-frequently-bought-together", False, True),
}
FAILING = {"bought_few"}
SERVING = [k for k in CASES if k not in FAILING]
ITEM_FOR = {"vod": "i1", "shop": "i2", "store": "i4"}  # a trained item of each group for itemId


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


@functools.cache
def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def history(path: Path, user: str, event_type: str) -> set[str]:
    """Items the user had events of this type with (ALL_EVENTS: any type)."""
    return {r["ITEM_ID"] for r in rows(path) if r["USER_ID"] == user and event_type in (ALL_EVENTS, r["EVENT_TYPE"])}


def unique_users(path: Path, event_type: str) -> dict[str, int]:
    """Per item, the number of distinct users with an event of this type (ALL_EVENTS: any type)."""
    pairs = {(r["ITEM_ID"], r["USER_ID"]) for r in rows(path) if event_type in (ALL_EVENTS, r["EVENT_TYPE"])}
    counts: dict[str, int] = {}
    for item, _ in pairs:
        counts[item] = counts.get(item, 0) + 1
    return counts


def import_group(personalize, domain: str, datasets: dict[str, tuple[dict, Path]]) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_group(name=unique(domain.lower()), domain=domain)["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    for kind, (schema, path) in datasets.items():
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema),
                                               domain=domain)["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=arn,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(
            jobName=unique("imp"), datasetArn=ds, dataSource={"dataLocation": str(path)},
            roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
    return arn


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
    arn = import_group(personalize, domain, {"Interactions": (INTERACTIONS_SCHEMA, paths["interactions"]),
                                             "Items": (items_schema, paths["items"])})
    return {"arn": arn, "paths": paths}


@pytest.fixture(scope="module")
def recommenders(personalize, import_root: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    vod = domain_group(personalize, import_root / unique("vod"), "VIDEO_ON_DEMAND", ("Click", "Watch"))
    # ECOMMERCE data with few purchases (240 of 3000 events): 'frequently bought together' must refuse it.
    shop = domain_group(personalize, import_root / unique("shop"), "ECOMMERCE", ("View",) * 9 + ("Purchase",))
    store_paths = write_store_dataset(import_root / unique("store"))
    store = {"arn": import_group(personalize, "ECOMMERCE",
                                 {"Interactions": (INTERACTIONS_SCHEMA, store_paths["interactions"])}),
             "paths": store_paths}
    groups = {"vod": vod, "shop": shop, "store": store}
    arns = {key: personalize.create_recommender(
        name=unique(key.replace("_", "-")), datasetGroupArn=groups[case.group]["arn"], recipeArn=RECIPE + case.recipe,
        recommenderConfig={"enableMetadataWithRecommendations": True} if key == "popular" else {})["recommenderArn"]
        for key, case in CASES.items()}
    described = {key: wait_status(lambda arn=arn: personalize.describe_recommender(recommenderArn=arn),
                                  "recommender", timeout=300) for key, arn in arns.items()}
    return {**groups, "arns": arns, "described": described}


def interactions(recommenders: dict[str, Any], key: str) -> Path:
    return recommenders[CASES[key].group]["paths"]["interactions"]  # type: ignore[no-any-return]


def recommend(runtime, recommenders: dict[str, Any], key: str, **kwargs: Any) -> list[str]:  # type: ignore[no-untyped-def]
    """The item ids served; domain recommenders never return scores."""
    items = runtime.get_recommendations(recommenderArn=recommenders["arns"][key], **kwargs)["itemList"]
    assert all("score" not in i for i in items), (key, items[:3])
    return [i["itemId"] for i in items]


def test_every_use_case_trains_with_metrics_or_fails_on_missing_events(recommenders) -> None:  # type: ignore[no-untyped-def]
    described = recommenders["described"]
    for key in SERVING:
        assert described[key]["status"] == "ACTIVE", (key, described[key].get("failureReason"))
        assert described[key]["modelMetrics"], key
        assert described[key]["recipeArn"] == RECIPE + CASES[key].recipe
    assert {CASES[k].recipe for k in SERVING} == {
        "aws-vod-top-picks", "aws-vod-because-you-watched-x", "aws-vod-more-like-x", "aws-vod-most-popular",
        "aws-vod-trending-now", "aws-ecomm-recommended-for-you", "aws-ecomm-customers-who-viewed-x-also-viewed",
        "aws-ecomm-frequently-bought-together", "aws-ecomm-popular-items-by-purchases",
        "aws-ecomm-popular-items-by-views"}
    assert described["top_picks"]["recommenderConfig"]["minRecommendationRequestsPerSecond"] == 1
    failed = described["bought_few"]
    assert failed["status"] == "CREATE FAILED"
    assert "Purchase" in failed["failureReason"] and "1000" in failed["failureReason"]
    assert "modelMetrics" not in failed or not failed["modelMetrics"]


def test_list_and_domain_checks(personalize, recommenders) -> None:  # type: ignore[no-untyped-def]
    listed = personalize.list_recommenders(datasetGroupArn=recommenders["vod"]["arn"])["recommenders"]
    assert {r["recommenderArn"] for r in listed} == {recommenders["arns"][k] for k in CASES
                                                     if CASES[k].group == "vod"}
    for domain, groups in (("VIDEO_ON_DEMAND", {"vod"}), ("ECOMMERCE", {"shop", "store"})):
        recipes = personalize.list_recipes(domain=domain)["recipes"]
        assert {r["name"] for r in recipes} == {c.recipe for c in CASES.values() if c.group in groups}
        assert {r["domain"] for r in recipes} == {domain}
    with pytest.raises(ClientError) as exc:
        personalize.create_recommender(name=unique("wrong"), datasetGroupArn=recommenders["shop"]["arn"],
                                       recipeArn=RECIPE + "aws-vod-top-picks")
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:
        personalize.create_recommender(name=unique("wrong"), datasetGroupArn=recommenders["vod"]["arn"],
                                       recipeArn=RECIPE + "aws-user-personalization")
    assert code(exc) == "InvalidInputException"
    with pytest.raises(ClientError) as exc:  # the VOD group already holds five recommenders
        personalize.create_recommender(name=unique("sixth"), datasetGroupArn=recommenders["vod"]["arn"],
                                       recipeArn=RECIPE + "aws-vod-top-picks")
    assert code(exc) == "LimitExceededException"
    with pytest.raises(ClientError) as exc:  # More like X needs an Items dataset; the store group has none
        personalize.create_recommender(name=unique("noitems"), datasetGroupArn=recommenders["store"]["arn"],
                                       recipeArn=RECIPE + "aws-vod-more-like-x")
    assert code(exc) == "InvalidInputException"


@pytest.mark.parametrize("key", SERVING)
def test_required_ids(runtime, recommenders, key: str) -> None:  # type: ignore[no-untyped-def]
    case = CASES[key]
    ids = {"userId": "u1", "itemId": ITEM_FOR[case.group]}
    needed = {name for name, needs in (("userId", case.needs_user), ("itemId", case.needs_item)) if needs}
    args = {name: ids[name] for name in needed}
    assert recommend(runtime, recommenders, key, **args)
    for name in needed:
        with pytest.raises(ClientError) as exc:
            runtime.get_recommendations(recommenderArn=recommenders["arns"][key],
                                        **{k: v for k, v in args.items() if k != name})
        assert code(exc) == "InvalidInputException" and name in exc.value.response["Error"]["Message"], key
    if not case.needs_user:  # userId is optional (only filters use it)
        assert recommend(runtime, recommenders, key, **args, userId="u1")
    if not case.needs_item:  # an itemId is refused where the use case has no use for it
        with pytest.raises(ClientError) as exc:
            runtime.get_recommendations(recommenderArn=recommenders["arns"][key], **args, itemId=ids["itemId"])
        assert code(exc) == "InvalidInputException" and "itemId" in exc.value.response["Error"]["Message"], key


@pytest.mark.parametrize("key", [k for k in SERVING if CASES[k].excludes])
def test_automatic_exclusions(runtime, recommenders, key: str) -> None:  # type: ignore[no-untyped-def]
    case = CASES[key]
    path = interactions(recommenders, key)
    catalogue = {r["ITEM_ID"] for r in rows(recommenders[case.group]["paths"]["items"])}
    for user in ("u0", "u3"):
        excluded = history(path, user, str(case.excludes))
        assert excluded, user
        args: dict[str, Any] = {"userId": user, "numResults": len(catalogue)}
        if case.needs_item:
            args["itemId"] = ITEM_FOR[case.group]
        got = recommend(runtime, recommenders, key, **args)
        assert got and not set(got) & excluded, (key, user, set(got) & excluded)
        if not case.needs_item:  # asking for the whole catalogue returns everything else, exactly once
            assert len(got) == len(set(got)) and set(got) == catalogue - excluded, key


@pytest.mark.parametrize("key", [k for k in SERVING if CASES[k].ranks_by])
def test_popular_lists_rank_by_their_event_type_and_exclude_nothing(runtime, recommenders, key: str) -> None:  # type: ignore[no-untyped-def]
    path = interactions(recommenders, key)
    counts = unique_users(path, str(CASES[key].ranks_by))
    got = recommend(runtime, recommenders, key, userId="u1", numResults=25)
    assert len(got) == 25
    ranked = [counts.get(item, 0) for item in got]
    assert ranked[0] == max(counts.values()) and ranked == sorted(ranked, reverse=True), (key, got, ranked)
    # Everyone gets the same list: the users who interacted most with the top item are not spared it.
    ranks_by = str(CASES[key].ranks_by)
    fans = [u for u in sorted({r["USER_ID"] for r in rows(path)}) if got[0] in history(path, u, ranks_by)][:2]
    assert fans
    for user in fans:
        assert recommend(runtime, recommenders, key, userId=user, numResults=25) == got, (key, user)


def test_best_sellers_and_most_viewed_differ_by_event_type(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    """The store data makes i0 the best seller (never viewed) and i1 the most viewed (never bought)."""
    path = recommenders["store"]["paths"]["interactions"]
    purchases, views = unique_users(path, "Purchase"), unique_users(path, "View")
    assert max(purchases, key=purchases.__getitem__) == "i0" and "i0" not in views
    assert max(views, key=views.__getitem__) == "i1" and "i1" not in purchases
    assert recommend(runtime, recommenders, "best", userId="u2", numResults=3)[0] == "i0"
    assert recommend(runtime, recommenders, "most_viewed", userId="u2", numResults=3)[0] == "i1"


@pytest.mark.parametrize("key", [k for k in SERVING if CASES[k].needs_item])
def test_related_items_never_include_the_item(runtime, recommenders, key: str) -> None:  # type: ignore[no-untyped-def]
    for item in ("i2", "i5", "i9"):
        args = {"itemId": item, "numResults": 50, **({"userId": "u4"} if CASES[key].needs_user else {})}
        got = recommend(runtime, recommenders, key, **args)
        assert got and item not in got, (key, item)


def test_frequently_bought_together_finds_bundles_and_ignores_the_user(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    path = recommenders["store"]["paths"]["interactions"]
    for item, partner in (("i4", "i5"), ("i5", "i4"), ("i10", "i11")):
        got = recommend(runtime, recommenders, "bought", itemId=item, numResults=10)
        assert got[0] == partner, (item, got)
    buyer = next(u for u in (f"u{n}" for n in range(100)) if {"i4", "i5"} <= history(path, u, "Purchase"))
    assert recommend(runtime, recommenders, "bought", itemId="i4", userId=buyer, numResults=10) == \
        recommend(runtime, recommenders, "bought", itemId="i4", numResults=10)


def test_most_popular_metadata(runtime, recommenders) -> None:  # type: ignore[no-untyped-def]
    arn = recommenders["arns"]["popular"]
    items = runtime.get_recommendations(recommenderArn=arn, userId="u1", numResults=5,
                                        metadataColumns={"ITEMS": ["GENRES"]})["itemList"]
    assert len(items) == 5 and all(i["metadata"]["GENRES"] in GENRES for i in items)
    with pytest.raises(ClientError) as exc:  # only recommenders created with enableMetadataWithRecommendations
        runtime.get_recommendations(recommenderArn=recommenders["arns"]["trending"],
                                    metadataColumns={"ITEMS": ["GENRES"]})
    assert code(exc) == "InvalidInputException"


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
    failed = recommenders["arns"]["bought_few"]
    personalize.delete_recommender(recommenderArn=failed)
    wait_gone(lambda: personalize.describe_recommender(recommenderArn=failed), personalize)


def test_retraining_update_serves_the_retrained_model(personalize, runtime, recommenders,  # type: ignore[no-untyped-def]
                                                     import_root: Path) -> None:
    """UpdateRecommender with a new trainingDataConfig retrains; serving switches to the new model (each
    training has its own artifact prefix, so no process keeps the old one cached)."""
    arn = recommenders["arns"]["popular"]  # VOD most-popular: ranked by how many users watched an item
    group = recommenders["vod"]["arn"]
    before = [i["itemId"] for i in runtime.get_recommendations(recommenderArn=arn, userId="u1",
                                                               numResults=10)["itemList"]]
    newcomer = next(f"i{k}" for k in range(89, 0, -1) if f"i{k}" not in before)
    folder = import_root / unique("rewatch")
    folder.mkdir()
    path = folder / "interactions.csv"
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"])
        for k in range(400):  # more distinct watchers than any item has
            out.writerow([f"fan{k}", newcomer, 1_800_000_000 + k, "Watch", "5.0"])
    dataset = next(d["datasetArn"] for d in personalize.list_datasets(datasetGroupArn=group)["datasets"]
                   if d["datasetType"].upper() == "INTERACTIONS")
    job = personalize.create_dataset_import_job(
        jobName=unique("more"), datasetArn=dataset, dataSource={"dataLocation": str(path)},
        roleArn="arn:aws:iam::000000000000:role/P", importMode="INCREMENTAL")["datasetImportJobArn"]
    assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                       "datasetImportJob")["status"] == "ACTIVE"
    config = personalize.describe_recommender(recommenderArn=arn)["recommender"]["recommenderConfig"]
    config["trainingDataConfig"] = {"excludedDatasetColumns": {"INTERACTIONS": ["EVENT_VALUE"]}}
    personalize.update_recommender(recommenderArn=arn, recommenderConfig=config)
    update = wait_status(lambda: {"u": personalize.describe_recommender(recommenderArn=arn)["recommender"]
                                  ["latestRecommenderUpdate"]}, "u", timeout=300)
    assert update["status"] == "ACTIVE", update.get("failureReason")
    deadline = time.time() + 10
    while True:  # workers re-read the recommender at most once a second
        top = runtime.get_recommendations(recommenderArn=arn, userId="u1", numResults=10)["itemList"][0]["itemId"]
        if top == newcomer or time.time() > deadline:
            break
        time.sleep(0.2)
    assert top == newcomer
