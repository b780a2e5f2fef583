"""Mask semantics: hand-checked cases and a fixed suite compared with the literal evaluator."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.errors import InvalidInputException
from tastemaker.filters import (
    FilterCatalog,
    FilterRequest,
    check_filter,
    compile_filter,
    parse_filter,
    parse_filter_values,
)
from tests.filters.filter_reference import (
    SCHEMAS,
    Reference,
    catalog_of,
    history_arrays,
    make_catalogue,
    make_history,
)

W = "INCLUDE ItemID WHERE "


def allowed(text: str, catalog: FilterCatalog, **request) -> list[str]:
    compiled = compile_filter(check_filter(parse_filter(text), SCHEMAS), catalog)
    mask = compiled.item_mask(FilterRequest(**request))
    return [str(x) for x in catalog.items.ids[mask]]


@pytest.fixture
def tiny() -> FilterCatalog:
    items = {
        "GENRES": ["comedy|drama", "Comedy", None, "", "horror|comedy", "drama"],
        "COLOR": ["red", "blue", "red", None, "green", "red"],
        "PRICE": [1.0, None, 3.0, 4.0, 5.0, float("nan")],
        "YEAR": [1990, 1991, 1992, 1993, 1994, 1995],
        "CODE": ["a|b", "a", None, "b", "a|b", "c"],
    }
    users = {"AGE": [15, 40, None], "TIER": ["gold|silver", "free", None]}
    return FilterCatalog(
        np.array(["i0", "i1", "i2", "i3", "i4", "i5"]), items, user_ids=np.array(["u0", "u1", "u2"]), users=users,
        action_ids=np.array(["a0", "a1", "a2"]), actions={"VALUE": [1, 5, 9], "CATEGORY": ["promo", "care", None]},
    )


def test_in_matches_split_values_case_sensitively(tiny: FilterCatalog) -> None:
    assert allowed(f'{W}Items.GENRES IN ("comedy")', tiny) == ["i0", "i4"]
    assert allowed(f'{W}Items.GENRES IN ("Comedy", "drama")', tiny) == ["i0", "i1", "i5"]
    assert allowed(f'{W}Items.GENRES = "horror"', tiny) == ["i4"]


def test_plain_string_fields_are_not_split(tiny: FilterCatalog) -> None:
    assert allowed(f'{W}Items.CODE IN ("a")', tiny) == ["i1"]
    assert allowed(f'{W}Items.CODE IN ("a|b")', tiny) == ["i0", "i4"]


def test_null_rows_never_match_positive_conditions_but_match_negative_ones(tiny: FilterCatalog) -> None:
    assert allowed(f'{W}Items.GENRES NOT IN ("comedy")', tiny) == ["i1", "i2", "i3", "i5"]
    assert allowed(f'{W}Items.COLOR != "red"', tiny) == ["i1", "i3", "i4"]
    assert allowed(f"{W}Items.PRICE >= 0", tiny) == ["i0", "i2", "i3", "i4"]
    assert allowed(f"{W}Items.PRICE != 3", tiny) == ["i0", "i1", "i3", "i4", "i5"]
    assert allowed(f"{W}Items.PRICE NOT IN (1, 5)", tiny) == ["i1", "i2", "i3", "i5"]


def test_numeric_comparisons_and_numeric_in(tiny: FilterCatalog) -> None:
    assert allowed(f"{W}Items.YEAR > 1993", tiny) == ["i4", "i5"]
    assert allowed(f"{W}Items.YEAR <= 1991", tiny) == ["i0", "i1"]
    assert allowed(f"{W}Items.YEAR < 1991.5 OR Items.YEAR = 1995", tiny) == ["i0", "i1", "i5"]
    assert allowed(f'{W}Items.PRICE IN (3, "4.0")', tiny) == ["i2", "i3"]


def test_parameters_carry_values_per_request(tiny: FilterCatalog) -> None:
    text = f"{W}Items.GENRES IN ($G) AND Items.PRICE < $MAX"
    values = parse_filter_values({"G": '"comedy","drama"', "MAX": "5"})
    assert allowed(text, tiny, values=values) == ["i0"]
    values = parse_filter_values({"G": '"drama","horror"', "MAX": '"10"'})
    assert allowed(text, tiny, values=values) == ["i0", "i4"]


def test_several_values_for_a_comparison_mean_any_of_them(tiny: FilterCatalog) -> None:
    values = parse_filter_values({"Y": "1991, 1993"})
    assert allowed(f"{W}Items.YEAR < $Y", tiny, values=values) == ["i0", "i1", "i2"]
    assert allowed(f"{W}Items.YEAR = $Y", tiny, values=values) == ["i1", "i3"]


def test_include_requires_every_parameter_and_exclude_is_disabled_without_one(tiny: FilterCatalog) -> None:
    text = f"{W}Items.GENRES IN ($G) | EXCLUDE ItemID WHERE Items.COLOR IN ($C)"
    with pytest.raises(InvalidInputException, match=r"filterValues is missing \$G"):
        allowed(text, tiny, values={"C": ["red"]})
    assert allowed(text, tiny, values={"G": ["comedy"]}) == ["i0", "i4"]
    assert allowed(text, tiny, values={"G": ["comedy"], "C": ["red"]}) == ["i4"]
    assert allowed("EXCLUDE ItemID WHERE Items.COLOR IN ($C)", tiny) == ["i0", "i1", "i2", "i3", "i4", "i5"]


def test_non_numeric_value_for_a_numeric_field_names_the_parameter(tiny: FilterCatalog) -> None:
    with pytest.raises(InvalidInputException, match=r"Invalid filterValues\['MAX'\].*'cheap' is not a number"):
        allowed(f"{W}Items.PRICE < $MAX", tiny, values={"MAX": ["cheap"]})


def test_chaining_rules(tiny: FilterCatalog) -> None:
    comedy = 'Items.GENRES IN ("comedy")'
    red = 'Items.COLOR IN ("red")'
    assert allowed(f"{W}{comedy} | {W}{red}", tiny) == ["i0", "i2", "i4", "i5"]
    assert allowed(f"EXCLUDE ItemID WHERE {comedy} | EXCLUDE ItemID WHERE {red}", tiny) == ["i1", "i3"]
    assert allowed(f"EXCLUDE ItemID WHERE {red} | {W}{comedy}", tiny) == ["i4"]
    assert allowed(f"{W}{comedy} | EXCLUDE ItemID WHERE {red}", tiny) == ["i4"]


def test_current_item_comparisons(tiny: FilterCatalog) -> None:
    text = f"{W}Items.GENRES IN CurrentItem.GENRES AND Items.PRICE < CurrentItem.PRICE"
    assert allowed(text, tiny, current_item=4) == ["i0"]
    assert allowed(f"{W}Items.GENRES IN CurrentItem.GENRES", tiny, current_item=0) == ["i0", "i4", "i5"]
    assert allowed(f"{W}Items.COLOR = CurrentItem.COLOR", tiny, current_item=2) == ["i0", "i2", "i5"]
    # no current item (or a null value) matches nothing positively and everything negatively
    assert allowed(f"{W}Items.GENRES IN CurrentItem.GENRES", tiny) == []
    assert allowed(f"{W}Items.YEAR > CurrentItem.PRICE", tiny, current_item=1) == []
    assert len(allowed(f"{W}Items.COLOR != CurrentItem.COLOR", tiny, current_item=3)) == 6


def test_if_current_user_gates_the_expression(tiny: FilterCatalog) -> None:
    text = f'{W}Items.GENRES IN ("comedy") IF CurrentUser.AGE < 18'
    assert allowed(text, tiny, user=tiny.user_row("u0")) == ["i0", "i4"]
    assert len(allowed(text, tiny, user=tiny.user_row("u1"))) == 6  # the only expression does not apply
    assert len(allowed(text, tiny, user=None)) == 6
    gated_exclude = 'EXCLUDE ItemID WHERE Items.COLOR IN ("red") IF CurrentUser.TIER IN ("silver")'
    assert allowed(gated_exclude, tiny, user=tiny.user_row("u0")) == ["i1", "i3", "i4"]
    assert len(allowed(gated_exclude, tiny, user=tiny.user_row("u1"))) == 6
    both = f'{W}Items.YEAR > 1990 IF CurrentUser.AGE >= $AGE AND CurrentUser.TIER NOT IN ("free")'
    assert allowed(both, tiny, user=tiny.user_row("u0"), values={"AGE": ["10"]}) == ["i1", "i2", "i3", "i4", "i5"]
    assert len(allowed(both, tiny, user=tiny.user_row("u0"), values={"AGE": ["16"]})) == 6


def test_interactions_exclude_and_event_types_ignore_case(tiny: FilterCatalog) -> None:
    history = history_arrays({"Watch": ([0, 2], [50, 40]), "click": ([3], [45])})
    assert allowed('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("WATCH")', tiny, history=history) == [
        "i1", "i3", "i4", "i5"]
    assert allowed('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")', tiny, history=history) == [
        "i1", "i4", "i5"]
    assert allowed('INCLUDE ItemID WHERE Interactions.EVENT_TYPE NOT IN ("watch")', tiny, history=history) == ["i3"]
    assert allowed('INCLUDE ItemID WHERE Interactions.EVENT_TYPE = $E', tiny, history=history,
                   values={"E": ["CLICK"]}) == ["i3"]


def test_time_window_extension(tiny: FilterCatalog) -> None:
    history = history_arrays({"watch": ([0, 2, 4], [300, 200, 100]), "click": ([5], [400])})
    text = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch") AND Interactions.TIMESTAMP > $SINCE'
    assert allowed(text, tiny, history=history, values={"SINCE": ["150"]}) == ["i1", "i3", "i4", "i5"]
    assert allowed(text, tiny, history=history, values={"SINCE": ["250"]}) == ["i1", "i2", "i3", "i4", "i5"]
    assert len(allowed(text, tiny, history=history)) == 6  # no SINCE: the EXCLUDE expression is disabled
    # the same item watched long ago and recently: one recent row is enough
    history = history_arrays({"watch": ([1, 1], [500, 10])})
    assert "i1" not in allowed(text, tiny, history=history, values={"SINCE": ["100"]})


def test_history_depth_at_compile_and_request_level(tiny: FilterCatalog) -> None:
    history = history_arrays({"watch": ([0, 1, 2, 3], [40, 30, 20, 10])})
    checked = check_filter(parse_filter('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")'), SCHEMAS)
    default = compile_filter(checked, tiny)
    assert default.item_mask(FilterRequest(history=history)).tolist() == [False] * 4 + [True] * 2
    shallow = compile_filter(checked, tiny, history_depth=2)
    assert shallow.item_mask(FilterRequest(history=history)).tolist() == [False, False, True, True, True, True]
    assert default.item_mask(FilterRequest(history=history, history_depth=1)).tolist() == [False] + [True] * 5


def test_history_indexes_outside_the_catalogue_are_ignored(tiny: FilterCatalog) -> None:
    history = history_arrays({"watch": ([-1, 99, 1], [3, 2, 1])})
    assert allowed('EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")', tiny, history=history) == [
        "i0", "i2", "i3", "i4", "i5"]


def test_user_and_action_targets(tiny: FilterCatalog) -> None:
    users = compile_filter(
        check_filter(parse_filter('INCLUDE UserID WHERE Users.TIER IN ($T) OR Users.AGE > 30'), SCHEMAS), tiny
    )
    assert users.user_mask(FilterRequest(values={"T": ["gold"]})).tolist() == [True, True, False]
    with pytest.raises(InvalidInputException, match="selects UserID values and cannot filter ItemID"):
        users.item_mask(FilterRequest(values={"T": ["gold"]}))
    actions = compile_filter(
        check_filter(parse_filter(
            'EXCLUDE ActionID WHERE Action_Interactions.EVENT_TYPE IN ("not_taken")'
            " | INCLUDE ActionID WHERE Actions.VALUE > $V"), SCHEMAS),
        tiny,
    )
    taken = history_arrays({"NOT_TAKEN": ([2], [7])})
    assert actions.action_mask(FilterRequest(values={"V": ["2"]}, action_history=taken)).tolist() == [
        False, True, False]


def test_masks_are_fresh_writable_arrays(tiny: FilterCatalog) -> None:
    checked = check_filter(parse_filter(f'{W}Items.COLOR IN ("red")'), SCHEMAS)
    compiled = compile_filter(checked, tiny)
    first = compiled.item_mask()
    first[:] = False
    assert compiled.item_mask().tolist() == [True, False, True, False, False, True]


def test_arrow_table_catalogue_matches_dict_catalogue() -> None:
    cat = make_catalogue(3)
    columns = {k: pa.array(v) for k, v in cat.items.items()}
    columns["GENRES"] = columns["GENRES"].dictionary_encode()
    columns["CODE"] = pa.chunked_array([columns["CODE"][:10], columns["CODE"][10:]])
    a = FilterCatalog(np.array(cat.item_ids), pa.table(columns))
    b = FilterCatalog(np.array(cat.item_ids), cat.items)
    text = f'{W}Items.GENRES IN ("comedy") OR Items.PRICE > 5 OR Items.CODE = "a|b"'
    assert allowed(text, a) == allowed(text, b)


def test_columns_missing_from_the_catalogue_are_null() -> None:
    catalog = FilterCatalog(np.array(["x", "y"]), {})
    assert allowed(f'{W}Items.GENRES IN ("a")', catalog) == []
    assert allowed(f'{W}Items.GENRES NOT IN ("a")', catalog) == ["x", "y"]
    assert allowed(f'{W}Items.ITEM_ID IN ("y")', catalog) == ["y"]


FIXED_SUITE = [
    f'{W}Items.GENRES IN ("comedy", "kids") AND Items.PRICE <= 10',
    f'{W}Items.GENRES IN ($S1) OR Items.COLOR = "red" AND Items.YEAR > 1994',
    f"{W}(Items.GENRES IN ($S1) OR Items.COLOR = $S2) AND Items.YEAR > $N1",
    f'EXCLUDE ItemID WHERE Items.GENRES NOT IN ("drama") | {W}Items.PRICE > 2',
    f"{W}Items.GENRES IN CurrentItem.GENRES AND Items.PRICE < CurrentItem.PRICE",
    f"{W}Items.COLOR != CurrentItem.COLOR OR Items.YEAR >= CurrentItem.YEAR",
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch", "click")',
    'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*") AND Interactions.TIMESTAMP > $T1',
    f'{W}Items.YEAR > 1991 | EXCLUDE ItemID WHERE Interactions.EVENT_TYPE = "PURCHASE" OR Interactions.TIMESTAMP < 20',
    f'{W}Items.GENRES IN ("drama") IF CurrentUser.AGE < 18 | {W}Items.GENRES IN ("comedy") IF CurrentUser.AGE >= 18',
    'EXCLUDE ItemID WHERE Items.GENRES IN ("horror") IF CurrentUser.TIER NOT IN ("gold")',
    f"{W}Items.CODE IN ($S2) | EXCLUDE ItemID WHERE Items.PRICE IN (0.5, 1) | EXCLUDE ItemID WHERE Items.YEAR = $N2",
    f"{W}Items.PRICE != $N1 AND Items.GENRES != $S1",
    f'{W}Items.GENRES = 1990 OR Items.YEAR IN ("1990", 1999)',
]


@pytest.mark.parametrize("text", FIXED_SUITE)
@pytest.mark.parametrize("seed", range(6))
def test_fixed_suite_matches_the_literal_evaluator(text: str, seed: int) -> None:
    cat = make_catalogue(seed)
    catalog = catalog_of(cat)
    history = make_history(seed, len(cat.item_ids))
    values = {"S1": ["comedy", "red"], "S2": ["a", "blue"], "N1": ["1993"], "T1": ["50"]}
    if seed % 2:
        values["N2"] = ["1995", "1996"]
    user = {"AGE": cat.users["AGE"][seed % 12], "TIER": cat.users["TIER"][seed % 12]}
    current = seed * 5 % len(cat.item_ids)
    tree = parse_filter(text)
    compiled = compile_filter(check_filter(tree, SCHEMAS), catalog, history_depth=4)
    got = compiled.item_mask(FilterRequest(values=values, history=history_arrays(history), user=user,
                                           current_item=current))
    expected = Reference(cat, values, history, user, current, depth=4).item_mask(tree)
    assert got.tolist() == expected
