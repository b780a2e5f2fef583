"""Test helpers: small schemas, a generated catalogue, and a literal row-by-row filter evaluator."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tastemaker.data.schemas import Schema
from tastemaker.data.schemas import SchemaField as F
from tastemaker.errors import InvalidInputException
from tastemaker.filters import FilterCatalog
from tastemaker.filters.ast import (
    Action,
    And,
    Condition,
    CurrentItemRef,
    Expression,
    FilterExpression,
    NumberLiteral,
    Op,
    Placeholder,
    StringLiteral,
    iter_conditions,
)

SCHEMAS = {
    "Items": Schema(
        "items",
        (
            F("ITEM_ID", "string"),
            F("GENRES", "string", categorical=True),
            F("COLOR", "string", nullable=True, categorical=True),
            F("PRICE", "float", nullable=True),
            F("YEAR", "int"),
            F("DESCRIPTION", "string", textual=True),
            F("IS_NEW", "boolean"),
            F("CODE", "string", nullable=True),  # plain (not categorical) string: never split on |
        ),
    ),
    "Users": Schema(
        "users",
        (F("USER_ID", "string"), F("AGE", "int", nullable=True), F("TIER", "string", categorical=True),
         F("BIO", "string", textual=True)),
    ),
    "Interactions": Schema(
        "interactions",
        (F("USER_ID", "string"), F("ITEM_ID", "string"), F("TIMESTAMP", "long"), F("EVENT_TYPE", "string"),
         F("EVENT_VALUE", "float"), F("DEVICE", "string", categorical=True)),
    ),
    "Actions": Schema(
        "actions",
        (F("ACTION_ID", "string"), F("VALUE", "int"), F("CATEGORY", "string", categorical=True),
         F("EXPIRATION_TIMESTAMP", "long"), F("REPEAT_FREQUENCY", "int")),
    ),
    "Action_Interactions": Schema(
        "action_interactions",
        (F("USER_ID", "string"), F("ACTION_ID", "string"), F("TIMESTAMP", "long"), F("EVENT_TYPE", "string")),
    ),
}

GENRES = ["comedy", "drama", "horror", "Comedy", "sci-fi", "kids"]
COLORS = ["red", "green", "blue"]
TIERS = ["gold", "silver", "free"]
EVENT_TYPES = ["watch", "click", "Purchase"]


def sexpr(tree: FilterExpression) -> str:
    """A compact rendering that shows grouping explicitly (for the table-driven parser tests)."""

    def value(v: Any) -> str:
        if isinstance(v, Placeholder):
            return f"${v.name}"
        if isinstance(v, CurrentItemRef):
            return f"CurrentItem.{v.field}"
        parts = [json.dumps(i.value, ensure_ascii=False) if isinstance(i, StringLiteral) else i.text for i in v.items]
        return "[" + ", ".join(parts) + "]"

    def node(n: Any) -> str:
        if isinstance(n, Condition):
            return f"{n.dataset}.{n.field} {n.op.value} {value(n.value)}"
        name = "and" if isinstance(n, And) else "or"
        return f"{name}(" + "; ".join(node(c) for c in n.children) + ")"

    def expression(e: Expression) -> str:
        text = f"{e.action.value} {e.target.value}: {node(e.condition)}"
        if e.user_conditions:
            text += " IF " + "; ".join(node(c) for c in e.user_conditions)
        return text

    return " | ".join(expression(e) for e in tree.expressions)


# ------------------------------------------------------------------ generated catalogue


@dataclass
class Catalogue:
    item_ids: list[str]
    items: dict[str, list[Any]]
    user_ids: list[str]
    users: dict[str, list[Any]]
    action_ids: list[str] = field(default_factory=list)
    actions: dict[str, list[Any]] = field(default_factory=dict)


def make_catalogue(seed: int, n_items: int = 40, n_users: int = 12, n_actions: int = 8) -> Catalogue:
    rng = random.Random(seed)

    def genres() -> Any:
        roll = rng.random()
        if roll < 0.1:
            return None
        if roll < 0.15:
            return ""
        return "|".join(rng.sample(GENRES, rng.randint(1, 3)))

    items = {
        "GENRES": [genres() for _ in range(n_items)],
        "COLOR": [rng.choice([*COLORS, None]) for _ in range(n_items)],
        "PRICE": [rng.choice([None, 0.5, 1.0, 2.0, 2.5, 10.0, float(rng.randint(0, 20))]) for _ in range(n_items)],
        "YEAR": [rng.randint(1990, 1999) for _ in range(n_items)],
        "CODE": [rng.choice([None, "a|b", "a", "b"]) for _ in range(n_items)],
    }
    users = {
        "AGE": [rng.choice([None, 12, 18, 30, 65]) for _ in range(n_users)],
        "TIER": [rng.choice([*TIERS, "gold|silver", None]) for _ in range(n_users)],
    }
    actions = {
        "VALUE": [rng.randint(0, 5) for _ in range(n_actions)],
        "CATEGORY": [rng.choice(["promo", "care", "promo|care", None]) for _ in range(n_actions)],
    }
    return Catalogue(
        [f"i{i}" for i in range(n_items)], items, [f"u{i}" for i in range(n_users)], users,
        [f"a{i}" for i in range(n_actions)], actions,
    )


def make_history(seed: int, n_items: int, max_len: int = 8) -> dict[str, tuple[list[int], list[int]]]:
    """event type -> (item indexes, timestamps) newest first; keys in mixed case on purpose."""
    rng = random.Random(seed)
    history = {}
    for event_type in rng.sample(["watch", "Click", "purchase"], rng.randint(0, 3)):
        length = rng.randint(0, max_len)
        stamps = sorted((rng.randint(0, 100) for _ in range(length)), reverse=True)
        history[event_type] = ([rng.randrange(n_items) for _ in range(length)], stamps)
    return history


def catalog_of(cat: Catalogue) -> FilterCatalog:
    return FilterCatalog(
        np.array(cat.item_ids), cat.items, user_ids=np.array(cat.user_ids), users=cat.users,
        action_ids=np.array(cat.action_ids), actions=cat.actions,
    )


def history_arrays(history: dict) -> dict:
    """The list history of make_history as the arrays FilterRequest takes."""
    return {k: (np.array(i, dtype=np.int32), np.array(t, dtype=np.int64)) for k, (i, t) in history.items()}


# ------------------------------------------------------------------ the literal evaluator


def _cell_values(raw: Any, field: F) -> list[Any]:
    """What a cell holds, literally: numbers for numeric fields, |-split strings for categorical ones."""
    if raw is None or raw == "" or (isinstance(raw, float) and math.isnan(raw)):
        return []
    if field.is_numeric:
        return [float(raw)]
    text = str(raw)
    if field.categorical:
        return [part for part in text.split("|") if part != ""]
    return [text]


def _holds(row: list[Any], op: Op, values: list[Any]) -> bool:
    """Positive ops: some row value relates to some given value. Negative ops: complement."""
    tests = {
        Op.IN: lambda a, b: a == b, Op.EQ: lambda a, b: a == b,
        Op.NOT_IN: lambda a, b: a == b, Op.NE: lambda a, b: a == b,
        Op.LT: lambda a, b: a < b, Op.LE: lambda a, b: a <= b,
        Op.GT: lambda a, b: a > b, Op.GE: lambda a, b: a >= b,
    }
    found = False
    for r in row:
        for v in values:
            if tests[op](r, v):
                found = True
    return not found if op in (Op.NOT_IN, Op.NE) else found


@dataclass
class Reference:
    """Evaluates a filter for each catalogue row with plain Python, straight from the documented rules."""

    catalogue: Catalogue
    values: dict[str, list[str]]
    history: dict[str, tuple[list[int], list[int]]]
    user: dict[str, Any] | None
    current_item: int | None
    depth: int = 100

    def given(self, cond: Condition, field: F) -> list[Any]:
        v = cond.value
        if isinstance(v, Placeholder):
            texts = self.values[v.name]
            return [float(t) for t in texts] if field.is_numeric else list(texts)
        if isinstance(v, CurrentItemRef):
            if self.current_item is None:
                return []
            ref_field = SCHEMAS["Items"].field(v.field)
            column = self.catalogue.items.get(v.field)
            return _cell_values(column[self.current_item] if column else None, ref_field)
        out = []
        for lit in v.items:
            if field.is_numeric:
                out.append(float(lit.text) if isinstance(lit, NumberLiteral) else float(lit.value))
            else:
                out.append(lit.text if isinstance(lit, NumberLiteral) else lit.value)
        return out

    def item_condition(self, cond: Condition, index: int) -> bool:
        field = SCHEMAS["Items"].field(cond.field)
        raw = self.catalogue.items.get(cond.field, [None] * len(self.catalogue.item_ids))[index]
        if cond.field == "ITEM_ID":
            raw = self.catalogue.item_ids[index]
        return _holds(_cell_values(raw, field), cond.op, self.given(cond, field))

    def interaction_row(self, cond: Condition, event_type: str, stamp: int) -> bool:
        if cond.field == "TIMESTAMP":
            return _holds([float(stamp)], cond.op, self.given(cond, F("TIMESTAMP", "long")))
        wanted = [str(v).lower() for v in self.given(cond, F("EVENT_TYPE", "string"))]
        if "*" in wanted:
            wanted = [event_type.lower()]
        return _holds([event_type.lower()], cond.op, wanted)

    def evaluate(self, node: Any, leaf) -> bool:
        if isinstance(node, Condition):
            return leaf(node)
        results = [self.evaluate(child, leaf) for child in node.children]
        return all(results) if isinstance(node, And) else any(results)

    def expression_matches(self, expr: Expression, index: int) -> bool:
        first = next(iter_conditions(expr.condition))
        if first.dataset == "Interactions":
            for event_type, (items, stamps) in self.history.items():
                for item, stamp in list(zip(items, stamps, strict=True))[: self.depth]:
                    row_ok = self.evaluate(
                        expr.condition, lambda c, e=event_type, s=stamp: self.interaction_row(c, e, s)
                    )
                    if item == index and row_ok:
                        return True
            return False
        return self.evaluate(expr.condition, lambda c: self.item_condition(c, index))

    def user_gate(self, expr: Expression) -> bool:
        for cond in expr.user_conditions:
            field = SCHEMAS["Users"].field(cond.field)
            raw = (self.user or {}).get(cond.field)
            if not _holds(_cell_values(raw, field), cond.op, self.given(cond, field)):
                return False
        return True

    def item_mask(self, tree: FilterExpression) -> list[bool]:
        applicable = []
        for expr in tree.expressions:
            names = {c.value.name for c in [*iter_conditions(expr.condition), *expr.user_conditions]
                     if isinstance(c.value, Placeholder)}
            missing = names - set(self.values)
            if missing and expr.action is Action.INCLUDE:
                raise InvalidInputException(f"missing {sorted(missing)}")
            if missing or not self.user_gate(expr):
                continue
            applicable.append(expr)
        includes = [e for e in applicable if e.action is Action.INCLUDE]
        excludes = [e for e in applicable if e.action is Action.EXCLUDE]
        out = []
        for index in range(len(self.catalogue.item_ids)):
            included = any(self.expression_matches(e, index) for e in includes) if includes else True
            excluded = any(self.expression_matches(e, index) for e in excludes)
            out.append(included and not excluded)
        return out

