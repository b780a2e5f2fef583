"""Item metadata beside the test panel's results: the Items dataset's columns of the items a campaign or
recommender returned, and of the user's history items.

Read from the catalogue serving already holds for the deployment (tastemaker.serving.engine.catalog_for: the
model's items plus the Items dataset's newer ones, with the Items table aligned to it), so showing metadata
costs no dataset read. The columns shown are the Items schema's own, in schema order, title-like ones first, at
most COLUMNS of them, without ITEM_ID and CREATION_TIMESTAMP; values longer than WIDTH characters are cut.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tastemaker.errors import TastemakerError
from tastemaker.services import Services
from tastemaker.serving.deployments import deployment_cache
from tastemaker.serving.engine import catalog_for
from tastemaker.serving.models import model_cache

log = logging.getLogger("tastemaker.console")
COLUMNS = 4  # Items columns shown beside each item
WIDTH = 60  # characters of a value shown
HIDDEN = ("ITEM_ID", "CREATION_TIMESTAMP")
FIRST = ("TITLE", "NAME", "PRODUCT_NAME")


def item_metadata(services: Services, arn: str, item_ids: Sequence[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(the columns shown, item id -> column -> value) for a deployment's items; ([], {}) when the group has
    no Items data or the deployment no model."""
    kind = "recommender" if ":recommender/" in arn else "campaign"
    dep = deployment_cache(services).resolve(services, arn, kind)
    if not dep.model_prefix:
        return [], {}
    catalog = catalog_for(services, dep, model_cache(services).get(services, dep.model_prefix))
    if catalog.metadata is None:
        return [], {}
    names = [n for n in catalog.metadata.column_names if n.upper() not in HIDDEN]
    columns = sorted(names, key=lambda n: (n.upper() not in FIRST, names.index(n)))[:COLUMNS]
    unique = list(dict.fromkeys(item_ids))
    known = [(item, catalog.index_of(item)) for item in unique]
    known = [(item, pos) for item, pos in known if pos >= 0]
    rows = catalog.metadata_for([pos for _, pos in known], columns)
    cut = {item: {c: (v if len(v) <= WIDTH else v[:WIDTH - 1] + "…") for c, v in row.items()}
           for (item, _), row in zip(known, rows, strict=True)}
    return columns, cut


def shown_metadata(services: Services, arn: str, result: dict[str, Any] | None,
                   history: Sequence[tuple[str, str, str]]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The metadata of a GetRecommendations answer's items and the user's history items (item, event, when);
    nothing before there is an answer, or when the deployment cannot be read (logged)."""
    if not result:
        return [], {}
    try:
        return item_metadata(services, arn, [i["itemId"] for i in result.get("itemList", [])] +
                             [item for item, _, _ in history])
    except TastemakerError as exc:
        log.info("no item metadata for %s: %s", arn, exc.message)
        return [], {}
