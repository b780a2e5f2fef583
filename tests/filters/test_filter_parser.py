"""Table-driven parser tests: each valid text with its tree, each invalid text with its error position."""

from __future__ import annotations

import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.filters import parse_filter, render
from tests.filters.filter_reference import sexpr

W = "INCLUDE ItemID WHERE "
A = 'Items.A IN ("a")'
B = 'Items.B IN ("b")'
C = 'Items.C IN ("c")'
D = 'Items.D IN ("d")'
SA = 'Items.A IN ["a"]'
SB = 'Items.B IN ["b"]'
SC = 'Items.C IN ["c"]'
SD = 'Items.D IN ["d"]'

VALID = [
    # Personalize's documented examples
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("click", "stream")',
     'EXCLUDE ItemID: Interactions.EVENT_TYPE IN ["click", "stream"]'),
    ("INCLUDE ItemID WHERE Items.PRICE <= $PRICE", "INCLUDE ItemID: Items.PRICE <= $PRICE"),
    ("EXCLUDE ItemID WHERE Items.GENRE IN ($GENRE) IF CurrentUser.AGE = $AGE",
     "EXCLUDE ItemID: Items.GENRE IN $GENRE IF CurrentUser.AGE = $AGE"),
    ("INCLUDE ItemID WHERE Items.PRICE < CurrentItem.PRICE AND Items.GENRE IN CurrentItem.GENRE",
     "INCLUDE ItemID: and(Items.PRICE < CurrentItem.PRICE; Items.GENRE IN CurrentItem.GENRE)"),
    ('EXCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ("NOT_TAKEN")',
     'EXCLUDE ActionID: Action_Interactions.EVENT_TYPE IN ["NOT_TAKEN"]'),
    ("INCLUDE ActionID WHERE Actions.VALUE > ($VALUE)", "INCLUDE ActionID: Actions.VALUE > $VALUE"),
    ("INCLUDE UserID WHERE Users.MEMBERSHIP_STATUS IN ($MEMBERSHIP)",
     "INCLUDE UserID: Users.MEMBERSHIP_STATUS IN $MEMBERSHIP"),
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")', 'EXCLUDE ItemID: Interactions.EVENT_TYPE IN ["*"]'),
    # keyword case
    ('include itemid where items.A in ("a")', f"INCLUDE ItemID: {SA}"),
    ('Include ItemId Where ITEMS.A In ("a")', f"INCLUDE ItemID: {SA}"),
    ('exclude USERID where USERS.TIER not in ("x")', 'EXCLUDE UserID: Users.TIER NOT IN ["x"]'),
    ('INCLUDE actionid WHERE action.VALUE = 3', "INCLUDE ActionID: Actions.VALUE = [3]"),
    ('INCLUDE ActionID WHERE ACTION_INTERACTIONS.EVENT_TYPE = "taken"',
     'INCLUDE ActionID: Action_Interactions.EVENT_TYPE = ["taken"]'),
    ('INCLUDE ItemID WHERE Items.A IN currentitem.B', "INCLUDE ItemID: Items.A IN CurrentItem.B"),
    (f'{W}{A} if currentuser.AGE > 18 and CURRENTUSER.TIER = "x"',
     f'INCLUDE ItemID: {SA} IF CurrentUser.AGE > [18]; CurrentUser.TIER = ["x"]'),
    (f"{W}{A} or {B}", f"INCLUDE ItemID: or({SA}; {SB})"),
    # precedence: AND binds tighter than OR; parentheses group; same-kind nesting flattens
    (f"{W}{A} OR {B} AND {C}", f"INCLUDE ItemID: or({SA}; and({SB}; {SC}))"),
    (f"{W}{A} AND {B} OR {C}", f"INCLUDE ItemID: or(and({SA}; {SB}); {SC})"),
    (f"{W}({A} OR {B}) AND {C}", f"INCLUDE ItemID: and(or({SA}; {SB}); {SC})"),
    (f"{W}{A} AND ({B} OR {C})", f"INCLUDE ItemID: and({SA}; or({SB}; {SC}))"),
    (f"{W}{A} AND ({B} AND {C})", f"INCLUDE ItemID: and({SA}; {SB}; {SC})"),
    (f"{W}({A} OR {B}) OR {C}", f"INCLUDE ItemID: or({SA}; {SB}; {SC})"),
    (f"{W}{A} OR {B} OR {C}", f"INCLUDE ItemID: or({SA}; {SB}; {SC})"),
    (f"{W}{A} AND {B} AND {C}", f"INCLUDE ItemID: and({SA}; {SB}; {SC})"),
    (f"{W}(({A}))", f"INCLUDE ItemID: {SA}"),
    (f"{W}({A}) AND ({B})", f"INCLUDE ItemID: and({SA}; {SB})"),
    (f"{W}({A} AND {B}) OR ({C} AND {D})", f"INCLUDE ItemID: or(and({SA}; {SB}); and({SC}; {SD}))"),
    (f"{W}{A} AND ({B} OR ({C} AND {D}))", f"INCLUDE ItemID: and({SA}; or({SB}; and({SC}; {SD})))"),
    (f"{W}{A} OR {B} AND {C} OR {D}", f"INCLUDE ItemID: or({SA}; and({SB}; {SC}); {SD})"),
    (f"{W}{A} AND {B} OR {C} AND {D}", f"INCLUDE ItemID: or(and({SA}; {SB}); and({SC}; {SD}))"),
    (f"{W}({A} OR ({B} OR {C}))",
     f"INCLUDE ItemID: or({SA}; {SB}; {SC})"),
    # operators
    (f'{W}Items.A NOT IN ("a", "b")', 'INCLUDE ItemID: Items.A NOT IN ["a", "b"]'),
    (f'{W}Items.A   not    in("a")', 'INCLUDE ItemID: Items.A NOT IN ["a"]'),
    (f'{W}Items.A = "comedy"', 'INCLUDE ItemID: Items.A = ["comedy"]'),
    (f'{W}Items.A != "comedy"', 'INCLUDE ItemID: Items.A != ["comedy"]'),
    (f"{W}Items.A != $P", "INCLUDE ItemID: Items.A != $P"),
    (f"{W}Items.A = ($P)", "INCLUDE ItemID: Items.A = $P"),
    (f"{W}Items.P > 10", "INCLUDE ItemID: Items.P > [10]"),
    (f"{W}Items.P >= 10", "INCLUDE ItemID: Items.P >= [10]"),
    (f"{W}Items.P < 10", "INCLUDE ItemID: Items.P < [10]"),
    (f"{W}Items.P <= 10", "INCLUDE ItemID: Items.P <= [10]"),
    (f"{W}Items.P>=10", "INCLUDE ItemID: Items.P >= [10]"),
    (f"{W}Items.P!=10", "INCLUDE ItemID: Items.P != [10]"),
    (f"{W}Items.P > (10)", "INCLUDE ItemID: Items.P > [10]"),
    (f'{W}Items.P > ("10")', 'INCLUDE ItemID: Items.P > ["10"]'),
    # numbers keep their spelling
    (f"{W}Items.P > -5", "INCLUDE ItemID: Items.P > [-5]"),
    (f"{W}Items.P > +3", "INCLUDE ItemID: Items.P > [+3]"),
    (f"{W}Items.P > 2.5", "INCLUDE ItemID: Items.P > [2.5]"),
    (f"{W}Items.P > .5", "INCLUDE ItemID: Items.P > [.5]"),
    (f"{W}Items.P > 1.", "INCLUDE ItemID: Items.P > [1.]"),
    (f"{W}Items.P >= 1e3", "INCLUDE ItemID: Items.P >= [1e3]"),
    (f"{W}Items.P >= 2E-3", "INCLUDE ItemID: Items.P >= [2E-3]"),
    (f"{W}Items.P IN (1, 2.5, -3)", "INCLUDE ItemID: Items.P IN [1, 2.5, -3]"),
    (f"{W}Items.P NOT IN (1990)", "INCLUDE ItemID: Items.P NOT IN [1990]"),
    # strings
    (f'{W}Items.A IN ("a\\"b")', 'INCLUDE ItemID: Items.A IN ["a\\"b"]'),
    (f'{W}Items.A IN ("back\\\\slash")', 'INCLUDE ItemID: Items.A IN ["back\\\\slash"]'),
    (f'{W}Items.A IN ("rock | roll", "a, b", "é")', 'INCLUDE ItemID: Items.A IN ["rock | roll", "a, b", "é"]'),
    (f'{W}Items.A IN ("")', 'INCLUDE ItemID: Items.A IN [""]'),
    (f'{W}Items.A IN ("INCLUDE ItemID WHERE")', 'INCLUDE ItemID: Items.A IN ["INCLUDE ItemID WHERE"]'),
    (f'{W}Items.A IN ("a", 1, 2.5)', 'INCLUDE ItemID: Items.A IN ["a", 1, 2.5]'),
    (f"{W}Items.A IN (*)", 'INCLUDE ItemID: Items.A IN ["*"]'),
    (f'{W}Items.A IN ("a"  ,   "b"  )', 'INCLUDE ItemID: Items.A IN ["a", "b"]'),
    (f'{W}Items.A IN("a","b")', 'INCLUDE ItemID: Items.A IN ["a", "b"]'),
    # placeholders and CurrentItem
    (f"{W}Items.A IN $GENRE", "INCLUDE ItemID: Items.A IN $GENRE"),
    (f"{W}Items.A IN ( $GENRE )", "INCLUDE ItemID: Items.A IN $GENRE"),
    (f"{W}Items.A IN ($g_1)", "INCLUDE ItemID: Items.A IN $g_1"),
    (f"{W}Items.A IN ($1)", "INCLUDE ItemID: Items.A IN $1"),
    (f"{W}Items.A IN (CurrentItem.B)", "INCLUDE ItemID: Items.A IN CurrentItem.B"),
    (f"{W}Items.A = CurrentItem.A", "INCLUDE ItemID: Items.A = CurrentItem.A"),
    (f"{W}Items.P >= (CurrentItem.P)", "INCLUDE ItemID: Items.P >= CurrentItem.P"),
    (f"{W}Items.ITEM_ID IN ($IDS)", "INCLUDE ItemID: Items.ITEM_ID IN $IDS"),
    (f'{W}Items.F_1 IN ("x")', 'INCLUDE ItemID: Items.F_1 IN ["x"]'),
    # IF clause
    (f"{W}{A} IF CurrentUser.AGE >= ($AGE)", f"INCLUDE ItemID: {SA} IF CurrentUser.AGE >= $AGE"),
    (f'{W}{A} IF CurrentUser.TIER NOT IN ("free")', f'INCLUDE ItemID: {SA} IF CurrentUser.TIER NOT IN ["free"]'),
    (f'{W}{A} AND {B} IF CurrentUser.C IN ("z")', f'INCLUDE ItemID: and({SA}; {SB}) IF CurrentUser.C IN ["z"]'),
    (f"{W}{A} OR {B} IF CurrentUser.X = 1 AND CurrentUser.Y = 2 AND CurrentUser.Z = 3",
     f"INCLUDE ItemID: or({SA}; {SB}) IF CurrentUser.X = [1]; CurrentUser.Y = [2]; CurrentUser.Z = [3]"),
    # chains and layout
    (f'{W}{A} | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")',
     f'INCLUDE ItemID: {SA} | EXCLUDE ItemID: Interactions.EVENT_TYPE IN ["watch"]'),
    (f'{W}{A}|EXCLUDE ItemID WHERE {B}', f"INCLUDE ItemID: {SA} | EXCLUDE ItemID: {SB}"),
    (f"{W}{A} IF CurrentUser.X = 1 | {W}{B}", f"INCLUDE ItemID: {SA} IF CurrentUser.X = [1] | INCLUDE ItemID: {SB}"),
    (f"{W}{A} | EXCLUDE ItemID WHERE {B} | {W}{C} | EXCLUDE ItemID WHERE {D}",
     f"INCLUDE ItemID: {SA} | EXCLUDE ItemID: {SB} | INCLUDE ItemID: {SC} | EXCLUDE ItemID: {SD}"),
    (f"\n\tINCLUDE\nItemID\tWHERE\r\n{A}\n", f"INCLUDE ItemID: {SA}"),
    (f"   {W}{A}   ", f"INCLUDE ItemID: {SA}"),
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch") AND Interactions.TIMESTAMP > $SINCE',
     'EXCLUDE ItemID: and(Interactions.EVENT_TYPE IN ["watch"]; Interactions.TIMESTAMP > $SINCE)'),
    ("EXCLUDE ItemID WHERE Interactions.TIMESTAMP >= 1700000000",
     "EXCLUDE ItemID: Interactions.TIMESTAMP >= [1700000000]"),
    ('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE = "Click"', 'EXCLUDE ItemID: Interactions.EVENT_TYPE = ["Click"]'),
    ("EXCLUDE UserID WHERE Users.AGE < 18 OR Users.AGE > 65",
     "EXCLUDE UserID: or(Users.AGE < [18]; Users.AGE > [65])"),
]

