"""Read-your-writes between the control plane and the runtime, on `serve --workers 2` (issue #14 item 14):
once the control plane has answered, every worker process serves accordingly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA, write_dataset
from tests.e2e.util import wait_status

RECIPE = "arn:aws:personalize:::recipe/"
CALLS = 24  # per check: enough that both worker processes answer some


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def outcomes(call: Callable[[], Any]) -> list[str]:
    """'ok' or the error code of CALLS calls made one after another."""
    out = []
    for _ in range(CALLS):
        try:
            call()
            out.append("ok")
        except ClientError as exc:
            out.append(exc.response["Error"]["Code"])
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("fresh-data")
    paths = write_dataset(data, users=60, items=40, per_user=20)
    with LocalServer(tmp_path_factory.mktemp("fresh-server"), import_roots=[data],
                     extra_args=["--workers", "2"]) as server:
        personalize = server.client("personalize")
        group = personalize.create_dataset_group(name=unique("fresh"))["datasetGroupArn"]
        schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
        dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                             datasetType="Interactions")["datasetArn"]
        job = personalize.create_dataset_import_job(
            jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
            roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
        assert wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job),
                           "datasetImportJob")["status"] == "ACTIVE"
        solution = personalize.create_solution(name=unique("pop"), datasetGroupArn=group,
                                               recipeArn=RECIPE + "aws-popularity-count")["solutionArn"]
        version = personalize.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        assert wait_status(lambda: personalize.describe_solution_version(solutionVersionArn=version),
                           "solutionVersion", timeout=240)["status"] == "ACTIVE"
        yield {"server": server, "personalize": personalize, "runtime": server.client("personalize-runtime"),
               "events": server.client("personalize-events"), "group": group, "version": version}


def test_a_new_campaign_serves_on_every_worker_once_describe_says_active(setup: dict[str, Any]) -> None:
    personalize, runtime = setup["personalize"], setup["runtime"]
    campaign = personalize.create_campaign(name=unique("c"), solutionVersionArn=setup["version"])["campaignArn"]
    outcomes(lambda: runtime.get_recommendations(campaignArn=campaign, userId="u1"))  # workers see it pending
    assert wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign")["status"] == "ACTIVE"
    assert outcomes(lambda: runtime.get_recommendations(campaignArn=campaign, userId="u1")) == ["ok"] * CALLS


def test_deleted_filters_trackers_and_campaigns_stop_at_once_on_every_worker(setup: dict[str, Any]) -> None:
    personalize, runtime, events = setup["personalize"], setup["runtime"], setup["events"]
    campaign = personalize.create_campaign(name=unique("c"), solutionVersionArn=setup["version"])["campaignArn"]
    wait_status(lambda: personalize.describe_campaign(campaignArn=campaign), "campaign")
    filter_arn = personalize.create_filter(name=unique("f"), datasetGroupArn=setup["group"],
                                           filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("x")')
    filtered = lambda: runtime.get_recommendations(campaignArn=campaign, userId="u1",
                                                   filterArn=filter_arn["filterArn"])
    assert outcomes(filtered) == ["ok"] * CALLS  # cached in both workers
    personalize.delete_filter(filterArn=filter_arn["filterArn"])
    assert "ok" not in outcomes(filtered)

    tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=setup["group"])
    put = lambda: events.put_events(trackingId=tracker["trackingId"], userId="u1", sessionId="s1",
                                    eventList=[{"eventType": "click", "itemId": "i1", "sentAt": 1_700_000_000}])
    assert outcomes(put) == ["ok"] * CALLS
    personalize.delete_event_tracker(eventTrackerArn=tracker["eventTrackerArn"])
    assert "ok" not in outcomes(put)

    plain = lambda: runtime.get_recommendations(campaignArn=campaign, userId="u1")
    assert outcomes(plain) == ["ok"] * CALLS
    personalize.delete_campaign(campaignArn=campaign)
    assert "ok" not in outcomes(plain)


def test_stop_and_start_recommender_agree_on_every_worker(setup: dict[str, Any]) -> None:
    personalize, runtime = setup["personalize"], setup["runtime"]
    server: LocalServer = setup["server"]
    paths = write_dataset(server.import_roots[0] / unique("vod"), event_types=("Click", "Watch"))
    group = personalize.create_dataset_group(name=unique("vod"), domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    schema = personalize.create_schema(name=unique("vod"), schema=json.dumps(INTERACTIONS_SCHEMA),
                                       domain="VIDEO_ON_DEMAND")["schemaArn"]
    dataset = personalize.create_dataset(name=unique("vod"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    job = personalize.create_dataset_import_job(
        jobName=unique("imp"), datasetArn=dataset, dataSource={"dataLocation": str(paths["interactions"])},
        roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    wait_status(lambda: personalize.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    arn = personalize.create_recommender(name=unique("popular"), datasetGroupArn=group,
                                         recipeArn=RECIPE + "aws-vod-most-popular")["recommenderArn"]
    created = wait_status(lambda: personalize.describe_recommender(recommenderArn=arn), "recommender", timeout=300)
    assert created["status"] == "ACTIVE", created.get("failureReason")
    serve = lambda: runtime.get_recommendations(recommenderArn=arn, userId="u1")
    assert outcomes(serve) == ["ok"] * CALLS
    personalize.stop_recommender(recommenderArn=arn)
    assert "ok" not in outcomes(serve)
    assert wait_status(lambda: personalize.describe_recommender(recommenderArn=arn), "recommender")[
        "status"] == "INACTIVE"
    assert "ok" not in outcomes(serve)
    personalize.start_recommender(recommenderArn=arn)
    assert wait_status(lambda: personalize.describe_recommender(recommenderArn=arn), "recommender",
                       timeout=300)["status"] == "ACTIVE"
    assert outcomes(serve) == ["ok"] * CALLS
