"""Next best action through boto3: import Actions and Action interactions, train aws-next-best-action, get
action recommendations that beat the popularity-of-action baseline; expired actions never appear; PutActions
and PutActionInteractions take effect at the next request; action filters apply.

The data is the generator of tests.recipes.synthetic (make_tables + make_action_tables): each user's known best
actions are the two of their genre (taken 70% of the times shown), a popular action is taken by everyone 35%
of the times and an expired action 90%.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.csv as pcsv
import pytest

from tests.e2e.util import train_and_deploy, wait_status
from tests.recipes.synthetic import GENRES, action_genre, make_action_tables, make_tables

SCHEMAS = {
    "Interactions": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                     {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"},
                     {"name": "EVENT_VALUE", "type": ["null", "float"]}],
    "Actions": [{"name": "ACTION_ID", "type": "string"}, {"name": "VALUE", "type": ["null", "long"]},
                {"name": "EXPIRATION_TIMESTAMP", "type": ["null", "long"]},
                {"name": "REPEAT_FREQUENCY", "type": ["null", "long"]},
                {"name": "CATEGORY", "type": "string", "categorical": True}],
    "Action_Interactions": [{"name": "USER_ID", "type": "string"}, {"name": "ACTION_ID", "type": "string"},
                            {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}],
}
EXPIRED_AT = 1_700_000_000  # long past


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def world(personalize, import_root: Path) -> dict:  # type: ignore[no-untyped-def]
    folder = import_root / "nba"
    folder.mkdir(parents=True, exist_ok=True)
    interactions, _items, _users = make_tables()
    actions, action_interactions = make_action_tables(expired_at=EXPIRED_AT)
    tables = {"Interactions": interactions, "Actions": actions, "Action_Interactions": action_interactions}
    group = personalize.create_dataset_group(name=unique("nba"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    datasets = {}
    for kind, table in tables.items():
        path = folder / f"{kind.lower()}.csv"
        pcsv.write_csv(table, path)
        schema = {"type": "record", "name": kind.replace("_", ""), "namespace": "com.amazonaws.personalize.schema",
                  "fields": SCHEMAS[kind], "version": "1.0"}
        schema_arn = personalize.create_schema(name=unique(kind.lower()), schema=json.dumps(schema))["schemaArn"]
        ds = personalize.create_dataset(name=unique(kind.lower()), schemaArn=schema_arn, datasetGroupArn=group,
                                        datasetType=kind)["datasetArn"]
        wait_status(lambda ds=ds: personalize.describe_dataset(datasetArn=ds), "dataset")
        job = personalize.create_dataset_import_job(jobName=unique("imp"), datasetArn=ds,
                                                    dataSource={"dataLocation": str(path)})["datasetImportJobArn"]
        done = wait_status(lambda job=job: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")
        assert done["status"] == "ACTIVE", done.get("failureReason")
        datasets[kind] = ds
    version, campaign = train_and_deploy(personalize, group, "aws-next-best-action", unique("nba"))
    rows = action_interactions.to_pylist()
    return {"group": group, "datasets": datasets, "version": version, "campaign": campaign,
            "action_ids": actions.column("ACTION_ID").to_pylist(), "rows": rows}


def best_share(pairs: list[tuple[str, str]]) -> float:
    """Share of (user, top action) pairs where the action is one of the user's known best."""
    return sum(action_genre(a) == int(u[1:]) % len(GENRES) for u, a in pairs) / len(pairs)