# (text, where the error is, fragment of the message). "Where" is a substring whose first occurrence
# (or, prefixed with LAST, last occurrence) starts at the error; None means the end of the text.
LAST = "last:"
INVALID = [
    ("", None, "expected INCLUDE or EXCLUDE, found end of expression"),
    ("   ", None, "expected INCLUDE or EXCLUDE, found end of expression"),
    (f"INCLUDES ItemID WHERE {A}", "INCLUDES", "expected INCLUDE or EXCLUDE, found 'INCLUDES'"),
    (f"INCLUDE Item WHERE {A}", "Item ", "expected ItemID, UserID or ActionID after 'INCLUDE', found 'Item'"),
    (f"INCLUDE ItemID {A}", "Items", "expected WHERE after 'ItemID', found 'Items'"),
    ("INCLUDE ItemID WHERE", None, "expected a dataset name (Interactions, Items, Users, Actions or Action_"),
    ('INCLUDE ItemID WHERE Genres.X IN ("a")', "Genres", "expected a dataset name"),
    ('INCLUDE ItemID WHERE Items GENRE IN ("a")', "GENRE", "expected '.' after 'Items', found 'GENRE'"),
    ('INCLUDE ItemID WHERE Items.("a")', "(", "expected a field name after '.', found '('"),
    ('INCLUDE ItemID WHERE Items.IN ("a")', "(", "expected IN, NOT IN, =, !=, <, <=, > or >= after 'Items.IN'"),
    ('INCLUDE ItemID WHERE Items.GENRES INN ("a")', "INN",
     "expected IN, NOT IN, =, !=, <, <=, > or >= after 'Items.GENRES', found 'INN'"),
    ('INCLUDE ItemID WHERE Items.GENRES NOT ("a")', "(", "expected IN after 'NOT', found '('"),
    ('INCLUDE ItemID WHERE Items.GENRES == "a"', '= "', "after '=', found '='"),
    ("INCLUDE ItemID WHERE Items.P <> 1", "> 1", "after '<', found '>'"),
    ('INCLUDE ItemID WHERE Items.GENRES IN "a"', '"a"', "expected '(', a $PARAMETER or CurrentItem.FIELD after 'IN'"),
    ('INCLUDE ItemID WHERE Items.GENRES NOT IN "a"', '"a"', "after 'NOT IN'"),
    ("INCLUDE ItemID WHERE Items.GENRES IN ()", ")", "expected a value"),
    ('INCLUDE ItemID WHERE Items.GENRES IN ("a"', None, "expected ',' or ')' after '\"a\"', found end of expression"),
    ('INCLUDE ItemID WHERE Items.GENRES IN ("a",)', ")", "expected a value"),
    ('INCLUDE ItemID WHERE Items.GENRES IN ("a" "b")', '"b"', "expected ',' or ')'"),
    ('INCLUDE ItemID WHERE Items.GENRES IN ("a)', '"a)', "unterminated string"),
    ("INCLUDE ItemID WHERE Items.GENRES IN ($)", "$", "expected a parameter name after '$'"),
    ("INCLUDE ItemID WHERE Items.GENRES IN ($-)", "$", "expected a parameter name after '$'"),
    ("INCLUDE ItemID WHERE Items.GENRES IN ($A, $B)", ",", "a placeholder must be the only value"),
    ('INCLUDE ItemID WHERE Items.GENRES IN ("a", $B)', "$B", "placeholders cannot be mixed with values"),
    ("INCLUDE ItemID WHERE Items.P > (1, 2)", ",", "> compares with a single value"),
    ('INCLUDE ItemID WHERE Items.P = ("a", "b")', ",", "= compares with a single value"),
    ("INCLUDE ItemID WHERE Items.P >", None, "expected a value (a number"),
    ("INCLUDE ItemID WHERE Items.P > Items.Q", "Items.Q", "expected a value (a number"),
    ("INCLUDE ItemID WHERE Items.P > ()", ")", "expected a value"),
    ("INCLUDE ItemID WHERE Items.P > ($A", None, "expected ')'"),
    ('INCLUDE ItemID WHERE Items.GENRES IN (CurrentItem.GENRES, "a")', ",", "CurrentItem.FIELD must be the only"),
    ("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem", None, "expected '.' after 'CurrentItem'"),
    ("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.", None, "expected a field name after '.'"),
    ("INCLUDE ItemID WHERE Items.GENRES IN CurrentItem.1", ".1", "expected '.' after 'CurrentItem', found '.1'"),
    (f"{W}{A} AND", None, "expected a dataset name"),
    (f"{W}{A} OR OR {B}", "OR Items", "expected a dataset name"),
    (f"{W}{A} {B}", "Items.B", "expected AND, OR, IF, | or end of expression"),
    (f"{W}{A} |", None, "expected INCLUDE or EXCLUDE after '|', found end of expression"),
    (f"{W}{A} || EXCLUDE ItemID WHERE {B}", "| EXCLUDE", "expected INCLUDE or EXCLUDE after '|', found '|'"),
    (f"| {W}{A}", "|", "expected INCLUDE or EXCLUDE, found '|'"),
    (f"{W}{A} IF", None, "expected CurrentUser.FIELD after 'IF'"),
    (f"{W}{A} IF Users.AGE > 1", "Users", "expected CurrentUser.FIELD after 'IF', found 'Users'"),
    (f"{W}{A} IF CurrentUser.AGE > 1 OR CurrentUser.B = 2", "OR", "only AND can join the conditions of an IF"),
    (f"{W}{A} IF CurrentUser.AGE > 1 IF CurrentUser.B = 2", "IF CurrentUser.B", "expected AND, | or end"),
    (f"{W}{A} IF CurrentUser.AGE > 1 AND", None, "expected CurrentUser.FIELD after 'AND'"),
    (f"{W}{A} IF CurrentUser AGE > 1", "AGE", "expected '.' after 'CurrentUser'"),
    (f"{W}{A} IF CurrentUser.AGE 1", "1", "expected IN, NOT IN, =, !=, <, <=, > or >= after 'CurrentUser.AGE'"),
    (f"{W}({A}", None, "expected AND, OR or ')'"),
    (f"{W}{A})", LAST + ")", "expected AND, OR, IF, | or end of expression after ')', found ')'"),
    (f"{W}CurrentUser.AGE > 1", "CurrentUser", "CurrentUser cannot start a WHERE condition"),
    (f"{W}CurrentItem.AGE > 1", "CurrentItem", "CurrentItem cannot start a WHERE condition"),
    (f"{W}{A} # comment", "#", "unexpected character '#'"),
    (f"{W}Items.A IN ('a')", "'", "unexpected character \"'\""),
    (f"{W}Items.A IN (a)", "a)", "expected a value"),
    (f"{W}Items.A IN [\"a\"]", "[", "unexpected character '['"),
    (f"{W}{A};", ";", "unexpected character ';'"),
    (f"{W}Items.P ≥ 1", "≥", "unexpected character '≥'"),
    (f"{W}{A} AND IF CurrentUser.X = 1", "IF", "expected a dataset name"),
    (f"{W}{A} EXCLUDE ItemID WHERE {B}", "EXCLUDE", "expected AND, OR, IF, | or end of expression"),
    (f"{W}Items.A NOT IN", None, "expected '(', a $PARAMETER or CurrentItem.FIELD after 'NOT IN'"),
    (f"{W}{A} | {W}", None, "expected a dataset name"),
    (f"{W}Items.A IN (1 2)", "2)", "expected ',' or ')' after '1', found '2'"),
    (f"{W}Items.P > 1.2.3", ".3", "expected AND, OR, IF, | or end of expression after '1.2', found '.3'"),
    (f"{W}Items.A = $A $B", "$B", "expected AND, OR, IF, | or end of expression after '$A', found '$B'"),
    (f"{W}{A} AND ({B} OR)", LAST + ")", "expected a dataset name"),
    (f"{W}{A} AND ()", LAST + ")", "or '(' after '(', found ')'"),
    ("INCLUDE", None, "expected ItemID, UserID or ActionID after 'INCLUDE', found end of expression"),
    ("EXCLUDE ItemID", None, "expected WHERE after 'ItemID'"),
    ("WHERE Items.A IN (\"a\")", "WHERE", "expected INCLUDE or EXCLUDE, found 'WHERE'"),
]


