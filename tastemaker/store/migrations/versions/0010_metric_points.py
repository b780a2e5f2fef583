"""Per-minute metric datapoints of every process (store/metric_points.py): the CloudWatch API of any replica
reads the figures of all of them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_metric_points"
down_revision = "0009_events_group_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_points",
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("dimension", sa.String(64), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("client_errors", sa.BigInteger, nullable=False),
        sa.Column("server_errors", sa.BigInteger, nullable=False),
        sa.Column("latency_count", sa.BigInteger, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
        sa.Column("latency_min", sa.Float, nullable=False),
        sa.Column("latency_max", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_points")
