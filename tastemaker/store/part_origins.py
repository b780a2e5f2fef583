"""A dataset's Parquet parts with their origin (BULK imports, PUT records): what export and deletion read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from tastemaker.store.tables import dataset_parts


@dataclass(frozen=True)
class Part:
    blob_key: str
    origin: str  # BULK | PUT
    rows: int


def parts(conn: sa.Connection, dataset_arn: str, origins: Iterable[str] = ("BULK", "PUT")) -> list[Part]:
    """The dataset's parts of these origins, oldest first (later parts win on upsert)."""
    query = (sa.select(dataset_parts.c.blob_key, dataset_parts.c.origin, dataset_parts.c.rows)
             .where(dataset_parts.c.dataset_arn == dataset_arn, dataset_parts.c.origin.in_(list(origins)))
             .order_by(dataset_parts.c.id))
    return [Part(r.blob_key, r.origin, int(r.rows)) for r in conn.execute(query)]
