"""Service-model routing tables and server-side input validation against the botocore models."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.model import OperationModel, Shape

from tastemaker.api.service_models import (
    SERVICE_NAMES,
    all_operations,
    operation_by_name,
    operation_for_path,
    operation_for_target,
    service_model,
)
from tastemaker.api.validation import java_pattern, validate_input
from tastemaker.errors import InvalidInputException, ValidationException

ARN = "arn:aws:personalize:us-east-1:000000000000:dataset-group/shop"
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/c1"


def op(name: str) -> OperationModel:
    for service in SERVICE_NAMES:
        info = operation_by_name(service, name)
        if info is not None:
            return info.model
    raise LookupError(name)


def refusal(name: str, params: Any) -> str:
    with pytest.raises(InvalidInputException) as info:
        validate_input(op(name), params)
    assert info.value.status == 400 and info.value.code == "InvalidInputException"
    return info.value.message


# --- service models and routing -------------------------------------------------------------------------


def test_all_79_operations_of_the_three_models_are_indexed() -> None:
    operations = all_operations()
    counts = {service: sum(1 for o in operations if o.service == service) for service in SERVICE_NAMES}
    assert counts == {"personalize": 71, "personalize-runtime": 3, "personalize-events": 5}
    assert len({(o.service, o.name) for o in operations}) == 79
    for info in operations:
        assert info.model.name == info.name
        assert info.input_shape is not None
        expected_protocol = "json" if info.service == "personalize" else "rest-json"
        assert info.protocol == expected_protocol and info.http_method == "POST"


def test_every_control_plane_operation_routes_by_x_amz_target() -> None:
    for name in service_model("personalize").operation_names:
        info = operation_for_target(f"AmazonPersonalize.{name}")
        assert info is not None and info.name == name and info.request_uri == "/"
        assert info.target == f"AmazonPersonalize.{name}"
    campaign = operation_for_target("AmazonPersonalize.CreateCampaign")
    assert campaign is not None and campaign.snake_name == "create_campaign"
    assert operation_for_target("AmazonPersonalize.NoSuchOperation") is None
    assert operation_for_target("AmazonS3.CreateCampaign") is None
    assert operation_for_target("CreateCampaign") is None


@pytest.mark.parametrize(
    ("path", "service", "name"),
    [
        ("/recommendations", "personalize-runtime", "GetRecommendations"),
        ("/personalize-ranking", "personalize-runtime", "GetPersonalizedRanking"),
        ("/action-recommendations", "personalize-runtime", "GetActionRecommendations"),
        ("/events", "personalize-events", "PutEvents"),
        ("/items", "personalize-events", "PutItems"),
        ("/users", "personalize-events", "PutUsers"),
        ("/actions", "personalize-events", "PutActions"),
        ("/action-interactions", "personalize-events", "PutActionInteractions"),
    ],
)
def test_rest_json_operations_route_by_method_and_path(path: str, service: str, name: str) -> None:
    info = operation_for_path("POST", path)
    assert info is not None and (info.service, info.name, info.target) == (service, name, None)
    assert operation_for_path("post", path + "/") is info
    assert operation_for_path("GET", path) is None
    assert operation_for_path("POST", path + "x") is None


def test_json_control_plane_is_not_a_path_route() -> None:
    assert operation_for_path("POST", "/") is None


# --- every operation accepts a valid request built from its own shape ------------------------------------

# Values tried, in order, for strings with a pattern; the first that fits pattern and length is used.
SAMPLE_STRINGS = [
    "name-1", "Interactions", ARN, "arn:aws:iam::000000000000:role/PersonalizeRole",
    "arn:aws:kms:us-east-1:000000000000:key/k-1", "s3://bucket/data/", "rate(7 days)", "COLUMN_1",
]


def sample(shape: Shape, everything: bool, depth: int = 0) -> Any:
    """A valid value for a shape: required members only, or (everything=True) every member."""
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        names = shape.members if everything and depth < 6 else meta.get("required", [])
        return {n: sample(shape.members[n], everything, depth + 1) for n in names}  # type: ignore[attr-defined]
    if kind == "list":
        count = max(meta.get("min", 0), 1 if everything else 0)
        return [sample(shape.member, everything, depth + 1) for _ in range(count)]  # type: ignore[attr-defined]
    if kind == "map":
        if not (everything or meta.get("min")):  # no model map needs more than one entry
            return {}
        key = sample(shape.key, everything, depth + 1)  # type: ignore[attr-defined]
        return {key: sample(shape.value, everything, depth + 1)}  # type: ignore[attr-defined]
    if kind in ("integer", "long"):
        return max(meta.get("min", 1), min(meta.get("max", 1), 1))
    if kind in ("float", "double"):
        return float(max(meta.get("min", 0.5), min(meta.get("max", 0.5), 0.5)))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return 1764325800
    assert kind == "string", kind
    if shape.serialization.get("jsonvalue"):
        return '{"numberOfRatings": "12"}'
    if "enum" in meta:
        return meta["enum"][0]
    low, high = meta.get("min", 0), meta.get("max", 10**6)
    if "pattern" not in meta:
        return "v" * max(low, 1) if high >= 1 else ""
    compiled = java_pattern(meta["pattern"])
    for candidate in SAMPLE_STRINGS:
        if low <= len(candidate) <= high and compiled.fullmatch(candidate):
            return candidate
    raise AssertionError(f"no sample string fits {shape.name} pattern {meta['pattern']!r}; extend SAMPLE_STRINGS")


@pytest.mark.parametrize("everything", [False, True], ids=["required-only", "every-member"])
def test_every_operation_accepts_a_valid_request(everything: bool) -> None:
    for info in all_operations():
        params = sample(info.input_shape, everything)  # type: ignore[arg-type]
        cleaned = validate_input(info.model, params)
        assert set(cleaned) == set(params), info.name


def test_every_operation_names_its_missing_required_members() -> None:
    checked = 0
    for info in all_operations():
        required = info.input_shape.metadata.get("required", [])  # type: ignore[union-attr]
        if not required:
            continue
        message = refusal(info.name, {})
        count = len(required)
        assert message.startswith(f"{count} validation error{'s' if count > 1 else ''} detected: "), info.name
        for member in required:
            assert f"Value null at '{member}' failed to satisfy constraint: Member must not be null" in message
        checked += 1
    assert checked >= 55


# --- the rules, with AWS-style messages ----------------------------------------------------------------


def test_missing_required_member() -> None:
    assert refusal("CreateDatasetGroup", {}) == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
    # An explicit null counts as absent.
    assert "Value null at 'name'" in refusal("CreateDatasetGroup", {"name": None})


def test_resource_name_pattern_matches_the_whole_value() -> None:
    assert refusal("CreateDatasetGroup", {"name": "x y"}) == (
        "1 validation error detected: Value 'x y' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*")
    assert "regular expression" in refusal("CreateDatasetGroup", {"name": "-leading-dash"})
    assert validate_input(op("CreateDatasetGroup"), {"name": "Shop_2026-v1"}) == {"name": "Shop_2026-v1"}


def test_name_length_limits() -> None:
    validate_input(op("CreateDatasetGroup"), {"name": "a" * 63})
    message = refusal("CreateDatasetGroup", {"name": "a" * 64})
    assert message == ("1 validation error detected: Value '" + "a" * 64 + "' at 'name' failed to satisfy "
                       "constraint: Member must have length less than or equal to 63")
    assert "Member must have length greater than or equal to 1" in refusal("CreateDatasetGroup", {"name": ""})


def test_enum() -> None:
    assert refusal("CreateDatasetGroup", {"name": "g", "domain": "RETAIL"}) == (
        "1 validation error detected: Value 'RETAIL' at 'domain' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ECOMMERCE, VIDEO_ON_DEMAND]")
    validate_input(op("CreateDatasetGroup"), {"name": "g", "domain": "VIDEO_ON_DEMAND"})


def test_several_violations_are_all_reported() -> None:
    message = refusal("CreateDatasetGroup", {"name": "a b" * 30, "domain": "x", "roleArn": "nope"})
    assert message.startswith("4 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 4
    assert "at 'roleArn'" in message and "at 'domain'" in message


def test_message_lists_at_most_ten_violations() -> None:
    events = [{"eventType": "", "sentAt": "never"} for _ in range(7)]
    message = refusal("PutEvents", {"trackingId": "t", "sessionId": "s", "eventList": events})
    assert message.startswith("14 validation errors detected: ") and message.endswith("; and 4 more")


@pytest.mark.parametrize(("value", "rule"), [(0, "greater than or equal to 1"), (101, "less than or equal to 100")])
def test_integer_range(value: int, rule: str) -> None:
    assert refusal("ListDatasets", {"maxResults": value}) == (
        f"1 validation error detected: Value '{value}' at 'maxResults' failed to satisfy constraint: "
        f"Member must have value {rule}")


@pytest.mark.parametrize("name", ["ListDatasetGroups", "ListSchemas"])
def test_operations_without_invalid_input_answer_validation_exception(name: str) -> None:
    """Their models declare only InvalidNextTokenException: AWS's request validation answers the common
    ValidationException there, with the same message."""
    with pytest.raises(ValidationException) as info:
        validate_input(op(name), {"maxResults": 101})
    assert info.value.status == 400 and info.value.code == "ValidationException"
    assert info.value.message == ("1 validation error detected: Value '101' at 'maxResults' failed to satisfy "
                                  "constraint: Member must have value less than or equal to 100")


def test_num_results_limits_documented_beyond_the_model() -> None:
    get_recs = {"campaignArn": CAMPAIGN, "userId": "u1"}
    assert "Member must have value less than or equal to 500" in refusal(
        "GetRecommendations", {**get_recs, "numResults": 501})
    assert "greater than or equal to 0" in refusal("GetRecommendations", {**get_recs, "numResults": -1})
    for ok in (0, 25, 500):  # the model allows 0
        validate_input(op("GetRecommendations"), {**get_recs, "numResults": ok})
    assert "less than or equal to 100" in refusal("GetActionRecommendations", {"numResults": 101})
    assert "less than or equal to 500" in refusal(
        "GetPersonalizedRanking", {"campaignArn": CAMPAIGN, "userId": "u", "inputList": ["i"] * 501})
    # The tighter limit is per operation: a shared shape keeps the model's limits elsewhere.
    validate_input(op("CreateBatchInferenceJob"), {
        **sample(op("CreateBatchInferenceJob").input_shape, False), "numResults": 5000})


def test_double_range_in_nested_list_of_structures() -> None:
    params = {"name": "s", "datasetGroupArn": ARN, "solutionConfig": {"eventsConfig": {"eventParametersList": [
        {"eventType": "click", "weight": 0.5}, {"eventType": "buy", "weight": 1.5}]}}}
    assert refusal("CreateSolution", params) == (
        "1 validation error detected: Value '1.5' at 'solutionConfig.eventsConfig.eventParametersList.2.member"
        ".weight' failed to satisfy constraint: Member must have value less than or equal to 1")


def test_nested_structure_path() -> None:
    params = {"jobName": "j", "datasetArn": ARN, "dataSource": {"dataLocation": "ftp://bucket/x.csv"}}
    assert refusal("CreateDatasetImportJob", params).startswith(
        "1 validation error detected: Value 'ftp://bucket/x.csv' at 'dataSource.dataLocation' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: (s3|http|https")
    # Tastemaker widens S3Location (PATTERN_OVERRIDES) to local paths and file:// URLs.
    for location in ("s3://bucket/x.csv", "/srv/data/x.csv", "file:///srv/data/"):
        validate_input(op("CreateDatasetImportJob"), {**params, "dataSource": {"dataLocation": location}})


def event(**fields: Any) -> dict[str, Any]:
    return {"eventType": "click", "sentAt": 1764325800, **fields}


def test_event_list_length() -> None:
    base = {"trackingId": "t", "sessionId": "s"}
    validate_input(op("PutEvents"), {**base, "eventList": [event()] * 10})
    message = refusal("PutEvents", {**base, "eventList": [event()] * 11})
    # Events are sensitive, so the list's content is never echoed.
    assert message == ("1 validation error detected: Value '***' at 'eventList' failed to satisfy constraint: "
                       "Member must have length less than or equal to 10")
    assert "greater than or equal to 1" in refusal("PutEvents", {**base, "eventList": []})


@pytest.mark.parametrize("properties", ["not json", "[1, 2]", '"a string"', "{unquoted: 1}"])
def test_json_value_properties_must_hold_a_json_object(properties: str) -> None:
    params = {"trackingId": "t", "sessionId": "s", "eventList": [event(), event(properties=properties)]}
    assert refusal("PutEvents", params) == (
        "1 validation error detected: Value '***' at 'eventList.2.member.properties' failed to satisfy "
        "constraint: Member must be a string holding a JSON object")


def test_json_value_properties_are_returned_as_sent() -> None:
    properties = '{"numberOfRatings": "12", "genre": "Comédie|Drama"}'
    cleaned = validate_input(op("PutItems"), {"datasetArn": ARN, "items": [{"itemId": "i", "properties": properties}]})
    assert cleaned["items"][0]["properties"] == properties


def test_json_value_length_is_checked() -> None:
    long = '{"k": "' + "x" * 1100 + '"}'
    assert "at 'eventList.1.member.properties' failed to satisfy constraint: Member must have length less than " \
           "or equal to 1024" in refusal("PutEvents", {"trackingId": "t", "sessionId": "s",
                                                       "eventList": [event(properties=long)]})


def test_timestamps_accept_epoch_numbers_and_iso_strings() -> None:
    base = {"trackingId": "t", "sessionId": "s"}
    cleaned = validate_input(op("PutEvents"), {**base, "eventList": [
        event(sentAt=1764325800), event(sentAt=1764325800.923), event(sentAt="2025-11-28T10:30:00Z"),
        event(sentAt="2025-11-28T12:30:00+02:00"), event(sentAt="2025-11-28T10:30:00")]})
    assert [e["sentAt"] for e in cleaned["eventList"]] == [1764325800.0, 1764325800.923] + [1764325800.0] * 3
    assert all(isinstance(e["sentAt"], float) for e in cleaned["eventList"])
    message = refusal("PutEvents", {**base, "eventList": [event(sentAt="yesterday")]})
    assert "at 'eventList.1.member.sentAt'" in message and "Member must be a timestamp" in message
    assert "Member must be a timestamp" in refusal("PutEvents", {**base, "eventList": [event(sentAt=True)]})


def test_maps_keys_values_and_size() -> None:
    base = {"campaignArn": CAMPAIGN, "userId": "u"}
    assert refusal("GetRecommendations", {**base, "filterValues": {"bad key": '"x"'}}) == (
        "1 validation error detected: Value 'bad key' at 'filterValues' failed to satisfy constraint: "
        "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [A-Za-z0-9_]+]")
    message = refusal("GetRecommendations", {**base, "filterValues": {"GENRE": "x" * 1001}})
    assert message == ("1 validation error detected: Value '***' at 'filterValues.GENRE' failed to satisfy "
                       "constraint: Member must have length less than or equal to 1000")
    too_many = {f"K{i}": '"v"' for i in range(26)}
    assert "at 'filterValues' failed to satisfy constraint: Member must have length less than or equal to 25" \
        in refusal("GetRecommendations", {**base, "filterValues": too_many})
    assert "Member must be a string" in refusal("GetRecommendations", {**base, "context": {"DEVICE": 3}})
    assert "Member must be a map" in refusal("GetRecommendations", {**base, "context": ["DEVICE"]})
    validate_input(op("GetRecommendations"), {**base, "context": {"DEVICE": "phone"}, "filterValues": {"G": '"a"'}})


def test_map_of_lists_paths() -> None:
    params = {"campaignArn": CAMPAIGN, "userId": "u", "metadataColumns": {"ITEMS": ["GENRES", 7]}}
    assert "at 'metadataColumns.ITEMS.2.member' failed to satisfy constraint: Member must be a string" in refusal(
        "GetRecommendations", params)


def test_java_digit_class_is_ascii_only() -> None:
    base = {"campaignArn": CAMPAIGN, "userId": "u"}
    assert "Map keys must satisfy constraint" in refusal("GetRecommendations", {**base, "context": {"K٣": "v"}})
    validate_input(op("GetRecommendations"), {**base, "context": {"K3": "v"}})


def test_tags_pattern_allows_unicode_letters_and_redacts_tag_values() -> None:
    tags = [{"tagKey": "Équipe", "tagValue": "数据 科学 2026"}, {"tagKey": "cost-center", "tagValue": ""}]
    validate_input(op("CreateDatasetGroup"), {"name": "g", "tags": tags})
    message = refusal("TagResource", {"resourceArn": ARN, "tags": [{"tagKey": "team", "tagValue": "a#secret"}]})
    assert message == (
        "1 validation error detected: Value '***' at 'tags.1.member.tagValue' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$")
    assert "secret" not in message


def test_sensitive_filter_expression_is_never_echoed() -> None:
    expression = 'EXCLUDE ItemID WHERE Items.GENRE IN ("top secret")' + " " * 2500
    message = refusal("CreateFilter", {"name": "f", "datasetGroupArn": ARN, "filterExpression": expression})
    assert "Value '***' at 'filterExpression'" in message and "top secret" not in message
    assert "less than or equal to 2500" in message


@pytest.mark.parametrize(
    ("operation", "params", "fragment"),
    [
        ("CreateDatasetGroup", {"name": 5}, "Value '5' at 'name' failed to satisfy constraint: Member must be a string"),
        ("ListDatasets", {"maxResults": "5"}, "Member must be an integer"),
        ("ListDatasets", {"maxResults": True}, "Member must be an integer"),
        ("ListDatasets", {"maxResults": 2.5}, "Member must be an integer"),
        ("CreateSolution", {"name": "s", "datasetGroupArn": ARN, "performHPO": "true"}, "Member must be a boolean"),
        ("CreateDatasetImportJob", {"jobName": "j", "datasetArn": ARN, "dataSource": "s3://b/x"},
         "Value 's3://b/x' at 'dataSource' failed to satisfy constraint: Member must be a structure"),
        ("PutEvents", {"trackingId": "t", "sessionId": "s", "eventList": {"eventType": "x"}},
         "Member must be a list"),
        ("PutEvents", {"trackingId": "t", "sessionId": "s", "eventList": [None]}, "Member must not be null"),
        ("CreateSolution", {"name": "s", "datasetGroupArn": ARN, "solutionConfig": {"eventsConfig": {
            "eventParametersList": [{"weight": "heavy"}]}}}, "Member must be a number"),
    ],
)
def test_wrong_json_types(operation: str, params: dict[str, Any], fragment: str) -> None:
    assert fragment in refusal(operation, params)


def test_integral_floats_become_ints() -> None:
    cleaned = validate_input(op("ListDatasetGroups"), {"maxResults": 25.0})
    assert cleaned == {"maxResults": 25} and isinstance(cleaned["maxResults"], int)


def test_non_finite_numbers_are_refused() -> None:
    params = {"name": "s", "datasetGroupArn": ARN, "solutionConfig": {"eventsConfig": {
        "eventParametersList": [{"weight": float("nan")}]}}}
    assert "finite" in refusal("CreateSolution", params)


def test_unknown_members_and_nulls_are_dropped() -> None:
    cleaned = validate_input(op("CreateDatasetGroup"), {"name": "g", "Name": "other", "extra": [1], "domain": None})
    assert cleaned == {"name": "g"}


def test_body_must_be_an_object() -> None:
    bodies: list[Any] = [[], "x", None, 3]
    for body in bodies:
        with pytest.raises(InvalidInputException, match="must be a JSON object"):
            validate_input(op("ListDatasetGroups"), body)


def test_valid_event_batch_is_returned_clean() -> None:
    params = {"trackingId": "t", "sessionId": "s", "userId": "u", "eventList": [
        event(eventId="e1", itemId="i1", eventValue=4.5, impression=["i1", "i2"], recommendationId="r",
              metricAttribution={"eventAttributionSource": "email"}, unknown="dropped")]}
    cleaned = validate_input(op("PutEvents"), params)
    assert cleaned["eventList"][0] == {"eventType": "click", "sentAt": 1764325800.0, "eventId": "e1", "itemId": "i1",
                                       "eventValue": 4.5, "impression": ["i1", "i2"], "recommendationId": "r",
                                       "metricAttribution": {"eventAttributionSource": "email"}}
    assert "unknown" in params["eventList"][0]  # the input itself is not modified
