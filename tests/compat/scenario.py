"""One walk through every implemented operation with valid calls, recording each raw answer as the wire
carried it (botocore's `before-parse` hook), for the conformance suite."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from tests.e2e.datagen import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, write_dataset
from tests.e2e.util import wait_gone, wait_status
from tests.recipes.synthetic import make_action_tables

RECIPE = "arn:aws:personalize:::recipe/"
ROLE = "arn:aws:iam::000000000000:role/P"
ACTIONS = {"type": "record", "name": "Actions", "namespace": "com.amazonaws.personalize.schema", "fields": [
    {"name": "ACTION_ID", "type": "string"}, {"name": "VALUE", "type": ["null", "long"]}], "version": "1.0"}
ACTION_INTERACTIONS = {"type": "record", "name": "ActionInteractions",
                       "namespace": "com.amazonaws.personalize.schema", "fields": [
                           {"name": "USER_ID", "type": "string"}, {"name": "ACTION_ID", "type": "string"},
                           {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}],
                       "version": "1.0"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Answer:
    operation: str
    status: int
    body: bytes


@dataclass
class Recorder:
    """Raw answers per operation, and the first valid request of each operation (the base for mutations)."""

    answers: list[Answer] = field(default_factory=list)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: dict[str, str | None] = field(default_factory=dict)  # Create* -> the error of a repeat
    # (operation, label, the error expected, the error answered or None when accepted): the domain's refusals
    refusals: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def attach(self, client: Any) -> Any:
        def hook(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
            self.answers.append(Answer(operation_model.name, response_dict["status_code"], response_dict["body"]))

        client.meta.events.register("before-parse", hook)
        return client

    def call(self, client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.requests.setdefault(operation, kwargs)
        method = getattr(client, xform_name(operation))
        answer: dict[str, Any] = method(**kwargs)
        if operation.startswith("Create") and operation not in self.duplicates and (
                "name" in kwargs or "jobName" in kwargs):
            try:  # the same create again, while the first exists: its name is taken
                method(**kwargs)
                self.duplicates[operation] = None
            except ClientError as exc:
                self.duplicates[operation] = exc.response["Error"]["Code"]
        return answer


    def refuse(self, client: Any, operation: str, code: str, label: str, **kwargs: Any) -> None:
        """An invalid call the model cannot generate (it breaks a rule of the service, not of the shape), made
        while the world it needs exists; the answer is recorded against `code`."""
        try:
            getattr(client, xform_name(operation))(**kwargs)
        except ClientError as exc:
            self.refusals.append((operation, label, code, str(exc.response["Error"]["Code"])))
            return
        self.refusals.append((operation, label, code, None))


def upload(moto_s3: str, bucket: str, paths: dict[str, Path]) -> dict[str, str]:
    """The files put in an S3 bucket of the moto server; their s3:// locations by the same keys."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    out = {}
    for key, path in paths.items():
        s3.upload_file(str(path), bucket, f"{path.parent.name}/{path.name}")
        out[key] = f"s3://{bucket}/{path.parent.name}/{path.name}"
    return out


def write_actions(folder: Path, users: int) -> dict[str, Path]:
    """actions.csv and action_interactions.csv (the columns of ACTIONS and ACTION_INTERACTIONS) for users
    u0..u{users-1}: enough TAKEN and other labels per action for aws-next-best-action to score them."""
    import pyarrow.csv as pcsv

    actions, interactions = make_action_tables(n_users=users)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"actions": folder / "actions.csv", "action_interactions": folder / "action_interactions.csv"}
    pcsv.write_csv(actions.select(["ACTION_ID", "VALUE"]), out["actions"])
    pcsv.write_csv(interactions.select(["USER_ID", "ACTION_ID", "TIMESTAMP", "EVENT_TYPE"]),
                   out["action_interactions"])
    return out


def put_text(moto_s3: str, bucket: str, key: str, text: str) -> str:
    """An object on the moto server; its s3:// location."""
    import boto3

    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").put_object(
        Bucket=bucket, Key=key, Body=text.encode())
    return f"s3://{bucket}/{key}"


