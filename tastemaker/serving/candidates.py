"""Candidate masks over the serving catalogue: filters (compiled once per snapshot) and domain exclusions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from tastemaker.errors import InvalidInputException, TastemakerError
from tastemaker.filters.compiler import DEFAULT_HISTORY_DEPTH
from tastemaker.services import Services
from tastemaker.serving.catalog import ServingCatalog
from tastemaker.serving.history import UserEvents

FILTER_TTL_SECONDS = 1.0  # a filter's row (status) is re-read at most this often
MASKS_PER_FILTER = 256  # item masks kept per filter and snapshot for filters that depend on filterValues only


class FilterRows:
    """filter ARN -> (group ARN, checked filter), refreshed in the background about once a second and checked
    against the change watch on every request, as deployments are (read-your-writes: serving.deployments)."""

    def __init__(self) -> None:
        from tastemaker.serving.snapshots import Refreshing

        self._rows = Refreshing(FILTER_TTL_SECONDS)

    def get(self, services: Services, filter_arn: str) -> tuple[str, Any]:
        stamps = services.serving.deployments.changes.current(services)

        def load() -> tuple[Any, str, Any]:
            from tastemaker.control.filters import load_active_filter

            with services.read_engine.connect() as conn:
                row, checked = load_active_filter(conn, filter_arn)
            return (row.status, row.updated_at), row.dataset_group_arn or "", checked

        try:
            stamp, group, checked = self._rows.get(filter_arn, load)
        except TastemakerError:  # the error path (not ACTIVE, deleted, absent) is always read afresh
            self._rows.forget(filter_arn)
            stamp, group, checked = self._rows.get(filter_arn, load)
        if stamp != stamps.get(filter_arn):
            self._rows.forget(filter_arn)
            stamp, group, checked = self._rows.get(filter_arn, load)
        return group, checked


@lru_cache(maxsize=4096)
def _parsed_values(raw: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    """parse_filter_values, once per distinct filterValues (requests repeat them); treat the result as read-only."""
    from tastemaker.filters import parse_filter_values

    return parse_filter_values(dict(raw))


class FilterSpec:
    """One filter use in a request: the checked filter plus its raw filterValues."""

    def __init__(self, arn: str, checked: Any, values: Mapping[str, str] | None) -> None:
        self.arn = arn
        self.checked = checked
        self.values = _parsed_values(tuple(sorted((values or {}).items())))

    @property
    def uses_interactions(self) -> bool:
        return bool(self.checked.uses_interactions)


def load_filter(services: Services, group_arn: str, filter_arn: str | None,
                values: Mapping[str, str] | None) -> FilterSpec | None:
    if not filter_arn:
        if values:
            raise InvalidInputException("filterValues were given without a filterArn.")
        return None
    filter_group, checked = services.serving.filters.get(services, filter_arn)
    if filter_group != group_arn:
        raise InvalidInputException(f"Filter {filter_arn} belongs to dataset group {filter_group}, not to "
                                    f"{group_arn} of this campaign or recommender.")
    return FilterSpec(filter_arn, checked, values)


def filter_catalog(services: Services, group_arn: str, catalog: ServingCatalog) -> tuple[str, Any]:
    """(users version, FilterCatalog) for this catalogue snapshot and the group's current Users data."""
    from tastemaker.filters import FilterCatalog
    from tastemaker.serving.snapshots import read_table

    users = services.serving.versions.current(services, group_arn, "Users")
    users_version = users.version if users is not None else ""

    def build() -> Any:
        user_table = read_table(services, users, "Users") if users is not None else None
        user_ids = user_table.column("USER_ID").to_pylist() if user_table is not None else None
        return FilterCatalog(catalog.item_ids, catalog.metadata, user_ids=user_ids, users=user_table)

    return users_version, catalog.derived(f"fcat:{users_version}", build)


def history_by_type(catalog: ServingCatalog, events: UserEvents) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Event type -> (catalogue positions, timestamps), newest first; items the catalogue lacks are dropped."""
    grouped: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    position = catalog.position
    for item, kind, stamp in zip(events.item_ids, events.event_types, events.timestamps, strict=True):
        pos = position.get(item, -1)
        if pos >= 0:
            grouped[kind][0].append(pos)
            grouped[kind][1].append(stamp)
    return {kind: (np.asarray(p, np.int64), np.asarray(t, np.int64)) for kind, (p, t) in grouped.items()}


def filter_mask(services: Services, group_arn: str, catalog: ServingCatalog, spec: FilterSpec, *,
                user_id: str | None, item_position: int | None, events: UserEvents | None) -> np.ndarray:
    """Allowed items (bool over the catalogue) for one request; the filter is compiled once per snapshot.
    The result may be shared and read-only: copy it before changing it."""
    from tastemaker.filters import FilterRequest, compile_filter

    users_version, fcat = filter_catalog(services, group_arn, catalog)
    compiled = catalog.derived(f"filter:{spec.arn}:{users_version}", lambda: compile_filter(spec.checked, fcat))
    checked = spec.checked
    per_request = (checked.uses_interactions or checked.uses_current_user or checked.uses_current_item
                   or checked.uses_action_interactions)
    if not per_request:  # the mask depends on filterValues only: keep the recent ones (read-only)
        masks: dict[Any, np.ndarray] = catalog.derived(f"masks:{spec.arn}:{users_version}", dict)
        key = tuple(sorted((name, tuple(items)) for name, items in spec.values.items()))
        found = masks.get(key)
        if found is None:
            found = compiled.item_mask(FilterRequest(values=spec.values))
            found.flags.writeable = False
            if len(masks) >= MASKS_PER_FILTER:
                masks.clear()
            masks[key] = found
        return found
    request = FilterRequest(
        values=spec.values,
        history=history_by_type(catalog, events) if events is not None and spec.uses_interactions else None,
        user=fcat.user_row(user_id) if user_id else None,
        current_item=item_position if item_position is not None and item_position >= 0 else None,
    )
    if spec.checked.uses_current_item and request.current_item is None:
        # CurrentItem conditions compare with the query item; without one nothing qualifies.
        return np.zeros(catalog.size, dtype=bool)
    return compiled.item_mask(request)




def excluded_by_events(catalog: ServingCatalog, events: UserEvents, event_types: tuple[str, ...]) -> np.ndarray:
    """Catalogue positions of items in the user's latest DEFAULT_HISTORY_DEPTH interactions of each of these event
    types (domain exclusions); `events` are newest first."""
    remaining = {t.lower(): DEFAULT_HISTORY_DEPTH for t in event_types}
    position = catalog.position
    found: set[int] = set()
    for item, kind in zip(events.item_ids, events.event_types, strict=True):
        left = remaining.get(kind, 0)
        if left > 0:
            remaining[kind] = left - 1
            found.add(position.get(item, -1))
    found.discard(-1)
    return np.fromiter(found, dtype=np.int64, count=len(found))
