"""A replay of the boto3 calls of AWS's getting-started notebook ("Building your first campaign", as the
Personalize developer guide's getting-started steps write them): the same calls in the same order, the
same argument spellings (datasetType="INTERACTIONS", one-branch Avro unions, an item id sent only inside
`properties`, a filter on `Interactions.event_type`), the notebook's polling loops, and its cleanup. Data is
small and MovieLens-shaped (ratings.csv and movies.csv, prepared as the notebook prepares them, movies without
a year included); S3 is the moto server; IAM is replaced by a fixed role ARN (Tastemaker needs none).

`run(clients, workdir, bucket)` returns what a reader of the notebook would look at, for the test to check.
"""

from __future__ import annotations

import csv
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROLE_ARN = "arn:aws:iam::000000000000:role/PersonalizeRolePOC"
MAX_WAIT = 300  # the notebook's loops give up after hours; a test after minutes


def movielens(folder: Path, users: int = 120, movies: int = 80, per_user: int = 30, seed: int = 5) -> dict[str, Path]:
    """ratings.csv (userId,movieId,rating,timestamp) and movies.csv (movieId,title,genres) like ml-latest-small:
    users prefer one of a few genres, a few titles carry no year."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genres = ["Comedy", "Drama", "Action", "Romance", "Thriller"]
    with (folder / "movies.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["movieId", "title", "genres"])
        for m in range(1, movies + 1):
            title = f"Movie {m}" if m % 17 == 0 else f"Movie {m} ({1950 + m % 70})"
            out.writerow([m, title, "|".join({genres[m % 5], genres[(m * 3) % 5]})])
    with (folder / "ratings.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        for u in range(1, users + 1):
            liked = [m for m in range(1, movies + 1) if m % 5 == u % 5]
            for k in range(per_user):
                m = int(rng.choice(liked)) if rng.random() < 0.8 else int(rng.integers(1, movies + 1))
                out.writerow([u, m, float(rng.choice([3.0, 4.0, 4.5, 5.0])), 964_982_703 + u * 1000 + k])
    return {"ratings": folder / "ratings.csv", "movies": folder / "movies.csv"}


def prepare(raw: dict[str, Path], folder: Path) -> dict[str, Path]:
    """The notebook's data preparation: ratings > 3.6 become 'watch' interactions, the rest 'click'; movies get
    GENRES and a YEAR parsed from the title (empty when the title has none), written without an index."""
    interactions, items = folder / "interactions.csv", folder / "items.csv"
    with raw["ratings"].open() as src, interactions.open("w", newline="") as dst:
        out = csv.writer(dst)
        out.writerow(["USER_ID", "ITEM_ID", "EVENT_TYPE", "TIMESTAMP"])
        for row in csv.DictReader(src):
            out.writerow([row["userId"], row["movieId"], "watch" if float(row["rating"]) > 3.6 else "click",
                          row["timestamp"]])
    with raw["movies"].open() as src, items.open("w", newline="") as dst:
        out = csv.writer(dst)
        out.writerow(["ITEM_ID", "GENRES", "YEAR"])
        for row in csv.DictReader(src):
            year = re.search(r"\((\d{4})\)\s*$", row["title"])
            out.writerow([row["movieId"], row["genres"], year.group(1) if year else ""])
    return {"interactions": interactions, "items": items}


def _wait(describe: Any, key: str, until: tuple[str, ...] = ("ACTIVE", "CREATE FAILED")) -> dict[str, Any]:
    """The notebook's loop: describe, print the status, sleep, until a terminal status."""
    deadline = time.time() + MAX_WAIT
    while time.time() < deadline:
        found = describe()[key]
        if found["status"] in until:
            return found  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise TimeoutError(f"{key} not ready after {MAX_WAIT}s")