def walk(clients: dict[str, Any], import_root: Path, recorder: Recorder, moto_s3: str,
         bucket: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Call every implemented operation at least once with a valid request (data from S3, as on AWS); return
    the deletes that must be refused as in use afterwards: label -> (operation, request)."""
    p, rt, ev = clients["personalize"], clients["personalize-runtime"], clients["personalize-events"]
    call = recorder.call
    folder = import_root / unique("conformance")
    paths = upload(moto_s3, bucket, {**write_dataset(folder, users=80, items=60, per_user=16),
                                     **write_actions(folder, users=80)})

    group = call(p, "CreateDatasetGroup", name=unique("conf"), tags=[{"tagKey": "team", "tagValue": "recs"}])[
        "datasetGroupArn"]
    call(p, "DescribeDatasetGroup", datasetGroupArn=group)
    call(p, "ListDatasetGroups", maxResults=5)
    datasets, schemas = {}, {}
    for kind, schema in (("Interactions", INTERACTIONS_SCHEMA), ("Items", ITEMS_SCHEMA), ("Users", USERS_SCHEMA),
                         ("Actions", ACTIONS), ("Action_Interactions", ACTION_INTERACTIONS)):
        schemas[kind] = call(p, "CreateSchema", name=unique(kind.lower().replace("_", "-")),
                             schema=json.dumps(schema))["schemaArn"]
        datasets[kind] = call(p, "CreateDataset", name=unique(kind.lower().replace("_", "-")),
                              schemaArn=schemas[kind], datasetGroupArn=group, datasetType=kind)["datasetArn"]
    call(p, "DescribeSchema", schemaArn=schemas["Interactions"])
    call(p, "ListSchemas")
    spare = call(p, "CreateSchema", name=unique("spare"), schema=json.dumps(USERS_SCHEMA))["schemaArn"]
    call(p, "DescribeDataset", datasetArn=datasets["Interactions"])
    call(p, "ListDatasets", datasetGroupArn=group)
    call(p, "UpdateDataset", datasetArn=datasets["Users"], schemaArn=spare)
    wait_status(lambda: p.describe_dataset(datasetArn=datasets["Users"]), "dataset")
    call(p, "DeleteSchema", schemaArn=call(p, "CreateSchema", name=unique("gone"),
                                             schema=json.dumps(USERS_SCHEMA))["schemaArn"])
    for kind in ("Interactions", "Items", "Users", "Actions", "Action_Interactions"):
        job = call(p, "CreateDatasetImportJob", jobName=unique("imp"), datasetArn=datasets[kind],
                   dataSource={"dataLocation": paths[kind.lower()]}, roleArn=ROLE)["datasetImportJobArn"]
        wait_status(lambda job=job: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
        call(p, "DescribeDatasetImportJob", datasetImportJobArn=job)
    call(p, "ListDatasetImportJobs", datasetArn=datasets["Interactions"])

    for op, kwargs in (("ListRecipes", {}), ("ListRecipes", {"domain": "VIDEO_ON_DEMAND"}),
                       ("DescribeRecipe", {"recipeArn": RECIPE + "aws-user-personalization"}),
                       ("DescribeAlgorithm", {"algorithmArn": "arn:aws:personalize:::algorithm/aws-user-personalization"}),
                       ("DescribeFeatureTransformation",
                        {"featureTransformationArn": "arn:aws:personalize:::feature-transformation/JSON-percentile-filtering"})):
        call(p, op, **kwargs)

    solutions, versions = {}, {}
    for key, recipe in (("up", "aws-user-personalization"), ("pr", "aws-personalized-ranking")):
        solutions[key] = call(p, "CreateSolution", name=unique(key), datasetGroupArn=group, recipeArn=RECIPE + recipe,
                              solutionConfig={"algorithmHyperParameters": {"hidden_dimension": "32"}})["solutionArn"]
        versions[key] = call(p, "CreateSolutionVersion", solutionArn=solutions[key])["solutionVersionArn"]
    for key, recipe in (("seg", "aws-item-affinity"), ("nba", "aws-next-best-action")):
        solutions[key] = call(p, "CreateSolution", name=unique(key), datasetGroupArn=group,
                              recipeArn=RECIPE + recipe)["solutionArn"]
        versions[key] = call(p, "CreateSolutionVersion", solutionArn=solutions[key])["solutionVersionArn"]
    stopped = call(p, "CreateSolution", name=unique("stop"), datasetGroupArn=group,
                   recipeArn=RECIPE + "aws-user-personalization")["solutionArn"]
    stop_version = p.create_solution_version(solutionArn=stopped)["solutionVersionArn"]
    _tolerate(lambda: call(p, "StopSolutionVersionCreation", solutionVersionArn=stop_version))
    call(p, "DescribeSolution", solutionArn=solutions["up"])
    call(p, "ListSolutions", datasetGroupArn=group)
    call(p, "UpdateSolution", solutionArn=solutions["pr"], performAutoTraining=False)
    for version in versions.values():
        wait_status(lambda v=version: p.describe_solution_version(solutionVersionArn=v), "solutionVersion", timeout=300)
    call(p, "DescribeSolutionVersion", solutionVersionArn=versions["up"])
    call(p, "ListSolutionVersions", solutionArn=solutions["up"])
    call(p, "GetSolutionMetrics", solutionVersionArn=versions["up"])
    wait_status(lambda: p.describe_solution_version(solutionVersionArn=stop_version), "solutionVersion",
                until={"ACTIVE", "CREATE FAILED", "CREATE STOPPED"}, timeout=300)
    call(p, "DeleteSolution", solutionArn=stopped)

    campaigns = {key: call(p, "CreateCampaign", name=unique(key), solutionVersionArn=versions[key])["campaignArn"]
                 for key in ("up", "pr", "nba")}
    jobs = _start_jobs(p, call, moto_s3, bucket, versions, datasets["Interactions"])
    for arn in campaigns.values():
        wait_status(lambda arn=arn: p.describe_campaign(campaignArn=arn), "campaign")
    call(p, "DescribeCampaign", campaignArn=campaigns["up"])
    call(p, "ListCampaigns", solutionArn=solutions["up"])
    filter_arn = call(p, "CreateFilter", name=unique("f"), datasetGroupArn=group,
                      filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click")')["filterArn"]
    call(p, "DescribeFilter", filterArn=filter_arn)
    call(p, "ListFilters", datasetGroupArn=group)
    call(rt, "GetRecommendations", campaignArn=campaigns["up"], userId="u1", numResults=5, filterArn=filter_arn)
    call(rt, "GetPersonalizedRanking", campaignArn=campaigns["pr"], userId="u1", inputList=["i1", "i2", "i3"])
    assert call(rt, "GetActionRecommendations", campaignArn=campaigns["nba"], userId="u1", numResults=3)["actionList"]
    recorder.refuse(rt, "GetActionRecommendations", "InvalidInputException", "action recommendations from an "
                    "item campaign", campaignArn=campaigns["up"], userId="u1")
    _finish_jobs(p, call, jobs, versions, datasets["Interactions"])
    _refuse_jobs(p, recorder, bucket, group, versions, datasets["Interactions"])
    recorder.refuse(p, "CreateMetricAttribution", "InvalidInputException", "SUM of a non-numeric column",
                    name=unique("ma"), datasetGroupArn=group, metricsOutputConfig={"roleArn": ROLE},
                    metrics=[{"eventType": "click", "metricName": "C", "expression": "SUM(Interactions.ITEM_ID)"}])
    attribution = _metric_attribution(p, call, group)
    recorder.refuse(p, "CreateMetricAttribution", "LimitExceededException", "a second attribution in a group",
                    name=unique("ma"), datasetGroupArn=group, metricsOutputConfig={"roleArn": ROLE},
                    metrics=[{"eventType": "click", "metricName": "C", "expression": "SAMPLECOUNT()"}])
    recorder.refuse(p, "UpdateMetricAttribution", "InvalidInputException", "removing a metric it does not have",
                    metricAttributionArn=attribution, removeMetrics=["NOT_A_METRIC"])
    call(p, "UpdateCampaign", campaignArn=campaigns["up"], minProvisionedTPS=2)
    wait_status(lambda: p.describe_campaign(campaignArn=campaigns["up"]), "campaign")

    tracker = call(p, "CreateEventTracker", name=unique("t"), datasetGroupArn=group)
    call(p, "DescribeEventTracker", eventTrackerArn=tracker["eventTrackerArn"])
    call(p, "ListEventTrackers", datasetGroupArn=group)
    call(ev, "PutEvents", trackingId=tracker["trackingId"], userId="u1", sessionId="s1",
         eventList=[{"eventType": "click", "itemId": "i1", "sentAt": time.time()}])
    call(ev, "PutItems", datasetArn=datasets["Items"],
         items=[{"itemId": "new1", "properties": json.dumps({"genres": "Comedy", "creationTimestamp": 1_700_000_000})}])
    call(ev, "PutUsers", datasetArn=datasets["Users"],
         users=[{"userId": "new-user", "properties": json.dumps({"age": 30, "membership": "gold"})}])
    call(ev, "PutActions", datasetArn=datasets["Actions"],
         actions=[{"actionId": "a1", "properties": json.dumps({"value": 5})}])
    call(ev, "PutActionInteractions", trackingId=tracker["trackingId"], actionInteractions=[
        {"actionId": "a1", "userId": "u1", "sessionId": "s1", "timestamp": time.time(), "eventType": "Taken"}])

    call(p, "TagResource", resourceArn=campaigns["up"], tags=[{"tagKey": "stage", "tagValue": "test"}])
    call(p, "ListTagsForResource", resourceArn=campaigns["up"])
    call(p, "UntagResource", resourceArn=campaigns["up"], tagKeys=["stage"])

    vod = p.create_dataset_group(name=unique("vod"), domain="VIDEO_ON_DEMAND")["datasetGroupArn"]
    vod_paths = upload(moto_s3, bucket, write_dataset(import_root / unique("vod"), event_types=("Click", "Watch")))
    vod_schema = p.create_schema(name=unique("vod"), schema=json.dumps(INTERACTIONS_SCHEMA),
                                 domain="VIDEO_ON_DEMAND")["schemaArn"]
    vod_data = p.create_dataset(name=unique("vod"), schemaArn=vod_schema, datasetGroupArn=vod,
                                datasetType="Interactions")["datasetArn"]
    job = p.create_dataset_import_job(jobName=unique("imp"), datasetArn=vod_data,
                                      dataSource={"dataLocation": vod_paths["interactions"]},
                                      roleArn="arn:aws:iam::000000000000:role/P")["datasetImportJobArn"]
    wait_status(lambda: p.describe_dataset_import_job(datasetImportJobArn=job), "datasetImportJob")
    recommender = call(p, "CreateRecommender", name=unique("popular"), datasetGroupArn=vod,
                       recipeArn=RECIPE + "aws-vod-most-popular")["recommenderArn"]
    wait_status(lambda: p.describe_recommender(recommenderArn=recommender), "recommender", timeout=300)
    call(p, "DescribeRecommender", recommenderArn=recommender)
    call(p, "ListRecommenders", datasetGroupArn=vod)
    call(rt, "GetRecommendations", recommenderArn=recommender, userId="u1")
    call(p, "UpdateRecommender", recommenderArn=recommender, recommenderConfig={"minRecommendationRequestsPerSecond": 2})
    wait_status(lambda: p.describe_recommender(recommenderArn=recommender), "recommender", timeout=300)
    call(p, "StopRecommender", recommenderArn=recommender)
    wait_status(lambda: p.describe_recommender(recommenderArn=recommender), "recommender", timeout=120)
    call(p, "StartRecommender", recommenderArn=recommender)
    wait_status(lambda: p.describe_recommender(recommenderArn=recommender), "recommender", timeout=300)

    call(p, "DeleteRecommender", recommenderArn=recommender)
    # The group's attribution stays for the generated invalid calls (a bad nextToken must be the token's
    # error, not the attribution's absence); the one deleted is the VOD group's.
    assert attribution
    gone = p.create_metric_attribution(name=unique("ma"), datasetGroupArn=vod, metricsOutputConfig={"roleArn": ROLE},
                                       metrics=[{"eventType": "Watch", "metricName": "W", "expression": "SAMPLECOUNT()"}])
    wait_status(lambda: p.describe_metric_attribution(metricAttributionArn=gone["metricAttributionArn"]),
                "metricAttribution")
    call(p, "DeleteMetricAttribution", metricAttributionArn=gone["metricAttributionArn"])
    forget = put_text(moto_s3, bucket, "forget/users.csv", "USER_ID\nu79\nnew-user\n")
    deletion = call(p, "CreateDataDeletionJob", jobName=unique("del"), datasetGroupArn=group, roleArn=ROLE,
                    dataSource={"dataLocation": forget})["dataDeletionJobArn"]
    done = wait_status(lambda: p.describe_data_deletion_job(dataDeletionJobArn=deletion), "dataDeletionJob",
                       until={"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done.get("failureReason")
    call(p, "DescribeDataDeletionJob", dataDeletionJobArn=deletion)
    call(p, "ListDataDeletionJobs", datasetGroupArn=group)
    call(p, "DeleteEventTracker", eventTrackerArn=tracker["eventTrackerArn"])
    call(p, "DeleteFilter", filterArn=filter_arn)
    for arn in campaigns.values():
        call(p, "DeleteCampaign", campaignArn=arn)
    empty = p.create_dataset_group(name=unique("empty"))["datasetGroupArn"]
    throwaway = p.create_dataset(name=unique("gone"), schemaArn=schemas["Items"], datasetGroupArn=empty,
                                 datasetType="Items")["datasetArn"]
    call(p, "DeleteDataset", datasetArn=throwaway)
    wait_gone(lambda: p.describe_dataset(datasetArn=throwaway), p)
    call(p, "DeleteDatasetGroup", datasetGroupArn=empty)
    _monitoring(clients, recorder, campaigns["up"], group)
    return {"a dataset group with datasets": ("DeleteDatasetGroup", {"datasetGroupArn": group}),
            "a schema used by a dataset": ("DeleteSchema", {"schemaArn": schemas["Interactions"]})}


def _start_jobs(p: Any, call: Callable[..., dict[str, Any]], moto_s3: str, bucket: str,
                versions: dict[str, str], interactions: str) -> dict[str, str]:
    """A batch inference job, a batch segment job and a dataset export job, started together."""
    users = put_text(moto_s3, bucket, "batch/users.json", "".join(f'{{"userId": "u{u}"}}\n' for u in range(5)))
    items = put_text(moto_s3, bucket, "batch/items.json", "".join(f'{{"itemId": "i{i}"}}\n' for i in range(5)))
    return {
        "batchInferenceJob": call(p, "CreateBatchInferenceJob", jobName=unique("bij"), roleArn=ROLE,
                                  solutionVersionArn=versions["up"], numResults=5,
                                  jobInput={"s3DataSource": {"path": users}},
                                  jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/batch-out/"}})[
            "batchInferenceJobArn"],
        "batchSegmentJob": call(p, "CreateBatchSegmentJob", jobName=unique("bsj"), roleArn=ROLE,
                                solutionVersionArn=versions["seg"], numResults=10,
                                jobInput={"s3DataSource": {"path": items}},
                                jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/segment-out/"}})[
            "batchSegmentJobArn"],
        "datasetExportJob": call(p, "CreateDatasetExportJob", jobName=unique("exp"), datasetArn=interactions,
                                 roleArn=ROLE, ingestionMode="BULK",
                                 jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/export/"}})[
            "datasetExportJobArn"],
    }


def _finish_jobs(p: Any, call: Callable[..., dict[str, Any]], jobs: dict[str, str], versions: dict[str, str],
                 interactions: str) -> None:
    """Wait for the jobs of `_start_jobs`, then describe and list each kind."""
    for key, arn in jobs.items():
        describe = getattr(p, xform_name(f"Describe{key[0].upper()}{key[1:]}"))
        done = wait_status(lambda d=describe, k=key, a=arn: d(**{f"{k}Arn": a}), key, timeout=180)
        assert done["status"] == "ACTIVE", (key, done.get("failureReason"))
        call(p, f"Describe{key[0].upper()}{key[1:]}", **{f"{key}Arn": arn})
    call(p, "ListBatchInferenceJobs", solutionVersionArn=versions["up"])
    call(p, "ListBatchSegmentJobs", solutionVersionArn=versions["seg"])
    call(p, "ListDatasetExportJobs", datasetArn=interactions)


def _refuse_jobs(p: Any, recorder: Recorder, bucket: str, group: str, versions: dict[str, str],
                 interactions: str) -> None:
    """Jobs the service must refuse at the call: the wrong kind of model, locations that are not S3."""
    io = {"jobInput": {"s3DataSource": {"path": f"s3://{bucket}/batch/users.json"}},
          "jobOutput": {"s3DataDestination": {"path": f"s3://{bucket}/refused/"}}}
    recorder.refuse(p, "CreateBatchSegmentJob", "InvalidInputException", "segments from a recipe without them",
                    jobName=unique("bsj"), roleArn=ROLE, solutionVersionArn=versions["up"], **io)
    recorder.refuse(p, "CreateBatchInferenceJob", "InvalidInputException", "recommendations from a segment "
                    "recipe", jobName=unique("bij"), roleArn=ROLE, solutionVersionArn=versions["seg"], **io)
    recorder.refuse(p, "CreateDatasetExportJob", "InvalidInputException", "an export to a non-S3 location",
                    jobName=unique("exp"), roleArn=ROLE, datasetArn=interactions,
                    jobOutput={"s3DataDestination": {"path": "http://example.com/export/"}})
    recorder.refuse(p, "CreateDataDeletionJob", "InvalidInputException", "a deletion list at a non-S3 location",
                    jobName=unique("del"), roleArn=ROLE, datasetGroupArn=group,
                    dataSource={"dataLocation": "http://example.com/users.csv"})


def _metric_attribution(p: Any, call: Callable[..., dict[str, Any]], group: str) -> str:
    """A metric attribution, described, listed, updated; its ARN."""
    arn = call(p, "CreateMetricAttribution", name=unique("ma"), datasetGroupArn=group,
               metrics=[{"eventType": "click", "metricName": "CLICKS", "expression": "SAMPLECOUNT()"}],
               metricsOutputConfig={"roleArn": ROLE})["metricAttributionArn"]

    def describe() -> dict[str, Any]:
        return dict(p.describe_metric_attribution(metricAttributionArn=arn))

    wait_status(describe, "metricAttribution")
    call(p, "DescribeMetricAttribution", metricAttributionArn=arn)
    call(p, "ListMetricAttributions", datasetGroupArn=group)
    call(p, "ListMetricAttributionMetrics", metricAttributionArn=arn)
    call(p, "UpdateMetricAttribution", metricAttributionArn=arn, addMetrics=[
        {"eventType": "watch", "metricName": "WATCHES", "expression": "SAMPLECOUNT()"}])
    wait_status(describe, "metricAttribution")
    return arn


def _monitoring(clients: dict[str, Any], recorder: Recorder, campaign: str, group: str) -> None:
    """The CloudWatch metrics of the walk's own traffic and its CloudTrail audit trail, read back."""
    cw, trail = clients["cloudwatch"], clients["cloudtrail"]
    dims = [{"Name": "CampaignArn", "Value": campaign}]
    now = time.time()
    window = {"StartTime": now - 3600, "EndTime": now + 60}
    assert recorder.call(cw, "ListMetrics", Namespace="AWS/Personalize", Dimensions=dims)["Metrics"]
    recorder.call(cw, "GetMetricStatistics", Namespace="AWS/Personalize", MetricName="GetRecommendations",
                  Dimensions=dims, Statistics=["Sum", "SampleCount"], Period=60, **window)
    metric = {"Namespace": "AWS/Personalize", "MetricName": "GetRecommendationsLatency", "Dimensions": dims}
    recorder.call(cw, "GetMetricData", MetricDataQueries=[
        {"Id": "lat", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum"}}], MaxDatapoints=100,
        **window)
    recorder.call(trail, "LookupEvents", MaxResults=5, LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": group}])


def _tolerate(call: Callable[[], Any]) -> None:
    """A valid call whose outcome depends on timing (stopping a training that may have finished)."""
    try:
        call()
    except ClientError:
        pass
