"""Check a parsed filter against the dataset group's schemas and summarise what it uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tastemaker.data.schemas import Schema, SchemaField
from tastemaker.errors import InvalidInputException
from tastemaker.filters.ast import (
    DATASET_ALIASES,
    INTERACTION_DATASETS,
    Action,
    Condition,
    CurrentItemRef,
    Expression,
    FilterExpression,
    LiteralList,
    NumberLiteral,
    Op,
    Placeholder,
    StringLiteral,
    Target,
    iter_conditions,
)

# Which condition datasets each target may filter on.
TARGET_DATASETS: dict[Target, tuple[str, ...]] = {
    Target.ITEM: ("Items", "Interactions"),
    Target.USER: ("Users",),
    Target.ACTION: ("Actions", "Action_Interactions"),
}
# Interaction columns a filter may use: EVENT_TYPE (Personalize) and TIMESTAMP (our extension).
INTERACTION_FIELDS = ("EVENT_TYPE", "TIMESTAMP")
# Action fields Personalize applies automatically and forbids in filters.
FORBIDDEN_ACTION_FIELDS = ("EXPIRATION_TIMESTAMP", "REPEAT_FREQUENCY")
WILDCARD = "*"


@dataclass(frozen=True)
class FilterLimits:
    max_fields_per_filter: int = 10


@dataclass(frozen=True)
class CheckedFilter:
    """A filter known to be valid for a dataset group, with what it needs at request time."""

    expression: FilterExpression
    target: Target
    fields: frozenset[str]  # distinct "Dataset.FIELD" names (CurrentItem -> Items, CurrentUser -> Users)
    parameters: Mapping[str, frozenset[Action]]  # placeholder name -> actions of the expressions using it
    field_types: Mapping[str, SchemaField]  # "Dataset.FIELD" -> schema field (synthetic for interactions)
    uses_current_item: bool = False
    uses_current_user: bool = False
    uses_interactions: bool = False
    uses_action_interactions: bool = False

    @property
    def required_parameters(self) -> frozenset[str]:
        """Parameters an INCLUDE expression uses: a request must give values for them."""
        return frozenset(name for name, actions in self.parameters.items() if Action.INCLUDE in actions)


def _error(position: int, message: str) -> InvalidInputException:
    return InvalidInputException(f"Invalid filter expression at position {position}: {message}")


@dataclass
class _Checker:
    schemas: Mapping[str, Schema]
    limits: FilterLimits
    fields: list[str] = field(default_factory=list)  # in first-use order
    field_types: dict[str, SchemaField] = field(default_factory=dict)
    parameters: dict[str, set[Action]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def use_field(self, qualified: str, schema_field: SchemaField, position: int) -> None:
        if qualified in self.field_types:
            return
        if len(self.fields) >= self.limits.max_fields_per_filter:
            raise _error(
                position,
                f"a filter can use at most {self.limits.max_fields_per_filter} distinct dataset fields; "
                f"{qualified} would be field number {len(self.fields) + 1} "
                f"(already used: {', '.join(self.fields)})",
            )
        self.fields.append(qualified)
        self.field_types[qualified] = schema_field

    def schema_for(self, dataset: str, position: int, why: str = "") -> Schema:
        schema = self.schemas.get(dataset)
        if schema is None:
            raise _error(position, f"the dataset group has no {dataset} dataset{why}")
        return schema

    def lookup_field(self, dataset: str, name: str, position: int, why: str = "") -> SchemaField:
        """Resolve a field of a dataset and apply the rules every filtered field must meet."""
        schema = self.schema_for(dataset, position, why)
        if dataset in INTERACTION_DATASETS:
            if name not in INTERACTION_FIELDS:
                raise _error(
                    position,
                    f"{dataset}.{name} cannot be filtered: only EVENT_TYPE (and the TIMESTAMP extension) "
                    f"of {dataset} can be used in a filter",
                )
            found = schema.field(name)
            if found is not None:
                return found
            # EVENT_TYPE may be absent from the schema (PutEvents always sends it).
            return SchemaField(name, "long" if name == "TIMESTAMP" else "string", categorical=name == "EVENT_TYPE")
        found = schema.field(name)
        if found is None:
            hint = [f for f in schema.field_names if f.lower() == name.lower()]
            suffix = f" (field names are case-sensitive: did you mean {hint[0]}?)" if hint else ""
            raise _error(position, f"the {dataset} schema has no field {name}{suffix}")
        if found.textual:
            raise _error(position, f"{dataset}.{name} is a textual field; filters cannot use textual fields")
        if found.avro_type == "boolean":
            raise _error(
                position,
                f"{dataset}.{name} is a boolean field; filters cannot use boolean fields "
                '(store "True"/"False" strings or 0/1 numbers instead)',
            )
        if dataset == "Actions" and name in FORBIDDEN_ACTION_FIELDS:
            raise _error(position, f"Actions.{name} is applied automatically and cannot be used in a filter")
        return found

    # ------------------------------------------------------------------ expressions
    def check_expression(self, expr: Expression, target: Target) -> None:
        conditions = list(iter_conditions(expr.condition))
        dataset = conditions[0].dataset
        allowed = TARGET_DATASETS[target]
        for cond in conditions:
            if cond.dataset not in allowed:
                raise _error(
                    cond.position,
                    f"{target.value} expressions can filter on {' or '.join(allowed)}, not {cond.dataset}",
                )
            if cond.dataset != dataset:
                raise _error(
                    cond.position,
                    f"cannot combine {dataset} and {cond.dataset} conditions in one expression; "
                    "chain separate expressions with |",
                )
        for cond in conditions:
            self.check_condition(cond, expr.action, target)
        if dataset == "Interactions":
            self.flags.add("interactions")
        elif dataset == "Action_Interactions":
            self.flags.add("action_interactions")
        if expr.user_conditions:
            if target is Target.USER:
                raise _error(expr.user_conditions[0].position, "an IF CurrentUser clause cannot be used with UserID")
            self.flags.add("current_user")
            for cond in expr.user_conditions:
                self.check_condition(cond, expr.action, target)

    def check_condition(self, cond: Condition, action: Action, target: Target) -> None:
        pos = cond.position
        in_if = cond.dataset == "CurrentUser"
        dataset = "Users" if in_if else cond.dataset
        why = " (needed by IF CurrentUser)" if in_if else ""
        schema_field = self.lookup_field(dataset, cond.field, pos, why)
        qualified = f"{dataset}.{cond.field}"
        self.use_field(qualified, schema_field, pos)
        is_event_type = dataset in INTERACTION_DATASETS and cond.field == "EVENT_TYPE"
        is_timestamp = dataset in INTERACTION_DATASETS and cond.field == "TIMESTAMP"
        shown = cond.qualified_field
        if cond.op.is_order_op and not schema_field.is_numeric:
            raise _error(pos, f"{cond.op.value} needs a numeric field, but {shown} is {schema_field.avro_type}")
        if is_timestamp and cond.op.is_list_op:
            raise _error(pos, f"{shown} takes =, !=, <, <=, > or >= with a number or a $PARAMETER (epoch seconds)")
        value = cond.value
        if isinstance(value, Placeholder):
            if cond.op is Op.NOT_IN:
                raise _error(pos, f"placeholders cannot be used with NOT IN (${value.name} in {shown})")
            self.parameters.setdefault(value.name, set()).add(action)
        elif isinstance(value, CurrentItemRef):
            self.check_current_item(cond, value, schema_field, target, in_if)
        elif isinstance(value, LiteralList):
            for item in value.items:
                if isinstance(item, StringLiteral) and item.value == WILDCARD and not is_event_type:
                    raise _error(pos, f'"*" (all event types) can only be used with EVENT_TYPE, not {shown}')
                if schema_field.is_numeric and isinstance(item, StringLiteral):
                    try:
                        float(item.value)
                    except ValueError:
                        raise _error(pos, f"{shown} is numeric; {item.value!r} is not a number") from None
                if is_timestamp and not isinstance(item, NumberLiteral):
                    raise _error(pos, f"{shown} compares with a number of epoch seconds")

    def check_current_item(
        self, cond: Condition, ref: CurrentItemRef, schema_field: SchemaField, target: Target, in_if: bool
    ) -> None:
        pos = cond.position
        if in_if or target is not Target.ITEM or cond.dataset != "Items":
            raise _error(pos, "CurrentItem can only be compared with Items fields in ItemID expressions")
        current = self.lookup_field("Items", ref.field, pos, " (needed by CurrentItem)")
        self.use_field(f"Items.{ref.field}", current, pos)
        if current.is_numeric != schema_field.is_numeric:
            raise _error(
                pos,
                f"{cond.qualified_field} ({schema_field.avro_type}) cannot be compared with "
                f"CurrentItem.{ref.field} ({current.avro_type})",
            )
        self.flags.add("current_item")


def _normalise_schemas(schemas: Mapping[str, Schema]) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for key, schema in schemas.items():
        canonical = DATASET_ALIASES.get(key.lower())
        if canonical is None:
            raise ValueError(f"unknown dataset type {key!r}")
        out[canonical] = schema
    return out


def check_filter(
    expr: FilterExpression, schemas: Mapping[str, Schema], *, limits: FilterLimits = FilterLimits()
) -> CheckedFilter:
    """Validate `expr` against the group's schemas (keys are dataset types) and report what it uses."""
    checker = _Checker(_normalise_schemas(schemas), limits)
    target = expr.expressions[0].target
    for sub in expr.expressions:
        if sub.target is not target:
            raise _error(
                sub.position,
                f"all expressions of a filter must use the same target; found {target.value} and {sub.target.value}",
            )
        checker.check_expression(sub, target)
    return CheckedFilter(
        expression=expr,
        target=target,
        fields=frozenset(checker.fields),
        parameters={name: frozenset(actions) for name, actions in checker.parameters.items()},
        field_types=dict(checker.field_types),
        uses_current_item="current_item" in checker.flags,
        uses_current_user="current_user" in checker.flags,
        uses_interactions="interactions" in checker.flags,
        uses_action_interactions="action_interactions" in checker.flags,
    )