def run(clients: dict[str, Any], workdir: Path, bucket: str) -> dict[str, Any]:
    personalize, runtime, events, s3 = (clients[k] for k in ("personalize", "personalize-runtime",
                                                              "personalize-events", "s3"))
    suffix = uuid.uuid4().hex[:6]
    files = prepare(movielens(workdir / "ml-small"), workdir)
    s3.create_bucket(Bucket=bucket)
    for name, path in files.items():
        s3.upload_file(str(path), bucket, f"{name}.csv")
    seen: dict[str, Any] = {}

    dsg = personalize.create_dataset_group(name=f"personalize-poc-movielens-{suffix}")
    dataset_group_arn = dsg["datasetGroupArn"]
    _wait(lambda: personalize.describe_dataset_group(datasetGroupArn=dataset_group_arn), "datasetGroup")

    interactions_schema = {
        "type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                   {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
        "version": "1.0"}
    items_schema = {
        "type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": "ITEM_ID", "type": "string"},
                   {"name": "GENRES", "type": ["string"], "categorical": True},
                   {"name": "YEAR", "type": ["int"]}],
        "version": "1.0"}
    datasets = {}
    for kind, schema in (("INTERACTIONS", interactions_schema), ("ITEMS", items_schema)):
        schema_arn = personalize.create_schema(name=f"personalize-poc-movielens-{kind.lower()}-{suffix}",
                                               schema=json.dumps(schema))["schemaArn"]
        response = personalize.create_dataset(name=f"personalize-poc-{kind.lower()}-{suffix}", datasetType=kind,
                                              datasetGroupArn=dataset_group_arn, schemaArn=schema_arn)
        datasets[kind] = (response["datasetArn"], schema_arn)
    for kind, name in (("INTERACTIONS", "interactions"), ("ITEMS", "items")):
        job = personalize.create_dataset_import_job(
            jobName=f"personalize-poc-import-{name}-{suffix}", datasetArn=datasets[kind][0],
            dataSource={"dataLocation": f"s3://{bucket}/{name}.csv"}, roleArn=ROLE_ARN)
        seen[f"import_{name}"] = _wait(lambda job=job: personalize.describe_dataset_import_job(
            datasetImportJobArn=job["datasetImportJobArn"]), "datasetImportJob")

    recipes = personalize.list_recipes()["recipes"]
    seen["recipes"] = [r["recipeArn"] for r in recipes]
    solution_arn = personalize.create_solution(
        name=f"personalize-poc-userpersonalization-{suffix}", datasetGroupArn=dataset_group_arn,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")["solutionArn"]
    version_arn = personalize.create_solution_version(solutionArn=solution_arn)["solutionVersionArn"]
    seen["solution_version"] = _wait(lambda: personalize.describe_solution_version(solutionVersionArn=version_arn),
                                     "solutionVersion")
    seen["metrics"] = personalize.get_solution_metrics(solutionVersionArn=version_arn)["metrics"]

    campaign_arn = personalize.create_campaign(name=f"personalize-poc-userpersonalization-{suffix}",
                                               solutionVersionArn=version_arn, minProvisionedTPS=1)["campaignArn"]
    seen["campaign"] = _wait(lambda: personalize.describe_campaign(campaignArn=campaign_arn), "campaign")
    seen["recommendations"] = runtime.get_recommendations(campaignArn=campaign_arn, userId="1")["itemList"]

    tracker = personalize.create_event_tracker(name=f"MovieTracker-{suffix}", datasetGroupArn=dataset_group_arn)
    _wait(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    session_id = str(uuid.uuid1())
    for item_id in ("3", "8", "13"):
        events.put_events(trackingId=tracker["trackingId"], userId="1", sessionId=session_id, eventList=[{
            "sentAt": int(time.time()), "eventType": "watch", "properties": json.dumps({"itemId": item_id})}])
    seen["after_events"] = runtime.get_recommendations(campaignArn=campaign_arn, userId="1")["itemList"]

    filter_arn = personalize.create_filter(
        name=f"unwatched-{suffix}", datasetGroupArn=dataset_group_arn,
        filterExpression='EXCLUDE ItemID WHERE Interactions.event_type IN ("watch")')["filterArn"]
    _wait(lambda: personalize.describe_filter(filterArn=filter_arn), "filter")
    seen["filtered"] = runtime.get_recommendations(campaignArn=campaign_arn, userId="1", filterArn=filter_arn)[
        "itemList"]

    # clean up, in the notebook's order
    personalize.delete_campaign(campaignArn=campaign_arn)
    personalize.delete_filter(filterArn=filter_arn)
    personalize.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    _gone(lambda: personalize.describe_campaign(campaignArn=campaign_arn), personalize)
    personalize.delete_solution(solutionArn=solution_arn)
    _gone(lambda: personalize.describe_solution(solutionArn=solution_arn), personalize)
    for dataset_arn, _schema in datasets.values():
        personalize.delete_dataset(datasetArn=dataset_arn)
    for dataset_arn, _schema in datasets.values():
        _gone(lambda dataset_arn=dataset_arn: personalize.describe_dataset(datasetArn=dataset_arn), personalize)
    for _dataset, schema_arn in datasets.values():
        personalize.delete_schema(schemaArn=schema_arn)
    _gone(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), personalize)
    _gone(lambda: personalize.describe_filter(filterArn=filter_arn), personalize)
    personalize.delete_dataset_group(datasetGroupArn=dataset_group_arn)
    _gone(lambda: personalize.describe_dataset_group(datasetGroupArn=dataset_group_arn), personalize)
    seen["dataset_group_arn"] = dataset_group_arn
    return seen


def _gone(describe: Any, client: Any) -> None:
    deadline = time.time() + MAX_WAIT
    while time.time() < deadline:
        try:
            describe()
        except client.exceptions.ResourceNotFoundException:
            return
        time.sleep(0.5)
    raise TimeoutError("not deleted in time")
