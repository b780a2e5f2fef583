"""Checker tests: schema rules, dataset mixing, targets, field limits and the usage report."""

from __future__ import annotations

import pytest

from tastemaker.data.schemas import Schema
from tastemaker.data.schemas import SchemaField as F
from tastemaker.errors import InvalidInputException
from tastemaker.filters import FilterLimits, check_filter, parse_filter
from tastemaker.filters.ast import Action, Target
from tests.filters.filter_reference import SCHEMAS

W = "INCLUDE ItemID WHERE "
G = 'Items.GENRES IN ("comedy")'
LAST = "last:"

# (text, where the error starts: first occurrence of this substring (LAST: last one), fragment)
INVALID = [
    (f'{W}Items.GENRE IN ("a")', "Items.GENRE", "the Items schema has no field GENRE"),
    (f'{W}Items.genres IN ("a")', "Items", "no field genres (field names are case-sensitive: did you mean GENRES?)"),
    (f'{W}Items.DESCRIPTION IN ("a")', "Items", "Items.DESCRIPTION is a textual field"),
    (f"{W}Items.IS_NEW = 1", "Items", "Items.IS_NEW is a boolean field"),
    ('EXCLUDE ItemID WHERE Interactions.DEVICE IN ("tv")', "Interactions", "only EVENT_TYPE (and the TIMESTAMP"),
    ("EXCLUDE ItemID WHERE Interactions.EVENT_VALUE > 1", "Interactions", "Interactions.EVENT_VALUE cannot be"),
    ("EXCLUDE ItemID WHERE Interactions.USER_ID IN ($U)", "Interactions", "cannot be filtered"),
    (f"{W}Items.GENRES NOT IN ($G)", "Items", "placeholders cannot be used with NOT IN ($G in Items.GENRES)"),
    (f"{W}Items.GENRES > 3", "Items", "> needs a numeric field, but Items.GENRES is string"),
    (f"{W}Items.COLOR <= $X", "Items", "<= needs a numeric field"),
    (f'{W}{G} AND Interactions.EVENT_TYPE IN ("x")', "Interactions",
     "cannot combine Items and Interactions conditions in one expression; chain separate expressions with |"),
    (f'{W}Interactions.EVENT_TYPE IN ("x") OR {G}', "Items", "cannot combine Interactions and Items"),
    (f"{W}{G} OR (Items.PRICE > 1 AND Users.AGE > 3)", "Users", "ItemID expressions can filter on Items or Interactions"),
    (f"{W}Users.AGE > 3", "Users", "ItemID expressions can filter on Items or Interactions, not Users"),
    (f"INCLUDE UserID WHERE {G}", "Items", "UserID expressions can filter on Users, not Items"),
    ('INCLUDE UserID WHERE Interactions.EVENT_TYPE IN ("a")', "Interactions", "UserID expressions can filter on Users"),
    (f"INCLUDE ActionID WHERE {G}", "Items", "ActionID expressions can filter on Actions or Action_Interactions"),
    ('INCLUDE ActionID WHERE Actions.VALUE > 1 AND Action_Interactions.EVENT_TYPE IN ("x")', "Action_",
     "cannot combine Actions and Action_Interactions"),
    (f"{W}Items.GENRES IN CurrentItem.NOPE", "Items", "the Items schema has no field NOPE"),
    (f"{W}Items.PRICE < CurrentItem.GENRES", "Items", "Items.PRICE (float) cannot be compared with CurrentItem.GENRES"),
    (f"{W}Items.GENRES IN CurrentItem.PRICE", "Items", "cannot be compared with CurrentItem.PRICE (float)"),
    (f"{W}Items.GENRES IN CurrentItem.DESCRIPTION", "Items", "Items.DESCRIPTION is a textual field"),
    (f"{W}Items.YEAR = CurrentItem.IS_NEW", "Items", "Items.IS_NEW is a boolean field"),
    ("EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN CurrentItem.GENRES", "Interactions",
     "CurrentItem can only be compared with Items fields in ItemID expressions"),
    (f"{W}{G} IF CurrentUser.TIER IN CurrentItem.GENRES", "CurrentUser", "CurrentItem can only be compared"),
    ("INCLUDE UserID WHERE Users.TIER IN CurrentItem.GENRES", "Users", "CurrentItem can only be compared"),
    (f'{W}Items.GENRES IN ("*")', "Items", '"*" (all event types) can only be used with EVENT_TYPE, not Items.GENRES'),
    (f'{W}Items.PRICE IN ("cheap")', "Items", "Items.PRICE is numeric; 'cheap' is not a number"),
    (f'{W}Items.PRICE >= ("x")', "Items", "'x' is not a number"),
    ("EXCLUDE ItemID WHERE Interactions.TIMESTAMP IN (1, 2)", "Interactions", "Interactions.TIMESTAMP takes =, !=, <"),
    ('EXCLUDE ItemID WHERE Interactions.TIMESTAMP > "abc"', "Interactions", "'abc' is not a number"),
    ('EXCLUDE ItemID WHERE Interactions.TIMESTAMP > "5"', "Interactions", "compares with a number of epoch seconds"),
    ("EXCLUDE ItemID WHERE Interactions.TIMESTAMP > CurrentItem.PRICE", "Interactions", "CurrentItem can only be"),
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE > "a"', "Interactions", "> needs a numeric field"),
    ("INCLUDE ActionID WHERE Actions.EXPIRATION_TIMESTAMP > 1", "Actions", "applied automatically"),
    ("INCLUDE ActionID WHERE Actions.REPEAT_FREQUENCY = 1", "Actions", "Actions.REPEAT_FREQUENCY is applied"),
    ('INCLUDE UserID WHERE Users.TIER IN ("gold") IF CurrentUser.AGE > 3', "CurrentUser",
     "an IF CurrentUser clause cannot be used with UserID"),
    (f'{W}{G} IF CurrentUser.BIO IN ("x")', "CurrentUser", "Users.BIO is a textual field"),
    (f"{W}{G} IF CurrentUser.NOPE = 1", "CurrentUser", "the Users schema has no field NOPE"),
    (f"{W}{G} IF CurrentUser.TIER NOT IN ($T)", "CurrentUser", "placeholders cannot be used with NOT IN"),
    (f"{W}{G} IF CurrentUser.TIER > 1", "CurrentUser", "> needs a numeric field, but CurrentUser.TIER is string"),
    (f"{W}{G} | EXCLUDE ActionID WHERE Actions.VALUE > 1", "EXCLUDE",
     "all expressions of a filter must use the same target; found ItemID and ActionID"),
    (f'{W}{G} | EXCLUDE ItemID WHERE Items.BOGUS = "x"', "Items.BOGUS", "no field BOGUS"),
]


