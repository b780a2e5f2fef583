"""What a filter expression would remove from a user's recommendations, before the filter exists (read-only).

`preview` checks the expression exactly as CreateFilter does (against the group's schemas), compiles it over
the deployment's serving catalogue as serving compiles a created filter, and evaluates it for one request:
the user's history (for Interactions conditions), the user's row (CurrentUser), the queried item
(CurrentItem) and the filter values given. Each item of the unfiltered recommendations the caller got
(GetRecommendations, under the key's policy) is then reported as kept or removed. Nothing is cached or
stored: the compiled filter is dropped after the call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tastemaker.control.filters import check_expression
from tastemaker.services import Services
from tastemaker.serving.candidates import filter_catalog, history_by_type
from tastemaker.serving.deployments import deployment_cache
from tastemaker.serving.engine import catalog_for
from tastemaker.serving.history import user_history
from tastemaker.serving.models import model_cache


def preview(services: Services, arn: str, expression: str, items: Sequence[str], *, user_id: str | None,
            item_id: str | None = None, values: Mapping[str, str] | None = None) -> list[tuple[str, bool]]:
    """(item id, kept by the expression) for each item, in order. Raises the InvalidInputException CreateFilter
    would raise for a bad expression (its message names the position)."""
    from tastemaker.filters import FilterRequest, compile_filter, parse_filter_values

    dep = deployment_cache(services).resolve(services, arn, "recommender" if ":recommender/" in arn else "campaign")
    with services.read_engine.connect() as conn:
        checked = check_expression(conn, dep.group_arn, expression)
    loaded = model_cache(services).get(services, dep.model_prefix or "")
    catalog = catalog_for(services, dep, loaded)
    _, fcat = filter_catalog(services, dep.group_arn, catalog)
    events = user_history(services, dep.group_arn, user_id) if user_id else None
    current = catalog.index_of(item_id) if item_id else -1
    request = FilterRequest(values=parse_filter_values(dict(values or {})),
                            history=history_by_type(catalog, events) if events is not None else None,
                            user=fcat.user_row(user_id) if user_id else None,
                            current_item=current if current >= 0 else None)
    mask: Any = compile_filter(checked, fcat).item_mask(request)
    if checked.uses_current_item and request.current_item is None:
        return [(item, False) for item in items]
    return [(item, bool(mask[pos]) if (pos := catalog.index_of(item)) >= 0 else True) for item in items]
