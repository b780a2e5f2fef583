"""Compile a checked filter against a catalogue snapshot into fast per-request boolean masks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tastemaker.data.schemas import SchemaField
from tastemaker.errors import InvalidInputException
from tastemaker.filters.ast import (
    INTERACTION_DATASETS,
    Action,
    And,
    Condition,
    CondNode,
    CurrentItemRef,
    Expression,
    LiteralList,
    NumberLiteral,
    Op,
    Placeholder,
    StringLiteral,
    Target,
    Value,
    iter_conditions,
)
from tastemaker.filters.checker import WILDCARD, CheckedFilter
from tastemaker.filters.columns import ColumnsLike, EntityTable, parse_number, split_cell

# Personalize: filters, automatic exclusions and real-time state use a user's latest 100 interactions per event type.
DEFAULT_HISTORY_DEPTH = 100
DEFAULT_ACTION_HISTORY_DEPTH = 300  # Personalize: 300 for action interactions

History = Mapping[str, tuple[np.ndarray, np.ndarray]]  # event type -> (entity index, timestamps) newest first


class FilterCatalog:
    """One data snapshot: the item catalogue (and optional user / action catalogues) with metadata.

    Metadata is a pyarrow Table or a dict of equal-length arrays aligned with the ids; categorical
    multi-values are raw "a|b|c" strings. Column indexes are built on first use and shared by every
    filter compiled against this catalogue.
    """

    def __init__(
        self,
        item_ids: Sequence[Any] | np.ndarray,
        items: ColumnsLike | None = None,
        *,
        user_ids: Sequence[Any] | np.ndarray | None = None,
        users: ColumnsLike | None = None,
        action_ids: Sequence[Any] | np.ndarray | None = None,
        actions: ColumnsLike | None = None,
    ) -> None:
        self.items = EntityTable(item_ids, items)
        self.users = EntityTable(user_ids, users) if user_ids is not None else None
        self.actions = EntityTable(action_ids, actions) if action_ids is not None else None

    def user_row(self, user_id: Any) -> dict[str, Any] | None:
        """A user's metadata row for FilterRequest.user (None when unknown or no user catalogue)."""
        return self.users.row(user_id) if self.users is not None else None

    def item_index(self, item_id: Any) -> int | None:
        """Position of an item in the catalogue (for FilterRequest.current_item)."""
        return self.items.index_of(item_id)


@dataclass
class FilterRequest:
    """What one request brings: parsed filterValues, the user's history, metadata row, current item."""

    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    history: History | None = None  # keys: event types (matched case-insensitively)
    user: Mapping[str, Any] | None = None  # current user's metadata row, for IF CurrentUser
    current_item: int | None = None  # catalogue index of the item, for CurrentItem
    action_history: History | None = None  # Action_Interactions: event type -> (action index, timestamps)
    history_depth: int | None = None  # overrides the compiled depth (extension)
    action_history_depth: int | None = None


@dataclass
class _Rows:
    """A user's considered interactions, flattened: one entry per interaction."""

    entity: np.ndarray
    timestamp: np.ndarray
    group: np.ndarray  # index into names
    names: list[str]  # lowercase event type per group


def _flatten_history(history: History | None, depth: int) -> _Rows:
    names: list[str] = []
    entities: list[np.ndarray] = []
    stamps: list[np.ndarray] = []
    for name, (entity, stamp) in (history or {}).items():
        names.append(str(name).lower())
        entities.append(np.asarray(entity)[:depth])
        stamps.append(np.asarray(stamp)[:depth])
    if not names:
        empty = np.zeros(0, dtype=np.int64)
        return _Rows(empty, empty, empty, [])
    counts = [len(e) for e in entities]
    return _Rows(
        np.concatenate(entities).astype(np.int64, copy=False),
        np.concatenate(stamps).astype(np.int64, copy=False),
        np.repeat(np.arange(len(names)), counts),
        names,
    )


