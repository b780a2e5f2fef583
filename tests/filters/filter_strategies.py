"""Hypothesis strategies that build random valid filter trees for the SCHEMAS of filter_reference."""

from __future__ import annotations

from hypothesis import strategies as st

from tastemaker.filters.ast import (
    Action,
    And,
    Condition,
    CurrentItemRef,
    Expression,
    FilterExpression,
    LiteralList,
    NumberLiteral,
    Op,
    Or,
    Placeholder,
    StringLiteral,
    Target,
)
from tests.filters.filter_reference import COLORS, GENRES, TIERS

STRING_PARAMS = ("S1", "S2")
NUMBER_PARAMS = ("N1", "N2")
EVENT_PARAMS = ("E1",)
TIME_PARAMS = ("T1",)
ALL_OPS = list(Op)
ORDER_OPS = [Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE]

numbers = st.one_of(
    st.integers(-5, 25).map(str),
    st.sampled_from(["0.5", "2.5", "10.0", "-1.5", "1e1", "1995", "1990"]),
)


def _strings(vocabulary: list[str], free_text: bool) -> st.SearchStrategy[str]:
    base = st.sampled_from([*vocabulary, "unknown"])
    if not free_text:
        return base
    return st.one_of(base, st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6))


def _literal_list(op: Op, literal: st.SearchStrategy) -> st.SearchStrategy[LiteralList]:
    return st.lists(literal, min_size=1, max_size=3 if op.is_list_op else 1).map(lambda xs: LiteralList(tuple(xs)))


_VOCABULARIES = {"GENRES": GENRES, "COLOR": COLORS, "CODE": ["a", "b", "a|b"]}
_ITEM_LITERALS = {
    (field, is_list, free_text): _literal_list(
        Op.IN if is_list else Op.EQ,
        numbers.map(NumberLiteral) if field in ("PRICE", "YEAR")
        else st.one_of(_strings(_VOCABULARIES[field], free_text).map(StringLiteral), numbers.map(NumberLiteral)),
    )
    for field in ("GENRES", "COLOR", "CODE", "PRICE", "YEAR")
    for is_list in (False, True)
    for free_text in (False, True)
}
_EVENT_LITERALS = {
    (is_list, free_text): _literal_list(
        Op.IN if is_list else Op.EQ,
        _strings(["watch", "WATCH", "click", "Purchase", "*", "rate"], free_text).map(StringLiteral),
    )
    for is_list in (False, True)
    for free_text in (False, True)
}


@st.composite
def item_condition(draw, free_text: bool = False) -> Condition:
    field = draw(st.sampled_from(["GENRES", "COLOR", "CODE", "PRICE", "YEAR"]))
    numeric = field in ("PRICE", "YEAR")
    op = draw(st.sampled_from(ALL_OPS if numeric else [Op.IN, Op.NOT_IN, Op.EQ, Op.NE]))
    kinds = ["literal", "current"] + ([] if op is Op.NOT_IN else ["param"])
    kind = draw(st.sampled_from(kinds))
    if kind == "param":
        value = Placeholder(draw(st.sampled_from(NUMBER_PARAMS if numeric else STRING_PARAMS)))
    elif kind == "current":
        choices = ["PRICE", "YEAR"] if numeric else ["GENRES", "COLOR", "CODE"]
        value = CurrentItemRef(draw(st.sampled_from(choices)))
    else:
        value = draw(_ITEM_LITERALS[(field, op.is_list_op, free_text)])
    return Condition("Items", field, op, value)


@st.composite
def interaction_condition(draw, free_text: bool = False) -> Condition:
    if draw(st.booleans()):
        op = draw(st.sampled_from(ORDER_OPS))
        if draw(st.booleans()):
            value = Placeholder(TIME_PARAMS[0])
        else:
            value = LiteralList((NumberLiteral(str(draw(st.integers(-1, 101)))),))
        return Condition("Interactions", "TIMESTAMP", op, value)
    op = draw(st.sampled_from([Op.IN, Op.NOT_IN, Op.EQ, Op.NE]))
    if op is not Op.NOT_IN and draw(st.integers(0, 3)) == 0:
        return Condition("Interactions", "EVENT_TYPE", op, Placeholder(EVENT_PARAMS[0]))
    return Condition("Interactions", "EVENT_TYPE", op, draw(_EVENT_LITERALS[(op.is_list_op, free_text)]))


@st.composite
def user_condition(draw) -> Condition:
    if draw(st.booleans()):
        op = draw(st.sampled_from(ALL_OPS))
        value = (
            Placeholder("N2") if op is not Op.NOT_IN and draw(st.booleans())
            else draw(_literal_list(op, st.sampled_from(["12", "18", "30", "40"]).map(NumberLiteral)))
        )
        return Condition("CurrentUser", "AGE", op, value)
    op = draw(st.sampled_from([Op.IN, Op.NOT_IN, Op.EQ, Op.NE]))
    value = draw(_literal_list(op, st.sampled_from([*TIERS, "platinum"]).map(StringLiteral)))
    return Condition("CurrentUser", "TIER", op, value)


def condition_tree(leaf: st.SearchStrategy[Condition], depth: int = 2) -> st.SearchStrategy:
    """Canonical trees: n-ary AND/OR whose children are never of their own kind."""
    if depth == 0:
        return leaf
    child_tree = condition_tree(leaf, depth - 1)

    @st.composite
    def build(draw):
        kind = draw(st.sampled_from(["leaf", "leaf", "and", "or"]))
        if kind == "leaf":
            return draw(leaf)
        node = And if kind == "and" else Or
        children = draw(st.lists(child_tree, min_size=2, max_size=3))
        flat = []
        for child in children:
            flat.extend(child.children if isinstance(child, node) else (child,))
        return node(tuple(flat))

    return build()


# Built once: constructing strategies inside every draw is what makes generation slow.
_TREES = {
    free_text: (condition_tree(interaction_condition(free_text)), condition_tree(item_condition(free_text)))
    for free_text in (False, True)
}
_USER_CONDITIONS = st.lists(user_condition(), max_size=2)


@st.composite
def expression(draw, free_text: bool = False) -> Expression:
    action = draw(st.sampled_from(list(Action)))
    interactions_tree, items_tree = _TREES[free_text]
    tree = draw(interactions_tree if draw(st.integers(0, 2)) == 0 else items_tree)
    user = tuple(draw(_USER_CONDITIONS))
    return Expression(action, Target.ITEM, tree, user)


def filter_expression(free_text: bool = False) -> st.SearchStrategy[FilterExpression]:
    return st.lists(expression(free_text), min_size=1, max_size=3).map(lambda es: FilterExpression(tuple(es)))


@st.composite
def filter_values(draw, include_params: set[str]) -> dict[str, list[str]]:
    """Values for the test parameters; parameters of INCLUDE expressions are always given."""
    out: dict[str, list[str]] = {}
    pools = {
        **{p: st.sampled_from([*GENRES, *COLORS, "a", "b", "a|b", "zzz"]) for p in STRING_PARAMS},
        **{p: st.sampled_from(["0", "1", "2.5", "10", "1995", "18", "30"]) for p in NUMBER_PARAMS},
        "E1": st.sampled_from(["watch", "Click", "PURCHASE", "*", "rate"]),
        "T1": st.integers(-1, 101).map(str),
    }
    for name, pool in pools.items():
        if name in include_params or draw(st.booleans()):
            out[name] = draw(st.lists(pool, min_size=1, max_size=3))
    return out