def _position(text: str, at: str) -> int:
    return (text.rfind(at[len(LAST):]) if at.startswith(LAST) else text.find(at)) + 1


@pytest.mark.parametrize(("text", "at", "fragment"), INVALID)
def test_checker_rejects_with_position(text: str, at: str, fragment: str) -> None:
    tree = parse_filter(text)
    with pytest.raises(InvalidInputException) as caught:
        check_filter(tree, SCHEMAS)
    message = caught.value.message
    assert message.startswith(f"Invalid filter expression at position {_position(text, at)}: "), message
    assert fragment in message


@pytest.mark.parametrize(
    ("missing", "text", "fragment"),
    [
        ("Items", f"{W}{G}", "the dataset group has no Items dataset"),
        ("Interactions", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("x")', "has no Interactions dataset"),
        ("Users", f"{W}Items.PRICE > 1 IF CurrentUser.AGE > 3", "has no Users dataset (needed by IF CurrentUser)"),
        ("Users", 'INCLUDE UserID WHERE Users.TIER IN ("gold")', "has no Users dataset"),
        ("Actions", "INCLUDE ActionID WHERE Actions.VALUE > 1", "has no Actions dataset"),
        ("Action_Interactions", 'EXCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ("TAKEN")',
         "has no Action_Interactions dataset"),
    ],
)
def test_datasets_missing_from_the_group_are_named(missing: str, text: str, fragment: str) -> None:
    schemas = {k: v for k, v in SCHEMAS.items() if k != missing}
    with pytest.raises(InvalidInputException, match="position") as caught:
        check_filter(parse_filter(text), schemas)
    assert fragment in caught.value.message


def test_usage_report_of_a_chained_filter() -> None:
    text = (
        "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE) AND Items.PRICE < CurrentItem.PRICE "
        "IF CurrentUser.AGE >= $AGE"
        ' | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch") AND Interactions.TIMESTAMP > $SINCE'
        " | EXCLUDE ItemID WHERE Items.COLOR = $GENRE"
    )
    checked = check_filter(parse_filter(text), SCHEMAS)
    assert checked.target is Target.ITEM
    assert checked.fields == {
        "Items.GENRES", "Items.PRICE", "Users.AGE", "Interactions.EVENT_TYPE", "Interactions.TIMESTAMP", "Items.COLOR"
    }
    assert checked.parameters == {
        "GENRE": {Action.INCLUDE, Action.EXCLUDE},
        "AGE": {Action.INCLUDE},
        "SINCE": {Action.EXCLUDE},
    }
    assert checked.required_parameters == {"GENRE", "AGE"}
    assert checked.uses_current_item and checked.uses_current_user and checked.uses_interactions
    assert not checked.uses_action_interactions
    assert checked.field_types["Items.PRICE"].avro_type == "float"


def test_flags_stay_false_for_a_plain_item_filter() -> None:
    checked = check_filter(parse_filter(f"{W}{G}"), SCHEMAS)
    assert checked.fields == {"Items.GENRES"} and checked.parameters == {}
    assert not (checked.uses_current_item or checked.uses_current_user or checked.uses_interactions)


def test_action_and_user_targets() -> None:
    actions = check_filter(
        parse_filter('EXCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ("NOT_TAKEN")'
                     " | INCLUDE ActionID WHERE Actions.VALUE > ($VALUE)"),
        SCHEMAS,
    )
    assert actions.target is Target.ACTION and actions.uses_action_interactions
    assert actions.fields == {"Action_Interactions.EVENT_TYPE", "Actions.VALUE"}
    users = check_filter(parse_filter("INCLUDE UserID WHERE Users.TIER IN ($T) OR Users.AGE > 30"), SCHEMAS)
    assert users.target is Target.USER and users.parameters == {"T": {Action.INCLUDE}}


def test_ten_distinct_fields_pass_and_the_eleventh_is_named() -> None:
    names = [f"F{i}" for i in range(11)]
    schemas = {"Items": Schema("wide", tuple(F(n, "int") for n in names))}
    ten = W + " AND ".join(f"Items.{n} > 1" for n in names[:10]) + " OR Items.F0 < 0"
    assert len(check_filter(parse_filter(ten), schemas).fields) == 10  # repeats count once
    eleven = ten + " OR Items.F10 = 3"
    with pytest.raises(InvalidInputException) as caught:
        check_filter(parse_filter(eleven), schemas)
    assert caught.value.message.startswith(f"Invalid filter expression at position {eleven.index('Items.F10') + 1}")
    assert "at most 10 distinct dataset fields; Items.F10 would be field number 11" in caught.value.message


def test_field_limit_counts_current_item_and_current_user_fields() -> None:
    limits = FilterLimits(max_fields_per_filter=2)
    check_filter(parse_filter(f"{W}Items.GENRES IN CurrentItem.GENRES AND Items.PRICE > 1"), SCHEMAS, limits=limits)
    with pytest.raises(InvalidInputException, match="at most 2 distinct dataset fields"):
        check_filter(parse_filter(f"{W}Items.GENRES IN CurrentItem.COLOR AND Items.PRICE > 1"), SCHEMAS, limits=limits)
    with pytest.raises(InvalidInputException, match="Users.AGE would be field number 3"):
        check_filter(parse_filter(f"{W}{G} AND Items.PRICE > 1 IF CurrentUser.AGE > 1"), SCHEMAS, limits=limits)


def test_event_type_and_timestamp_need_not_be_declared_in_the_schema() -> None:
    schemas = {"Interactions": Schema("x", (F("USER_ID", "string"), F("ITEM_ID", "string")))}
    checked = check_filter(
        parse_filter('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*") AND Interactions.TIMESTAMP > 5'),
        schemas,
    )
    assert checked.fields == {"Interactions.EVENT_TYPE", "Interactions.TIMESTAMP"}


@pytest.mark.parametrize(
    "text",
    [
        f'{W}Items.PRICE IN ("10", 2.5)',  # numeric strings are numbers
        f"{W}Items.GENRES = 1990",  # numbers match the text of string values
        f"{W}Items.GENRES != $G",  # != accepts placeholders (only NOT IN refuses them)
        f"{W}Items.ITEM_ID IN ($IDS)",
        f"{W}Items.CODE IN CurrentItem.GENRES",
        f"{W}Items.YEAR >= CurrentItem.PRICE",
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("watch", "*")',
        "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE = $E OR Interactions.TIMESTAMP <= 10",
        f'{W}{G} IF CurrentUser.TIER != "free" AND CurrentUser.AGE < $AGE',
    ],
)
def test_accepted_expressions(text: str) -> None:
    check_filter(parse_filter(text), SCHEMAS)


def test_schema_keys_are_dataset_types_in_any_case() -> None:
    checked = check_filter(parse_filter(f"{W}{G}"), {"items": SCHEMAS["Items"]})
    assert checked.fields == {"Items.GENRES"}
    with pytest.raises(ValueError, match="unknown dataset type"):
        check_filter(parse_filter(f"{W}{G}"), {"Products": SCHEMAS["Items"]})
