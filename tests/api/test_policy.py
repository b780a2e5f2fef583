"""IAM-style policy evaluation and the resources each request acts on (derived from the botocore shapes)."""

from __future__ import annotations

from typing import Any

import pytest

from tastemaker.api.policy import ADMIN_POLICY, Policy, request_resources, resource_plan
from tastemaker.api.service_models import operation_by_name
from tastemaker.errors import InvalidInputException

ACCOUNT, REGION = "000000000000", "us-east-1"
CAMPAIGN = f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/shop"
OTHER = f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/other"


def decide(policy: dict[str, Any], action: str, *resources: str) -> str:
    refusal = Policy.parse(policy).check(action, lambda: list(resources))
    if refusal is None:
        return "allow"
    return "deny" if refusal.explicit else "implicit"


def allow(action: Any, resource: Any = "*", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def test_allow_matches_action_and_resource_else_implicit_deny() -> None:
    policy = {"Version": "2012-10-17", "Statement": [allow("personalize:GetRecommendations", CAMPAIGN)]}
    assert decide(policy, "personalize:GetRecommendations", CAMPAIGN) == "allow"
    assert decide(policy, "personalize:GetRecommendations", OTHER) == "implicit"
    assert decide(policy, "personalize:CreateDatasetGroup", CAMPAIGN) == "implicit"


def test_explicit_deny_beats_allow() -> None:
    policy = {"Statement": [allow("personalize:*"), allow("personalize:Delete*", CAMPAIGN, "Deny")]}
    assert decide(policy, "personalize:DeleteCampaign", CAMPAIGN) == "deny"
    assert decide(policy, "personalize:DeleteCampaign", OTHER) == "allow"
    assert decide(policy, "personalize:DescribeCampaign", CAMPAIGN) == "allow"


@pytest.mark.parametrize("pattern,action,expected", [
    ("personalize:Get*", "personalize:GetRecommendations", "allow"),
    ("personalize:Get*", "personalize:GetPersonalizedRanking", "allow"),
    ("personalize:Get*", "personalize:PutEvents", "implicit"),
    ("personalize:get*", "personalize:GetRecommendations", "allow"),  # actions ignore case, as in IAM
    ("personalize:Put?vents", "personalize:PutEvents", "allow"),
    ("personalize:Put?vents", "personalize:PutItems", "implicit"),
    ("*", "personalize:DeleteSchema", "allow"),
    ("s3:*", "personalize:DeleteSchema", "implicit"),
])
def test_action_wildcards(pattern: str, action: str, expected: str) -> None:
    assert decide({"Statement": [allow(pattern)]}, action, CAMPAIGN) == expected


@pytest.mark.parametrize("pattern,resource,expected", [
    (f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/*", CAMPAIGN, "allow"),
    (f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/*", f"arn:aws:personalize:{REGION}:{ACCOUNT}:filter/x",
     "implicit"),
    ("arn:aws:personalize:*:*:campaign/sho?", CAMPAIGN, "allow"),
    ("arn:aws:personalize:*:*:campaign/sh?", CAMPAIGN, "implicit"),
    (f"arn:aws:personalize:{REGION}:{ACCOUNT}:campaign/SHOP", CAMPAIGN, "implicit"),  # ARNs are case-sensitive
    ("arn:aws:personalize:*", CAMPAIGN, "allow"),
])
def test_resource_wildcards(pattern: str, resource: str, expected: str) -> None:
    assert decide({"Statement": [allow("personalize:*", pattern)]}, "personalize:DescribeCampaign",
                  resource) == expected


def test_not_action_and_not_resource() -> None:
    policy = {"Statement": [{"Effect": "Allow", "NotAction": "personalize:Delete*", "NotResource": OTHER}]}
    assert decide(policy, "personalize:DescribeCampaign", CAMPAIGN) == "allow"
    assert decide(policy, "personalize:DeleteCampaign", CAMPAIGN) == "implicit"
    assert decide(policy, "personalize:DescribeCampaign", OTHER) == "implicit"


def test_every_resource_a_request_names_must_be_allowed() -> None:
    filt = f"arn:aws:personalize:{REGION}:{ACCOUNT}:filter/f"
    policy = {"Statement": [allow("personalize:GetRecommendations", CAMPAIGN)]}
    assert decide(policy, "personalize:GetRecommendations", CAMPAIGN, filt) == "implicit"
    policy = {"Statement": [allow("personalize:GetRecommendations", [CAMPAIGN, filt])]}
    assert decide(policy, "personalize:GetRecommendations", CAMPAIGN, filt) == "allow"


def test_resource_independent_answers_never_ask_for_the_resources() -> None:
    def boom() -> list[str]:
        raise AssertionError("resources derived although the action alone decides")

    assert Policy.parse(ADMIN_POLICY).check("personalize:GetRecommendations", boom) is None
    assert Policy.parse({"Statement": [allow("personalize:Get*")]}).check("personalize:GetRecommendations",
                                                                          boom) is None


def test_admin_is_everything_without_deny() -> None:
    assert Policy.parse(ADMIN_POLICY).is_admin
    assert Policy.parse({"Statement": [allow("*")]}).is_admin
    assert not Policy.parse({"Statement": [allow("personalize:Get*")]}).is_admin
    assert not Policy.parse({"Statement": [allow("personalize:*", CAMPAIGN)]}).is_admin
    assert not Policy.parse({"Statement": [allow("*"), allow("personalize:DeleteCampaign", "*", "Deny")]}).is_admin


@pytest.mark.parametrize("document,fragment", [
    ("{not json", "not valid JSON"),
    ({"Statement": []}, "Statement"),
    ({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}, "Effect"),
    ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x:y", "Resource": "*"}]}, "exactly one"),
    ({"Statement": [{"Effect": "Allow", "Action": "GetRecommendations", "Resource": "*"}]}, "service:Operation"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "campaign/shop"}]}, "not an ARN"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}]}, "Condition"),
    ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:personalize:::${aws:username}"}]},
     "policy variable"),
    ({"Version": "2020-01-01", "Statement": [allow("*")]}, "Version"),
])
def test_malformed_policies_name_the_fault(document: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as exc:
        Policy.parse(document)
    assert fragment in exc.value.message


def resources_of(service: str, operation: str, params: dict[str, Any],
                 trackers: dict[str, str] | None = None) -> list[str]:
    info = operation_by_name(service, operation)
    assert info is not None
    plan = resource_plan(info.name, info.input_shape)
    return request_resources(plan, params, REGION, ACCOUNT, (trackers or {}).get)


def test_request_resources_come_from_the_input_shapes() -> None:
    base = f"arn:aws:personalize:{REGION}:{ACCOUNT}"
    group = f"{base}:dataset-group/g"
    assert resources_of("personalize-runtime", "GetRecommendations", {"campaignArn": CAMPAIGN, "userId": "u"}) \
        == [CAMPAIGN]
    assert resources_of("personalize-runtime", "GetRecommendations", {"recommenderArn": f"{base}:recommender/r"}) \
        == [f"{base}:recommender/r"]
    assert resources_of("personalize-events", "PutEvents", {"trackingId": "t-1"},
                        {"t-1": f"{base}:event-tracker/abc"}) == [f"{base}:event-tracker/abc"]
    assert resources_of("personalize-events", "PutEvents", {"trackingId": "unknown"}) == ["*"]
    assert resources_of("personalize", "CreateDatasetGroup", {"name": "g"}) == [group]
    assert resources_of("personalize", "CreateCampaign", {"name": "c", "solutionVersionArn": "x"}) \
        == [f"{base}:campaign/c"]
    assert resources_of("personalize", "CreateDataset", {"name": "d", "datasetGroupArn": group,
                                                         "datasetType": "Interactions", "schemaArn": "s"}) \
        == [f"{base}:dataset/g/INTERACTIONS"]
    assert resources_of("personalize", "CreateDatasetImportJob", {
        "jobName": "j", "datasetArn": f"{base}:dataset/g/ITEMS",
        "roleArn": "arn:aws:iam::000000000000:role/r"}) == [f"{base}:dataset-import-job/j"]
    # a generated id: the call acts on the resource the new one is created in
    assert resources_of("personalize", "CreateSolutionVersion", {"solutionArn": f"{base}:solution/s"}) \
        == [f"{base}:solution/s"]
    assert resources_of("personalize", "CreateEventTracker", {"name": "t", "datasetGroupArn": group}) == [group]
    assert resources_of("personalize", "ListCampaigns", {"solutionArn": f"{base}:solution/s"}) == ["*"]
    assert resources_of("personalize", "TagResource", {"resourceArn": CAMPAIGN, "tags": []}) == [CAMPAIGN]
    assert resources_of("personalize", "DescribeRecipe", {"recipeArn": "arn:aws:personalize:::recipe/x"}) \
        == ["arn:aws:personalize:::recipe/x"]
