"""The `dataset_parts` table: the Parquet parts that make up a dataset's data."""

from __future__ import annotations

import sqlalchemy as sa

from tastemaker.store.tables import dataset_parts


def add_part(conn: sa.Connection, dataset_arn: str, *, origin: str, blob_key: str, rows: int,
             job_arn: str | None, created_at: float) -> None:
    """Record one more part of a dataset (origin BULK for imports, PUT for Put{Items,Users,Actions})."""
    conn.execute(dataset_parts.insert().values(dataset_arn=dataset_arn, origin=origin, blob_key=blob_key,
                                               rows=rows, job_arn=job_arn, created_at=created_at))