class _Context:
    """Per-request state shared by the compiled conditions."""

    __slots__ = ("_action_rows", "_rows", "action_depth", "depth", "request")

    def __init__(self, request: FilterRequest, depth: int, action_depth: int) -> None:
        self.request = request
        self.depth = request.history_depth if request.history_depth is not None else depth
        self.action_depth = (
            request.action_history_depth if request.action_history_depth is not None else action_depth
        )
        self._rows: _Rows | None = None
        self._action_rows: _Rows | None = None

    def rows(self, dataset: str) -> _Rows:
        if dataset == "Interactions":
            if self._rows is None:
                self._rows = _flatten_history(self.request.history, self.depth)
            return self._rows
        if self._action_rows is None:
            self._action_rows = _flatten_history(self.request.action_history, self.action_depth)
        return self._action_rows

    def parameter(self, name: str) -> Sequence[str]:
        return self.request.values[name]


Compiled = np.ndarray | Callable[[_Context], np.ndarray]  # a ready mask, or a per-request function


def _numbers(texts: Sequence[Any], where: str) -> list[float]:
    out = []
    for text in texts:
        value = parse_number(text)
        if math.isnan(value):
            raise InvalidInputException(f"{where}: {text!r} is not a number")
        out.append(value)
    return out


def _numeric_positive(data: np.ndarray, op: Op, values: Sequence[float]) -> np.ndarray:
    """Rows where `data op v` holds for at least one v (NaN rows never match)."""
    if not values:
        return np.zeros(len(data), dtype=bool)
    if op in (Op.IN, Op.NOT_IN, Op.EQ, Op.NE):
        return data == values[0] if len(values) == 1 else np.isin(data, values)
    if op is Op.LT:
        return data < max(values)
    if op is Op.LE:
        return data <= max(values)
    if op is Op.GT:
        return data > min(values)
    return data >= min(values)


def _scalar_positive(row: Sequence[Any], op: Op, values: Sequence[Any]) -> bool:
    if op in (Op.IN, Op.NOT_IN, Op.EQ, Op.NE):
        return bool(set(row) & set(values))
    compare = {Op.LT: lambda a, b: a < b, Op.LE: lambda a, b: a <= b, Op.GT: lambda a, b: a > b}.get(
        op, lambda a, b: a >= b
    )
    return any(compare(r, v) for r in row for v in values)


