"""Replays of the boto3 calls of two of AWS's domain notebooks, written from what they do (bench/compat runs the
notebooks themselves): the same calls in the same order with the same argument spellings, on small generated
data, S3 on the moto server and a fixed role ARN in place of IAM.

- `vod`: "Building your first recommender" for VIDEO_ON_DEMAND: a domain dataset group, domain schemas (one-branch
  Avro unions, a string YEAR, CREATION_TIMESTAMP) for Interactions ('watch' events), Items and Users (GENDER),
  three imports waited for in turn, ListRecipes(domain=...), aws-vod-more-like-x and aws-vod-top-picks
  recommenders, GetRecommendations with itemId and numResults=20, and with userId only.
- `promotions`: the ECOMMERCE promotions notebook: a retail-shaped catalogue (CATEGORY_L1/L2, PRICE, GENDER),
  aws-ecomm-recommended-for-you, a filter `INCLUDE ItemID WHERE Items.CATEGORY_L2 IN ($CATEGORY)`, then
  GetRecommendations with that filter, with a promotion of 20% through it, and with both (different values).

Each `run(clients, workdir, bucket)` returns what the notebook shows its reader, for the tests to check.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from tests.compat.getting_started import ROLE_ARN, _wait

CATEGORIES = ["halloween", "decorative", "kitchen", "garden", "books"]


def _upload(s3: Any, bucket: str, files: dict[str, Path]) -> None:
    s3.create_bucket(Bucket=bucket)
    for path in files.values():
        s3.upload_file(str(path), bucket, path.name)


def _write(path: Path, header: list[str], rows: Any, *, pandas_index: bool = False) -> Path:
    """A CSV as the notebook writes it; `pandas_index`: with the unnamed index column of `df.to_csv(path)`."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([""] + header if pandas_index else header)
        out.writerows((i, *row) for i, row in enumerate(rows)) if pandas_index else out.writerows(rows)
    return path


def _schema(name: str, fields: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema",
                       "fields": fields, "version": "1.0"})


def _import_all(personalize: Any, jobs: list[tuple[str, str, str]], bucket: str) -> list[dict[str, Any]]:
    """CreateDatasetImportJob for each (job name, dataset ARN, file), then the notebook's wait on each in turn."""
    arns = [personalize.create_dataset_import_job(
        jobName=name, datasetArn=dataset, dataSource={"dataLocation": f"s3://{bucket}/{file}"},
        roleArn=ROLE_ARN)["datasetImportJobArn"] for name, dataset, file in jobs]
    return [_wait(lambda arn=arn: personalize.describe_dataset_import_job(datasetImportJobArn=arn),
                  "datasetImportJob") for arn in arns]


# -- VIDEO_ON_DEMAND ---------------------------------------------------------------------------------------------

