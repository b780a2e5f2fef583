"""What deleting a dataset group removes: every resource in it, by kind, in the order the server accepts deletes.

Shared by `tastemaker cleanup` (through boto3) and the web console (through the registered operations): both
hand `make_plan` an object with a boto3-shaped `personalize` client (snake_case methods, `can_paginate`,
`get_paginator`); an error names its AWS code in botocore's `response` or in the exception's `code`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tastemaker.store.status import Status


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError or a Tastemaker error (None for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else None


BUSY = {Status.CREATE_PENDING, Status.CREATE_IN_PROGRESS, Status.CREATE_STOPPING, Status.STOP_PENDING,
        Status.STOP_IN_PROGRESS, Status.START_PENDING, Status.START_IN_PROGRESS}


@dataclass(frozen=True)
class Kind:
    """How to list, describe and delete one resource kind through boto3."""

    name: str  # human name, e.g. "campaign"
    arn_key: str  # e.g. "campaignArn"
    describe: str  # boto3 method, e.g. "describe_campaign"
    describe_key: str  # key of the document in the Describe response
    delete: str  # boto3 method

    def delete_params(self, arn: str) -> dict[str, str]:
        return {self.arn_key: arn}


CAMPAIGN = Kind("campaign", "campaignArn", "describe_campaign", "campaign", "delete_campaign")
RECOMMENDER = Kind("recommender", "recommenderArn", "describe_recommender", "recommender", "delete_recommender")
FILTER = Kind("filter", "filterArn", "describe_filter", "filter", "delete_filter")
METRIC_ATTRIBUTION = Kind("metric attribution", "metricAttributionArn", "describe_metric_attribution",
                          "metricAttribution", "delete_metric_attribution")
EVENT_TRACKER = Kind("event tracker", "eventTrackerArn", "describe_event_tracker", "eventTracker",
                     "delete_event_tracker")
SOLUTION = Kind("solution", "solutionArn", "describe_solution", "solution", "delete_solution")
DATASET = Kind("dataset", "datasetArn", "describe_dataset", "dataset", "delete_dataset")
DATASET_GROUP = Kind("dataset group", "datasetGroupArn", "describe_dataset_group", "datasetGroup",
                     "delete_dataset_group")
SCHEMA = Kind("schema", "schemaArn", "describe_schema", "schema", "delete_schema")

# Each stage only starts when everything of the stage before is gone (that is what the server checks).
STAGES: tuple[tuple[Kind, ...], ...] = (
    (CAMPAIGN, RECOMMENDER), (FILTER, METRIC_ATTRIBUTION, EVENT_TRACKER), (SOLUTION,), (DATASET,),
    (DATASET_GROUP,), (SCHEMA,),
)


@dataclass
class Plan:
    """The resources to delete, by kind, plus notes on what could not be listed."""

    group_arn: str
    resources: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kept_schemas: list[str] = field(default_factory=list)

    def add(self, kind: Kind, arn: str) -> None:
        self.resources.setdefault(kind.name, []).append(arn)

    def count(self) -> int:
        return sum(len(v) for v in self.resources.values())


def _pages(clients: Any, method: str, key: str, plan: Plan, **params: Any) -> list[dict[str, Any]]:
    """All items of a List* call (paginated); an operation the server lacks lists nothing, with a note."""
    p = clients.personalize
    try:
        if p.can_paginate(method):
            return [item for page in p.get_paginator(method).paginate(**params) for item in page.get(key, [])]
        return list(getattr(p, method)(**params).get(key, []))
    except Exception as exc:
        if error_code(exc) == "NotImplementedException":
            plan.notes.append(f"{method} is not implemented by this server, so there is nothing of that kind")
            return []
        raise


def make_plan(clients: Any, group_arn: str) -> Plan | None:
    """What deleting `group_arn` removes; None when the group does not exist."""
    p = clients.personalize
    try:
        p.describe_dataset_group(datasetGroupArn=group_arn)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    plan = Plan(group_arn)
    solutions = _pages(clients, "list_solutions", "solutions", plan, datasetGroupArn=group_arn)
    for solution in solutions:
        for campaign in _pages(clients, "list_campaigns", "campaigns", plan, solutionArn=solution["solutionArn"]):
            plan.add(CAMPAIGN, campaign["campaignArn"])
    for item in _pages(clients, "list_recommenders", "recommenders", plan, datasetGroupArn=group_arn):
        plan.add(RECOMMENDER, item["recommenderArn"])
    for item in _pages(clients, "list_filters", "Filters", plan, datasetGroupArn=group_arn):
        plan.add(FILTER, item["filterArn"])
    for item in _pages(clients, "list_metric_attributions", "metricAttributions", plan, datasetGroupArn=group_arn):
        plan.add(METRIC_ATTRIBUTION, item["metricAttributionArn"])
    for item in _pages(clients, "list_event_trackers", "eventTrackers", plan, datasetGroupArn=group_arn):
        plan.add(EVENT_TRACKER, item["eventTrackerArn"])
    for solution in solutions:
        plan.add(SOLUTION, solution["solutionArn"])
    schemas: set[str] = set()
    for item in _pages(clients, "list_datasets", "datasets", plan, datasetGroupArn=group_arn):
        plan.add(DATASET, item["datasetArn"])
        schemas.add(p.describe_dataset(datasetArn=item["datasetArn"])["dataset"]["schemaArn"])
    plan.add(DATASET_GROUP, group_arn)
    # A schema goes only when no dataset of another group uses it.
    used_elsewhere = set()
    for group in _pages(clients, "list_dataset_groups", "datasetGroups", plan):
        if group["datasetGroupArn"] == group_arn:
            continue
        for item in _pages(clients, "list_datasets", "datasets", plan, datasetGroupArn=group["datasetGroupArn"]):
            try:
                used_elsewhere.add(p.describe_dataset(datasetArn=item["datasetArn"])["dataset"]["schemaArn"])
            except Exception as exc:  # a dataset deleted meanwhile uses nothing
                if error_code(exc) != "ResourceNotFoundException":
                    raise
    for schema in sorted(schemas):
        if schema in used_elsewhere:
            plan.kept_schemas.append(schema)
        else:
            plan.add(SCHEMA, schema)
    return plan