def _or(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a | b


def _and(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a & b


def _combine(is_and: bool, parts: list[Compiled]) -> Compiled:
    """Fold ready masks now; leave one function for the per-request parts."""
    join = _and if is_and else _or
    ready = [p for p in parts if isinstance(p, np.ndarray)]
    pending = [p for p in parts if not isinstance(p, np.ndarray)]
    folded: np.ndarray | None = None
    for mask in ready:
        folded = mask if folded is None else join(folded, mask)
    if not pending:
        assert folded is not None
        return folded
    if folded is not None and (not folded.any() if is_and else folded.all()):
        return folded  # AND with nothing / OR with everything: the rest cannot change it
    functions = tuple(pending)

    def evaluate(ctx: _Context) -> np.ndarray:
        mask = functions[0](ctx)
        for fn in functions[1:]:
            mask = join(mask, fn(ctx))
        return mask if folded is None else join(mask, folded)

    return evaluate


@dataclass
class _CompiledExpression:
    action: Action
    parameters: frozenset[str]
    body: Compiled  # mask over the target catalogue
    gate: Callable[[_Context], bool] | None


class _Compiler:
    def __init__(self, checked: CheckedFilter, catalog: FilterCatalog) -> None:
        self.checked = checked
        self.catalog = catalog

    def field_type(self, dataset: str, name: str) -> SchemaField:
        return self.checked.field_types[f"{dataset}.{name}"]

    def table(self, dataset: str) -> EntityTable:
        table = {"Items": self.catalog.items, "Users": self.catalog.users, "Actions": self.catalog.actions}[dataset]
        if table is None:
            raise ValueError(f"the filter needs the {dataset} catalogue; pass it to FilterCatalog")
        return table

    def value_source(self, cond: Condition, numeric: bool) -> list[Any] | Callable[[_Context], list[Any]]:
        """The condition's values: a ready list for literals, else a per-request function."""
        where = f"filter value for {cond.qualified_field}"
        value: Value = cond.value
        if isinstance(value, LiteralList):
            texts = [item.value if isinstance(item, StringLiteral) else item.text for item in value.items]
            if numeric:
                return [item.number if isinstance(item, NumberLiteral) else float(item.value) for item in value.items]
            return texts
        if isinstance(value, Placeholder):
            name = value.name
            if numeric:
                return lambda ctx: _numbers(ctx.parameter(name), f"Invalid filterValues[{name!r}] ({where})")
            return lambda ctx: list(ctx.parameter(name))
        ref: CurrentItemRef = value
        ref_type = self.field_type("Items", ref.field)
        column = (
            self.catalog.items.numeric(ref.field)
            if ref_type.is_numeric
            else self.catalog.items.categorical(ref.field, ref_type.categorical)
        )
        n_items = self.catalog.items.n_rows

        def current(ctx: _Context) -> list[Any]:
            index = ctx.request.current_item
            if index is None or not 0 <= index < n_items:
                return []
            return column.row_values(index)

        return current

    # ------------------------------------------------------------- catalogue conditions
    def table_condition(self, cond: Condition) -> Compiled:
        ftype = self.field_type(cond.dataset, cond.field)
        table = self.table(cond.dataset)
        negate = cond.op.is_negative
        source = self.value_source(cond, ftype.is_numeric)
        if ftype.is_numeric:
            data = table.numeric(cond.field).data
            op = cond.op

            def positive(values: list[Any]) -> np.ndarray:
                return _numeric_positive(data, op, values)
        else:
            column = table.categorical(cond.field, ftype.categorical)
            positive = column.match_any  # type: ignore[assignment]
        if isinstance(source, list):
            mask = positive(source)
            return ~mask if negate else mask
        if negate:
            return lambda ctx: ~positive(source(ctx))
        return lambda ctx: positive(source(ctx))

    # ------------------------------------------------------------- interaction conditions (over rows)
    def interaction_condition(self, cond: Condition) -> Callable[[_Context], np.ndarray]:
        dataset, negate = cond.dataset, cond.op.is_negative
        if cond.field == "TIMESTAMP":
            source = self.value_source(cond, numeric=True)
            op = cond.op

            def timestamp(ctx: _Context) -> np.ndarray:
                values = source if isinstance(source, list) else source(ctx)
                mask = _numeric_positive(ctx.rows(dataset).timestamp, op, values)
                return ~mask if negate else mask

            return timestamp
        source = self.value_source(cond, numeric=False)

        def event_type(ctx: _Context) -> np.ndarray:
            values = source if isinstance(source, list) else source(ctx)
            wanted = {str(v).lower() for v in values}
            rows = ctx.rows(dataset)
            groups = np.array([WILDCARD in wanted or name in wanted for name in rows.names], dtype=bool)
            mask = groups[rows.group] if len(groups) else np.zeros(0, dtype=bool)
            return ~mask if negate else mask

        return event_type

    def node(self, node: CondNode, leaf: Callable[[Condition], Compiled]) -> Compiled:
        if isinstance(node, Condition):
            return leaf(node)
        return _combine(isinstance(node, And), [self.node(child, leaf) for child in node.children])

    def interactions_body(self, node: CondNode, dataset: str, n_entities: int) -> Compiled:
        row_mask = self.node(node, self.interaction_condition)

        assert callable(row_mask)  # interaction conditions always depend on the request

        def body(ctx: _Context) -> np.ndarray:
            rows = ctx.rows(dataset)
            selected = rows.entity[row_mask(ctx)]
            selected = selected[(selected >= 0) & (selected < n_entities)]
            out = np.zeros(n_entities, dtype=bool)
            out[selected] = True
            return out

        return body

    # ------------------------------------------------------------- IF CurrentUser
    def user_gate(self, conditions: Sequence[Condition]) -> Callable[[_Context], bool]:
        checks = []
        for cond in conditions:
            ftype = self.field_type("Users", cond.field)
            checks.append((cond, ftype, self.value_source(cond, ftype.is_numeric)))

        def gate(ctx: _Context) -> bool:
            user = ctx.request.user or {}
            for cond, ftype, source in checks:
                raw = _lookup(user, cond.field)
                if ftype.is_numeric:
                    number = parse_number(raw)
                    row: list[Any] = [] if math.isnan(number) else [number]
                else:
                    row = split_cell(raw, ftype.categorical)
                values = source if isinstance(source, list) else source(ctx)
                holds = _scalar_positive(row, cond.op, values)
                if holds == cond.op.is_negative:
                    return False
            return True

        return gate

    def expression(self, expr: Expression, n_entities: int) -> _CompiledExpression:
        conditions = list(iter_conditions(expr.condition))
        dataset = conditions[0].dataset
        if dataset in INTERACTION_DATASETS:
            body = self.interactions_body(expr.condition, dataset, n_entities)
        else:
            body = self.node(expr.condition, self.table_condition)
        names = {c.value.name for c in [*conditions, *expr.user_conditions] if isinstance(c.value, Placeholder)}
        gate = self.user_gate(expr.user_conditions) if expr.user_conditions else None
        return _CompiledExpression(expr.action, frozenset(names), body, gate)


def _lookup(row: Mapping[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    for key, value in row.items():
        if key.lower() == name.lower():
            return value
    return None


class CompiledFilter:
    """A filter bound to one catalogue snapshot; `mask(request)` gives the allowed entities."""

    def __init__(
        self,
        checked: CheckedFilter,
        n_entities: int,
        expressions: list[_CompiledExpression],
        history_depth: int,
        action_history_depth: int,
    ) -> None:
        self.checked = checked
        self.target = checked.target
        self.n_entities = n_entities
        self.history_depth = history_depth
        self.action_history_depth = action_history_depth
        self._expressions = expressions

    def mask(self, request: FilterRequest | None = None) -> np.ndarray:
        """Boolean mask over the target catalogue (True = allowed); a new array each call."""
        request = request or FilterRequest()
        for expr in self._expressions:
            if expr.action is Action.INCLUDE:
                missing = sorted(name for name in expr.parameters if name not in request.values)
                if missing:
                    raise InvalidInputException(
                        f"filterValues is missing {', '.join('$' + m for m in missing)}: every parameter of "
                        "an INCLUDE expression needs a value"
                    )
        ctx = _Context(request, self.history_depth, self.action_history_depth)
        included: np.ndarray | None = None
        excluded: np.ndarray | None = None
        for expr in self._expressions:
            if any(name not in request.values for name in expr.parameters):
                continue  # an EXCLUDE expression with an omitted parameter is disabled
            if expr.gate is not None and not expr.gate(ctx):
                continue  # IF CurrentUser is false: the expression does not apply
            mask = expr.body if isinstance(expr.body, np.ndarray) else expr.body(ctx)
            if expr.action is Action.INCLUDE:
                included = mask if included is None else included | mask
            else:
                excluded = mask if excluded is None else excluded | mask
        if excluded is not None:
            return ~excluded if included is None else included & ~excluded
        if included is not None:
            return np.array(included, dtype=bool, copy=True)
        return np.ones(self.n_entities, dtype=bool)

    def _mask_for(self, target: Target, request: FilterRequest | None) -> np.ndarray:
        if self.target is not target:
            raise InvalidInputException(
                f"this filter selects {self.target.value} values and cannot filter {target.value} results"
            )
        return self.mask(request)

    def item_mask(self, request: FilterRequest | None = None) -> np.ndarray:
        return self._mask_for(Target.ITEM, request)

    def user_mask(self, request: FilterRequest | None = None) -> np.ndarray:
        return self._mask_for(Target.USER, request)

    def action_mask(self, request: FilterRequest | None = None) -> np.ndarray:
        return self._mask_for(Target.ACTION, request)


def compile_filter(
    checked: CheckedFilter,
    catalog: FilterCatalog,
    *,
    history_depth: int = DEFAULT_HISTORY_DEPTH,
    action_history_depth: int = DEFAULT_ACTION_HISTORY_DEPTH,
) -> CompiledFilter:
    """Build the column indexes and ready masks a filter needs; cache the result per filter and snapshot."""
    compiler = _Compiler(checked, catalog)
    target_table = {Target.ITEM: "Items", Target.USER: "Users", Target.ACTION: "Actions"}[checked.target]
    n_entities = compiler.table(target_table).n_rows
    expressions = [compiler.expression(e, n_entities) for e in checked.expression.expressions]
    for expr in expressions:
        if isinstance(expr.body, np.ndarray):
            expr.body.flags.writeable = False
    return CompiledFilter(checked, n_entities, expressions, history_depth, action_history_depth)