def vod_data(folder: Path, users: int = 120, movies: int = 90, per_user: int = 25, seed: int = 11) -> dict[str, Path]:
    """The notebook's three files: ratings above 3 as 'watch' interactions, movies with GENRES, a YEAR string
    (empty for some titles) and one CREATION_TIMESTAMP, users with a random GENDER."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genres = ["Comedy", "Drama", "Action", "Animation", "Horror"]
    interactions = []
    for u in range(1, users + 1):
        for k in range(per_user):
            liked = int(rng.integers(0, movies // 5)) * 5 + u % 5 + 1
            m = liked if rng.random() < 0.8 else int(rng.integers(1, movies + 1))
            interactions.append((u, m, 1_600_000_000 + u * 1000 + k, "watch"))
    created = int(time.mktime((2022, 1, 1, 0, 0, 0, 0, 0, -1)))
    return {
        "interactions": _write(folder / "interactions.csv", ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"],
                               interactions),
        "items": _write(folder / "items.csv", ["ITEM_ID", "GENRES", "YEAR", "CREATION_TIMESTAMP"],
                        ((m, f"{genres[m % 5]}|{genres[(m * 2) % 5]}", "" if m % 13 == 0 else str(1950 + m % 60),
                          created) for m in range(1, movies + 1))),
        "users": _write(folder / "users.csv", ["USER_ID", "GENDER"],
                        ((u, ("female", "male")[int(rng.integers(0, 2))]) for u in range(1, users + 1))),
    }


def vod(clients: dict[str, Any], workdir: Path, bucket: str) -> dict[str, Any]:
    personalize, runtime, s3 = clients["personalize"], clients["personalize-runtime"], clients["s3"]
    suffix = uuid.uuid4().hex[:6]
    files = vod_data(workdir / "vod")
    _upload(s3, bucket, files)
    seen: dict[str, Any] = {}

    group = personalize.create_dataset_group(name=f"personalize-video-on-demand-ds-group-{suffix}",
                                             domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    _wait(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    schemas = {
        "INTERACTIONS": _schema("Interactions", [{"name": "USER_ID", "type": "string"},
                                                 {"name": "ITEM_ID", "type": "string"},
                                                 {"name": "EVENT_TYPE", "type": "string"},
                                                 {"name": "TIMESTAMP", "type": "long"}]),
        "ITEMS": _schema("Items", [{"name": "ITEM_ID", "type": "string"},
                                   {"name": "GENRES", "type": ["string"], "categorical": True},
                                   {"name": "YEAR", "type": ["string"], "categorical": True},
                                   {"name": "CREATION_TIMESTAMP", "type": "long"}]),
        "USERS": _schema("Users", [{"name": "USER_ID", "type": "string"},
                                   {"name": "GENDER", "type": "string", "categorical": True}]),
    }
    schema_arns = {kind: personalize.create_schema(name=f"personalize-demo-{kind.lower()}-schema-{suffix}",
                                                   schema=text, domain="VIDEO_ON_DEMAND")["schemaArn"]
                   for kind, text in schemas.items()}
    datasets = {kind: personalize.create_dataset(name=f"personalize-demo-{kind.lower()}-{suffix}", datasetType=kind,
                                                 datasetGroupArn=group, schemaArn=arn)["datasetArn"]
                for kind, arn in schema_arns.items()}
    seen["imports"] = _import_all(personalize, [
        (f"personalize-demo-import-{kind.lower()}-{suffix}", datasets[kind], files[kind.lower()].name)
        for kind in ("INTERACTIONS", "ITEMS", "USERS")], bucket)

    available = personalize.list_recipes(domain="VIDEO_ON_DEMAND")
    if len(available["recipes"]) == 0:  # the notebook's workaround for an empty first page
        available = personalize.list_recipes(domain="VIDEO_ON_DEMAND", nextToken=available["nextToken"])
    seen["recipes"] = [r["recipeArn"] for r in available["recipes"]]
    more_like_x = personalize.create_recommender(name=f"more_like_x_demo_{suffix}", datasetGroupArn=group,
                                                 recipeArn="arn:aws:personalize:::recipe/aws-vod-more-like-x")
    top_picks = personalize.create_recommender(name=f"top_picks_for_you_demo_{suffix}", datasetGroupArn=group,
                                               recipeArn="arn:aws:personalize:::recipe/aws-vod-top-picks")
    seen["recommenders"] = [
        _wait(lambda arn=r["recommenderArn"]: personalize.describe_recommender(recommenderArn=arn), "recommender")
        for r in (more_like_x, top_picks)]
    seen["more_like_x"] = runtime.get_recommendations(recommenderArn=more_like_x["recommenderArn"], userId="1",
                                                      itemId="7", numResults=20)["itemList"]
    seen["top_picks"] = runtime.get_recommendations(recommenderArn=top_picks["recommenderArn"], userId="111",
                                                    numResults=20)["itemList"]
    seen["watched_by_111"] = {row[1] for row in csv.reader(files["interactions"].open()) if row[0] == "111"}
    seen["group"] = group
    return seen


# -- ECOMMERCE promotions ----------------------------------------------------------------------------------------

def retail_data(folder: Path, users: int = 150, products: int = 100, per_user: int = 20,
                seed: int = 3) -> dict[str, Path]:
    """The retail demo store's shapes: products in five CATEGORY_L2 values (halloween and decorative among them),
    View events and, for about a third of them, a Purchase after the View. Both files carry pandas' unnamed index
    column first, as the notebook writes them with `df.to_csv(path)`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for u in range(1, users + 1):
        for k in range(per_user):
            p = int(rng.integers(1, products + 1))
            rows.append((p, u, "View", 1_650_000_000 + u * 1000 + 2 * k))
            if rng.random() < 0.33:
                rows.append((p, u, "Purchase", 1_650_000_000 + u * 1000 + 2 * k + 1))
    return {
        "interactions": _write(folder / "cleaned_interactions_training_data.csv",
                               ["ITEM_ID", "USER_ID", "EVENT_TYPE", "TIMESTAMP"], rows, pandas_index=True),
        "items": _write(folder / "cleaned_item_training_data.csv",
                        ["ITEM_ID", "PRICE", "CATEGORY_L1", "CATEGORY_L2", "GENDER"],
                        ((p, f"{5 + p % 40}.99", "housewares", CATEGORIES[p % 5], ("M", "F", "")[p % 3])
                         for p in range(1, products + 1)), pandas_index=True),
    }


