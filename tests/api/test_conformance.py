"""The output-shape checker the conformance suite uses: it finds every kind of difference from the model."""

from __future__ import annotations

from tastemaker.api.conformance import error_problem, output_problems
from tastemaker.api.service_models import operation_by_name


def shape(operation: str):  # type: ignore[no-untyped-def]
    info = operation_by_name("personalize", operation)
    assert info is not None
    return info


def test_an_exact_answer_has_no_problems() -> None:
    answer = {"datasetGroup": {"name": "g", "datasetGroupArn": "arn:aws:personalize:us-east-1:1:dataset-group/g",
                               "status": "ACTIVE", "creationDateTime": 1.5, "lastUpdatedDateTime": 2,
                               "roleArn": "arn:aws:iam::000000000000:role/P"}}
    assert output_problems(shape("DescribeDatasetGroup").output_shape, answer) == []


def test_each_difference_is_named() -> None:
    answer = {"datasetGroup": {"name": 5, "status": "ACTIVE", "creationDateTime": "yesterday", "extra": 1,
                               "datasetGroupArn": "not-an-arn", "domain": "GAMES"}}
    problems = "\n".join(output_problems(shape("DescribeDatasetGroup").output_shape, answer))
    for fragment in ("name: expected a string", "creationDateTime: expected epoch seconds", "extra: not a member",
                     "datasetGroupArn: 'not-an-arn' does not match", "domain: 'GAMES' is not one of"):
        assert fragment in problems
    listing = {"datasetGroups": [{}] * 101, "nextToken": "t"}
    assert any("above the maximum 100" in p for p in output_problems(shape("ListDatasetGroups").output_shape, listing))


def test_errors_must_be_declared_by_the_operation() -> None:
    assert error_problem(shape("DescribeDatasetGroup").model, "ResourceNotFoundException") is None
    assert error_problem(shape("ListDatasetGroups").model, "InvalidInputException") is not None
