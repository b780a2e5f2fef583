"""A dataset's data as Parquet parts: which blobs make it up, and the swap a FULL import makes in one step."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from tastemaker.store.resources import now
from tastemaker.store.tables import dataset_parts


def part_keys(conn: sa.Connection, dataset_arn: str) -> list[str]:
    """Blob keys of the dataset's Parquet parts, oldest first (later parts win on upsert)."""
    rows = conn.execute(sa.select(dataset_parts.c.blob_key).where(dataset_parts.c.dataset_arn == dataset_arn)
                        .order_by(dataset_parts.c.id))
    return [r.blob_key for r in rows]


def add_parts(conn: sa.Connection, dataset_arn: str, origin: str, parts: Iterable[tuple[str, int]],
              job_arn: str | None = None, *, replace: bool = False) -> list[str]:
    """Add (blob key, rows) parts of one origin (BULK | PUT); `replace` first drops the dataset's parts of that
    origin (a FULL import). Returns the blob keys dropped, for the caller to delete once committed."""
    dropped: list[str] = []
    if replace:
        where = sa.and_(dataset_parts.c.dataset_arn == dataset_arn, dataset_parts.c.origin == origin)
        dropped = [r.blob_key for r in conn.execute(sa.select(dataset_parts.c.blob_key).where(where))]
        conn.execute(dataset_parts.delete().where(where))
    for key, rows in parts:
        conn.execute(dataset_parts.insert().values(dataset_arn=dataset_arn, origin=origin, blob_key=key,
                                                   rows=rows, job_arn=job_arn, created_at=now()))
    return dropped