def promotions(clients: dict[str, Any], workdir: Path, bucket: str) -> dict[str, Any]:
    personalize, runtime, s3 = clients["personalize"], clients["personalize-runtime"], clients["s3"]
    suffix = uuid.uuid4().hex[:6]
    files = retail_data(workdir / "retail")
    _upload(s3, bucket, files)
    seen: dict[str, Any] = {"categories": {}}
    with files["items"].open() as fh:
        for row in csv.DictReader(fh):
            seen["categories"][row["ITEM_ID"]] = row["CATEGORY_L2"]

    personalize.list_dataset_groups()
    group = personalize.create_dataset_group(name=f"personalize_ecomemerce_ds_group_{suffix}",
                                             domain="ECOMMERCE")["datasetGroupArn"]
    _wait(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    interactions_schema = personalize.create_schema(
        name=f"personalize-ecommerce-interatn_group-{suffix}", domain="ECOMMERCE",
        schema=_schema("Interactions", [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                                        {"name": "TIMESTAMP", "type": "long"},
                                        {"name": "EVENT_TYPE", "type": "string"}]))["schemaArn"]
    items_schema = personalize.create_schema(
        name=f"personalize-ecommerce-item_group-{suffix}", domain="ECOMMERCE",
        schema=_schema("Items", [{"name": "ITEM_ID", "type": "string"}, {"name": "PRICE", "type": "float"},
                                 {"name": "CATEGORY_L1", "type": ["string"], "categorical": True},
                                 {"name": "CATEGORY_L2", "type": ["string"], "categorical": True},
                                 {"name": "GENDER", "type": ["string"], "categorical": True}]))["schemaArn"]
    interactions = personalize.create_dataset(name=f"personalize_ecommerce_demo_interactions_{suffix}",
                                              datasetType="INTERACTIONS", datasetGroupArn=group,
                                              schemaArn=interactions_schema)["datasetArn"]
    items = personalize.create_dataset(name=f"personalize_ecommerce_demo_items_{suffix}", datasetType="ITEMS",
                                       datasetGroupArn=group, schemaArn=items_schema)["datasetArn"]
    seen["imports"] = _import_all(personalize, [
        (f"personalize_ecommerce_demo_interactions_import_{suffix}", interactions, files["interactions"].name),
        (f"personalize_ecommerce_demo_items_import_{suffix}", items, files["items"].name)], bucket)

    seen["recipes"] = [r["recipeArn"] for r in personalize.list_recipes(domain="ECOMMERCE")["recipes"]]
    recommender = personalize.create_recommender(
        name=f"recommended_for_you_demo_{suffix}", datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-ecomm-recommended-for-you")["recommenderArn"]
    seen["recommender"] = _wait(lambda: personalize.describe_recommender(recommenderArn=recommender), "recommender")
    user = "77"
    seen["plain"] = runtime.get_recommendations(recommenderArn=recommender, userId=user, numResults=20)["itemList"]

    filter_arn = personalize.create_filter(name=f"category_filter_{suffix}", datasetGroupArn=group,
                                           filterExpression="INCLUDE ItemID WHERE Items.CATEGORY_L2 IN ($CATEGORY)"
                                           )["filterArn"]
    seen["filter"] = _wait(lambda: personalize.describe_filter(filterArn=filter_arn), "filter")
    seen["filtered"] = runtime.get_recommendations(recommenderArn=recommender, userId=user, numResults=20,
                                                   filterArn=filter_arn,
                                                   filterValues={"CATEGORY": "\"halloween\""})["itemList"]
    promotion = {"name": "halloween_promotion", "percentPromotedItems": 20, "filterArn": filter_arn,
                 "filterValues": {"CATEGORY": "\"halloween\""}}
    seen["promoted"] = runtime.get_recommendations(recommenderArn=recommender, userId=user, numResults=20,
                                                   promotions=[promotion])["itemList"]
    seen["filtered_and_promoted"] = runtime.get_recommendations(
        recommenderArn=recommender, userId=user, numResults=20, filterArn=filter_arn,
        filterValues={"CATEGORY": "\"decorative\""}, promotions=[promotion])["itemList"]
    seen["group"] = group
    return seen
