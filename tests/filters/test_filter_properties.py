"""Property tests: the parser never crashes, trees round-trip, masks equal the literal evaluator."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tastemaker.errors import InvalidInputException
from tastemaker.filters import (
    FilterRequest,
    check_filter,
    compile_filter,
    parse_filter,
    parse_filter_values,
    render,
)
from tastemaker.filters.ast import Action, Placeholder, iter_conditions
from tests.filters.filter_reference import (
    SCHEMAS,
    Reference,
    catalog_of,
    history_arrays,
    make_catalogue,
    make_history,
)
from tests.filters.filter_strategies import filter_expression, filter_values

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text made of the language's own pieces finds deeper parser paths than random characters alone.
PIECES = st.sampled_from([
    "INCLUDE", "EXCLUDE", "ItemID", "UserID", "WHERE", "Items", "Interactions", "Users", ".", "GENRES",
    "EVENT_TYPE", "IN", "NOT", "=", "!=", "<", ">=", "(", ")", ",", "|", "AND", "OR", "IF", "CurrentUser",
    "CurrentItem", "$P", "$", '"a"', '"', "*", "10", "-", "1.5e", " ", "\\", "é",
])


@FAST
@given(st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=30).map(" ".join),
                 st.lists(PIECES, max_size=30).map("".join)))
def test_parsing_any_text_raises_only_invalid_input(text: str) -> None:
    try:
        tree = parse_filter(text)
    except InvalidInputException as error:
        assert error.message.startswith("Invalid filter expression")
        return
    assert parse_filter(render(tree)) == tree


@FAST
@given(st.text(max_size=40))
def test_parsing_any_filter_value_raises_only_invalid_input(text: str) -> None:
    try:
        parse_filter_values({"P": text})
    except InvalidInputException as error:
        assert "filterValues['P']" in error.message


@FAST
@given(filter_expression(free_text=True))
def test_random_trees_round_trip_through_their_text(tree) -> None:
    text = render(tree)
    assert parse_filter(text) == tree
    assert render(parse_filter(text)) == text


CATALOGUES = [make_catalogue(seed) for seed in range(3)]
CATALOGS = [catalog_of(cat) for cat in CATALOGUES]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=filter_expression(), data=st.data())
def test_random_filters_match_the_literal_evaluator(tree, data) -> None:
    which = data.draw(st.integers(0, len(CATALOGUES) - 1))
    cat, catalog = CATALOGUES[which], CATALOGS[which]
    include_params = {
        c.value.name
        for e in tree.expressions if e.action is Action.INCLUDE
        for c in [*iter_conditions(e.condition), *e.user_conditions] if isinstance(c.value, Placeholder)
    }
    values = data.draw(filter_values(include_params))
    history = make_history(data.draw(st.integers(0, 10_000)), len(cat.item_ids))
    user_index = data.draw(st.integers(-1, len(cat.user_ids) - 1))
    user = None if user_index < 0 else {k: v[user_index] for k, v in cat.users.items()}
    current = data.draw(st.one_of(st.none(), st.integers(0, len(cat.item_ids) - 1)))
    depth = data.draw(st.sampled_from([1, 3, 100]))

    checked = check_filter(tree, SCHEMAS)
    compiled = compile_filter(checked, catalog, history_depth=depth)
    request = FilterRequest(values=values, history=history_arrays(history), user=user, current_item=current)
    got = compiled.item_mask(request)
    expected = Reference(cat, values, history, user, current, depth=depth).item_mask(tree)
    assert isinstance(got, np.ndarray) and got.dtype == bool
    assert got.tolist() == expected
