"""Control-plane answers as Personalize gives them: regions, List* with unknown parents, tags, feature
transformations (issue #14 items 9, 11, 12, 13)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tastemaker.cli.local_server import LocalServer
from tests.e2e.datagen import INTERACTIONS_SCHEMA
from tests.e2e.util import wait_status


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def group(personalize) -> str:  # type: ignore[no-untyped-def]
    arn = personalize.create_dataset_group(name=unique("compat"))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    return arn


@pytest.fixture(scope="module")
def europe(server: LocalServer):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("personalize", endpoint_url=server.url, region_name="eu-west-1",
                        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)


def test_regions_are_isolated(personalize, europe, group: str) -> None:  # type: ignore[no-untyped-def]
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    assert group.split(":")[3] == "us-east-1"
    listed = {g["datasetGroupArn"] for g in europe.list_dataset_groups()["datasetGroups"]}
    assert group not in listed
    assert schema not in {s["schemaArn"] for s in europe.list_schemas()["schemas"]}
    assert group in {g["datasetGroupArn"] for g in personalize.list_dataset_groups()["datasetGroups"]}
    for call in (lambda: europe.describe_dataset_group(datasetGroupArn=group),
                 lambda: europe.describe_schema(schemaArn=schema),
                 lambda: europe.list_tags_for_resource(resourceArn=group),
                 lambda: europe.delete_dataset_group(datasetGroupArn=group),
                 lambda: europe.create_dataset(name=unique("d"), schemaArn=schema, datasetGroupArn=group,
                                               datasetType="Interactions")):
        code, message = error(call)
        assert code == "ResourceNotFoundException", message
        assert "us-east-1" in message and "eu-west-1" in message
    assert europe.list_datasets(datasetGroupArn=group)["datasets"] == []
    # the same name may exist once per region
    name = unique("twin")
    mine = europe.create_dataset_group(name=name)["datasetGroupArn"]
    theirs = personalize.create_dataset_group(name=name)["datasetGroupArn"]
    assert mine.split(":")[3] == "eu-west-1" and theirs.split(":")[3] == "us-east-1"
    assert [g["name"] for g in europe.list_dataset_groups()["datasetGroups"]].count(name) == 1
    wait_status(lambda: europe.describe_dataset_group(datasetGroupArn=mine), "datasetGroup")
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=theirs), "datasetGroup")
    europe.delete_dataset_group(datasetGroupArn=mine)
    personalize.delete_dataset_group(datasetGroupArn=theirs)


def test_list_with_an_unknown_parent_is_an_empty_page(personalize) -> None:  # type: ignore[no-untyped-def]
    account = "000000000000"
    group = f"arn:aws:personalize:us-east-1:{account}:dataset-group/absent"
    for method, key, member, arn in (
        ("list_datasets", "datasets", "datasetGroupArn", group),
        ("list_solutions", "solutions", "datasetGroupArn", group),
        ("list_filters", "Filters", "datasetGroupArn", group),
        ("list_event_trackers", "eventTrackers", "datasetGroupArn", group),
        ("list_recommenders", "recommenders", "datasetGroupArn", group),
        ("list_dataset_import_jobs", "datasetImportJobs", "datasetArn",
         f"arn:aws:personalize:us-east-1:{account}:dataset/absent/INTERACTIONS"),
        ("list_campaigns", "campaigns", "solutionArn", f"arn:aws:personalize:us-east-1:{account}:solution/absent"),
    ):
        answer = getattr(personalize, method)(**{member: arn})
        assert answer[key] == [], method
    # ListSolutionVersions declares ResourceNotFoundException, and answers it
    code, _ = error(lambda: personalize.list_solution_versions(
        solutionArn=f"arn:aws:personalize:us-east-1:{account}:solution/absent"))
    assert code == "ResourceNotFoundException"


def test_tags_refuse_reserved_keys_and_untaggable_resources(personalize, group: str) -> None:  # type: ignore[no-untyped-def]
    for key in ("aws:owner", "AWS:team"):
        code, message = error(lambda key=key: personalize.tag_resource(
            resourceArn=group, tags=[{"tagKey": key, "tagValue": "x"}]))
        assert code == "InvalidInputException" and key in message
    code, message = error(lambda: personalize.create_dataset_group(
        name=unique("tagged"), tags=[{"tagKey": "aws:cloudformation:stack", "tagValue": "x"}]))
    assert code == "InvalidInputException" and "aws:" in message
    code, _ = error(lambda: personalize.untag_resource(resourceArn=group, tagKeys=["aws:owner"]))
    assert code == "InvalidInputException"
    assert personalize.list_tags_for_resource(resourceArn=group)["tags"] == []
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    code, message = error(lambda: personalize.tag_resource(resourceArn=schema, tags=[{"tagKey": "k", "tagValue": "v"}]))
    assert code == "InvalidInputException" and "cannot be tagged" in message
    personalize.tag_resource(resourceArn=group, tags=[{"tagKey": "team", "tagValue": "recs"}])
    assert personalize.list_tags_for_resource(resourceArn=group)["tags"] == [{"tagKey": "team", "tagValue": "recs"}]


@pytest.mark.parametrize("arn", [
    "arn:aws:personalize:::feature-transformation/",
    "arn:aws:personalize:::feature-transformation/no-such-thing",
    "arn:aws:personalize:us-east-1:000000000000:campaign/x",
    "arn:aws:personalize:::recipe/aws-user-personalization",
])
def test_describe_feature_transformation_of_other_arns_is_not_found(personalize, arn: str) -> None:  # type: ignore[no-untyped-def]
    code, _ = error(lambda: personalize.describe_feature_transformation(featureTransformationArn=arn))
    assert code == "ResourceNotFoundException"


def test_describe_feature_transformation_of_a_real_one(personalize) -> None:  # type: ignore[no-untyped-def]
    recipe = personalize.describe_recipe(recipeArn="arn:aws:personalize:::recipe/aws-user-personalization")["recipe"]
    answer = personalize.describe_feature_transformation(
        featureTransformationArn=recipe["featureTransformationArn"])["featureTransformation"]
    assert answer["featureTransformationArn"] == recipe["featureTransformationArn"] and answer["name"]


def test_resources_with_nothing_to_build_are_active_when_created(personalize, events) -> None:  # type: ignore[no-untyped-def]
    """"Run All" notebooks use what they just created (#14 item 6): the first Describe already says ACTIVE."""
    group = personalize.create_dataset_group(name=unique("runall"))["datasetGroupArn"]
    assert personalize.describe_dataset_group(datasetGroupArn=group)["datasetGroup"]["status"] == "ACTIVE"
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    dataset = personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group,
                                         datasetType="Interactions")["datasetArn"]
    assert personalize.describe_dataset(datasetArn=dataset)["dataset"]["status"] == "ACTIVE"
    tracker = personalize.create_event_tracker(name=unique("tracker"), datasetGroupArn=group)
    assert personalize.describe_event_tracker(
        eventTrackerArn=tracker["eventTrackerArn"])["eventTracker"]["status"] == "ACTIVE"
    events.put_events(trackingId=tracker["trackingId"], userId="u1", sessionId="s1",
                      eventList=[{"eventType": "click", "itemId": "i1", "sentAt": 1_700_000_000}])
    filter_arn = personalize.create_filter(name=unique("f"), datasetGroupArn=group,
                                           filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')
    assert personalize.describe_filter(filterArn=filter_arn["filterArn"])["filter"]["status"] == "ACTIVE"
    solution = personalize.create_solution(name=unique("sol"), datasetGroupArn=group,
                                           recipeArn="arn:aws:personalize:::recipe/aws-popularity-count")
    assert personalize.describe_solution(solutionArn=solution["solutionArn"])["solution"]["status"] == "ACTIVE"


def test_event_trackers_of_another_region_take_no_events(server: LocalServer, personalize, events, europe) -> None:  # type: ignore[no-untyped-def]
    import boto3

    group = personalize.create_dataset_group(name=unique("trk"))["datasetGroupArn"]
    schema = personalize.create_schema(name=unique("int"), schema=json.dumps(INTERACTIONS_SCHEMA))["schemaArn"]
    personalize.create_dataset(name=unique("int"), schemaArn=schema, datasetGroupArn=group, datasetType="Interactions")
    tracker = personalize.create_event_tracker(name=unique("t"), datasetGroupArn=group)
    wait_status(lambda: personalize.describe_event_tracker(eventTrackerArn=tracker["eventTrackerArn"]), "eventTracker")
    event = {"eventType": "click", "itemId": "i1", "sentAt": 1_700_000_000}
    events.put_events(trackingId=tracker["trackingId"], userId="u1", sessionId="s1", eventList=[event])
    european = boto3.client("personalize-events", endpoint_url=server.url, region_name="eu-west-1",
                            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
    code, message = error(lambda: european.put_events(trackingId=tracker["trackingId"], userId="u1",
                                                      sessionId="s1", eventList=[event]))
    assert code == "InvalidInputException" and tracker["trackingId"] in message
    assert europe.list_event_trackers()["eventTrackers"] == [] or all(
        t["eventTrackerArn"].split(":")[3] == "eu-west-1" for t in europe.list_event_trackers()["eventTrackers"])
