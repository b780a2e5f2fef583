"""filterValues parsing: the quoting rules and errors that name the parameter."""

from __future__ import annotations

import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.filters import parse_filter_values


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"comedy","drama"', ["comedy", "drama"]),
        ('"comedy"', ["comedy"]),
        ('  "a" ,   "b"  ', ["a", "b"]),
        ("10", ["10"]),
        ('"10"', ["10"]),
        ("1, 2.5, -3", ["1", "2.5", "-3"]),
        ('"a", 7', ["a", "7"]),
        ('"say \\"hi\\""', ['say "hi"']),
        ('"back\\\\slash"', ["back\\slash"]),
        ('"a,b"', ["a,b"]),
        ('"rock|roll"', ["rock|roll"]),
        ('""', [""]),
        ('"é ü"', ["é ü"]),
        ('"*"', ["*"]),
    ],
)
def test_values_split_into_items(raw: str, expected: list[str]) -> None:
    assert parse_filter_values({"P": raw}) == {"P": expected}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("comedy", "at position 1: expected a double-quoted value or a number, found 'c'"),
        ('"a" "b"', "at position 5: expected ',' or end of value, found '\"'"),
        ('"a",', "at position 5: expected a double-quoted value or a number, found end of value"),
        ('"a', "expected a closing '\"', found end of value"),
        ("", "at position 1: expected a double-quoted value or a number, found end of value"),
        ("10 20", "expected ',' or end of value, found '2'"),
        ("'a'", "found \"'\""),
    ],
)
def test_malformed_values_name_the_parameter(raw: str, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as caught:
        parse_filter_values({"GENRES": raw})
    assert caught.value.message.startswith("Invalid filterValues['GENRES']")
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"$G": '"a"'}, "Invalid filterValues key '$G'"),
        ({"A-B": '"a"'}, "Invalid filterValues key 'A-B'"),
        ({"K" * 51: '"a"'}, "at most 50 characters"),
        ({"G": '"' + "x" * 1000 + '"'}, "Invalid filterValues['G']: at most 1000 characters; got 1002"),
        ({f"P{i}": '"a"' for i in range(26)}, "at most 25 entries; got 26"),
        ({"G": 5}, "Invalid filterValues['G']: expected a string"),
    ],
)
def test_request_limits(raw: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as caught:
        parse_filter_values(raw)
    assert fragment in caught.value.message


def test_empty_or_missing_map_gives_no_values() -> None:
    assert parse_filter_values(None) == {}
    assert parse_filter_values({}) == {}
    assert parse_filter_values({f"P{i}": "1" for i in range(25)})["P24"] == ["1"]
