"""A replay of the boto3 calls of AWS's POC-in-a-box workshop (notebooks 01-06, as bench/compat runs them),
written from what the notebooks do: the same calls in the same order with the same argument spellings, on the
small MovieLens-shaped data of getting_started.py, S3 on the moto server and a fixed role ARN.

01-02: 'click' (rating > 1) and 'watch' (rating > 3) interactions, items with GENRE and an int YEAR (a few empty).
03: user-personalization, SIMS and personalized-ranking solutions trained side by side, one wait loop over the
three, their metrics. 04: three campaigns and one wait loop, a filter per genre (`Items.GENRE IN ("...")`),
`watched` / `unwatched` interaction filters, a decade filter (`Items.YEAR >= 1970 AND Items.YEAR < 1980`).
05: SIMS for an item, recommendations per user and per filter, an event tracker and 'click' / 'watch' events sent
as `properties='{"itemId": ...}'`, a personalized ranking of 25 items, a batch inference job reading
`{"userId": ...}` lines and writing `<input>.out` under the output path. 06: the deletes, in the notebook's order.

`run(clients, workdir, bucket)` returns what the notebooks show their reader, for the test to check.
"""

from __future__ import annotations

import csv
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from tests.compat.getting_started import ROLE_ARN, _gone, _wait, movielens