def _position(text: str, at: str | None) -> int:
    if at is None:
        return len(text) + 1
    index = text.rfind(at[len(LAST):]) if at.startswith(LAST) else text.find(at)
    assert index >= 0, f"marker {at!r} not in {text!r}"
    return index + 1


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_expression_parses_to_expected_tree(text: str, expected: str) -> None:
    tree = parse_filter(text)
    assert sexpr(tree) == expected
    assert parse_filter(render(tree)) == tree  # the canonical text parses back to the same tree


@pytest.mark.parametrize(("text", "at", "fragment"), INVALID)
def test_invalid_expression_names_position_and_expectation(text: str, at: str | None, fragment: str) -> None:
    with pytest.raises(InvalidInputException) as caught:
        parse_filter(text)
    message = caught.value.message
    assert message.startswith(f"Invalid filter expression at position {_position(text, at)}: "), message
    assert fragment in message


def test_deep_nesting_is_refused_not_crashing() -> None:
    text = W + "(" * 40 + A + ")" * 40
    with pytest.raises(InvalidInputException, match="nested more than 32 deep"):
        parse_filter(text)
    assert sexpr(parse_filter(W + "(" * 30 + A + ")" * 30)) == f"INCLUDE ItemID: {SA}"


def test_length_limit_is_2500_characters() -> None:
    base = f'{W}Items.A IN ("'
    fits = base + "x" * (2500 - len(base) - 2) + '")'
    assert len(fits) == 2500
    parse_filter(fits)
    with pytest.raises(InvalidInputException, match=r"at position 2501: a filter expression can have at most 2500"):
        parse_filter(fits + " ")


def test_the_documented_error_example() -> None:
    with pytest.raises(InvalidInputException) as caught:
        parse_filter('INCLUDE ItemID WHERE Items.GENRES INN ("comedy")')
    assert caught.value.message == (
        "Invalid filter expression at position 35: expected IN, NOT IN, =, !=, <, <=, > or >= "
        "after 'Items.GENRES', found 'INN'"
    )


def test_positions_are_kept_for_conditions_and_expressions() -> None:
    text = f"{W}{A} | EXCLUDE ItemID WHERE {B} IF CurrentUser.X = 1"
    tree = parse_filter(text)
    first, second = tree.expressions
    assert first.position == 1 and first.condition.position == len(W) + 1
    assert second.position == text.index("EXCLUDE") + 1
    assert second.user_conditions[0].position == text.index("CurrentUser") + 1


def test_non_string_input_is_invalid_input() -> None:
    with pytest.raises(InvalidInputException):
        parse_filter(None)  # type: ignore[arg-type]
