"""Stream-ingestion checkpoints: per consumer and shard, the position of the last record fully handled."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tastemaker.store.tables import metadata

stream_checkpoints = sa.Table(
    "stream_checkpoints",
    metadata,
    sa.Column("consumer", sa.String(256), primary_key=True),  # e.g. kinesis:STREAM:TRACKING or redis:KEY
    sa.Column("shard", sa.String(256), primary_key=True),
    sa.Column("position", sa.String(256), nullable=False),  # a Kinesis sequence number or a Redis stream id
    sa.Column("updated_at", sa.Float, nullable=False),
)


def load(conn: sa.Connection, consumer: str) -> dict[str, str]:
    rows = conn.execute(sa.select(stream_checkpoints.c.shard, stream_checkpoints.c.position)
                        .where(stream_checkpoints.c.consumer == consumer))
    return {str(shard): str(position) for shard, position in rows}


def save(conn: sa.Connection, consumer: str, shard: str, position: str) -> None:
    c = stream_checkpoints.c
    done = conn.execute(stream_checkpoints.update().where(c.consumer == consumer, c.shard == shard)
                        .values(position=position, updated_at=time.time())).rowcount
    if not done:
        conn.execute(stream_checkpoints.insert().values(consumer=consumer, shard=shard, position=position,
                                                        updated_at=time.time()))