def prepare(raw: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Notebooks 01 and 02: interactions (a 'click' for every rating above 1, a 'watch' too above 3, by time) and
    item metadata (ITEM_ID, GENRE, YEAR from the title, empty where the title has none)."""
    with raw["ratings"].open() as fh:
        ratings = list(csv.DictReader(fh))
    rows = [(r["userId"], r["movieId"], r["timestamp"], kind) for kind, low in (("click", 1), ("watch", 3))
            for r in ratings if float(r["rating"]) > low]
    rows.sort(key=lambda row: int(row[2]))
    interactions, items = folder / "interactions.csv", folder / "item-meta.csv"
    with interactions.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"])
        out.writerows(rows)
    with raw["movies"].open() as src, items.open("w", newline="") as dst:
        out = csv.writer(dst)
        out.writerow(["ITEM_ID", "GENRE", "YEAR"])
        for row in csv.DictReader(src):
            year = re.search(r"\((\d{4})\)", row["title"])
            out.writerow([row["movieId"], row["genres"], year.group(1) if year else ""])
    return {"interactions": interactions, "items": items}


def _schema(name: str, fields: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema",
                       "fields": fields, "version": "1.0"})


def run(clients: dict[str, Any], workdir: Path, bucket: str) -> dict[str, Any]:
    personalize, runtime, events, s3 = (clients[k] for k in ("personalize", "personalize-runtime",
                                                              "personalize-events", "s3"))
    suffix = uuid.uuid4().hex[:6]
    raw = movielens(workdir / "ml-latest-small", users=150)
    files = prepare(raw, workdir)
    s3.create_bucket(Bucket=bucket)
    seen: dict[str, Any] = {}

    # 01: interactions
    group = personalize.create_dataset_group(name=f"personalize-poc-movielens-{suffix}")["datasetGroupArn"]
    _wait(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    interactions_schema = personalize.create_schema(
        name=f"personalize-poc-movielens-interactions-{suffix}",
        schema=_schema("Interactions", [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                                        {"name": "EVENT_TYPE", "type": "string"},
                                        {"name": "TIMESTAMP", "type": "long"}]))["schemaArn"]
    interactions = personalize.create_dataset(name=f"personalize-poc-movielens-ints-{suffix}",
                                              datasetType="INTERACTIONS", datasetGroupArn=group,
                                              schemaArn=interactions_schema)["datasetArn"]
    s3.upload_file(str(files["interactions"]), bucket, "interactions.csv")
    job = personalize.create_dataset_import_job(jobName=f"personalize-poc-import1-{suffix}", datasetArn=interactions,
                                                dataSource={"dataLocation": f"s3://{bucket}/interactions.csv"},
                                                roleArn=ROLE_ARN)["datasetImportJobArn"]
    seen["imports"] = [_wait(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                             "datasetImportJob")]
    # 02: item metadata
    items_schema = personalize.create_schema(
        name=f"personalize-poc-movielens-item-{suffix}",
        schema=_schema("Items", [{"name": "ITEM_ID", "type": "string"},
                                 {"name": "GENRE", "type": "string", "categorical": True},
                                 {"name": "YEAR", "type": "int"}]))["schemaArn"]
    items = personalize.create_dataset(name=f"personalize-poc-movielens-items-{suffix}", datasetType="ITEMS",
                                       datasetGroupArn=group, schemaArn=items_schema)["datasetArn"]
    s3.upload_file(str(files["items"]), bucket, "item-meta.csv")
    job = personalize.create_dataset_import_job(jobName=f"personalize-poc-item-import1-{suffix}", datasetArn=items,
                                                dataSource={"dataLocation": f"s3://{bucket}/item-meta.csv"},
                                                roleArn=ROLE_ARN)["datasetImportJobArn"]
    seen["imports"].append(_wait(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                                 "datasetImportJob"))

    # 03: three solutions, trained side by side
    personalize.list_recipes()
    solutions, versions = {}, {}
    for key, recipe in (("userpersonalization", "aws-user-personalization"), ("sims", "aws-sims"),
                        ("rerank", "aws-personalized-ranking")):
        solutions[key] = personalize.create_solution(name=f"personalize-poc-{key}-{suffix}", datasetGroupArn=group,
                                                     recipeArn=f"arn:aws:personalize:::recipe/{recipe}")["solutionArn"]
        versions[key] = personalize.create_solution_version(solutionArn=solutions[key])["solutionVersionArn"]
    seen["versions"] = {key: _wait(lambda arn=arn: personalize.describe_solution_version(solutionVersionArn=arn),
                                   "solutionVersion") for key, arn in versions.items()}
    seen["metrics"] = {key: personalize.get_solution_metrics(solutionVersionArn=arn)["metrics"]
                       for key, arn in versions.items()}

    # 04: campaigns and filters
    campaigns = {key: personalize.create_campaign(name=f"personalize-poc-{key}-{suffix}", solutionVersionArn=arn,
                                                  minProvisionedTPS=1)["campaignArn"] for key, arn in versions.items()}
    seen["campaigns"] = {key: _wait(lambda arn=arn: personalize.describe_campaign(campaignArn=arn), "campaign")
                         for key, arn in campaigns.items()}
    genres = sorted({g for row in csv.DictReader(files["items"].open()) for g in row["GENRE"].split("|")})[:3]
    genre_filters = {genre: personalize.create_filter(
        name=f"{genre}-{suffix}", datasetGroupArn=group,
        filterExpression='INCLUDE ItemID WHERE Items.GENRE IN ("' + genre + '")')["filterArn"] for genre in genres}
    watched = personalize.create_filter(name=f"watched-{suffix}", datasetGroupArn=group,
                                        filterExpression='INCLUDE ItemID WHERE Interactions.event_type IN ("watch")'
                                        )["filterArn"]
    unwatched = personalize.create_filter(name=f"unwatched-{suffix}", datasetGroupArn=group,
                                          filterExpression='EXCLUDE ItemID WHERE Interactions.event_type IN ("watch")'
                                          )["filterArn"]
    decade = personalize.create_filter(name=f"1970s-{suffix}", datasetGroupArn=group,
                                       filterExpression="INCLUDE ItemID WHERE Items.YEAR >= 1970 AND Items.YEAR < 1980"
                                       )["filterArn"]
    filters = [*genre_filters.values(), watched, unwatched, decade]
    for arn in filters:
        _wait(lambda arn=arn: personalize.describe_filter(filterArn=arn), "filter")

    # 05: interacting with the campaigns
    seen["sims"] = runtime.get_recommendations(campaignArn=campaigns["sims"], itemId=str(5))["itemList"]
    user = "7"
    seen["user"] = runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user)["itemList"]
    seen["by_genre"] = {genre: runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user,
                                                           filterArn=arn)["itemList"]
                        for genre, arn in genre_filters.items()}
    seen["decade"] = runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user,
                                                 filterArn=decade)["itemList"]
    tracker = personalize.create_event_tracker(name=f"MovieTracker-{suffix}", datasetGroupArn=group)
    session = str(uuid.uuid1())
    seen["clicked"] = ["11", "12", "13"]
    for item in seen["clicked"]:
        events.put_events(trackingId=tracker["trackingId"], userId=user, sessionId=session, eventList=[{
            "sentAt": int(time.time()), "eventType": "click", "properties": json.dumps({"itemId": item})}])
    top_unwatched = runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user,
                                                filterArn=unwatched, numResults=4)["itemList"]
    seen["sent_watch"] = [item["itemId"] for item in top_unwatched]
    for item in seen["sent_watch"]:
        events.put_events(trackingId=tracker["trackingId"], userId=user, sessionId=session, eventList=[{
            "sentAt": int(time.time()), "eventType": "watch", "properties": json.dumps({"itemId": item})}])
    seen["watched"] = runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user,
                                                  filterArn=watched)["itemList"]
    seen["unwatched"] = runtime.get_recommendations(campaignArn=campaigns["userpersonalization"], userId=user,
                                                    filterArn=unwatched)["itemList"]
    seen["rerank_input"] = [str(m) for m in range(20, 45)]
    seen["reranked"] = runtime.get_personalized_ranking(campaignArn=campaigns["rerank"], userId=user,
                                                        inputList=seen["rerank_input"])["personalizedRanking"]
    users = ["3", "42", "99"]
    lines = "".join('{"userId": "' + u + '"}\n' for u in users)
    s3.put_object(Bucket=bucket, Key="json_input.json", Body=lines.encode())
    batch = personalize.create_batch_inference_job(
        solutionVersionArn=versions["userpersonalization"],
        jobName=f"VOD-POC-Batch-Inference-Job-UserPersonalization_{round(time.time() * 1000)}", roleArn=ROLE_ARN,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/json_input.json"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/"}})["batchInferenceJobArn"]
    seen["batch"] = _wait(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=batch),
                          "batchInferenceJob")
    body = s3.get_object(Bucket=bucket, Key="json_input.json.out")["Body"].read().decode()
    seen["batch_lines"] = [json.loads(line) for line in body.splitlines() if line.strip()]

    # 06: clean up, in the notebook's order (with the waits its text asks for between steps)
    for arn in campaigns.values():
        personalize.delete_campaign(campaignArn=arn)
    personalize.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    for arn in campaigns.values():
        _gone(lambda arn=arn: personalize.describe_campaign(campaignArn=arn), personalize)
    for arn in filters:
        personalize.delete_filter(filterArn=arn)
    for arn in solutions.values():
        personalize.delete_solution(solutionArn=arn)
    for arn in solutions.values():
        _gone(lambda arn=arn: personalize.describe_solution(solutionArn=arn), personalize)
    for arn in (items, interactions):
        personalize.delete_dataset(datasetArn=arn)
    for arn in (items, interactions):
        _gone(lambda arn=arn: personalize.describe_dataset(datasetArn=arn), personalize)
    for arn in (interactions_schema, items_schema):
        personalize.delete_schema(schemaArn=arn)
    _gone(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), personalize)
    personalize.delete_dataset_group(datasetGroupArn=group)
    _gone(lambda: personalize.describe_dataset_group(datasetGroupArn=group), personalize)
    seen["genres"] = genres
    seen["items_file"] = files["items"]
    return seen