def test_action_recommendations_beat_popularity_and_expired_never_appear(runtime, world) -> None:  # type: ignore[no-untyped-def]
    users = [f"u{u}" for u in range(0, 400, 5)]
    top: list[tuple[str, str]] = []
    for user in users:
        answer = runtime.get_action_recommendations(campaignArn=world["campaign"], userId=user, numResults=100)
        listed = [a["actionId"] for a in answer["actionList"]]
        assert "a_expired" not in listed
        assert set(listed) == set(world["action_ids"]) - {"a_expired"}
        assert all(0.0 <= a["score"] <= 1.0 for a in answer["actionList"])
        assert answer["recommendationId"]
        top.append((user, listed[0]))
    # The baseline, counted independently from the imported rows: the most TAKEN action that is not expired.
    taken = Counter(r["ACTION_ID"] for r in world["rows"] if r["EVENT_TYPE"] == "TAKEN")
    popular = next(a for a, _n in taken.most_common() if a != "a_expired")
    learned, baseline = best_share(top), best_share([(u, popular) for u in users])
    assert learned >= 0.85, top
    assert learned > baseline + 0.5


def test_num_results_and_solution_metrics(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    answer = runtime.get_action_recommendations(campaignArn=world["campaign"], userId="u1")
    assert len(answer["actionList"]) == 5  # the default
    metrics = personalize.get_solution_metrics(solutionVersionArn=world["version"])["metrics"]
    assert metrics["auc"] > 0.8


def test_put_actions_and_action_interactions_take_effect_at_once(personalize, runtime, events, world) -> None:  # type: ignore[no-untyped-def]
    user = "u8"  # genre 0: a0_0 and a0_1 are its best actions
    first = [a["actionId"] for a in runtime.get_action_recommendations(
        campaignArn=world["campaign"], userId=user, numResults=2)["actionList"]]
    assert set(first) == {"a0_0", "a0_1"}
    events.put_actions(datasetArn=world["datasets"]["Actions"], actions=[
        {"actionId": "a0_0", "properties": json.dumps({"value": 10, "repeatFrequency": 7, "category": "genre"})},
        {"actionId": "a0_1", "properties": json.dumps({"value": 10, "expirationTimestamp": EXPIRED_AT,
                                                       "category": "genre"})},
    ])
    tracking = personalize.describe_dataset(datasetArn=world["datasets"]["Action_Interactions"])["dataset"][
        "trackingId"]
    events.put_action_interactions(trackingId=tracking, actionInteractions=[
        {"actionId": "a0_0", "userId": user, "sessionId": "s1", "timestamp": time.time(), "eventType": "Taken"}])
    deadline = time.time() + 10
    listed: list[str] = []
    while time.time() < deadline:
        listed = [a["actionId"] for a in runtime.get_action_recommendations(
            campaignArn=world["campaign"], userId=user, numResults=100)["actionList"]]
        if "a0_0" not in listed and "a0_1" not in listed:
            break
        time.sleep(0.3)
    assert "a0_0" not in listed  # taken just now, repeat frequency 7 days
    assert "a0_1" not in listed  # expired by PutActions
    other = [a["actionId"] for a in runtime.get_action_recommendations(
        campaignArn=world["campaign"], userId="u4", numResults=100)["actionList"]]
    assert "a0_0" in other and "a0_1" not in other  # the repeat limit is per user, the expiration for all


def test_action_filters_apply(personalize, runtime, world) -> None:  # type: ignore[no-untyped-def]
    arn = personalize.create_filter(name=unique("af"), datasetGroupArn=world["group"],
                                    filterExpression='EXCLUDE ActionID WHERE Actions.CATEGORY IN ($CAT)')[
        "filterArn"]
    wait_status(lambda: personalize.describe_filter(filterArn=arn), "filter")
    listed = [a["actionId"] for a in runtime.get_action_recommendations(
        campaignArn=world["campaign"], userId="u3", numResults=100, filterArn=arn,
        filterValues={"CAT": '"genre"'})["actionList"]]
    assert listed == ["a_pop"]


def test_bad_requests_name_the_problem(runtime, world) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(runtime.exceptions.InvalidInputException, match="userId"):
        runtime.get_action_recommendations(campaignArn=world["campaign"])
    with pytest.raises(runtime.exceptions.ResourceNotFoundException):
        runtime.get_action_recommendations(campaignArn=world["campaign"] + "x", userId="u1")
