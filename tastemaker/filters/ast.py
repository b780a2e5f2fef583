"""Typed syntax tree of a filter expression and its canonical rendering."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum


class Action(str, Enum):
    INCLUDE = "INCLUDE"
    EXCLUDE = "EXCLUDE"


class Target(str, Enum):
    ITEM = "ItemID"
    USER = "UserID"
    ACTION = "ActionID"


class Op(str, Enum):
    IN = "IN"
    NOT_IN = "NOT IN"
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def is_list_op(self) -> bool:
        return self in (Op.IN, Op.NOT_IN)

    @property
    def is_order_op(self) -> bool:
        return self in (Op.LT, Op.LE, Op.GT, Op.GE)

    @property
    def is_negative(self) -> bool:
        return self in (Op.NOT_IN, Op.NE)


# Dataset names as Personalize spells them; the parser maps any letter case (and "Action") to these.
DATASETS = ("Interactions", "Items", "Users", "Actions", "Action_Interactions")
INTERACTION_DATASETS = ("Interactions", "Action_Interactions")
DATASET_ALIASES = {
    "interactions": "Interactions",
    "items": "Items",
    "users": "Users",
    "actions": "Actions",
    "action": "Actions",  # Personalize's docs also write "Action.FIELD"
    "action_interactions": "Action_Interactions",
}


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class NumberLiteral:
    text: str  # as written (so "10" and "10.0" keep their spelling when matched against strings)

    @property
    def number(self) -> float:
        return float(self.text)


Literal = StringLiteral | NumberLiteral


@dataclass(frozen=True)
class LiteralList:
    """One or more literals: `("a", "b")`, `(10)` or a bare `10` / `"a"`."""

    items: tuple[Literal, ...]


@dataclass(frozen=True)
class Placeholder:
    """`$NAME` or `($NAME)`; the name is case-sensitive and excludes the `$`."""

    name: str


@dataclass(frozen=True)
class CurrentItemRef:
    """`CurrentItem.FIELD`: the value(s) of the item the request is about (related-items recipes)."""

    field: str


Value = LiteralList | Placeholder | CurrentItemRef


@dataclass(frozen=True)
class Condition:
    """`Dataset.FIELD op value`; for the IF clause dataset is "CurrentUser"."""

    dataset: str
    field: str
    op: Op
    value: Value
    position: int = dataclasses.field(default=0, compare=False)  # 1-based character position of the condition

    @property
    def qualified_field(self) -> str:
        return f"{self.dataset}.{self.field}"


@dataclass(frozen=True)
class And:
    children: tuple[CondNode, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[CondNode, ...]


CondNode = Condition | And | Or


@dataclass(frozen=True)
class Expression:
    """`ACTION TARGET WHERE condition [IF CurrentUser...]` — one link of a `|` chain."""

    action: Action
    target: Target
    condition: CondNode
    user_conditions: tuple[Condition, ...] = ()
    position: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True)
class FilterExpression:
    """A whole filter: expressions joined by `|`."""

    expressions: tuple[Expression, ...]


def iter_conditions(node: CondNode):
    """Leaves of a condition tree, left to right."""
    if isinstance(node, Condition):
        yield node
    else:
        for child in node.children:
            yield from iter_conditions(child)


# ---------------------------------------------------------------- rendering (canonical text)


def render_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_literal(lit: Literal) -> str:
    return render_string(lit.value) if isinstance(lit, StringLiteral) else lit.text


def render_value(op: Op, value: Value) -> str:
    if isinstance(value, CurrentItemRef):
        return f"CurrentItem.{value.field}"
    if isinstance(value, Placeholder):
        return f"(${value.name})" if op.is_list_op else f"${value.name}"
    inner = ", ".join(render_literal(item) for item in value.items)
    return f"({inner})" if op.is_list_op or len(value.items) != 1 else inner


def render_condition(cond: Condition) -> str:
    return f"{cond.dataset}.{cond.field} {cond.op.value} {render_value(cond.op, cond.value)}"


def render_node(node: CondNode) -> str:
    if isinstance(node, Condition):
        return render_condition(node)
    if isinstance(node, And):
        # AND binds tighter than OR, so only an OR inside an AND needs parentheses.
        return " AND ".join(f"({render_node(c)})" if isinstance(c, Or) else render_node(c) for c in node.children)
    return " OR ".join(render_node(c) for c in node.children)


def render_expression(expr: Expression) -> str:
    text = f"{expr.action.value} {expr.target.value} WHERE {render_node(expr.condition)}"
    if expr.user_conditions:
        text += " IF " + " AND ".join(render_condition(c) for c in expr.user_conditions)
    return text


def render(node: FilterExpression | Expression | CondNode) -> str:
    """Canonical text; parsing it gives back an equal tree."""
    if isinstance(node, FilterExpression):
        return " | ".join(render_expression(e) for e in node.expressions)
    if isinstance(node, Expression):
        return render_expression(node)
    return render_node(node)
